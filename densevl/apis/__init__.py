"""Inference APIs: a vocabulary at call time."""
from ..errors import WeightsUnavailableError
from .image_io import load_image
from .seg_inferencer import OpenVocabSegInferencer, SegPrediction

__all__ = ['OpenVocabSegInferencer', 'SegPrediction', 'WeightsUnavailableError', 'load_image']
