"""Whole-image and sliding-window score maps, as the training-free references compute them.

The references average full-resolution window maps of every query, a ``(B, Q, H, W)`` tensor
(3 GB for 847 queries on a 1024 x 1024 image). :class:`SlideScores` keeps the windows' low
resolution maps instead and builds the average of any range of queries on demand, so label
assignment can go through the vocabulary a chunk at a time with the same numbers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ScoreFn = Callable[[Tensor], Tensor]


def centred_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding that makes both sides a multiple of ``multiple``,
    split evenly with the odd pixel on the right / bottom."""
    pad_w = (-width) % multiple
    pad_h = (-height) % multiple
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


@dataclass(frozen=True)
class WindowScores:
    """One window's low-resolution score map and how it maps back onto the window.

    Shapes:
        scores: ``(B, Q, h, w)``, the score map of the window padded to ``padded_size``;
        the window is ``padded[top:top + height, left:left + width]``.
    """

    scores: Tensor
    padded_size: tuple[int, int]
    top: int
    left: int
    height: int
    width: int

    def expand(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Queries ``start:stop`` upsampled to the padded window and cropped to the window.

        Shapes:
            returns ``(B, stop - start, height, width)``.
        """
        scores = self.scores[:, start:stop]
        scores = F.interpolate(scores, size=self.padded_size, mode='bilinear',
                               align_corners=False)
        return scores[..., self.top:self.top + self.height, self.left:self.left + self.width]


def window_scores(score_fn: ScoreFn, images: Tensor, patch_size: int) -> WindowScores:
    """Low-resolution score map of one window, padded to whole patches.

    Shapes:
        images: ``(B, 3, H, W)``; ``score_fn`` maps the padded window to ``(B, Q, h, w)``.
    """
    height, width = images.shape[-2:]
    left, right, top, bottom = centred_padding(height, width, patch_size)
    if left or right or top or bottom:
        images = F.pad(images, (left, right, top, bottom))
    return WindowScores(score_fn(images), tuple(images.shape[-2:]), top, left, height, width)


def window_score_map(score_fn: ScoreFn, images: Tensor, patch_size: int) -> Tensor:
    """Score map of one window, padded to whole patches and upsampled back to the window.

    Shapes:
        images: ``(B, 3, H, W)``; ``score_fn`` maps it to ``(B, Q, h, w)``; returns
        ``(B, Q, H, W)``.
    """
    return window_scores(score_fn, images, patch_size).expand()


class SlideScores:
    """Sliding-window scores of an image batch, kept at the windows' own low resolution.

    :meth:`average` gives, for any range of queries, the average of the overlapping windows'
    full-resolution maps, exactly as :func:`slide_score_map` computes it for all queries.

    Args:
        windows: each window's scores and its top-left corner ``(y, x)`` in the image.
        size: the image's ``(H, W)``.
        count_dtype: dtype of the window counts (the images'), which sets the average's dtype.
    """

    def __init__(self, windows: list[tuple[WindowScores, int, int]], size: tuple[int, int],
                 count_dtype: torch.dtype = torch.float32) -> None:
        if not windows:
            raise ValueError('a slide needs at least one window')
        self.windows = windows
        self.size = (int(size[0]), int(size[1]))
        self.count_dtype = count_dtype

    @property
    def num_queries(self) -> int:
        return self.windows[0][0].scores.shape[1]

    @property
    def batch_size(self) -> int:
        return self.windows[0][0].scores.shape[0]

    def average(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Window average of queries ``start:stop`` at full resolution.

        Shapes:
            returns ``(B, stop - start, H, W)``.
        """
        height, width = self.size
        total = None
        count = None
        for window, y1, x1 in self.windows:
            scores = window.expand(start, stop)
            if total is None:
                total = scores.new_zeros((*scores.shape[:2], height, width))
                count = scores.new_zeros((1, 1, height, width), dtype=self.count_dtype)
            y2, x2 = y1 + window.height, x1 + window.width
            total[..., y1:y2, x1:x2] += scores
            count[..., y1:y2, x1:x2] += 1
        return total / count


def slide_windows(score_fn: ScoreFn, images: Tensor, *, crop: int, stride: int,
                  patch_size: int) -> SlideScores:
    """Low-resolution scores of overlapping ``crop`` windows every ``stride`` pixels.

    Windows at the far edges are shifted inwards to stay inside the image; an image smaller than
    a window is scored whole.

    Shapes:
        images: ``(B, 3, H, W)``.
    """
    if crop <= 0 or stride <= 0:
        raise ValueError(f'slide crop and stride must be positive, got {crop} and {stride}')
    height, width = images.shape[-2:]
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    windows = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride + crop, height), min(c * stride + crop, width)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            windows.append((window_scores(score_fn, images[..., y1:y2, x1:x2], patch_size),
                            y1, x1))
    return SlideScores(windows, (height, width), images.dtype)


def slide_score_map(score_fn: ScoreFn, images: Tensor, *, crop: int, stride: int,
                    patch_size: int) -> Tensor:
    """Average of the window score maps of overlapping ``crop`` windows every ``stride`` pixels.

    Materialises every query at full resolution; :func:`slide_windows` does not.

    Shapes:
        images: ``(B, 3, H, W)``; returns ``(B, Q, H, W)``.
    """
    return slide_windows(score_fn, images, crop=crop, stride=stride,
                         patch_size=patch_size).average()
