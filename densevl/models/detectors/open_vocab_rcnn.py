"""An open-vocabulary two-stage detector: class-agnostic RPN proposals classified by the CLIP text
embeddings of names given at call time (ViLD-text / Detic on mmdet 3.x)."""
from __future__ import annotations

from collections.abc import Sequence

from mmdet.models.detectors import TwoStageDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import MessageHub
from mmengine.visualization import Visualizer
from torch import Tensor

from ...registry import DET_MODELS
from ..text import Vocabulary, resolve_class_names


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

    Args:
        backbone: a :class:`CLIPPyramidBackbone` config.
        neck: the FPN; ``in_channels=None`` fills in the backbone's.
        rpn_head, roi_head: mmdet's; ``roi_head.bbox_head`` a :class:`TextEmbeddingBBoxHead`
            (its ``embed_dim`` is filled in from the CLIP).
        class_names: a list or names file (synonyms joined by ``;``); None: the dataset's.
        text: keyword arguments of :class:`TextEmbedder` (``templates``, ``cache_dir``).
        train_cfg, test_cfg, data_preprocessor, init_cfg: mmdet's.
    """

    def __init__(self, *, backbone: ConfigType, neck: ConfigType, rpn_head: ConfigType,
                 roi_head: ConfigType, class_names: str | Sequence[str] | None = None,
                 text: dict | None = None, train_cfg: OptConfigType = None,
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
        with self.roi_head.bbox_head.vocabulary(self.vocabulary(device=batch_inputs.device)):
            return super().loss(batch_inputs, batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True, texts: Sequence[str] | None = None) -> SampleList:
        """mmdet's predict; labels index ``texts`` (default: :meth:`vocabulary`'s names).

        Args:
            texts: this call's class entries, any number, synonyms joined by ``;``.
        """
        with self.roi_head.bbox_head.vocabulary(self.vocabulary(texts, batch_inputs.device)):
            return super().predict(batch_inputs, batch_data_samples, rescale=rescale)
