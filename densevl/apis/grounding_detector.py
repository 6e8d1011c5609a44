"""The detector slot of :class:`~densevl.apis.GroundingInferencer`: boxes of one category, and
class-agnostic proposals when it finds none.

Anything with the two methods of :class:`GroundingDetector` fits the slot. :class:`DetectorSlot`
makes one from a detection inferencer that takes class names at call time — densevl's
:class:`~densevl.apis.OpenVocabDetInferencer` on any densevl/mmdet detection config and its
checkpoint (e.g. the DenseCLIP proving-ground detector,
``configs/denseclip/mask-rcnn_denseclip_clip-synthetic-tiny_400it_synthetic-128.py``), mmdet's
GLIP / Grounding DINO with the names as their text prompt
(:class:`~densevl.apis.mmdet_grounding_detectors.TextPromptedDetInferencer`, chosen from the
config), or an open-vocabulary detector whose ``texts`` may hold a single name.

One detector forward per image serves every expression of it: the slot runs the detector once
over its whole vocabulary at a low threshold and keeps the result (:meth:`DetectorSlot.run`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

__all__ = ['DetectorSlot', 'Detections', 'GroundingDetector']

#: Detections scoring below this are not kept at all (the proposals' floor).
MIN_SCORE = 0.05


@dataclass
class Detections:
    """One image's detections over the detector's whole vocabulary, best first.

    Attributes:
        boxes: ``(N, 4)`` xyxy in the image's pixels.
        labels: ``(N,)`` indices into ``names``.
        scores: ``(N,)`` confidences.
        names: the vocabulary.
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    names: list[str]

    def of_category(self, category: str, score_threshold: float) -> tuple[Tensor, Tensor]:
        """Boxes ``(M, 4)`` and scores ``(M,)`` of ``category`` scoring at least the threshold."""
        if category not in self.names:
            raise ValueError(f'category {category!r} is not in the detector vocabulary '
                             f'({", ".join(self.names[:8])}, ...)')
        keep = (self.labels == self.names.index(category)) & (self.scores >= score_threshold)
        return self.boxes[keep], self.scores[keep]

    def proposals(self, iou_threshold: float = 0.7, max_boxes: int = 100) -> Tensor:
        """Class-agnostic boxes: every detection, suppressed across classes (NMS), best first.

        Shapes:
            returns ``(P, 4)``, ``P <= max_boxes``.
        """
        from torchvision.ops import nms

        if self.boxes.numel() == 0:
            return self.boxes.reshape(0, 4)
        keep = nms(self.boxes.float(), self.scores.float(), iou_threshold)[:max_boxes]
        return self.boxes[keep]


@runtime_checkable
class GroundingDetector(Protocol):
    """What GroundVLP needs from a detector."""

    @property
    def class_names(self) -> list[str]:
        """The names the detector can be asked for (the category vocabulary)."""

    def run(self, image: np.ndarray) -> Detections:
        """Detect everything of the vocabulary in an RGB ``(H, W, 3)`` uint8 image."""


