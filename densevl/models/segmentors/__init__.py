"""Segmentors: plain cores and their mmseg adapters (the adapters need mmseg).

The path from an image to its label map: an inferencer calls ``segment`` of an
:class:`OpenVocabSegmenter`, which encodes the image (a dense CLIP encoder, or a trained head)
into per-query scores of each window, and the :class:`DensePredictor` turns them into labels.
"""
from .dense_predictor import DensePredictor, Segmentation
from .segmenter import OpenVocabSegmenter
from .windows import SlideScores, WindowScores, score_slide, score_window
from .zero_shot_segmenter import ZeroShotSegmenter

__all__ = ['DensePredictor', 'OpenVocabSegmenter', 'Segmentation', 'SlideScores',
           'WindowScores', 'ZeroShotSegmenter', 'score_slide', 'score_window']
