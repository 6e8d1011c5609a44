"""Score maps of image windows: one padded window, or overlapping sliding windows.

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

from ..inference_protocol import SlideWindows

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

    def sample(self, size: tuple[int, int]) -> Tensor:
        """The upsampled window map of :meth:`expand`, read at the cell centres of a
        ``size`` grid laid over the window (e.g. another model's stride-4 map of it); equal to
        :meth:`expand` when ``size`` is the window's.

        Shapes:
            returns ``(B, Q, *size)``.
        """
        (grid_h, grid_w), (padded_h, padded_w) = size, self.padded_size

        def normalised(cells: int, length: int, offset: int, padded: int) -> Tensor:
            centres = (torch.arange(cells, dtype=torch.float64) + 0.5) * (length / cells) - 0.5
            return ((centres + offset + 0.5) / padded * 2 - 1).to(self.scores)

        ys = normalised(grid_h, self.height, self.top, padded_h)
        xs = normalised(grid_w, self.width, self.left, padded_w)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1)
        grid = grid.expand(self.scores.shape[0], grid_h, grid_w, 2)
        return F.grid_sample(self.scores, grid, mode='bilinear', padding_mode='border',
                             align_corners=False)


def score_window(score_fn: ScoreFn, images: Tensor, pad_to: int = 1) -> WindowScores:
    """Low-resolution score map of one window, padded (centred) to a multiple of ``pad_to``.

    Shapes:
        images: ``(B, 3, H, W)``; ``score_fn`` maps the padded window to ``(B, Q, h, w)``.
    """
    height, width = images.shape[-2:]
    left, right, top, bottom = centred_padding(height, width, pad_to)
    if left or right or top or bottom:
        images = F.pad(images, (left, right, top, bottom))
    return WindowScores(score_fn(images), tuple(images.shape[-2:]), top, left, height, width)


class SlideScores:
    """Sliding-window scores of an image batch, kept at the windows' own low resolution.

    :meth:`average` gives, for any range of queries, the average of the overlapping windows'
    full-resolution maps over ``region`` of the image (the whole image by default; mmseg's
    batches crop their padding), so labels can be assigned a chunk of queries at a time.

    Args:
        windows: each window's scores and its top-left corner ``(y, x)`` in the image.
        size: the image's ``(H, W)``.
        count_dtype: dtype of the window counts (the images'), which sets the average's dtype.
        region: ``(top, left, height, width)`` of the image that :meth:`average` covers.
    """

    def __init__(self, windows: list[tuple[WindowScores, int, int]], size: tuple[int, int],
                 count_dtype: torch.dtype = torch.float32,
                 region: tuple[int, int, int, int] | None = None) -> None:
        if not windows:
            raise ValueError('a slide needs at least one window')
        self.windows = windows
        self.image_size = (int(size[0]), int(size[1]))
        top, left, height, width = region or (0, 0, *self.image_size)
        if (min(top, left) < 0 or height <= 0 or width <= 0
                or top + height > self.image_size[0] or left + width > self.image_size[1]):
            raise ValueError(f'region {region} is not inside the {self.image_size} image')
        self.region = (int(top), int(left), int(height), int(width))
        self.count_dtype = count_dtype

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the averages: the region's."""
        return self.region[2], self.region[3]

    @property
    def num_queries(self) -> int:
        return self.windows[0][0].scores.shape[1]

    @property
    def batch_size(self) -> int:
        return self.windows[0][0].scores.shape[0]

    def average(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Window average of queries ``start:stop`` at full resolution, over the region.

        Shapes:
            returns ``(B, stop - start, height, width)`` of the region.
        """
        top, left, height, width = self.region
        total = None
        count = None
        for window, y1, x1 in self.windows:
            # the window's part inside the region, in region coordinates
            ys, ye = max(y1, top) - top, min(y1 + window.height, top + height) - top
            xs, xe = max(x1, left) - left, min(x1 + window.width, left + width) - left
            if ys >= ye or xs >= xe:
                continue
            scores = window.expand(start, stop)
            if total is None:
                total = scores.new_zeros((*scores.shape[:2], height, width))
                count = scores.new_zeros((1, 1, height, width), dtype=self.count_dtype)
            oy, ox = top - y1, left - x1
            total[..., ys:ye, xs:xe] += scores[..., ys + oy:ye + oy, xs + ox:xe + ox]
            count[..., ys:ye, xs:xe] += 1
        return total / count


def score_slide(score_fn: ScoreFn, images: Tensor, windows: SlideWindows, *, pad_to: int = 1,
                region: tuple[int, int, int, int] | None = None) -> SlideScores:
    """Low-resolution scores of overlapping windows (or of one whole-input window).

    Windows at the far edges are shifted inwards to stay inside the image; an image smaller than
    a window is scored whole (mmseg's slide inference places its windows the same way).

    Args:
        score_fn: a window ``(B, 3, h', w')`` to its low-resolution scores ``(B, Q, h, w)``.
        windows: crop and stride; ``SlideWindows.whole_input()`` for a single window.
        pad_to: each window is padded (centred) to a multiple of it before ``score_fn``.
        region: see :class:`SlideScores`.

    Shapes:
        images: ``(B, 3, H, W)``.
    """
    height, width = images.shape[-2:]
    scored = [(score_window(score_fn, images[..., y1:y2, x1:x2], pad_to), y1, x1)
              for y1, y2, x1, x2 in window_boxes(height, width, windows)]
    return SlideScores(scored, (height, width), images.dtype, region)


def window_boxes(height: int, width: int,
                 windows: SlideWindows) -> list[tuple[int, int, int, int]]:
    """``(y1, y2, x1, x2)`` of each window over a ``height`` x ``width`` image, row by row (see
    :func:`score_slide`; ``windows.crop`` None: the whole image)."""
    (crop_h, crop_w), (stride_h, stride_w) = (windows.crop, windows.stride) \
        if windows.crop is not None else ((height, width), (height, width))
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride_h + crop_h, height), min(c * stride_w + crop_w, width)
            boxes.append((max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return boxes
