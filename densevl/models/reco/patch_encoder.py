"""The co-segmentation encoder of ReCo: final-LayerNorm patch tokens of a ViT, as a feature map.

ReCo uses DeiT-S/16 trained on Stylized-ImageNet (timm's ``deit_small_distilled_patch16_224``
architecture with that checkpoint). Any timm ViT, or an open_clip ViT image tower, serves through
the same small interface: :class:`PatchTokenEncoder` maps normalised images ``(B, 3, H, W)`` to
``(B, D, H / p, W / p)`` and has ``patch_size``, ``model_id`` and ``fingerprint`` (what
reference-embedding caches key on).
"""
from __future__ import annotations

import math
import os
from itertools import chain

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..text.text_embedder import weights_fingerprint

TIMM_PREFIX = 'timm/'


class PatchTokenEncoder(nn.Module):
    """Base of the co-segmentation encoders: frozen, eval, ``forward(images) -> (B, D, h, w)``.

    Args:
        model: the wrapped network.
        model_id: a stable name of architecture + weights (cache keys, messages).
        patch_size: pixels per patch side.
        random_weights: whether the weights are random (tests, smoke runs).
    """

    def __init__(self, model: nn.Module, *, model_id: str, patch_size: int,
                 random_weights: bool = False) -> None:
        super().__init__()
        self.model = model
        self.model_id = model_id
        self.patch_size = int(patch_size)
        self.random_weights = bool(random_weights)
        self._fingerprint: str | None = None
        self.requires_grad_(False)
        self.eval()

    @property
    def fingerprint(self) -> str:
        """sha1 of the weights (computed once: build a new encoder after changing them)."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(
                chain(self.model.named_parameters(), self.model.named_buffers()))
        return self._fingerprint

    def _check(self, images: Tensor) -> tuple[int, int]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'expected images of shape (B, 3, H, W), got {tuple(images.shape)}')
        h, w = images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size
        if h < 1 or w < 1:
            raise ValueError(f'image of {images.shape[-2]}x{images.shape[-1]} pixels is smaller '
                             f'than one {self.patch_size}-pixel patch')
        return h, w


class TimmViTPatchTokens(PatchTokenEncoder):
    """Patch tokens of a timm ``VisionTransformer`` (DeiT, distilled DeiT, DINO, ...).

    The positional grid is resized bicubically to the input's grid (``align_corners=False``, no
    antialiasing), after the class and distillation tokens, as ReCo's
    ``DistilledVisionTransformer.forward`` does (timm's own resize antialiases, which differs).
    """

    def __init__(self, model: nn.Module, *, model_id: str, random_weights: bool = False) -> None:
        patch = model.patch_embed.patch_size
        super().__init__(model, model_id=model_id,
                         patch_size=patch[0] if isinstance(patch, (tuple, list)) else patch,
                         random_weights=random_weights)
        if getattr(model, 'cls_token', None) is None or getattr(model, 'no_embed_class', False):
            raise ValueError(f'{model_id}: only ViTs whose positional embedding covers the class '
                             'token are supported')

    def _positions(self, grid_hw: tuple[int, int]) -> Tensor:
        model = self.model
        prefix = model.num_prefix_tokens
        pos = model.pos_embed
        side = math.isqrt(pos.shape[1] - prefix)
        if (side, side) == grid_hw:
            return pos
        grid = pos[:, prefix:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=grid_hw, mode='bicubic', align_corners=False)
        return torch.cat([pos[:, :prefix], grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: ``(B, 3, H, W) -> (B, D, H // p, W // p)``."""
        h, w = self._check(images)
        model = self.model
        x = model.patch_embed.proj(images.to(model.pos_embed.dtype))
        x = model.patch_embed.norm(x.flatten(2).transpose(1, 2))
        tokens = [model.cls_token.expand(x.shape[0], -1, -1)]
        if getattr(model, 'dist_token', None) is not None:
            tokens.append(model.dist_token.expand(x.shape[0], -1, -1))
        x = torch.cat([*tokens, x], dim=1) + self._positions((h, w))
        x = model.norm_pre(model.pos_drop(x))
        x = model.norm(model.blocks(x))
        return x[:, model.num_prefix_tokens:].transpose(1, 2).reshape(x.shape[0], -1, h, w)


class OpenCLIPPatchTokens(PatchTokenEncoder):
    """Patch tokens of an open_clip ViT image tower after ``ln_post`` (before the projection)."""

    def __init__(self, visual: nn.Module, *, model_id: str, random_weights: bool = False) -> None:
        from ..clip import CLIPDenseViT, is_modified_resnet

        if is_modified_resnet(visual) or not hasattr(visual, 'transformer'):
            raise ValueError(f'{model_id}: patch tokens need a ViT image tower')
        dense = CLIPDenseViT(visual, mode='plain')
        super().__init__(visual, model_id=model_id, patch_size=dense.patch_size,
                         random_weights=random_weights)
        self._embed = dense.embed_patches

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: ``(B, 3, H, W) -> (B, D, H // p, W // p)``."""
        self._check(images)
        x, (h, w) = self._embed(images)
        x = self.model.ln_post(self.model.transformer(x)[:, 1:])
        return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)


def create_patch_encoder(model_name: str, pretrained: str | None = None, *,
                         device: str | torch.device = 'cpu') -> PatchTokenEncoder:
    """A co-segmentation encoder by name.

    Args:
        model_name: ``'timm/<architecture>'`` (e.g. ``'timm/deit_small_distilled_patch16_224'``,
            ReCo's) or a CLIP name :func:`~densevl.models.clip.create_clip` knows (its ViT tower).
        pretrained: a local checkpoint for timm (a state dict, or a dict holding one under
            ``'model'`` / ``'state_dict'`` as DeiT-SIN's ``deit_s_sin_dist.pth``); for CLIP names
            as :func:`create_clip`. None: random weights.
    """
    if model_name.startswith(TIMM_PREFIX):
        import timm

        arch = model_name[len(TIMM_PREFIX):]
        model = timm.create_model(arch, pretrained=False)
        if pretrained is not None:
            _load_timm_checkpoint(model, pretrained, arch)
        source = os.path.basename(pretrained) if pretrained else 'random'
        return TimmViTPatchTokens(model.float().to(device), model_id=f'{model_name}@{source}',
                                  random_weights=pretrained is None)
    from ..clip import create_clip

    bundle = create_clip(model_name, pretrained, device=device)
    return OpenCLIPPatchTokens(bundle.model.visual, model_id=bundle.model_id,
                               random_weights=bundle.random_weights)


def _load_timm_checkpoint(model: nn.Module, path: str, arch: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'co-segmentation encoder weights {path!r} do not exist; ReCo '
                                "uses DeiT-S/16-SIN's deit_s_sin_dist.pth (Naseer et al.)")
    state = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('model', 'state_dict'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    missing, unexpected = model.load_state_dict(state, strict=False)
    # The classifier heads are not used; everything up to the final norm must load.
    missing = [k for k in missing if not k.startswith(('head', 'fc_norm'))]
    if missing or unexpected:
        raise ValueError(f'{path} does not fit timm {arch!r}: missing {missing[:8]}, unexpected '
                         f'{list(unexpected)[:8]}')
