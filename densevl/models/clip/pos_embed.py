"""Positional embeddings at any input size and aspect ratio."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _resize_grid(pos_embed: Tensor, grid_hw: tuple[int, int],
                 interpolate: Callable[[Tensor, int], Tensor]) -> Tensor:
    """``pos_embed`` (first row kept, the others a square grid) with its grid resampled by
    ``interpolate(grid, side)``: ``(1, D, side, side)`` fp32 to ``(1, D, gh, gw)``."""
    num_patches = pos_embed.shape[0] - 1
    side = int(math.isqrt(num_patches))
    gh, gw = grid_hw
    if (gh, gw) == (side, side):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    dim = pos_embed.shape[-1]
    grid = patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = interpolate(grid.float(), side)
    patch_pos = grid.permute(0, 2, 3, 1).reshape(gh * gw, dim).to(pos_embed.dtype)
    return torch.cat([cls_pos, patch_pos], dim=0)


def resize_vit_pos_embed(pos_embed: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Resize a ViT positional embedding (class token first) to a new patch grid.

    Bicubic resampling with the scale factor ``(g + 0.1) / sqrt(N)``, as DINO introduced and the
    training-free dense CLIP references (SCLIP, ClearCLIP, NACLIP) use, so that results match theirs
    at any input size, not only the native one.

    Shapes:
        pos_embed: ``(1 + N, D)`` with ``N`` a square number; returns ``(1 + gh * gw, D)``.
    """
    num_patches = pos_embed.shape[0] - 1
    if math.isqrt(num_patches) ** 2 != num_patches:
        raise ValueError(f'positional embedding has {num_patches} patch positions, not a square '
                         'grid; only square pretraining grids can be resized')
    gh, gw = grid_hw

    def dino_bicubic(grid: Tensor, side: int) -> Tensor:
        grid = F.interpolate(grid, scale_factor=((gh + 0.1) / side, (gw + 0.1) / side),
                             mode='bicubic', align_corners=False, recompute_scale_factor=False)
        assert grid.shape[-2:] == (gh, gw), (grid.shape, gh, gw)
        return grid

    return _resize_grid(pos_embed, grid_hw, dino_bicubic)


def resize_attnpool_pos_embed(pos_embed: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Resize a ModifiedResNet attention-pool positional embedding (mean token first).

    Bilinear, as DenseCLIP resizes the 7x7 pretraining grid to ``input / 32``.

    Shapes:
        pos_embed: ``(1 + N, D)``; returns ``(1 + gh * gw, D)``.
    """
    gh, gw = grid_hw
    return _resize_grid(pos_embed, grid_hw, lambda grid, side: F.interpolate(
        grid, size=(gh, gw), mode='bilinear', align_corners=False))
