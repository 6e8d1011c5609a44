"""DenseCLIP's auxiliary detection loss: the score map against class masks drawn from boxes."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def rasterise_box_targets(boxes: Sequence[Tensor], labels: Sequence[Tensor], num_classes: int,
                          size: tuple[int, int], stride: int = 4) -> tuple[Tensor, Tensor]:
    """Per-class box masks on the stride-``stride`` grid, and where any box lies.

    As DenseCLIP draws them: box corners are divided by the stride and truncated to integers,
    clamped to ``[0, w - 1]`` and ``[0, h - 1]``, and the cells ``y1 <= y < y2``,
    ``x1 <= x < x2`` are set (so a box narrower than one cell after truncation draws nothing,
    and the last row and column are never covered). ``targets[b, k]`` is 1 inside any box of
    class ``k``; ``inside[b]`` is 1 inside any box at all.

    Args:
        boxes: per image, ``(N_i, 4)`` ``x1, y1, x2, y2`` in pixels of the (padded) input.
        labels: per image, ``(N_i,)`` class indices.
        num_classes: ``K``.
        size: ``(h, w)`` of the grid; DenseCLIP's is the padded input size // 4.
        stride: pixels per grid cell.

    Shapes:
        returns targets ``(B, K, h, w)`` and inside ``(B, 1, h, w)``, float, on the boxes' device.
    """
    if len(boxes) != len(labels):
        raise ValueError(f'{len(boxes)} box tensors but {len(labels)} label tensors')
    h, w = size
    device = boxes[0].device if len(boxes) else torch.device('cpu')
    targets = torch.zeros(len(boxes), num_classes, h, w, device=device)
    inside = torch.zeros(len(boxes), 1, h, w, device=device)
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    for i, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        if image_boxes.numel() == 0:
            continue
        if image_boxes.ndim != 2 or image_boxes.shape[1] != 4 \
                or image_labels.shape != image_boxes.shape[:1]:
            raise ValueError(f'image {i}: boxes must be (N, 4) with (N,) labels, got '
                             f'{tuple(image_boxes.shape)} and {tuple(image_labels.shape)}')
        image_labels = image_labels.to(device=device, dtype=torch.long)
        if int(image_labels.min()) < 0 or int(image_labels.max()) >= num_classes:
            raise ValueError(f'image {i}: labels must lie in [0, {num_classes}), got '
                             f'{image_labels.tolist()}')
        cells = (image_boxes.to(device) / stride).long()
        x1, x2 = cells[:, 0].clamp(0, w - 1), cells[:, 2].clamp(0, w - 1)
        y1, y2 = cells[:, 1].clamp(0, h - 1), cells[:, 3].clamp(0, h - 1)
        in_y = (ys >= y1[:, None]) & (ys < y2[:, None])
        in_x = (xs >= x1[:, None]) & (xs < x2[:, None])
        masks = (in_y[:, :, None] & in_x[:, None, :]).float()          # (N, h, w)
        targets[i].index_put_((image_labels,), masks, accumulate=True)
        inside[i, 0] = masks.amax(dim=0)
    return targets.clamp_(max=1.0), inside


def box_score_map_loss(score_map: Tensor, targets: Tensor, inside: Tensor) -> Tensor:
    """Binary cross-entropy of ``sigmoid(score_map)`` inside the boxes, averaged there.

    The score map (DenseCLIP: cosine / 0.07 at stride 32) is resized bilinearly to the targets'
    grid. The loss is summed over every class at every cell inside a box of any class and
    divided by that count (``K`` times the covered cells of the whole batch). DenseCLIP computes
    ``BCE(sigmoid(x))`` and divides 0 by 0 when a batch has no box; this uses the equal but
    stable logits form and returns 0 (with a gradient path) then.

    Shapes:
        score_map: ``(B, K, h', w')``; targets: ``(B, K, h, w)``; inside: ``(B, 1, h, w)``;
        returns a scalar.
    """
    if score_map.shape[:2] != targets.shape[:2]:
        raise ValueError(f'score map {tuple(score_map.shape)} and targets '
                         f'{tuple(targets.shape)} differ in batch or classes')
    if score_map.shape[-2:] != targets.shape[-2:]:
        score_map = F.interpolate(score_map, size=targets.shape[-2:], mode='bilinear',
                                  align_corners=False)
    weight = inside.to(score_map.dtype).expand_as(score_map)
    count = weight.sum()
    if count == 0:
        return score_map.sum() * 0.0
    loss = F.binary_cross_entropy_with_logits(score_map, targets.to(score_map.dtype),
                                              weight=weight, reduction='sum')
    return loss / count
