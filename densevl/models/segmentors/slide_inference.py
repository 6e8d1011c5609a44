"""Whole-image and sliding-window score maps, as the training-free references compute them."""
from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

ScoreFn = Callable[[Tensor], Tensor]


def centred_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding that makes both sides a multiple of ``multiple``,
    split evenly with the odd pixel on the right / bottom."""
    pad_w = (-width) % multiple
    pad_h = (-height) % multiple
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


def window_score_map(score_fn: ScoreFn, images: Tensor, patch_size: int) -> Tensor:
    """Score map of one window, padded to whole patches and upsampled back to the window.

    Shapes:
        images: ``(B, 3, H, W)``; ``score_fn`` maps it to ``(B, Q, h, w)``; returns ``(B, Q, H, W)``.
    """
    height, width = images.shape[-2:]
    left, right, top, bottom = centred_padding(height, width, patch_size)
    if left or right or top or bottom:
        images = F.pad(images, (left, right, top, bottom))
    scores = score_fn(images)
    scores = F.interpolate(scores, size=images.shape[-2:], mode='bilinear', align_corners=False)
    return scores[..., top:top + height, left:left + width]


def slide_score_map(score_fn: ScoreFn, images: Tensor, *, crop: int, stride: int,
                    patch_size: int) -> Tensor:
    """Average of the window score maps of overlapping ``crop`` windows every ``stride`` pixels.

    Windows at the far edges are shifted inwards to stay inside the image; an image smaller than
    a window is scored whole.

    Shapes:
        images: ``(B, 3, H, W)``; returns ``(B, Q, H, W)``.
    """
    if crop <= 0 or stride <= 0:
        raise ValueError(f'slide crop and stride must be positive, got {crop} and {stride}')
    height, width = images.shape[-2:]
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    total = None
    count = images.new_zeros((1, 1, height, width))
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride + crop, height), min(c * stride + crop, width)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            scores = window_score_map(score_fn, images[..., y1:y2, x1:x2], patch_size)
            if total is None:
                total = scores.new_zeros((*scores.shape[:2], height, width))
            total[..., y1:y2, x1:x2] += scores
            count[..., y1:y2, x1:x2] += 1
    return total / count
