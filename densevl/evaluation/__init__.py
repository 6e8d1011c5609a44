"""Evaluation: segmentation quality through mmseg's IoUMetric, baselines, presence AUC."""
from .seg_quality import (
                          class_iou,
                          evaluate_segmentation,
                          mean_iou,
                          presence_auc,
                          uniform_chance_iou,
)

__all__ = ['class_iou', 'evaluate_segmentation', 'mean_iou', 'presence_auc',
           'uniform_chance_iou']
