"""Attention-pool positions cropped from a large stored grid, as DenseCLIP's detectors use them."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def cropped_pool_positions(pos_embed: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """The mean token's position and the top-left ``gh x gw`` window of the stored grid.

    DenseCLIP's detection backbone stores the pool's positional embedding resized (bilinearly,
    once, when CLIP's 7x7 grid is loaded) to ``input_resolution / 32`` (42x42 for 1344 px) and,
    for each batch, takes its top-left window the size of the feature map instead of resizing
    it, so that a position keeps its embedding whatever the image size.

    Shapes:
        pos_embed: ``(1 + S * S, D)``; returns ``(1 + gh * gw, D)``.
    """
    side = math.isqrt(pos_embed.shape[0] - 1)
    gh, gw = grid_hw
    if side * side != pos_embed.shape[0] - 1:
        raise ValueError(f'positional embedding has {pos_embed.shape[0] - 1} positions, not a '
                         'square grid')
    if gh > side or gw > side:
        raise ValueError(f'a {gh}x{gw} feature map does not fit the {side}x{side} positional '
                         f'grid; resize the grid to at least {max(gh, gw)} per side (the '
                         f'input_resolution / 32 of the config) when loading the weights')
    window = pos_embed[1:].reshape(side, side, -1)[:gh, :gw].reshape(gh * gw, -1)
    return torch.cat([pos_embed[:1], window], dim=0)
