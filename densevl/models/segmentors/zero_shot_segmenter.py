"""Training-free open-vocabulary segmentation with a dense CLIP encoder (plain PyTorch core)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..clip import build_dense_encoder, create_clip, score_map
from ..text import TextEmbedder, Vocabulary
from .label_assignment import assign_labels
from .slide_inference import SlideScores, slide_windows


@dataclass
class Segmentation:
    """One image's result.

    Shapes:
        labels: ``(H, W)`` int64 indices into the vocabulary's classes (``background_index`` where
        the threshold rejected every class); class_probs: ``(K, H, W)``, or None when not asked.
    """

    labels: Tensor
    class_probs: Tensor | None


class ZeroShotSegmenter(nn.Module):
    """Segment any vocabulary with a frozen CLIP: dense embeddings × text embeddings → labels.

    Args:
        model_name: a densevl or open_clip CLIP name (see :func:`create_clip`).
        pretrained: open_clip tag, local weights file, or None.
        mode: dense last-block mode (``maskclip``, ``sclip``, ``clearclip``, ``naclip``, ``plain``).
        naclip_std: NACLIP's neighbourhood prior width, in patches.
        templates: prompt templates for the text embeddings.
        logit_scale: temperature applied to cosine scores before the softmax.
        slide: ``dict(crop=224, stride=112)`` for sliding-window inference, None for whole image.
        prob_threshold: pixels whose best class probability is lower get ``background_index``.
        background_index: label of rejected pixels (0 = a named background row; -1 = none).
        text_cache_dir: disk cache of text embeddings (None: the default cache; False: off).
    """

    def __init__(self, *, model_name: str, pretrained: str | None = None, mode: str = 'maskclip',
                 naclip_std: float = 5.0, templates: str | Sequence[str] = 'imagenet80',
                 logit_scale: float = 40.0, slide: dict | None = None,
                 prob_threshold: float = 0.0, background_index: int = 0,
                 text_cache_dir=None, device: str | torch.device = 'cpu') -> None:
        super().__init__()
        bundle = create_clip(model_name, pretrained, device=device)
        self.clip = bundle.model
        self.random_weights = bundle.random_weights
        self.encoder = build_dense_encoder(self.clip.visual, mode=mode, naclip_std=naclip_std)
        self._text_args = dict(tokenizer=bundle.tokenizer, model_id=bundle.model_id,
                               templates=templates, cache_dir=text_cache_dir)
        self.text = TextEmbedder(self.clip, **self._text_args)
        self.logit_scale = float(logit_scale)
        self.slide = dict(slide) if slide else None
        self.prob_threshold = float(prob_threshold)
        self.background_index = int(background_index)
        self._vocab_key: tuple[str, ...] | None = None
        self._vocab: Vocabulary | None = None
        self.requires_grad_(False)
        self.eval()

    def vocabulary(self, class_names: Sequence[str]) -> Vocabulary:
        """Text embeddings of ``class_names`` (cached; synonyms separated by ``;``)."""
        key = tuple(class_names)
        if key != self._vocab_key:
            self._vocab, self._vocab_key = self.text(list(class_names)), key
        return self._vocab

    def window_scores(self, images: Tensor, text: Tensor) -> Tensor:
        """Cosine of the dense embeddings with ``text``.

        Shapes:
            images: ``(B, 3, H, W)``, sides multiples of the patch size; text ``(Q, C)``;
            returns ``(B, Q, H / p, W / p)``.
        """
        return score_map(self.encoder.forward_dense(images, return_global=False).dense, text)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # New CLIP weights: the text embeddings (and their cache key) must be recomputed.
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if any(key.startswith(prefix + 'clip.') for key in state_dict):
            self.reset_text_cache()
            self.random_weights = False

    def reset_text_cache(self) -> None:
        """Forget the text embeddings after the CLIP's weights changed."""
        self.text = TextEmbedder(self.clip, **self._text_args)
        self._vocab_key = self._vocab = None

    def _scores(self, images: Tensor, vocabulary: Vocabulary, *,
                dense: bool) -> Tensor | SlideScores:
        text = vocabulary.embeddings.to(images.device)
        fn = lambda x: self.window_scores(x, text)
        if self.slide is None:
            return fn(images)
        windows = slide_windows(fn, images, crop=self.slide['crop'], stride=self.slide['stride'],
                                patch_size=self.encoder.patch_size)
        return windows.average() if dense else windows

    @torch.no_grad()
    def score_maps(self, images: Tensor, vocabulary: Vocabulary) -> Tensor:
        """Cosine score maps per query.

        Shapes:
            images: normalised ``(B, 3, H, W)``; returns ``(B, Q, H, W)`` with sliding windows,
            else ``(B, Q, H // p, W // p)`` (upsampled later, as the references do).
        """
        return self._scores(images, vocabulary, dense=True)

    @torch.no_grad()
    def segment(self, images: Tensor, class_names: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None,
                return_probs: bool = True) -> list[Segmentation]:
        """Segment a batch of normalised images with a vocabulary given now.

        Without ``return_probs`` no ``(B, Q, H, W)`` tensor is ever built (fused upsample-argmax,
        sliding windows averaged a chunk of queries at a time); with it, the class probabilities
        are what was asked for, at full resolution.

        Shapes:
            images: ``(B, 3, H, W)``; each result is at ``out_size`` (default ``(H, W)``).
        """
        vocab = self.vocabulary(class_names)
        scores = self._scores(images, vocab, dense=return_probs)
        labels, probs = assign_labels(
            scores, vocab.query_to_class, logit_scale=self.logit_scale,
            out_size=out_size or tuple(images.shape[-2:]),
            prob_threshold=self.prob_threshold if prob_threshold is None else prob_threshold,
            background_index=(self.background_index if background_index is None
                              else background_index),
            return_probs=return_probs)
        if probs is None:
            return [Segmentation(labels=lab, class_probs=None) for lab in labels]
        return [Segmentation(labels=lab, class_probs=p) for lab, p in zip(labels, probs)]
