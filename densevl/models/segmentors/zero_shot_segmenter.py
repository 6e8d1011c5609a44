"""Training-free open-vocabulary segmentation with a dense CLIP encoder (plain PyTorch core)."""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from ..clip import build_dense_encoder, create_clip, dense_score_map
from ..inference_protocol import InferenceProtocol, default_protocol
from ..text import TextEmbedder, Vocabulary
from .dense_predictor import DensePredictor, Segmentation


class ZeroShotSegmenter(nn.Module):
    """Segment any vocabulary with a frozen CLIP: dense embeddings x text embeddings -> labels.

    An :class:`OpenVocabSegmenter`. The image goes through the dense encoder, its score map
    against the vocabulary's text embeddings goes to the :class:`DensePredictor`.

    Args:
        model_name: a densevl or open_clip CLIP name (see :func:`create_clip`).
        pretrained: open_clip tag, local weights file, or None.
        protocol: how it is run; default the model's (:func:`default_protocol`).
        naclip_std: NACLIP's neighbourhood prior width, in patches.
        text_cache_dir: disk cache of text embeddings (None: the default cache; False: off).
        device: where the CLIP is built.
        **protocol_changes: protocol fields that differ from ``protocol`` (``mode='sclip'``,
            ``slide=dict(crop=224, stride=112)``, ``templates=...``, ``logit_scale=...``,
            ``prob_threshold=...``, ``background_index=...``).
    """

    def __init__(self, *, model_name: str, pretrained: str | None = None,
                 protocol: InferenceProtocol | None = None, naclip_std: float = 5.0,
                 text_cache_dir=None, device: str | torch.device = 'cpu',
                 **protocol_changes) -> None:
        super().__init__()
        self.protocol = (protocol or default_protocol(model_name)).updated(**protocol_changes)
        if self.protocol.mode is None or self.protocol.templates is None:
            raise ValueError('a training-free segmenter needs a dense mode and prompt templates '
                             f'in its protocol; got {self.protocol}')
        bundle = create_clip(model_name, pretrained, device=device)
        self.clip = bundle.model
        self.random_weights = bundle.random_weights
        self.encoder = build_dense_encoder(self.clip.visual, mode=self.protocol.mode,
                                           naclip_std=naclip_std)
        self._text_args = dict(tokenizer=bundle.tokenizer, model_id=bundle.model_id,
                               templates=self.protocol.templates, cache_dir=text_cache_dir)
        self.text = TextEmbedder(self.clip, **self._text_args)
        self.predictor = DensePredictor(self.protocol.slide, pad_to=self.encoder.patch_size,
                                        logit_scale=self.protocol.logit_scale)
        self.requires_grad_(False)
        self.eval()

    def vocabulary(self, class_names: Sequence[str]) -> Vocabulary:
        """Text embeddings of ``class_names`` (synonyms separated by ``;``; cached per query)."""
        return self.text(list(class_names))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # New CLIP weights: the text embeddings (and their cache key) must be recomputed.
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if any(key.startswith(prefix + 'clip.') for key in state_dict):
            self.reset_text_cache()
            self.random_weights = False

    def reset_text_cache(self) -> None:
        """Forget the text embeddings after the CLIP's weights changed."""
        self.text = TextEmbedder(self.clip, **self._text_args)

    @torch.no_grad()
    def score_maps(self, images: Tensor, vocabulary: Vocabulary) -> Tensor:
        """Cosine score maps per query (what mmseg's ``_forward`` returns).

        Shapes:
            images: normalised ``(B, 3, H, W)``; returns ``(B, Q, H, W)`` with sliding windows,
            else ``(B, Q, H // p, W // p)`` (upsampled later, as the references do).
        """
        text = vocabulary.embeddings.to(images.device)
        scores = self.predictor.scores(images, partial(dense_score_map, self.encoder, text=text))
        return scores if isinstance(scores, Tensor) else scores.average()

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None,
                return_probs: bool = True) -> list[Segmentation]:
        """See :meth:`OpenVocabSegmenter.segment`."""
        vocab = self.vocabulary(texts)
        text = vocab.embeddings.to(images.device)
        return self.predictor.predict(
            images, partial(dense_score_map, self.encoder, text=text), vocab,
            out_size=out_size, return_probs=return_probs,
            **self.protocol.background(prob_threshold, background_index))
