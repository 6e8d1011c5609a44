"""Evaluation: segmentation quality through mmseg's IoUMetric, baselines, presence AUC, and the
ReCo benchmarks' metric (:class:`ReCoIoUMetric`)."""
from .reco_iou_metric import ReCoIoUMetric, confusion_scores
from .seg_quality import (
                          class_iou,
                          evaluate_segmentation,
                          mean_iou,
                          presence_auc,
                          uniform_chance_iou,
)

__all__ = ['ReCoIoUMetric', 'class_iou', 'confusion_scores', 'evaluate_segmentation',
           'mean_iou', 'presence_auc', 'uniform_chance_iou']
