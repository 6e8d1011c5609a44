"""Segmentation quality through mmseg's IoUMetric, with the baselines a table needs beside it."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmseg.evaluation import IoUMetric


def class_iou(areas: Sequence[Sequence[torch.Tensor]]) -> np.ndarray:
    """Per-class IoU (NaN where a class is neither present nor predicted) from IoUMetric results.

    Shapes:
        areas: per image ``(intersect, union, pred, label)`` each ``(K,)``; returns ``(K,)``.
    """
    intersect = sum(a[0] for a in areas).double()
    union = sum(a[1] for a in areas).double()
    with np.errstate(invalid='ignore', divide='ignore'):
        return (intersect / union).numpy()


def mean_iou(iou: np.ndarray, classes: Iterable[int] | None = None) -> float:
    """mIoU in % over ``classes`` (default all) that are present or predicted."""
    values = iou if classes is None else iou[list(classes)]
    return float(np.nanmean(values) * 100) if np.isfinite(values).any() else float('nan')


@torch.no_grad()
def evaluate_segmentation(predict: Callable[[dict], list], dataset, num_classes: int,
                          ignore_index: int = 255, batch_size: int = 8) -> np.ndarray:
    """Run ``predict`` over an mmseg dataset and return per-class IoU through ``IoUMetric``.

    Args:
        predict: maps a collated batch ``dict(inputs=[...], data_samples=[...])`` to
            SegDataSamples carrying ``pred_sem_seg`` (e.g. a segmentor's ``test_step``).
        dataset: an mmseg dataset whose pipeline packs ``gt_sem_seg``.
    """
    metric = IoUMetric(iou_metrics=['mIoU'], ignore_index=ignore_index)
    metric.dataset_meta = dict(classes=[str(i) for i in range(num_classes)])
    for start in range(0, len(dataset), batch_size):
        batch = pseudo_collate([dataset[i] for i in range(start, min(start + batch_size,
                                                                   len(dataset)))])
        predictions = predict(batch)
        metric.process(batch, [p.to_dict() for p in predictions])
    return class_iou(metric.results)


def uniform_chance_iou(label_counts: np.ndarray) -> np.ndarray:
    """Expected per-class IoU of labelling every pixel uniformly at random over K classes.

    With class frequency ``f`` and prediction rate ``1/K``: ``IoU = (f/K) / (f + 1/K - f/K)``.
    """
    freq = label_counts / label_counts.sum()
    k = len(freq)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = (freq / k) / (freq + 1 / k - freq / k)
    iou[label_counts == 0] = np.nan
    return iou


def presence_auc(scores: np.ndarray, present: np.ndarray) -> float:
    """ROC AUC of ``scores`` for binary ``present`` (Mann-Whitney, ties counted half); NaN if one
    class is empty."""
    present = present.astype(bool)
    pos, neg = scores[present], scores[~present]
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    order = np.argsort(np.concatenate([pos, neg]), kind='mergesort')
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    # average ranks over ties
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
