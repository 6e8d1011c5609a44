"""What DenseCLIP adds to an mmdet detector: the language-guided backbone, the vocabulary and the
auxiliary box-target loss. :class:`DenseCLIPRetinaNet` and :class:`DenseCLIPMaskRCNN` mix it in."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmengine.logging import MessageHub, print_log
from mmengine.visualization import Visualizer
from torch import Tensor

from ...registry import DET_MODELS
from ..denseclip import box_score_map_loss, rasterise_box_targets
from ..text import Vocabulary, resolve_class_names

# DenseCLIP draws its box targets on the stride-4 grid of the padded input.
TARGET_STRIDE = 4


def _dataset_classes() -> Sequence[str] | None:
    """The classes of the dataset an mmengine Runner is running now, if any.

    ``RuntimeInfoHook`` marks a running loop with ``loop_stage`` and publishes the training
    set's metainfo on the message hub; every loop (train, val, test) gives its dataset's
    metainfo to the visualizer. Outside a loop (a finished run's hub lingers) there is none.
    """
    hub = MessageHub.get_current_instance()
    if hub.get_info('loop_stage') is None:
        return None
    meta = hub.get_info('dataset_meta')
    if not meta:
        try:
            meta = Visualizer.get_current_instance().dataset_meta
        except RuntimeError:  # no visualizer: not inside a Runner
            meta = None
    return (meta or {}).get('classes')


def build_denseclip_parts(backbone: dict, neck: dict, class_names: str | Sequence[str] | None,
                          num_classes: int) -> tuple[dict, dict, bool]:
    """Build the DenseCLIP backbone, and the configs that hand it and its neck to mmdet.

    Returns:
        a backbone config whose build returns the module built here, the neck config with
        ``in_channels`` filled in (when None) or checked, and whether the class names are known.

    Raises:
        ValueError: ``class_names`` and ``num_classes`` disagree, or the neck's ``in_channels``
            do not fit the backbone.
    """
    names = resolve_class_names(class_names)
    if names is not None and len(names) != num_classes:
        raise ValueError(f'class_names has {len(names)} entries but the head predicts '
                         f'{num_classes} classes; DenseCLIP detectors are closed-set, so they '
                         'must agree')
    # Placeholders until the dataset's names are known (see DenseCLIPDetectorMixin.class_names).
    placeholders = [f'class {i}' for i in range(num_classes)]
    module = DET_MODELS.build({**backbone, 'class_names': names or placeholders})
    neck = dict(neck)
    expected = module.neck_in_channels
    given = neck.get('in_channels')
    if given is None:
        neck['in_channels'] = expected
    elif list(given) != expected:
        raise ValueError(f'neck.in_channels {list(given)} do not fit the DenseCLIP backbone, '
                         f'which gives {expected} (the score map adds {num_classes} channels to '
                         f'level {module.score_concat_index}); set neck.in_channels={expected} '
                         'or None')
    # MODELS.build calls a callable ``type``: this one returns the module built above.
    return dict(type=lambda: module), neck, names is not None


class DenseCLIPDetectorMixin:
    """DenseCLIP's additions to an mmdet detector whose ``backbone`` is a
    :class:`DenseCLIPDetBackbone`.

    * :meth:`extract_feat` runs the language-guided backbone and the neck on its fused levels.
    * :meth:`loss` adds ``aux_loss_weight`` times the binary cross-entropy of the score map
      against class masks drawn from the ground-truth boxes
      (:func:`~densevl.models.denseclip.box_score_map_loss`), under :attr:`aux_loss_key`.
    * The vocabulary: ``K`` is fixed when the model is built (the neck has ``K`` score channels
      and the head ``K`` classes). The names default to the classes of the dataset being run,
      taken from the Runner the first time the model runs; ``class_names`` may be set to a list
      or names file of ``K`` entries, and :meth:`predict` takes ``texts`` of ``K`` entries. A
      class with synonyms (``'tv; monitor'``) scores the best of them in its score channel
      (:meth:`Vocabulary.pool_synonyms`), as segmentors pool them.
    """

    aux_loss_key = 'loss_seg'

    def _init_vocabulary(self, known: bool, aux_loss_weight: float) -> None:
        self._names_known = known
        self._call_vocabulary: Vocabulary | None = None
        self._score_maps: list[Tensor] | None = None
        self.aux_loss_weight = float(aux_loss_weight)

    @property
    def num_classes(self) -> int:
        return self.backbone.num_classes

    @property
    def class_names(self) -> list[str] | None:
        """The vocabulary; None until it is set or taken from the dataset."""
        return list(self.backbone.class_names) if self._names_known else None

    @class_names.setter
    def class_names(self, names: str | Sequence[str]) -> None:
        names = resolve_class_names(names)
        self._check_count(names, 'class_names')
        self.backbone.set_vocabulary(names)
        self._names_known = True

    def _check_count(self, names: Sequence[str], what: str) -> None:
        if len(names) != self.num_classes:
            raise ValueError(
                f'{type(self).__name__} was built for {self.num_classes} classes (its neck has '
                f'{self.num_classes} score channels and its head {self.num_classes} outputs), so '
                f'{what} must name {self.num_classes} classes in the trained order, not '
                f'{len(names)}. DenseCLIP detection is closed-set as published: to detect other '
                'classes, set bbox_head.num_classes and train.')

    def _ensure_vocabulary(self) -> None:
        if self._names_known:
            return
        classes = _dataset_classes()
        if classes is None:
            raise ValueError(
                f'{type(self).__name__} has no class names: set model.class_names in the config '
                '(a list or a names file), assign model.class_names, or run it through '
                "tools/train.py / tools/test.py, which give it the dataset's classes")
        self.class_names = list(classes)
        print_log(f'{type(self).__name__}: vocabulary of {len(classes)} classes from the '
                  f'dataset ({", ".join(list(classes)[:5])}{", ..." if len(classes) > 5 else ""})',
                  logger='current', level=logging.INFO)

    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor, ...]:
        """Backbone, score-map fusion and neck.

        Shapes:
            batch_inputs ``(B, 3, H, W)``; returns the neck's levels.
        """
        if self._call_vocabulary is None:
            self._ensure_vocabulary()
        out = self.backbone(batch_inputs, self._call_vocabulary)
        if self._score_maps is not None:
            self._score_maps.append(out.score_map)
        return self.neck(out.fused)

    def box_target_loss(self, score_map: Tensor, input_hw: tuple[int, int],
                        batch_data_samples: SampleList) -> Tensor:
        """DenseCLIP's auxiliary loss of a batch (0 for a batch without boxes).

        Shapes:
            score_map ``(B, K, h, w)``; targets are drawn at ``input_hw // 4``.
        """
        boxes = [get_box_tensor(s.gt_instances.bboxes) for s in batch_data_samples]
        labels = [s.gt_instances.labels for s in batch_data_samples]
        size = (input_hw[0] // TARGET_STRIDE, input_hw[1] // TARGET_STRIDE)
        targets, inside = rasterise_box_targets(boxes, labels, self.num_classes, size,
                                                stride=TARGET_STRIDE)
        return box_score_map_loss(score_map, targets.to(score_map.device),
                                  inside.to(score_map.device))

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """The detector's losses plus the auxiliary score-map loss."""
        if self.aux_loss_weight == 0:
            return super().loss(batch_inputs, batch_data_samples)
        # mmdet's loss() calls extract_feat once; the score map comes back through this list,
        # so the parent's loss need not be copied.
        self._score_maps = []
        try:
            losses = super().loss(batch_inputs, batch_data_samples)
            (score_map,) = self._score_maps
        finally:
            self._score_maps = None
        losses[self.aux_loss_key] = self.aux_loss_weight * self.box_target_loss(
            score_map, tuple(batch_inputs.shape[-2:]), batch_data_samples)
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True, texts: Sequence[str] | None = None) -> SampleList:
        """mmdet's predict, optionally with this call's names for the ``K`` classes.

        Args:
            texts: ``K`` class entries in the trained order (other wordings, synonyms joined by
                ``;``); default the model's vocabulary.
        """
        vocab = None
        if texts is not None:
            texts = resolve_class_names(texts)
            self._check_count(texts, 'texts')
            vocab = self.backbone.vocabulary(texts)
        self._call_vocabulary = vocab
        try:
            return super().predict(batch_inputs, batch_data_samples, rescale=rescale)
        finally:
            self._call_vocabulary = None
