"""Inference APIs: a vocabulary at call time."""
from ..errors import WeightsUnavailableError
from .det_inferencer import DetPrediction, OpenVocabDetInferencer
from .grounding_detector import Detections, DetectorSlot, GroundingDetector
from .grounding_inferencer import GroundingInferencer, GroundingPrediction
from .image_io import load_image
from .seg_inferencer import OpenVocabSegInferencer, SegPrediction

__all__ = ['DetPrediction', 'Detections', 'DetectorSlot', 'GroundingDetector',
           'GroundingInferencer', 'GroundingPrediction', 'OpenVocabDetInferencer',
           'OpenVocabSegInferencer', 'SegPrediction', 'WeightsUnavailableError', 'load_image']
