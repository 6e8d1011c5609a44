"""A box head whose classifier is the CLIP text embeddings of the call's names (ViLD-text /
Detic): ``logits = temperature * cos(proj(region), [text; background])``."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import DET_MODELS
from ..text import Vocabulary


@DET_MODELS.register_module()
class TextEmbeddingBBoxHead(Shared2FCBBoxHead):
    """mmdet's Shared2FC box head with an open-vocabulary classifier.

    The classification branch projects each region to CLIP's embedding dimension (``fc_cls``,
    ``cls_last_dim -> embed_dim``), and its logits are the cosines with the unit text embeddings
    of the vocabulary and with a learned background embedding, times ``temperature``
    (ViLD-text's learned background, Detic's fixed norm temperature). Box regression is class
    agnostic, so nothing else depends on the vocabulary. The vocabulary is set per call with
    :meth:`vocabulary`; a class with synonyms takes the best of its queries' logits
    (:meth:`Vocabulary.pool_synonyms`). ``num_classes`` follows the vocabulary (the background
    column is last, as mmdet expects). At test time :meth:`rescoring` may replace the softmax
    probabilities of the RoIs before NMS (the detector's ViLD-image ensemble).

    Args:
        embed_dim: CLIP's joint embedding dimension (the text embeddings' width).
        temperature: the scale of the cosines (Detic: 50; ViLD: 1 / 0.01).
        Other args: as ``Shared2FCBBoxHead`` (``num_classes`` only sizes nothing here;
            ``reg_class_agnostic`` must be True).

    Shapes:
        regions ``(N, C, 7, 7)`` -> cls_score ``(N, K + 1)``, bbox_pred ``(N, 4)``.
    """

    def __init__(self, *, embed_dim: int, temperature: float = 50.0, **kwargs) -> None:
        if not kwargs.setdefault('reg_class_agnostic', True):
            raise ValueError('TextEmbeddingBBoxHead regresses boxes class-agnostically (any '
                             'vocabulary); set reg_class_agnostic=True')
        super().__init__(**kwargs)
        self.embed_dim = int(embed_dim)
        self.temperature = float(temperature)
        self.fc_cls = nn.Linear(self.cls_last_dim, self.embed_dim)
        self.bg_embedding = nn.Parameter(F.normalize(torch.randn(self.embed_dim), dim=0))
        self._vocab: Vocabulary | None = None
        self._rescore: Callable[[Tensor, Tensor], Tensor] | None = None

    @contextlib.contextmanager
    def vocabulary(self, vocab: Vocabulary) -> Iterator[None]:
        """Classify into ``vocab``'s classes inside the ``with`` block."""
        if vocab.embeddings is None or vocab.embeddings.shape[-1] != self.embed_dim:
            raise ValueError(f'the text embeddings must be {self.embed_dim}-d, got '
                             f'{None if vocab.embeddings is None else vocab.embeddings.shape}')
        saved = self._vocab, self.num_classes
        self._vocab, self.num_classes = vocab, vocab.num_classes
        try:
            yield
        finally:
            self._vocab, self.num_classes = saved

    @contextlib.contextmanager
    def rescoring(self, rescore: Callable[[Tensor, Tensor], Tensor] | None) -> Iterator[None]:
        """Inside the ``with`` block, predictions score the RoIs with
        ``rescore(rois, probs)`` instead of the softmax ``probs`` (None: the softmax).

        Shapes:
            rois ``(N, 5)`` (batch index, box in the input's pixels), probs ``(N, K + 1)``
            (background last) -> ``(N, K + 1)``.
        """
        saved, self._rescore = self._rescore, rescore
        try:
            yield
        finally:
            self._rescore = saved

    def text_logits(self, region_embeddings: Tensor) -> Tensor:
        """``temperature * cos`` with the classes (synonyms pooled) and the background, last.

        Shapes:
            region_embeddings ``(N, embed_dim)`` -> ``(N, K + 1)``.
        """
        if self._vocab is None:
            raise RuntimeError('TextEmbeddingBBoxHead has no vocabulary: call it inside '
                               '`with head.vocabulary(vocab):`')
        regions = F.normalize(region_embeddings, dim=-1)
        text = F.normalize(self._vocab.embeddings.to(regions), dim=-1)
        queries = self._vocab.pool_synonyms(regions @ text.T, dim=1)
        background = regions @ F.normalize(self.bg_embedding, dim=0)[:, None]
        return self.temperature * torch.cat([queries, background], dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        region_embeddings, bbox_pred = super().forward(x)   # fc_cls: the projection
        return self.text_logits(region_embeddings), bbox_pred

    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                                img_meta: dict, rescale: bool = False,
                                rcnn_test_cfg: ConfigDict | None = None) -> InstanceData:
        if self._rescore is None or roi.shape[0] == 0:
            return super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                                   rescale, rcnn_test_cfg)
        # mmdet's decoding without NMS, then its NMS on the new scores
        raw = super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta, rescale, None)
        scores = self._rescore(roi, raw.scores)
        if rcnn_test_cfg is None:
            raw.scores = scores
            return raw
        det_bboxes, det_labels = multiclass_nms(
            raw.bboxes, scores, rcnn_test_cfg.score_thr, rcnn_test_cfg.nms,
            rcnn_test_cfg.max_per_img, box_dim=4)
        return InstanceData(bboxes=det_bboxes[:, :-1], scores=det_bboxes[:, -1],
                            labels=det_labels)
