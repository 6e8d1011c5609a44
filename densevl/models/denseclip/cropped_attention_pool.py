"""The attention pool of DenseCLIP's detectors: positions cropped from a large grid, not resized."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


def cropped_attention_pool(attnpool: nn.Module, res5: Tensor) -> tuple[Tensor, Tensor]:
    """A ModifiedResNet's attention pool over the mean token and every position, cropped positions.

    The same attention as :meth:`CLIPDenseResNet.attention_pool` (every position a query), with
    :func:`cropped_pool_positions` in place of the bilinear resize.

    Args:
        attnpool: an open_clip ``AttentionPool2d`` (``visual.attnpool``).

    Shapes:
        res5: ``(B, D, h, w)``; returns global ``(B, C)`` and dense ``(B, C, h, w)``.
    """
    b, d, h, w = res5.shape
    x = res5.flatten(2).permute(2, 0, 1)
    x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
    x = x + cropped_pool_positions(attnpool.positional_embedding, (h, w))[:, None].to(x.dtype)
    x, _ = F.multi_head_attention_forward(
        query=x, key=x, value=x, embed_dim_to_check=d, num_heads=attnpool.num_heads,
        q_proj_weight=attnpool.q_proj.weight, k_proj_weight=attnpool.k_proj.weight,
        v_proj_weight=attnpool.v_proj.weight, in_proj_weight=None,
        in_proj_bias=torch.cat([attnpool.q_proj.bias, attnpool.k_proj.bias,
                                attnpool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=attnpool.c_proj.weight, out_proj_bias=attnpool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    return x[0], x[1:].permute(1, 2, 0).reshape(b, -1, h, w)
