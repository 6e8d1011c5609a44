"""GroundVLP's fusion of a heat map with candidate boxes (plain PyTorch).

``g_i = d_i · Σ_{pixels in box i} H / sqrt(area_i)``, ``d_i`` the detector's score (1 for the
class-agnostic fallback proposals); the answer is ``argmax_i g_i``.

Conventions, as GroundVLP's ``cal_score`` (om-ai-lab/GroundVLP ``models/albef/engine.py``):

* boxes are ``(x1, y1, x2, y2)`` in pixels of ``H``; the summed pixels are rows
  ``int(y1) .. int(y2) - 1`` and columns ``int(x1) .. int(x2) - 1`` (coordinates truncated,
  end exclusive);
* the area is that of the unrounded box, ``(x2 - x1) · (y2 - y1)``;
* ties go to the first box.

Where this differs from the reference, on input it does not handle:

* coordinates are clipped to the image (``[0, W]``, ``[0, H]``) first, and the area is the
  clipped box's. The reference slices with the raw coordinates, so a negative one wraps round
  the image (Python slicing) and a box sticking out is divided by its full area;
* a box of zero area (after clipping; an inverted box ``x2 < x1`` or ``y2 < y1`` counts as
  empty) scores ``-inf`` and is never the answer while another box
  exists; the reference divides by zero (NaN);
* the answer is the best box even when its score is not positive; the reference keeps the
  sentinel box ``[0, 0, 0, 0]`` unless some score is ``> 0``;
* an empty box list (or only degenerate boxes) gives no answer (``index`` None), not a crash.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class FusionResult:
    """The fused score of every box and the chosen one.

    Attributes:
        scores: ``(N,)`` ``g_i`` (``-inf`` for zero-area boxes).
        index: the chosen box, or None when no box has a positive area.
    """

    scores: Tensor
    index: int | None


def clip_boxes(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Boxes ``(N, 4)`` xyxy clipped to an image of ``size = (H, W)``."""
    h, w = size
    limits = boxes.new_tensor([w, h, w, h])
    return torch.minimum(boxes.clamp(min=0), limits)


def box_heat_sums(heat: Tensor, boxes: Tensor) -> Tensor:
    """Sum of the heat map inside each box, GroundVLP's pixel convention (module doc), from an
    integral image in float64. Boxes must lie in the image (:func:`clip_boxes`).

    Shapes:
        heat: ``(H, W)`` or ``(K, H, W)``; boxes: ``(N, 4)``; returns ``(N,)`` or ``(K, N)``.
    """
    integral = torch.nn.functional.pad(heat.double().cumsum(-2).cumsum(-1), (1, 0, 1, 0))
    x1, y1, x2, y2 = boxes.trunc().long().unbind(-1)
    return (integral[..., y2, x2] - integral[..., y1, x2] - integral[..., y2, x1]
            + integral[..., y1, x1]).to(heat.dtype)


def box_heat_scores(heat: Tensor, boxes: Tensor, detector_scores: Tensor | None = None) -> Tensor:
    """``g_i = d_i · Σ_box H / sqrt(area)`` for every box (module doc for the conventions).

    Args:
        heat: the heat map at the boxes' resolution (:class:`CLIPHeatMap` output).
        boxes: ``(x1, y1, x2, y2)`` pixel boxes; clipped to the image.
        detector_scores: ``d_i``; None for fallback proposals (all 1).

    Shapes:
        heat: ``(H, W)`` or ``(K, H, W)``; boxes: ``(N, 4)``; detector_scores: ``(N,)``;
        returns ``(N,)`` or ``(K, N)``.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float64, device=heat.device).reshape(-1, 4)
    if detector_scores is not None:
        detector_scores = torch.as_tensor(detector_scores, device=heat.device).reshape(-1)
        if detector_scores.numel() != boxes.shape[0]:
            raise ValueError(f'{detector_scores.numel()} detector scores for '
                             f'{boxes.shape[0]} boxes')
    boxes = clip_boxes(boxes, tuple(heat.shape[-2:]))
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    sums = box_heat_sums(heat, boxes).double()
    scores = sums / area.clamp(min=1e-12).sqrt()
    if detector_scores is not None:
        scores = scores * detector_scores.double()
    scores = scores.masked_fill(area <= 0, float('-inf'))
    return scores.to(heat.dtype)


def fuse_heat_and_boxes(heat: Tensor, boxes: Tensor,
                        detector_scores: Tensor | None = None) -> FusionResult:
    """GroundVLP's answer for one expression: the box of highest ``g_i``.

    Shapes:
        heat: ``(H, W)``; boxes: ``(N, 4)`` (``N`` may be 0); detector_scores: ``(N,)`` or None.
    """
    if heat.ndim != 2:
        raise ValueError(f'expected one heat map (H, W), got {tuple(heat.shape)}')
    scores = box_heat_scores(heat, boxes, detector_scores)
    if scores.numel() == 0 or not torch.isfinite(scores).any():
        return FusionResult(scores=scores, index=None)
    return FusionResult(scores=scores, index=int(scores.argmax()))
