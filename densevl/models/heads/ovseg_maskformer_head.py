"""MaskFormer whose class branch is OVSeg's CLIP-space head: mask proposals for any vocabulary."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.decode_heads import MaskFormerHead
from mmseg.structures import SegDataSample
from torch import Tensor

from ...registry import SEG_MODELS
from ..ovseg.clip_space_head import OVSEG_TEMPERATURE, CLIPSpaceClassHead
from ..text import Vocabulary

# MaskFormer's classification loss (mmseg's maskformer config); class_weight is set from
# num_classes and no_object_weight.
DEFAULT_LOSS_CLS = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                        reduction='mean')


class VocabularyClassHead(CLIPSpaceClassHead):
    """:class:`CLIPSpaceClassHead` bound to the vocabulary in use, so that MaskFormer's forward,
    which calls ``cls_embed(queries)``, classifies against it.

    Shapes:
        forward: ``(..., N, in_dim) -> (..., N, Q + 1)``, no-object last.
    """

    vocabulary: Vocabulary | None = None

    def forward(self, queries: Tensor) -> Tensor:  # type: ignore[override]
        if self.vocabulary is None:
            raise RuntimeError('the OVSeg class head has no vocabulary: run the head inside '
                               'OVSegMaskFormerHead.vocabulary_in_use(vocabulary)')
        return super().forward(queries, self.vocabulary)


@SEG_MODELS.register_module()
class OVSegMaskFormerHead(MaskFormerHead):
    """OVSeg's proposal network head: mmdet's MaskFormer with a CLIP-space classifier.

    Everything but the class branch is mmdet's / mmseg's ``MaskFormerHead``: the FPN-like pixel
    decoder (``mmdet.PixelDecoder``, GroupNorm), the DETR transformer decoder over the last
    backbone level with learned queries, the mask embedding MLP, Hungarian matching
    (``train_cfg.assigner``) and the losses of every decoder layer (deep supervision:
    cross-entropy, sigmoid focal and dice). The linear classifier is replaced by
    :class:`CLIPSpaceClassHead`: ``MLP(query) -> C`` and ``temperature * cos`` with the
    vocabulary's frozen text embeddings plus a learned no-object embedding (the last class, whose
    cross-entropy weight is ``no_object_weight``). No weight depends on the vocabulary: it is
    set per call (:meth:`vocabulary_in_use`); ``num_classes`` is the size of the *training*
    vocabulary, whose label ``num_classes`` is no-object.

    Args:
        embed_dims: ``C`` of the CLIP (:class:`OVSegSegmentor` fills it in).
        num_classes: ``K``, the number of training classes.
        class_hidden_dims, class_layers: the class MLP (OVSeg: 1024, 2 layers).
        temperature: the cosine logits' fixed scale (100).
        text_width: CLIP's text width; the no-object embedding starts with std ``width ** -0.5``
            (filled in by the segmentor).
        no_object_weight: cross-entropy weight of the no-object class (0.1).
        loss_cls: the classification loss, without ``class_weight`` (set from the two above).
        **kwargs: mmseg's ``MaskFormerHead`` (``in_channels``, ``feat_channels``,
            ``out_channels``, ``num_queries``, ``pixel_decoder``, ``transformer_decoder``,
            ``positional_encoding``, ``loss_mask``, ``loss_dice``, ``train_cfg`` ...).

    Shapes:
        :meth:`forward` (MaskFormer's): class logits ``(L, B, N, Q + 1)`` and mask logits
        ``(L, B, N, H / 4, W / 4)`` for the ``L`` decoder layers.
    """

    def __init__(self, *, embed_dims: int, num_classes: int, class_hidden_dims: int = 1024,
                 class_layers: int = 2, temperature: float = OVSEG_TEMPERATURE,
                 text_width: int | None = None, no_object_weight: float = 0.1,
                 loss_cls: dict | None = None, **kwargs) -> None:
        loss_cls = ConfigDict(DEFAULT_LOSS_CLS if loss_cls is None else loss_cls)
        if loss_cls.get('class_weight') is not None:
            raise ValueError('loss_cls.class_weight is set by the head: 1 for each of the '
                             'num_classes training classes and no_object_weight for no-object; '
                             'remove it and set no_object_weight instead')
        loss_cls.class_weight = [1.0] * num_classes + [float(no_object_weight)]
        super().__init__(num_classes=num_classes, num_things_classes=num_classes,
                         num_stuff_classes=0, loss_cls=loss_cls, **kwargs)
        self.cls_embed = VocabularyClassHead(
            kwargs['feat_channels'], embed_dims, hidden_dim=class_hidden_dims,
            num_layers=class_layers, temperature=temperature, text_width=text_width)

    @contextlib.contextmanager
    def vocabulary_in_use(self, vocabulary: Vocabulary, *,
                          training: bool = False) -> Iterator[Vocabulary]:
        """Classify against ``vocabulary`` (with text embeddings) inside the block.

        Args:
            training: the vocabulary labels the training targets: it must have one query per
                class and ``num_classes`` classes (its label ``num_classes`` is no-object).
        """
        if vocabulary.embeddings is None:
            raise ValueError('the vocabulary has no text embeddings; embed it with the frozen '
                             "CLIP's TextEmbedder first")
        if training and (vocabulary.has_synonyms or vocabulary.num_classes != self.num_classes):
            raise ValueError(f'the training vocabulary must have one name per class for the '
                             f'{self.num_classes} training labels (no-object is label '
                             f'{self.num_classes}); got {vocabulary.num_queries} queries for '
                             f'{vocabulary.num_classes} classes. Set decode_head.num_classes to '
                             'the number of training classes, and use synonyms at inference')
        previous = self.cls_embed.vocabulary
        self.cls_embed.vocabulary = vocabulary
        try:
            yield vocabulary
        finally:
            self.cls_embed.vocabulary = previous

    def predict_proposals(self, features: tuple[Tensor, ...], vocabulary: Vocabulary,
                          image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The last decoder layer's class logits and masks, the masks upsampled (bilinear) to
        the images' size, as MaskFormer's inference does.

        Shapes:
            features: the backbone levels of ``(B, 3, *image_size)`` images; returns
            ``(B, N, Q + 1)`` and ``(B, N, *image_size)``.
        """
        size = (int(image_size[0]), int(image_size[1]))
        samples = [SegDataSample(metainfo=dict(img_shape=size, batch_input_shape=size))
                   for _ in range(features[0].shape[0])]
        with self.vocabulary_in_use(vocabulary):
            all_cls, all_masks = self(features, samples)
        masks = F.interpolate(all_masks[-1], size=size, mode='bilinear', align_corners=False)
        return all_cls[-1], masks
