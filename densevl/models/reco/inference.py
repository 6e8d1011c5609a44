"""ReCo's inference: the score map ``S`` and the call-time segmenter.

``S_c = σ(cos(f̂_u, r̂_c)) ⊙ σ(T · cos(g_u, t_c))``, both factors upsampled bilinearly to the
image before the product (as ``ReCo.__call__``), then the argmax over the concepts (no background
class) and, optionally, DenseCRF on ``softmax(S)`` (as ReCo's ``eval.py``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..clip.score_map import score_map
from ..inference_protocol import InferenceProtocol
from ..segmentors.dense_predictor import Segmentation
from ..text import TextEmbedder, Vocabulary
from .coseg import GUIDANCE_TEMPERATURE, language_guidance
from .crf import RECO_CRF, DenseCRFSettings, dense_crf, unnormalise
from .references import IMAGENET_MEAN, IMAGENET_STD, ReCoSettings, ReferenceBuilder

#: ReCo's evaluation: short side 320, one whole-image forward, ImageNet normalisation for both
#: encoders, the MaskCLIP value path, the 85 templates; S is not scaled.
RECO_PROTOCOL = InferenceProtocol(short_side=320, slide=None, logit_scale=1.0, mode='maskclip',
                                  templates='reco85', mean=IMAGENET_MEAN, std=IMAGENET_STD)


def reco_score_map(feats: Tensor, references: Tensor, dense: Tensor | None, text: Tensor | None,
                   size: tuple[int, int], *,
                   temperature: float = GUIDANCE_TEMPERATURE) -> Tensor:
    """``S``: reference similarity times language guidance, each upsampled to ``size`` first.

    Shapes:
        feats: ``(B, D, h, w)``; references: ``(K, D)``; dense: ``(B, C, h', w')`` (None: no
        guidance); text: ``(K, C)``; returns ``(B, K, *size)`` float32.
    """
    sims = score_map(feats.float(), references.float()).sigmoid()
    scores = F.interpolate(sims, size=tuple(size), mode='bilinear', align_corners=False)
    if dense is not None:
        scores = scores * language_guidance(dense.float(), text.float(), tuple(size),
                                            temperature=temperature)
    return scores


class ReCoSegmenter(nn.Module):
    """Zero-shot segmentation by retrieval and co-segmentation (an ``OpenVocabSegmenter``).

    A word seen for the first time is retrieved and co-segmented on the spot (seconds); its
    reference is cached, so a vocabulary seen once costs nothing the next time.

    Args:
        references: the :class:`ReferenceBuilder` (it holds the two encoders and the text).
        protocol: default :data:`RECO_PROTOCOL`.
        crf: DenseCRF settings, or None for the plain argmax.
        inference_guidance: multiply ``S`` by the language guidance of the image itself
            (the reference's ``dense_clip_inference``); independent of the co-segmentation's
            guidance (``settings.language_guidance``).
        random_weights: whether any of the models has random weights (tests, smoke runs).
    """

    def __init__(self, references: ReferenceBuilder, *, protocol: InferenceProtocol | None = None,
                 crf: DenseCRFSettings | None = RECO_CRF, inference_guidance: bool = True,
                 random_weights: bool = False) -> None:
        super().__init__()
        self.references = references
        self.patch_encoder = references.patch_encoder
        self.dense_encoder = references.dense_encoder
        self.protocol = protocol or RECO_PROTOCOL
        self.crf = crf
        self.inference_guidance = bool(inference_guidance)
        self.random_weights = random_weights
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_names(cls, *, index, retrieval_model: str = 'ViT-L-14-336',
                   retrieval_pretrained: str | None = 'openai', dense_model: str = 'RN50x16',
                   dense_pretrained: str | None = 'openai',
                   encoder: str = 'timm/deit_small_distilled_patch16_224',
                   encoder_weights: str | None = None, settings: ReCoSettings | None = None,
                   crf: DenseCRFSettings | None = RECO_CRF, inference_guidance: bool = True,
                   templates: str | Sequence[str] = 'reco85', dense_mode: str = 'maskclip',
                   protocol: InferenceProtocol | None = None,
                   cache_dir: str | os.PathLike | bool | None = None, text_cache_dir=None,
                   device: str | torch.device = 'cpu') -> ReCoSegmenter:
        """ReCo's models by name (defaults: the paper's), on a retrieval index (a folder or a
        loaded index); ``templates`` prompt both CLIPs' text, ``dense_mode`` is the guidance
        CLIP's dense mode."""
        from ..clip import build_dense_encoder, create_clip
        from .patch_encoder import create_patch_encoder

        if isinstance(index, (str, os.PathLike)):
            from .retrieval_index import RetrievalIndex

            index = RetrievalIndex.load(index)
        retrieval = create_clip(retrieval_model, retrieval_pretrained, device=device)
        dense = create_clip(dense_model, dense_pretrained, device=device)
        patch = create_patch_encoder(encoder, encoder_weights, device=device)

        def text(bundle) -> TextEmbedder:
            return TextEmbedder(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                                templates=templates, cache_dir=text_cache_dir)

        builder = ReferenceBuilder(
            index=index, retrieval_text=text(retrieval), patch_encoder=patch,
            dense_encoder=build_dense_encoder(dense.model.visual, mode=dense_mode),
            guidance_text=text(dense), settings=settings or ReCoSettings(), cache_dir=cache_dir)
        random = retrieval.random_weights or dense.random_weights or patch.random_weights
        return cls(builder, protocol=protocol, crf=crf, inference_guidance=inference_guidance,
                   random_weights=random)

    def vocabulary(self, class_names: Sequence[str]) -> Vocabulary:
        """The dense CLIP's text embeddings of ``class_names`` (synonyms separated by ``;``)."""
        return self.references.guidance_text(list(class_names))

    @torch.no_grad()
    def score_maps(self, images: Tensor, vocabulary: Vocabulary,
                   size: tuple[int, int] | None = None) -> Tensor:
        """``S`` of every query, references built on the spot when missing.

        Shapes:
            images: ``(B, 3, H, W)`` normalised; returns ``(B, Q, *size)`` (default ``(H, W)``).
        """
        size = tuple(size or images.shape[-2:])
        refs = self.references(vocabulary.queries)
        feats = self.patch_encoder(images)
        dense = text = None
        settings = self.references.settings
        if self.inference_guidance:
            dense = self.dense_encoder.forward_dense(images, return_global=False).dense
            text = vocabulary.embeddings.to(dense.device)
        return reco_score_map(feats, refs.to(feats.device), dense, text, size,
                              temperature=settings.temperature)

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None, return_probs: bool = True,
                crf: bool | None = None) -> list[Segmentation]:
        """See :meth:`OpenVocabSegmenter.segment`; ``crf`` (default: whether settings were
        given) runs DenseCRF on each image's ``softmax(S)``. Probabilities are that softmax
        (after the CRF, its marginals), synonyms pooled by their maximum."""
        vocab = self.vocabulary(texts)
        size = tuple(int(v) for v in (out_size or images.shape[-2:]))
        scores = self.score_maps(images, vocab, size)
        use_crf = self.crf is not None if crf is None else crf
        if use_crf:
            settings = self.crf or RECO_CRF
            if tuple(images.shape[-2:]) != size:
                images = F.interpolate(images, size=size, mode='bilinear', align_corners=False)
            pixels = unnormalise(images, self.protocol.mean, self.protocol.std)
            # eval.py hands log_softmax(S) to dense_crf, which softmaxes it: softmax(S), rounded
            # as the reference rounds it
            probs = torch.softmax(torch.log_softmax(scores, dim=1), dim=1)
            probs = torch.stack([dense_crf(p, q, settings) for p, q in zip(pixels, probs)])
        else:
            probs = torch.softmax(scores, dim=1)
        class_probs = vocab.pool_synonyms(probs)
        max_prob, labels = class_probs.max(dim=1)
        policy = self.protocol.background(prob_threshold, background_index)
        if policy['prob_threshold'] > 0:
            labels[max_prob < policy['prob_threshold']] = policy['background_index']
        return [Segmentation(labels=lab, class_probs=p if return_probs else None)
                for lab, p in zip(labels, class_probs)]
