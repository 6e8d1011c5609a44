"""Referring-expression accuracy (Acc@0.5 per sentence) with GroundVLP's IoU convention."""
from __future__ import annotations

from collections.abc import Sequence

from mmengine.evaluator import BaseMetric

from ..registry import DET_METRICS

__all__ = ['GroundingAccuracyMetric', 'refcoco_iou']


def refcoco_iou(box1: Sequence[float], box2: Sequence[float]) -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes as GroundVLP's evaluation computes it.

    The intersection counts pixels inclusively — corners ``max(x1)`` to ``min(x2) - 1``, plus one
    — and is zero unless it is strictly positive in both axes before the plus one (so a one-pixel
    overlap counts as none); the areas in the union are not inclusive (``(x2 - x1) * (y2 - y1)``).
    The ground-truth box is COCO's ``[x, y, x + w, y + h]``. Two empty boxes give 0 (the
    reference divides by zero).
    """
    ix1, iy1 = max(box1[0], box2[0]), max(box1[1], box2[1])
    ix2, iy2 = min(box1[2] - 1, box2[2] - 1), min(box1[3] - 1, box2[3] - 1)
    inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if ix1 < ix2 and iy1 < iy2 else 0
    union = ((box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1])
             - inter)
    return float(inter) / union if union > 0 else 0.0


def _box(value) -> list[float] | None:
    if value is None:
        return None
    box = value.tolist() if hasattr(value, 'tolist') else list(value)
    if len(box) == 1 and isinstance(box[0], (list, tuple)):   # a (1, 4) tensor
        box = list(box[0])
    if len(box) != 4:
        raise ValueError(f'a box must have 4 numbers (x1, y1, x2, y2), got {box!r}')
    return [float(v) for v in box]


@DET_METRICS.register_module()
class GroundingAccuracyMetric(BaseMetric):
    """Acc@0.5: the share of sentences whose predicted box has IoU >= 0.5 with the ground truth
    (:func:`refcoco_iou`), in percent.

    Each data sample (a dict, or a data element with ``to_dict``) holds ``gt_bbox`` and
    ``pred_bbox``, both ``(x1, y1, x2, y2)`` in original-image pixels; a missing or ``None``
    ``pred_bbox`` (nothing found) counts as wrong, as the reference's ``[0, 0, 0, 0]`` does.

    Args:
        iou_threshold: the IoU a hit needs (inclusive).
    """

    default_prefix = 'grounding'

    def __init__(self, *, iou_threshold: float = 0.5, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 < iou_threshold <= 1:
            raise ValueError(f'iou_threshold must lie in (0, 1], got {iou_threshold}')
        self.iou_threshold = iou_threshold

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            if sample.get('gt_bbox') is None:
                raise KeyError('a data sample has no gt_bbox; the grounding metric needs the '
                               'ground-truth box of each sentence (RefCOCOGroundingDataset)')
            gt, pred = _box(sample['gt_bbox']), _box(sample.get('pred_bbox'))
            iou = refcoco_iou(pred, gt) if pred is not None else 0.0
            self.results.append(iou >= self.iou_threshold)

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise ValueError('the grounding metric saw no sentences')
        return {'Acc@0.5' if self.iou_threshold == 0.5 else f'Acc@{self.iou_threshold:g}':
                100.0 * sum(results) / len(results)}
