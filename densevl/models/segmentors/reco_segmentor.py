"""mmseg adapter of :class:`~densevl.models.reco.ReCoSegmenter`: ReCo in mmseg's test loop."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmseg.models.segmentors import BaseSegmentor
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor

from ...registry import SEG_MODELS
from ..clip import MODEL_ZOO
from ..inference_protocol import InferenceProtocol, preprocessor_normalisation
from ..reco.coseg import GUIDANCE_TEMPERATURE
from ..reco.crf import DenseCRFSettings
from ..reco.patch_encoder import TIMM_PREFIX
from ..reco.references import ALIASES, CONTEXT_CATEGORIES, ReCoSettings
from ..text import resolve_class_names
from .dense_predictor import Segmentation
from .mm_common import predict_by_segment, vocabulary_names


def _random(model: dict, timm: bool = False) -> bool:
    """Whether a model entry of the config stands for random weights (nothing loaded)."""
    if model.get('pretrained') is not None:
        return False
    return timm or model['model_name'] not in MODEL_ZOO or 'random' in model['model_name']


@SEG_MODELS.register_module()
class ReCoSegmentor(BaseSegmentor):
    """ReCo (Shin et al., NeurIPS 2022): zero-shot segmentation by retrieval + co-segmentation.

    Nothing is trained. For each name of the vocabulary (given at call time), the ``k`` images of
    the retrieval index closest to its text query are co-segmented into a reference embedding
    (cached on disk, see :class:`~densevl.models.reco.ReferenceBuilder`); an image is labelled by
    ``σ(cos(f̂, r̂)) ⊙ σ(T·cos(g, t))`` and DenseCRF. The models and the index load on first use,
    so building the model (a config smoke test) downloads and reads nothing; none of them is a
    sub-module (nothing lands in checkpoints).

    Args:
        index: the retrieval index folder (``tools/build_retrieval_index.py``).
        retrieval: ``dict(model_name=..., pretrained=...)``: the CLIP that built the index.
        guidance: the same for the language-guidance CLIP, and ``mode`` its dense mode
            (ReCo: RN50x16 with MaskCLIP's value path, ``'maskclip'``).
        encoder: ``dict(model_name=..., pretrained=...)`` of the co-segmentation encoder:
            ``'timm/<arch>'`` with a local checkpoint, or a CLIP name (its ViT tower).
        k: archive images per concept.
        context: context categories, eliminated in this order; ``()`` for no elimination.
        aliases: ``(concept, concept whose reference it takes)`` pairs.
        slicing: ``'paper'`` or ``'code'`` (see :mod:`densevl.models.reco.coseg`).
        coseg_guidance: language guidance in the co-segmentation (the paper's LGC).
        inference_guidance: language guidance of the image at inference (``S``'s second factor).
        temperature: ``T`` of the language guidance.
        archive_size: archive images are resized and centre-cropped to it.
        allow_fewer: co-segment what the index finds when it has fewer than ``k`` images.
        templates: prompt templates of both CLIPs' text (ReCo: ``'reco85'``).
        crf: ``dict(iterations=, gaussian=(sxy, compat), bilateral=(sxy, srgb, compat))`` of
            :class:`~densevl.models.reco.DenseCRFSettings`, or None for the plain argmax.
        class_names: default vocabulary (a list, a names file or a dataset type); None: set later
            (``tools/test.py`` sets the dataset's).
        prob_threshold, background_index: the background policy (see :class:`InferenceProtocol`).
        reference_cache_dir: disk cache of the references (None: ``$DENSEVL_CACHE/reco``; False:
            memory only).
        text_cache_dir: disk cache of the text embeddings (None: default; False: off).
        with_seg_logits: also attach the class probabilities as ``seg_logits``.
        data_preprocessor: mmseg's; its mean/std normalise the test images and the archive
            images alike (ReCo: ImageNet's, for both encoders).
    """

    def __init__(self, *, index: str, retrieval: dict, guidance: dict, encoder: dict,
                 k: int = 50, context: Sequence[str] = CONTEXT_CATEGORIES,
                 aliases: Sequence[Sequence[str]] = ALIASES, slicing: str = 'paper',
                 coseg_guidance: bool = True, inference_guidance: bool = True,
                 temperature: float = GUIDANCE_TEMPERATURE, archive_size: int = 224,
                 allow_fewer: bool = False, templates: str | Sequence[str] = 'reco85',
                 crf: dict | None = None, class_names: str | Sequence[str] | None = None,
                 prob_threshold: float = 0.0, background_index: int = -1,
                 reference_cache_dir=None, text_cache_dir=None, with_seg_logits: bool = False,
                 data_preprocessor: OptConfigType = None, init_cfg: OptConfigType = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        normalisation = preprocessor_normalisation(self.data_preprocessor)
        self.settings = ReCoSettings(
            k=k, context=tuple(context), aliases=tuple(tuple(a) for a in aliases),
            slicing=slicing, language_guidance=coseg_guidance, temperature=temperature,
            image_size=archive_size, allow_fewer=allow_fewer,
            **{key: tuple(value) for key, value in normalisation.items()})
        self.crf = DenseCRFSettings(**{key: tuple(v) if isinstance(v, (list, tuple)) else v
                                       for key, v in crf.items()}) if crf is not None else None
        guidance = dict(guidance)
        self._build_args = dict(
            index=index, retrieval_model=retrieval['model_name'],
            retrieval_pretrained=retrieval.get('pretrained'),
            dense_model=guidance['model_name'], dense_pretrained=guidance.get('pretrained'),
            dense_mode=guidance.get('mode', 'maskclip'), encoder=encoder['model_name'],
            encoder_weights=encoder.get('pretrained'), settings=self.settings, crf=self.crf,
            inference_guidance=inference_guidance, templates=templates,
            cache_dir=reference_cache_dir, text_cache_dir=text_cache_dir)
        self._protocol = InferenceProtocol(
            short_side=None, slide=None, logit_scale=1.0, mode=self._build_args['dense_mode'],
            templates=templates, prob_threshold=prob_threshold,
            background_index=background_index, **normalisation)
        self._core: list = []       # the ReCoSegmenter, outside the module tree
        self.class_names = resolve_class_names(class_names)
        self.with_seg_logits = bool(with_seg_logits)
        #: True while any of the three models would have random weights.
        self.random_weights = (_random(retrieval) or _random(guidance) or
                               _random(encoder, encoder['model_name'].startswith(TIMM_PREFIX)))

    @property
    def protocol(self) -> InferenceProtocol:
        """How the model is run: the config's normalisation and background policy, whole images
        (the short side is the test pipeline's), ``S`` unscaled."""
        return self._protocol

    @property
    def core(self):
        """The :class:`~densevl.models.reco.ReCoSegmenter`, built (models and index loaded) on
        first use."""
        if not self._core:
            from ..reco import ReCoSegmenter

            core = ReCoSegmenter.from_names(protocol=self._protocol, **self._build_args)
            self.random_weights = core.random_weights
            self._core.append(core)
        return self._core[0]

    def _names(self, texts: Sequence[str] | None) -> list[str]:
        return vocabulary_names(texts, self.class_names)

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None, return_probs: bool = True,
                crf: bool | None = None) -> list[Segmentation]:
        """:meth:`ReCoSegmenter.segment` (references of new names built on the spot)."""
        core = self.core
        if next(core.parameters()).device != images.device:
            core.to(images.device)
        return core.segment(images, texts, out_size=out_size, prob_threshold=prob_threshold,
                            background_index=background_index, return_probs=return_probs,
                            crf=crf)

    def predict(self, inputs: Tensor, data_samples: SampleList | None = None,
                texts: Sequence[str] | None = None) -> SampleList:
        """Label maps at each image's original size, as ``pred_sem_seg`` (and ``seg_logits``
        when ``with_seg_logits``), for ``texts`` (default :attr:`class_names`).

        Shapes:
            inputs: ``(B, 3, H, W)`` normalised by the data preprocessor.
        """
        return predict_by_segment(self.segment, inputs, data_samples, self._names(texts),
                                  with_seg_logits=self.with_seg_logits)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise NotImplementedError('ReCo has nothing to train; ReCo+ trains a DeepLabv3+ on its '
                                  'predictions (tools/reco_pseudo_labels.py, configs/reco)')

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        return [self.core.patch_encoder(inputs)]

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """``S`` ``(B, K, H, W)`` at the input size for :attr:`class_names`, before the CRF."""
        return self.core.score_maps(inputs, self.core.vocabulary(self._names(None)))

    def _forward(self, inputs: Tensor, data_samples: SampleList | None = None) -> Tensor:
        return self.encode_decode(inputs, [])
