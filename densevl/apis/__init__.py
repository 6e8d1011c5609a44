"""Inference APIs: a vocabulary at call time."""
from ..errors import WeightsUnavailableError
from .det_inferencer import DetPrediction, OpenVocabDetInferencer
from .image_io import load_image
from .seg_inferencer import OpenVocabSegInferencer, SegPrediction

__all__ = ['DetPrediction', 'OpenVocabDetInferencer', 'OpenVocabSegInferencer', 'SegPrediction',
           'WeightsUnavailableError', 'load_image']
