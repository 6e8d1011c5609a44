"""An open-vocabulary two-stage detector: class-agnostic RPN proposals classified by the CLIP text
embeddings of names given at call time (ViLD-text / Detic on mmdet 3.x)."""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import MessageHub
from mmengine.visualization import Visualizer
from torch import Tensor

from ...registry import DET_MODELS
from ..text import Vocabulary, resolve_class_names
from .vild_image_ensemble import ViLDImageEnsemble


def _running_dataset_classes() -> list[str] | None:
    """The classes of the dataset the Runner's current loop runs: the training set's while
    training (``RuntimeInfoHook`` publishes its metainfo), else the val / test set's, which
    every loop gives the visualizer. None outside a loop."""
    hub = MessageHub.get_current_instance()
    stage = hub.get_info('loop_stage')
    if stage is None:
        return None
    meta = hub.get_info('dataset_meta') if stage == 'train' else None
    if not meta:
        try:
            meta = Visualizer.get_current_instance().dataset_meta
        except RuntimeError:  # no visualizer
            meta = None
    classes = (meta or {}).get('classes')
    return list(classes) if classes else None


@DET_MODELS.register_module()
class OpenVocabFasterRCNN(TwoStageDetector):
    """Faster R-CNN on a CLIP backbone whose box classifier is the CLIP text embeddings of the
    names of this call (:class:`TextEmbeddingBBoxHead`): any number of classes, any names.

    The RPN is class-agnostic; the RoI head's logits are ``temperature * cos`` between the
    region embeddings (projected to CLIP's embedding dimension) and the text embeddings, with a
    learned background embedding. The names come, in order of precedence, from ``texts`` of
    :meth:`predict`, :attr:`class_names` (config or assignment; ``tools/test.py --texts``), or
    the classes of the dataset the Runner is running (so one checkpoint trains on the seen
    classes and is tested on more). Text embeddings come from the backbone CLIP's frozen text
    tower through the library's :class:`TextEmbedder` (templates, memory and disk cache).

    The names it was trained on (its base classes) are recorded by :meth:`loss` and kept in
    the checkpoint (:attr:`train_classes`, the module's extra state). With ``image_ensemble``,
    predictions ensemble the text head with the frozen CLIP's scores of each proposal's crops
    (ViLD-image, :class:`ViLDImageEnsemble`), weighting the text head more on the base classes.

    Args:
        backbone: a :class:`CLIPPyramidBackbone` config.
        neck: the FPN; ``in_channels=None`` fills in the backbone's.
        rpn_head, roi_head: mmdet's; ``roi_head.bbox_head`` a :class:`TextEmbeddingBBoxHead`
            (its ``embed_dim`` is filled in from the CLIP).
        class_names: a list or names file (synonyms joined by ``;``); None: the dataset's.
        text: keyword arguments of :class:`TextEmbedder` (``templates``, ``cache_dir``).
        image_ensemble: keyword arguments of :class:`ViLDImageEnsemble` (``weight``,
            ``crop_scales``, ``temperature``, ``base_classes``); None (default): the text head
            alone. Needs the data preprocessor to normalise with CLIP's mean and std.
        train_cfg, test_cfg, data_preprocessor, init_cfg: mmdet's.
    """

    def __init__(self, *, backbone: ConfigType, neck: ConfigType, rpn_head: ConfigType,
                 roi_head: ConfigType, class_names: str | Sequence[str] | None = None,
                 text: dict | None = None, image_ensemble: dict | None = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None, data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        clip_backbone = DET_MODELS.build(backbone)
        neck = dict(neck)
        if neck.get('in_channels') is None:
            neck['in_channels'] = clip_backbone.level_channels
        roi_head = dict(roi_head)
        roi_head['bbox_head'] = {**roi_head['bbox_head'], 'embed_dim': clip_backbone.embed_dim}
        # MODELS.build calls a callable ``type``: this one returns the module built above.
        super().__init__(backbone=dict(type=lambda: clip_backbone), neck=neck,
                         rpn_head=rpn_head, roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.text = clip_backbone.text_embedder(**(text or {}))
        self._class_names = resolve_class_names(class_names)
        self.train_classes: list[str] | None = None
        self.image_ensemble = None
        if image_ensemble is not None:
            self.image_ensemble = ViLDImageEnsemble(clip=backbone['clip'], **image_ensemble)
            self._check_clip_normalisation()

    def _check_clip_normalisation(self) -> None:
        """The crops are cut from the preprocessed input, so it must be CLIP's input."""
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
        pre = self.data_preprocessor
        expected = [torch.tensor(v).view(-1, 1, 1) * 255
                    for v in (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)]
        if not (getattr(pre, '_enable_normalize', False)
                and all(torch.allclose(a.float().cpu(), b, atol=0.05)
                        for a, b in zip((pre.mean, pre.std), expected))):
            raise ValueError('image_ensemble crops the preprocessed input for CLIP: the data '
                             "preprocessor must normalise with CLIP's mean and std (x 255)")

    def get_extra_state(self) -> dict:
        return {'train_classes': self.train_classes}

    def set_extra_state(self, state: dict) -> None:
        self.train_classes = state.get('train_classes')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        # checkpoints written before the training vocabulary was recorded load strictly too
        # (train_classes stays unknown: image_ensemble.base_classes must name it)
        key = f'{prefix}_extra_state'
        if key not in state_dict and key in missing_keys:
            missing_keys.remove(key)

    @property
    def class_names(self) -> list[str] | None:
        """The default vocabulary; None: the running dataset's classes."""
        return None if self._class_names is None else list(self._class_names)

    @class_names.setter
    def class_names(self, names: str | Sequence[str] | None) -> None:
        self._class_names = resolve_class_names(names)

    def vocabulary(self, texts: Sequence[str] | None = None, device=None) -> Vocabulary:
        """The text embeddings of ``texts``, else of :attr:`class_names`, else of the running
        dataset's classes.

        Shapes:
            returns a :class:`Vocabulary` with ``(Q, embed_dim)`` unit embeddings.
        """
        names = resolve_class_names(texts) if texts is not None else self.class_names
        names = names or _running_dataset_classes()
        if not names:
            raise ValueError(
                f'{type(self).__name__} has no names to detect: pass texts=[...], set '
                'model.class_names (config, assignment or tools/test.py --texts), or run it '
                "through tools/train.py / tools/test.py, which give it the dataset's classes")
        vocab = self.text(names)
        return vocab if device is None else vocab.to(device)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        vocab = self.vocabulary(device=batch_inputs.device)
        self.train_classes = list(vocab.class_names)
        with self.roi_head.bbox_head.vocabulary(vocab):
            return super().loss(batch_inputs, batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True, texts: Sequence[str] | None = None) -> SampleList:
        """mmdet's predict; labels index ``texts`` (default: :meth:`vocabulary`'s names).

        Args:
            texts: this call's class entries, any number, synonyms joined by ``;``.
        """
        vocab = self.vocabulary(texts, batch_inputs.device)
        head = self.roi_head.bbox_head
        with head.vocabulary(vocab), head.rescoring(self._image_rescoring(batch_inputs, vocab)):
            return super().predict(batch_inputs, batch_data_samples, rescale=rescale)

    def _image_rescoring(self, batch_inputs: Tensor, vocab: Vocabulary):
        """The box head's ``rescore(rois, probs)`` of the ViLD-image ensemble, or None."""
        ensemble = self.image_ensemble
        if ensemble is None:
            return None
        base = ensemble.base_classes or self.train_classes
        if not base:
            raise ValueError(
                'image_ensemble needs the base (training) classes: this checkpoint records none '
                '(trained before they were recorded); set image_ensemble.base_classes')
        return partial(ensemble, batch_inputs, vocab=vocab, is_base=ensemble.is_base(vocab, base))
