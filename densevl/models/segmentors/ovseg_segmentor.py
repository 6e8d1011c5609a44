"""mmseg adapter of OVSeg (Liang et al., CVPR 2023): mask proposals classified in CLIP space."""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from mmengine.config import ConfigDict
from mmseg.models.segmentors import BaseSegmentor
from mmseg.utils import ConfigType, OptConfigType, SampleList, add_prefix
from torch import Tensor, nn

from ... import engine  # noqa: F401  (runner checkpoints load under weights-only torch.load)
from ...registry import SEG_MODELS
from ..clip import MODEL_ZOO, check_activation, create_clip
from ..heads.ovseg_maskformer_head import OVSegMaskFormerHead  # noqa: F401  (registers it)
from ..inference_protocol import InferenceProtocol, preprocessor_normalisation
from ..ovseg import (
    DEFAULT_CHUNK_SIZE,
    MaskProposalGenerator,
    SAMProposalGenerator,
    find_proposals,
    semantic_inference,
    stack_proposals,
)
from ..ovseg.frozen_clip import OVSegCLIP, check_classifier
from ..ovseg.semantic_labels import add_others, label_semantic_map
from ..text import Vocabulary, resolve_class_names
from .dense_predictor import Segmentation
from .mm_common import predict_by_segment, training_names, vocabulary_names

_SAM_TYPES = ('SAM', 'sam', 'SAMProposalGenerator')


def build_proposal_generator(proposals: dict | MaskProposalGenerator | None
                             ) -> MaskProposalGenerator | None:
    """None (the trained MaskFormer), a generator as it is, or ``dict(type='SAM',
    checkpoint=..., model_type='vit_h', max_proposals=..., **SamAutomaticMaskGenerator options)``.
    """
    if proposals is None or not isinstance(proposals, dict):
        return proposals
    options = dict(proposals)
    kind = options.pop('type', 'SAM')
    if kind not in _SAM_TYPES:
        raise ValueError(f"proposals type {kind!r} is unknown; use dict(type='SAM', "
                         "checkpoint=..., model_type='vit_h', ...) or None for the trained "
                         'MaskFormer proposals')
    return SAMProposalGenerator(**options)


