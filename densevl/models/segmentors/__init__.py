"""Segmentors: plain cores and their mmseg adapters (the adapters need mmseg)."""
from .label_assignment import assign_labels
from .slide_inference import slide_score_map, window_score_map
from .zero_shot_segmenter import Segmentation, ZeroShotSegmenter

__all__ = ['Segmentation', 'ZeroShotSegmenter', 'assign_labels', 'slide_score_map',
           'window_score_map']
