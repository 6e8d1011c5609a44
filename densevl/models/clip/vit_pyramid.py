"""A four-level feature pyramid and dense embeddings from a CLIP ViT, as DenseCLIP builds them."""
from __future__ import annotations

import math

from torch import Tensor, nn

from .dense_output import DenseOutput
from .dense_vit import CLIPDenseViT

NORMS = ('BN', 'SyncBN', 'GN')
DROP_PATH_MODES = ('sample', 'token')


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == 'BN':
        return nn.BatchNorm2d(channels)
    if kind == 'SyncBN':
        return nn.SyncBatchNorm(channels)
    if kind == 'GN':
        return nn.GroupNorm(math.gcd(32, channels), channels)
    raise ValueError(f'unknown norm {kind!r}; choose one of {", ".join(NORMS)}')


def _deconv(channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)


def _layer_norm(channels: int) -> nn.GroupNorm:
    # one group over all channels: a LayerNorm over (C, h, w) of each token map
    return nn.GroupNorm(1, channels)


def drop_path(x: Tensor, prob: float, mode: str = 'sample') -> Tensor:
    """Stochastic depth on a residual branch (training only; scaled by ``1 / keep``).

    ``'sample'`` drops the branch of whole samples. ``'token'`` drops it at single token positions
    shared across the batch, which is what DenseCLIP's ViT does (timm's per-sample mask applied
    to sequence-first tokens); kept to retrain the released model exactly.

    Shapes:
        x: ``(B, L, D)``.
    """
    if prob == 0.0:
        return x
    keep = 1.0 - prob
    shape = (x.shape[0], 1, 1) if mode == 'sample' else (1, x.shape[1], 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask.div_(keep) if keep > 0 else x * mask


class CLIPViTFeaturePyramid(nn.Module):
    """DenseCLIP's ``CLIPVisionTransformer``: strides 4/8/16/32 and dense embeddings from a ViT.

    The token maps after four blocks (``feature_indices``; 3, 5, 7, 11 of ViT-B/16) become a
    pyramid. Every level starts with a LayerNorm over the map (``GroupNorm(1, D)``); then, for
    patch 16: deconv-norm-GELU-deconv (stride 4), deconv (8), nothing (16), max-pool (32); for
    patch 8: deconv (4), nothing (8), max-pool 2 (16), max-pool 4 (32). ``ln_post`` and the
    projection applied to every output token of the last block give the global (class token) and
    dense embeddings.

    Differences from CLIP's own forward, as in DenseCLIP: the positional embedding is resized
    bilinearly (DenseCLIP: from its training grid, 40x40 at 640 px) instead of
    :class:`CLIPDenseViT`'s bicubic resize; blocks may drop paths while training.

    ``double_class_embedding``: DenseCLIP's ViT adds the class embedding to the class token twice
    (once as the token, once more to its positional embedding), so the class token enters the
    first block as ``2 * class_embedding + pos[0]``. Its released ViT-B/16 models were trained
    that way: set ``True`` to run them; ``False`` is CLIP's own embedding.

    Args:
        visual: an open_clip ``VisionTransformer`` or a :class:`CLIPDenseViT` around one.
        norm: the norm between the two stride-4 deconvolutions, ``'BN'``, ``'SyncBN'`` (DenseCLIP;
            needs a distributed run to train) or ``'GN'``.
        drop_path_rate: stochastic depth of the last block; block ``i`` gets
            ``rate * i / (layers - 1)`` (0.1 in DenseCLIP).
        drop_path_mode: ``'sample'`` or ``'token'`` (DenseCLIP's), see :func:`drop_path`.
        double_class_embedding: reproduce DenseCLIP's doubled class embedding.
        feature_indices: blocks whose outputs form the pyramid; default that of
            :class:`CLIPDenseViT` (3, 5, 7, 11 for 12 blocks).

    Shapes:
        images ``(B, 3, H, W)`` -> :class:`DenseOutput` with ``features`` the four levels
        ``(B, D, H/s, W/s)`` for ``s`` in 4, 8, 16, 32, ``dense`` ``(B, C, H/p, W/p)`` and
        ``global_embedding`` ``(B, C)``.
    """

    def __init__(self, visual: nn.Module, *, norm: str = 'BN', drop_path_rate: float = 0.0,
                 drop_path_mode: str = 'sample', double_class_embedding: bool = False,
                 feature_indices: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if not isinstance(visual, CLIPDenseViT):
            visual = CLIPDenseViT(visual, mode='plain', feature_indices=feature_indices)
        self.encoder = visual
        num_layers = len(visual.visual.transformer.resblocks)
        indices = tuple(sorted(feature_indices or visual.feature_indices))
        if len(set(indices)) != 4 or not all(0 <= i < num_layers for i in indices):
            raise ValueError(f'the pyramid needs 4 distinct blocks out of {num_layers}, got '
                             f'{indices}')
        self.feature_indices = indices
        if norm not in NORMS:
            raise ValueError(f'unknown norm {norm!r}; choose one of {", ".join(NORMS)}')
        if drop_path_mode not in DROP_PATH_MODES:
            raise ValueError(f'unknown drop_path_mode {drop_path_mode!r}; choose one of '
                             f'{", ".join(DROP_PATH_MODES)}')
        self.double_class_embedding = double_class_embedding
        self.drop_path_mode = drop_path_mode
        self.drop_path_probs = [drop_path_rate * i / max(num_layers - 1, 1)
                                for i in range(num_layers)]
        d = visual.width
        if visual.patch_size == 16:
            self.fpn1 = nn.Sequential(_layer_norm(d), _deconv(d), _norm(norm, d), nn.GELU(),
                                      _deconv(d))
            self.fpn2 = nn.Sequential(_layer_norm(d), _deconv(d))
            self.fpn3 = _layer_norm(d)
            self.fpn4 = nn.Sequential(_layer_norm(d), nn.MaxPool2d(kernel_size=2, stride=2))
        elif visual.patch_size == 8:
            self.fpn1 = nn.Sequential(_layer_norm(d), _deconv(d))
            self.fpn2 = _layer_norm(d)
            self.fpn3 = nn.Sequential(_layer_norm(d), nn.MaxPool2d(kernel_size=2, stride=2))
            self.fpn4 = nn.Sequential(_layer_norm(d), nn.MaxPool2d(kernel_size=4, stride=4))
        else:
            raise ValueError(f'DenseCLIP builds its pyramid for patch 16 or 8, not '
                             f'{visual.patch_size}')
        self.width = d
        self.embed_dim = visual.embed_dim
        self.patch_size = visual.patch_size

    @property
    def level_channels(self) -> list[int]:
        """Channels of the four levels, strides 4 to 32."""
        return [self.width] * 4

    @property
    def visual(self) -> nn.Module:
        """The open_clip ``VisionTransformer``."""
        return self.encoder.visual

    @property
    def position_grid_owner(self) -> nn.Module:
        """The module whose ``positional_embedding`` is the tower's positional grid."""
        return self.encoder.visual

    def drop_embedding_head(self) -> None:
        """Remove ``ln_post`` and the projection (a plain backbone, as DenseCLIP's
        ``CLIPVisionTransformer`` without ``get_embeddings``)."""
        self.encoder.visual.ln_post, self.encoder.visual.proj = nn.Identity(), None

    def features(self, images: Tensor) -> list[Tensor]:
        """The four pyramid levels."""
        return self(images).features

    def forward_dense(self, images: Tensor, *, return_features: bool = True,
                      return_global: bool = True) -> DenseOutput:
        """The pyramid, dense and global embeddings (all computed by one forward)."""
        return self(images)

    def embed_tokens(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Patch tokens with DenseCLIP's class token and bilinearly resized positions, ``ln_pre``.

        Shapes:
            images ``(B, 3, H, W)``; returns ``(B, 1 + gh * gw, D)`` and ``(gh, gw)``.
        """
        return self.encoder.embed_patches(images, pos_resize='bilinear',
                                          double_class_embedding=self.double_class_embedding)

    def _block(self, index: int, x: Tensor) -> Tensor:
        block = self.encoder.visual.transformer.resblocks[index]
        prob = self.drop_path_probs[index]
        if not self.training or prob == 0.0:
            return block(x)
        x = x + drop_path(block.ls_1(block.attention(block.ln_1(x))), prob, self.drop_path_mode)
        return x + drop_path(block.ls_2(block.mlp(block.ln_2(x))), prob, self.drop_path_mode)

    def forward(self, images: Tensor) -> DenseOutput:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'expected images of shape (B, 3, H, W), got {tuple(images.shape)}')
        p = self.patch_size
        if images.shape[-2] < 2 * p or images.shape[-1] < 2 * p:
            raise ValueError(f'image of {images.shape[-2]}x{images.shape[-1]} pixels gives fewer '
                             f'than 2x2 patches of {p} pixels; the stride-32 level needs at '
                             f'least {2 * p} pixels per side')
        x, (gh, gw) = self.embed_tokens(images)
        batch = x.shape[0]
        levels = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        features = []
        for i in range(len(self.drop_path_probs)):
            x = self._block(i, x)
            if i in self.feature_indices:
                token_map = x[:, 1:].transpose(1, 2).reshape(batch, -1, gh, gw)
                features.append(levels[len(features)](token_map.contiguous()))
        tokens = self.encoder.tokens_to_embeddings(x)
        dense = tokens[:, 1:].transpose(1, 2).reshape(batch, -1, gh, gw)
        return DenseOutput(dense=dense, global_embedding=tokens[:, 0], features=features)