@SEG_MODELS.register_module()
class OVSegSegmentor(BaseSegmentor):
    """OVSeg: a MaskFormer proposes masks, a frozen CLIP classifies them, for any vocabulary.

    The proposal network (an mmseg backbone under :class:`OVSegMaskFormerHead`) predicts
    ``N`` masks and, per mask, class logits ``100 * cos(MLP(query), text)`` against the frozen
    CLIP's text embeddings of the vocabulary plus a learned no-object embedding; it is trained
    with MaskFormer's Hungarian matching and losses on the training vocabulary. At inference the
    frozen CLIP (:class:`~densevl.models.ovseg.frozen_clip.OVSegCLIP`; not a sub-module: never
    trained, not in checkpoints) also classifies every proposal whose mask has a pixel with
    ``sigmoid > mask_threshold``:

    * ``classifier='masked_crops'`` (OVSeg): one CLIP forward per valid proposal on its masked,
      resized crop (with mask prompts when ``clip.mask_embedding`` is given), ``crop_chunk_size``
      crops at a time;
    * ``classifier='mask_pooling'`` (fast, as FC-CLIP): one dense CLIP forward per image
      (``dense_mode``), each proposal's embedding pooled under its mask.

    The two class distributions are combined per proposal as the reference does
    (:func:`~densevl.models.ovseg.semantic_inference`): ``ensemble_weight`` ``w`` in ``(0, 1]``
    is CLIP's share of the geometric mean ``head ** (1 - w) * clip ** w`` (a proposal without a
    crop takes ``clip = 1``; OVSeg: 0.7 ADE-150, 0.6 PC-59, 0.45 VOC-20); ``w = 0`` is CLIP
    alone over the valid proposals (the reference's branch for a weight that is not positive,
    its demo's setting); ``None`` is the head alone (the reference without ``CLIP_ENSEMBLE``).
    The semantic map ``sum_q p_q * sigmoid(mask_q)`` is normalised per pixel into class
    probabilities (:func:`~densevl.models.ovseg.semantic_labels.label_semantic_map`).

    A single name is classified against ``'others'`` too, which OVSeg's demo appends because its
    classification is a softmax over the names; pixels won by ``'others'`` get
    ``background_index``. An image without any valid proposal gets ``background_index``
    everywhere, with a warning.

    ``proposals=dict(type='SAM', checkpoint=...)`` replaces the trained MaskFormer by SAM's
    automatic masks at inference (:class:`~densevl.models.ovseg.SAMProposalGenerator`); SAM has
    no class head, so the class comes from CLIP alone (``ensemble_weight=0``).

    :attr:`demo_preset` is the reference demo's setting (CLIP alone, mask threshold 0.35), which
    :class:`~densevl.apis.OpenVocabSegInferencer` and ``demo/image_demo.py`` apply to the config
    unless told not to; ``tools/test.py`` runs the config as it is.

    Args:
        clip: ``dict(model_name=..., pretrained=..., mask_embedding=None)``; an open_clip name's
            weights (and the mask embedding file of ``tools/convert_ovseg_clip_checkpoint.py``)
            load when first used.
        backbone: the proposal network's backbone (``ResNetV1c``, ``SwinTransformer`` ...).
        decode_head: :class:`OVSegMaskFormerHead` (``embed_dims``, ``text_width`` and
            ``num_classes`` filled in from the CLIP and the training vocabulary).
        class_names: default vocabulary (a list, a names file or a dataset type); None: set
            later (``tools/test.py`` sets the dataset's).
        train_class_names: the training labels' names when they differ from ``class_names``.
        templates: prompt templates of the text embeddings (OVSeg: ``'vild14'``).
        classifier, ensemble_weight, mask_threshold, dense_mode, crop_chunk_size, proposals:
            see above (OVSeg: mask threshold 0.5 with ViT-B/16, 0.4 with ViT-L/14).
        prob_threshold, background_index: the background policy (see
            :class:`InferenceProtocol`).
        with_seg_logits: also attach the class probabilities to predictions as ``seg_logits``.
        text_cache_dir: disk cache of the text embeddings (None: default; False: off).
        train_cfg, test_cfg, data_preprocessor, init_cfg: mmseg's.
    """

    #: Constructor arguments the inferencer and the demo apply over the config: ov-seg's demo
    #: (configs/ovseg_swinB_vitL_demo.yaml: CLIP_ENSEMBLE_WEIGHT 0.0, MASK_THR 0.35).
    demo_preset: ClassVar[dict] = dict(ensemble_weight=0.0, mask_threshold=0.35)

    def __init__(self, *, clip: dict, backbone: ConfigType, decode_head: ConfigType,
                 class_names: str | Sequence[str] | None = None,
                 train_class_names: str | Sequence[str] | None = None,
                 templates: str | Sequence[str] = 'vild14', classifier: str = 'masked_crops',
                 ensemble_weight: float | None = 0.7, mask_threshold: float = 0.5,
                 dense_mode: str = 'maskclip', crop_chunk_size: int = DEFAULT_CHUNK_SIZE,
                 proposals: dict | MaskProposalGenerator | None = None,
                 prob_threshold: float = 0.0, background_index: int = -1,
                 with_seg_logits: bool = False, text_cache_dir=None,
                 train_cfg: OptConfigType = None, test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None, init_cfg: OptConfigType = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.classifier = check_classifier(classifier)
        self.set_ensemble(ensemble_weight, mask_threshold)
        self.crop_chunk_size = int(crop_chunk_size)
        self._init_frozen_clip(clip, templates, dense_mode, text_cache_dir)
        self._train_names = resolve_class_names(train_class_names)
        self._class_names = resolve_class_names(class_names)
        train_names = self._train_names or self._class_names
        arch = self._frozen[0]
        head = ConfigDict(decode_head)
        head.setdefault('embed_dims', arch.embed_dim)
        head.setdefault('text_width', arch.text_width)
        if head.get('num_classes') is None:
            if train_names is None:
                raise ValueError('set decode_head.num_classes or the training vocabulary '
                                 '(train_class_names or class_names)')
            head.num_classes = len(train_names)
        elif train_names is not None and head.num_classes != len(train_names):
            raise ValueError(f'decode_head.num_classes={head.num_classes} but the training '
                             f'vocabulary has {len(train_names)} names; they must agree (the '
                             'label num_classes is no-object)')
        self.backbone = SEG_MODELS.build(backbone)
        self.decode_head = SEG_MODELS.build(head)
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.with_seg_logits = bool(with_seg_logits)
        self._protocol = InferenceProtocol(
            short_side=None, slide=None, logit_scale=self.decode_head.cls_embed.temperature,
            mode=dense_mode if classifier == 'mask_pooling' else None, templates=templates,
            prob_threshold=prob_threshold, background_index=background_index,
            **preprocessor_normalisation(self.data_preprocessor))
        self._generator = None
        self.proposal_generator = build_proposal_generator(proposals)

    def set_ensemble(self, ensemble_weight: float | None, mask_threshold: float) -> None:
        """Set CLIP's share of the ensemble (None: the head alone) and the proposals' mask
        threshold, both read at inference (no rebuild needed to change them)."""
        if ensemble_weight is not None and not 0.0 <= ensemble_weight <= 1.0:
            raise ValueError(f"ensemble_weight is CLIP's share of the ensemble, in [0, 1] (0: "
                             f'CLIP alone), or None for the head alone; got {ensemble_weight}')
        if not 0.0 <= mask_threshold < 1.0:
            raise ValueError(f'mask_threshold is a probability in [0, 1), got {mask_threshold}')
        if getattr(self, '_generator', None) is not None and ensemble_weight != 0:
            raise ValueError('external proposals (SAM) have no class head to ensemble with: '
                             f'ensemble_weight must stay 0.0 (got {ensemble_weight})')
        self.ensemble_weight = ensemble_weight
        self.mask_threshold = float(mask_threshold)
    def _init_frozen_clip(self, clip: dict, templates, dense_mode: str, text_cache_dir) -> None:
        """The frozen CLIP's architecture now (its dims size the head); its weights now for a
        densevl zoo model, else when first used (building the model downloads nothing)."""
        name, pretrained = clip['model_name'], clip.get('pretrained')
        check_activation(name, pretrained)
        options = dict(templates=templates, dense_mode=dense_mode, text_cache_dir=text_cache_dir)
        eager = name in MODEL_ZOO or pretrained is None
        bundle = create_clip(name, pretrained if eager else None)
        self._frozen = [OVSegCLIP(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                                  **options)]   # outside the module tree
        mask_embedding = clip.get('mask_embedding')
        self._pending_clip = None if eager and mask_embedding is None else dict(
            model_name=name, pretrained=pretrained, mask_embedding=mask_embedding, **options)
        #: True while the frozen CLIP has no pretrained weights (and none are pending).
        self.random_weights = bundle.random_weights and pretrained is None

    # ----- the pieces --------------------------------------------------------------------------

    @property
    def frozen_clip(self) -> OVSegCLIP:
        """The frozen CLIP, with its weights (loaded on first use), on the model's device."""
        if self._pending_clip is not None:
            self._frozen[0] = OVSegCLIP.create(**self._pending_clip)
            self._pending_clip = None
        clip = self._frozen[0]
        device = next(self.backbone.parameters()).device
        if clip.device != device:
            clip.to(device)
        return clip

    @property
    def proposal_generator(self) -> MaskProposalGenerator | None:
        """Proposals at inference instead of the MaskFormer's (SAM), or None."""
        return self._generator

    @proposal_generator.setter
    def proposal_generator(self, generator: MaskProposalGenerator | None) -> None:
        if generator is not None and self.ensemble_weight != 0:
            raise ValueError(f'external proposals (SAM) have no class head to ensemble with, so '
                             f'their class comes from CLIP alone: set ensemble_weight=0.0 (got '
                             f'{self.ensemble_weight})')
        self._generator = generator

    @property
    def protocol(self) -> InferenceProtocol:
        """How the model is run: the config's normalisation and background policy, whole
        images (the short side is the test pipeline's), the class head's temperature."""
        return self._protocol

    @property
    def class_names(self) -> list[str] | None:
        return list(self._class_names) if self._class_names is not None else None

    @class_names.setter
    def class_names(self, names) -> None:
        self._class_names = resolve_class_names(names)

    def _names(self, texts: Sequence[str] | None) -> list[str]:
        return vocabulary_names(texts, self.class_names)

    def training_vocabulary(self) -> Vocabulary:
        """The training labels' names (``train_class_names``, else ``class_names``), embedded."""
        names = training_names(self._train_names, self.class_names, 'OVSeg')
        return self.frozen_clip.vocabulary(names)

    def unnormalise(self, images: Tensor) -> Tensor:
        """Normalised images back to RGB on the 0-255 scale (what CLIP crops and SAM take).

        Shapes:
            ``(B, 3, H, W) -> (B, 3, H, W)``.
        """
        mean = images.new_tensor(self.protocol.mean).view(3, 1, 1)
        std = images.new_tensor(self.protocol.std).view(3, 1, 1)
        return (images * std + mean).clamp(0, 255)

    # ----- proposals, classification, semantic map --------------------------------------------

    def extract_feat(self, inputs: Tensor) -> tuple[Tensor, ...]:
        """The backbone's levels. Shapes: ``(B, 3, H, W)`` -> strides 4-32."""
        return tuple(self.backbone(inputs))

    def proposals(self, images: Tensor, rgb: Tensor,
                  vocabulary: Vocabulary) -> tuple[Tensor, Tensor]:
        """Class logits and mask logits of every proposal, the masks at the images' size.

        With an external generator (SAM) the class logits are zeros (a uniform head, which CLIP
        alone, ``ensemble_weight=0``, does not use).

        Shapes:
            images (normalised), rgb (0-255): ``(B, 3, H, W)``; returns ``(B, N, Q + 1)`` and
            ``(B, N, H, W)``.
        """
        if self._generator is None:
            return self.decode_head.predict_proposals(self.extract_feat(images), vocabulary,
                                                      images.shape[-2:])
        model = getattr(self._generator, 'model', None)
        if isinstance(model, nn.Module) and next(model.parameters()).device != images.device:
            model.to(images.device)
        masks = stack_proposals(self._generator(rgb)).to(images.device)
        return masks.new_zeros(*masks.shape[:2], vocabulary.num_queries + 1), masks

    def semantic_maps(self, images: Tensor, vocabulary: Vocabulary) -> tuple[Tensor, Tensor]:
        """OVSeg's semantic maps of a batch and which proposals were valid.

        Shapes:
            images: ``(B, 3, H, W)`` normalised; returns ``(B, K, H, W)`` (see
            :func:`~densevl.models.ovseg.semantic_inference`) and ``(B, N)``.
        """
        rgb = self.unnormalise(images)
        class_logits, mask_logits = self.proposals(images, rgb, vocabulary)
        if self.ensemble_weight is None:      # the head alone
            valid = find_proposals(mask_logits, self.mask_threshold).valid
            return semantic_inference(class_logits, mask_logits, None, None,
                                      clip_ensemble_weight=0.0, vocabulary=vocabulary), valid
        crop_logits, found = self.frozen_clip.proposal_logits(
            rgb, mask_logits, self.mask_threshold, vocabulary, classifier=self.classifier,
            chunk_size=self.crop_chunk_size)
        return semantic_inference(class_logits, mask_logits, crop_logits, found.valid,
                                  clip_ensemble_weight=self.ensemble_weight,
                                  vocabulary=vocabulary), found.valid

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None,
                return_probs: bool = True) -> list[Segmentation]:
        """See :meth:`OpenVocabSegmenter.segment`; a single name is contrasted with
        ``'others'`` (see the class)."""
        names, others = add_others(texts)
        semseg, valid = self.semantic_maps(images, self.frozen_clip.vocabulary(names))
        return label_semantic_map(semseg, valid, out_size=out_size, drop_last=others,
                                  return_probs=return_probs, mask_threshold=self.mask_threshold,
                                  **self.protocol.background(prob_threshold, background_index))

    # ----- mmseg's interface -------------------------------------------------------------------

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """MaskFormer's losses of every decoder layer, classes in CLIP space over the training
        vocabulary (``decode.loss_cls``, ``decode.loss_mask``, ``decode.loss_dice``, and
        ``decode.d{i}.*`` for the earlier layers)."""
        vocabulary = self.training_vocabulary()
        with self.decode_head.vocabulary_in_use(vocabulary, training=True):
            losses = self.decode_head.loss(self.extract_feat(inputs), data_samples,
                                           self.train_cfg)
        return add_prefix(losses, 'decode')

    def predict(self, inputs: Tensor, data_samples: SampleList | None = None,
                texts: Sequence[str] | None = None) -> SampleList:
        """Label maps at each image's original size, as ``pred_sem_seg`` (and the class
        probabilities as ``seg_logits`` when ``with_seg_logits``), for ``texts`` (default
        :attr:`class_names`).

        Shapes:
            inputs: ``(B, 3, H, W)`` normalised by the data preprocessor.
        """
        return predict_by_segment(self.segment, inputs, data_samples, self._names(texts),
                                  with_seg_logits=self.with_seg_logits)

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Class probabilities ``(B, K, H, W)`` at the input size for :attr:`class_names`."""
        results = self.segment(inputs, self._names(None), return_probs=True)
        return torch.stack([r.class_probs for r in results])

    def _forward(self, inputs: Tensor, data_samples: SampleList | None = None) -> Tensor:
        return self.encode_decode(inputs, [])