class DetectorSlot:
    """A detection inferencer in GroundVLP's detector slot.

    Args:
        inferencer: an object called as ``inferencer(image, texts=None, score_threshold=...,
            visualize=False)`` returning ``dict(predictions=[p])`` with ``p.boxes``,
            ``p.labels``, ``p.scores`` (``OpenVocabDetInferencer`` and the like), with a
            ``class_names`` list.
        class_names: the vocabulary, passed as the inferencer's ``texts``; default the
            inferencer's own ``class_names``.
        min_score: detections below this are dropped before anything else.

    Build one from files with :meth:`from_config`.
    """

    def __init__(self, inferencer, *, class_names: Sequence[str] | None = None,
                 min_score: float = MIN_SCORE) -> None:
        if not hasattr(inferencer, 'class_names'):
            raise TypeError(f'{type(inferencer).__name__} has no class_names; the detector slot '
                            'takes a detection inferencer with a vocabulary')
        if class_names is not None and (isinstance(class_names, str) or not class_names):
            raise ValueError(f'class_names must be a non-empty list of names, got {class_names!r}')
        self.inferencer = inferencer
        self.texts = None if class_names is None else list(class_names)
        self.min_score = min_score

    @classmethod
    def from_config(cls, config: str, weights: str | None = None, device: str | None = None, *,
                    class_names: Sequence[str] | None = None,
                    cfg_options: dict | None = None) -> DetectorSlot:
        """From a detection config and its checkpoint: a densevl one (``configs/denseclip/*.py``,
        ``configs/ovdet/*.py``), or an mmdet GLIP / Grounding DINO one
        (``'mmdet::glip/...py'``; ``cfg_options`` must then point
        ``model.language_model.name`` at a local bert-base-uncased unless the config does)."""
        from .det_inferencer import OpenVocabDetInferencer
        from .mmdet_grounding_detectors import (
            TextPromptedDetInferencer,
            is_text_prompted,
            load_det_config,
        )

        if str(config).endswith('.py') and is_text_prompted(load_det_config(config, cfg_options)):
            inferencer = TextPromptedDetInferencer(config, weights, device=device,
                                                   cfg_options=cfg_options)
        elif cfg_options:
            raise ValueError('cfg_options are for mmdet GLIP / Grounding DINO configs')
        else:
            inferencer = OpenVocabDetInferencer(config, weights=weights, device=device)
        return cls(inferencer, class_names=class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self.texts if self.texts is not None else self.inferencer.class_names)

    @property
    def is_random_weights(self) -> bool:
        return bool(getattr(self.inferencer, 'is_random_weights', False))

    def run(self, image: np.ndarray) -> Detections:
        prediction = self.inferencer(image, texts=self.texts, score_threshold=self.min_score,
                                     visualize=False)['predictions'][0]
        return Detections(boxes=prediction.boxes.float().cpu().reshape(-1, 4),
                          labels=prediction.labels.long().cpu().reshape(-1),
                          scores=prediction.scores.float().cpu().reshape(-1),
                          names=self.class_names)


def build_detector_slot(detector, device: str | None = None) -> GroundingDetector:
    """A :class:`GroundingDetector` from what a user hands in: one already (returned as is), a
    detection inferencer, a config path, or ``(config, weights)`` / ``dict(config=...,
    weights=..., class_names=..., cfg_options=...)`` (:meth:`DetectorSlot.from_config`)."""
    if isinstance(detector, (str, bytes)) or hasattr(detector, '__fspath__'):
        return DetectorSlot.from_config(str(detector), device=device)
    if isinstance(detector, (tuple, list)) and len(detector) == 2:
        return DetectorSlot.from_config(str(detector[0]), detector[1], device=device)
    if isinstance(detector, dict):
        unknown = set(detector) - {'config', 'weights', 'class_names', 'cfg_options'}
        if unknown or 'config' not in detector:
            raise ValueError("a detector dict holds 'config' (and optionally 'weights', "
                             f"'class_names', 'cfg_options'), got {sorted(detector)}")
        return DetectorSlot.from_config(str(detector['config']), detector.get('weights'),
                                        device=device, class_names=detector.get('class_names'),
                                        cfg_options=detector.get('cfg_options'))
    if hasattr(detector, 'run') and hasattr(detector, 'class_names'):
        return detector
    if callable(detector) and hasattr(detector, 'class_names'):
        return DetectorSlot(detector)
    raise TypeError(f'cannot use {type(detector).__name__} as the detector: pass a detection '
                    'config path, (config, weights), an OpenVocabDetInferencer, or an object '
                    'with class_names and run(image) -> Detections')


def whole_image_box(height: int, width: int) -> Tensor:
    """The last-resort candidate when the detector has nothing at all. Shapes: ``(1, 4)``."""
    return torch.tensor([[0.0, 0.0, float(width), float(height)]])
