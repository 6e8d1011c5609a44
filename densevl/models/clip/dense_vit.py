"""Dense embeddings from any open_clip ViT image tower."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .dense_output import DenseOutput
from .last_block import check_mode, dense_last_block, neighbourhood_prior
from .pos_embed import resize_attnpool_pos_embed, resize_vit_pos_embed


def _default_feature_indices(num_layers: int) -> tuple[int, ...]:
    # DenseCLIP takes blocks 3, 5, 7 and 11 of ViT-B/16; other depths are spaced alike.
    if num_layers == 12:
        return (3, 5, 7, 11)
    return tuple(sorted({max(0, round(num_layers * f) - 1) for f in (1 / 3, 1 / 2, 2 / 3, 1)}))


class CLIPDenseViT(nn.Module):
    """Patch embeddings in the joint image-text space from an open_clip ``VisionTransformer``.

    The weights stay those of the wrapped tower (``self.visual``), so a checkpoint of the CLIP
    model loads unchanged; only the forward differs (see :mod:`.last_block` for the modes).

    Args:
        visual: an open_clip ``VisionTransformer`` (``clip_model.visual``).
        mode: default last-block mode, one of ``DENSE_MODES``.
        naclip_std: standard deviation of NACLIP's neighbourhood prior, in patches.
        feature_indices: blocks whose outputs :meth:`forward_dense` returns as multi-level
            features when asked; DenseCLIP's (3, 5, 7, 11) for 12 blocks.
    """

    def __init__(self, visual: nn.Module, *, mode: str = 'maskclip', naclip_std: float = 5.0,
                 feature_indices: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if getattr(visual, 'attn_pool', None) is not None:
            raise ValueError('this ViT pools with attentional pooling (CoCa-style); dense '
                             'embeddings need a class-token or average-pooled ViT')
        self.visual = visual
        self.mode = check_mode(mode)
        self.naclip_std = naclip_std
        patch = visual.conv1.kernel_size
        if patch[0] != patch[1]:
            raise ValueError(f'non-square patches {patch} are not supported')
        self.patch_size = int(patch[0])
        self.width = visual.conv1.out_channels
        self.embed_dim = visual.proj.shape[1] if visual.proj is not None else self.width
        num_layers = len(visual.transformer.resblocks)
        self.feature_indices = feature_indices or _default_feature_indices(num_layers)
        self._priors: dict[tuple[int, int], Tensor] = {}

    @property
    def position_grid_owner(self) -> nn.Module:
        """The module whose ``positional_embedding`` is the tower's positional grid."""
        return self.visual

    def tokens_to_embeddings(self, tokens: Tensor) -> Tensor:
        """``ln_post`` then the projection into the joint space.

        Shapes:
            ``(B, L, D) -> (B, L, C)``.
        """
        tokens = self.visual.ln_post(tokens)
        return tokens @ self.visual.proj if self.visual.proj is not None else tokens

    def _global_pool(self, tokens: Tensor) -> Tensor:
        # The same pooling as open_clip's VisionTransformer, so the global embedding is CLIP's.
        visual = self.visual
        if getattr(visual, 'pool_type', 'tok') == 'avg':
            if getattr(visual, 'final_ln_after_pool', False):
                pooled = visual.ln_post(tokens[:, 1:].mean(dim=1))
            else:
                pooled = visual.ln_post(tokens[:, 1:]).mean(dim=1)
        else:
            pooled = visual.ln_post(tokens[:, 0])
        return pooled @ visual.proj if visual.proj is not None else pooled

    def _prior(self, grid_hw: tuple[int, int], like: Tensor) -> Tensor:
        prior = self._priors.get(grid_hw)
        if prior is None or prior.device != like.device or prior.dtype != like.dtype:
            prior = neighbourhood_prior(grid_hw, self.naclip_std, device=like.device,
                                        dtype=like.dtype)
            self._priors[grid_hw] = prior
        return prior

    def embed_patches(self, images: Tensor, *, pos_resize: str = 'dino',
                      double_class_embedding: bool = False) -> tuple[Tensor, tuple[int, int]]:
        """Patchify, add the class token and (resized) positional embedding, ``ln_pre``.

        Args:
            pos_resize: ``'dino'`` (bicubic, the training-free references) or ``'bilinear'``
                (DenseCLIP).
            double_class_embedding: add the class embedding to the class token's position too,
                as DenseCLIP's ViT does (its released weights depend on it).

        Shapes:
            images: ``(B, 3, H, W)``; returns tokens ``(B, 1 + gh * gw, D)`` and ``(gh, gw)``.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'expected images of shape (B, 3, H, W), got {tuple(images.shape)}')
        h, w = images.shape[-2:]
        if h < self.patch_size or w < self.patch_size:
            raise ValueError(f'image of {h}x{w} pixels is smaller than one {self.patch_size}x'
                             f'{self.patch_size} patch; resize it to at least {self.patch_size} '
                             'pixels per side')
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))
        grid_hw = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype)
        resize = {'dino': resize_vit_pos_embed, 'bilinear': resize_attnpool_pos_embed}[pos_resize]
        pos = resize(visual.positional_embedding, grid_hw).to(x.dtype)
        if double_class_embedding:
            pos = torch.cat([pos[:1] + cls, pos[1:]])
        x = torch.cat([cls.expand(x.shape[0], 1, -1), x], dim=1) + pos
        return visual.ln_pre(x), grid_hw

    def forward_dense(self, images: Tensor, mode: str | None = None, *,
                      return_features: bool = False, return_global: bool = True) -> DenseOutput:
        """Dense and global embeddings of a batch of normalised images.

        Shapes:
            images: ``(B, 3, H, W)``, any size of at least one patch; ``dense`` is
            ``(B, C, H // p, W // p)``, ``global_embedding`` ``(B, C)``, each feature
            ``(B, width, H // p, W // p)``. ``return_global=False`` skips the global embedding.
        """
        mode = check_mode(mode or self.mode)
        x, (gh, gw) = self.embed_patches(images)
        blocks = self.visual.transformer.resblocks
        batch = x.shape[0]

        def to_map(tokens: Tensor) -> Tensor:
            return tokens[:, 1:].transpose(1, 2).reshape(batch, -1, gh, gw)

        features = []
        last = len(blocks) - 1
        for i, block in enumerate(blocks[:-1]):
            x = block(x)
            if return_features and i in self.feature_indices:
                features.append(to_map(x))

        # The ordinary last block gives the global embedding and the last feature level; in a
        # dense mode it is skipped when neither is asked for.
        need_plain = mode == 'plain' or return_global or (
            return_features and last in self.feature_indices)
        plain = blocks[-1](x) if need_plain else None
        if return_features and last in self.feature_indices:
            features.append(to_map(plain))
        global_embedding = self._global_pool(plain) if return_global else None

        if mode == 'plain':
            out = plain
        else:
            prior = self._prior((gh, gw), x) if mode == 'naclip' else None
            out = dense_last_block(blocks[-1], x, mode, prior=prior)
        dense = to_map(self.tokens_to_embeddings(out))
        return DenseOutput(dense=dense, global_embedding=global_embedding, features=features)

    def forward(self, images: Tensor) -> DenseOutput:
        return self.forward_dense(images)
