"""Geometric ensemble of a trained open-vocabulary classifier with a frozen CLIP's dense scores.

A head fine-tuned on a training vocabulary is confident about its seen classes and has never been
asked to tell a new class from them, so names outside the training vocabulary lose to their
nearest seen class. The frozen CLIP has not specialised. Combining the two class distributions
geometrically, with more weight on CLIP for the classes the head never trained on, is the
out-of-vocabulary ensemble of open-vocabulary segmenters such as FC-CLIP (Yu et al., NeurIPS 2023:
``seen_weight`` 0.4, ``unseen_weight`` 0.8 for CLIP's share).
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from ..clip import dense_score_map
from .windows import score_window
from .zero_shot_segmenter import ZeroShotSegmenter


def geometric_ensemble(head_logits: Tensor, clip_logits: Tensor, clip_weight: Tensor) -> Tensor:
    """``(1 - w_q) log softmax(head)_q + w_q log softmax(clip)_q`` per query ``q``.

    The result is an unnormalised log-probability: its softmax is the normalised ensemble and its
    argmax the ensemble's choice.

    Shapes:
        head_logits, clip_logits: ``(B, Q, h, w)``; clip_weight: ``(Q,)`` in ``[0, 1]``.
    """
    weight = clip_weight.to(head_logits).view(1, -1, 1, 1)
    return ((1 - weight) * torch.log_softmax(head_logits, dim=1)
            + weight * torch.log_softmax(clip_logits.to(head_logits), dim=1))


class FrozenCLIPEnsemble(nn.Module):
    """The frozen CLIP side of the ensemble and the ensemble itself.

    The frozen CLIP is CLIP as published, never trained, so it is not a sub-module: its weights
    stay out of state dicts, checkpoints and optimisers. They come from ``model_name`` /
    ``pretrained`` when first needed, or from :meth:`load_from` (the owner's CLIP, already in
    memory); the CLIP follows its inputs to their device.

    Args:
        model_name, pretrained: the CLIP (see :func:`~densevl.models.clip.create_clip`).
        mode: the training-free dense mode of the frozen CLIP (``maskclip``, ``sclip`` ...).
        templates: prompt templates of its text embeddings.
        logit_scale: temperature of its cosine scores before the softmax.
        seen_weight: CLIP's share for queries of the training vocabulary.
        unseen_weight: CLIP's share for every other query.
        naclip_std: NACLIP's neighbourhood width, in patches.
    """

    def __init__(self, *, model_name: str, pretrained: str | None = None,
                 mode: str = 'maskclip', templates: str | Sequence[str] = 'imagenet80',
                 logit_scale: float = 40.0, seen_weight: float = 0.4,
                 unseen_weight: float = 0.8, naclip_std: float = 5.0) -> None:
        super().__init__()
        for name, value in (('seen_weight', seen_weight), ('unseen_weight', unseen_weight)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} is the frozen CLIP\'s share of the ensemble, in [0, 1]; '
                                 f'got {value}')
        self.pretrained = pretrained
        self._scorer_args = dict(model_name=model_name, mode=mode, templates=templates,
                                 logit_scale=logit_scale, naclip_std=naclip_std)
        self._frozen: list[ZeroShotSegmenter] = []   # the frozen CLIP, outside the module tree
        self.seen_weight = float(seen_weight)
        self.unseen_weight = float(unseen_weight)

    @property
    def weights_loaded(self) -> bool:
        """Whether the frozen CLIP is built with its weights."""
        return bool(self._frozen)

    @property
    def scorer(self) -> ZeroShotSegmenter:
        """The frozen CLIP (a training-free segmenter), built with its weights on first use."""
        if not self._frozen:
            scorer = ZeroShotSegmenter(pretrained=self.pretrained, **self._scorer_args)
            if scorer.random_weights:
                raise RuntimeError(
                    f'the frozen CLIP of the ensemble ({self._scorer_args["model_name"]}) has no '
                    'weights: set model.clip.pretrained (an open_clip tag or a weights file), or '
                    'drop model.clip_ensemble')
            self._frozen.append(scorer)
        return self._frozen[0]

    def load_from(self, clip_model: nn.Module) -> None:
        """Use a copy of ``clip_model``'s weights (an open_clip model of the same architecture)
        instead of loading ``pretrained``."""
        scorer = ZeroShotSegmenter(pretrained=None, **self._scorer_args)
        scorer.clip.load_state_dict(clip_model.state_dict())
        scorer.reset_text_cache()
        scorer.random_weights = False
        self._frozen[:] = [scorer]

    @torch.no_grad()
    def forward(self, images: Tensor, head_logits: Tensor, queries: Sequence[str],
                seen: Collection[str]) -> Tensor:
        """Ensemble the head's logits for ``queries`` with CLIP's scores of the same images.

        CLIP's score map (its own stride) is read at the cell centres of the head's grid.

        Shapes:
            images: ``(B, 3, H, W)``; head_logits: ``(B, Q, h, w)`` over the same images;
            returns ``(B, Q, h, w)`` log-probabilities (see :func:`geometric_ensemble`).
        """
        if len(queries) != head_logits.shape[1]:
            raise ValueError(f'{len(queries)} queries for {head_logits.shape[1]} head logits')
        scorer = self.scorer
        weight = next(scorer.parameters())
        if weight.device != images.device:
            scorer.to(images.device)
        text = scorer.vocabulary(list(queries)).embeddings.to(images.device)
        scores = score_window(partial(dense_score_map, scorer.encoder, text=text),
                              images.to(weight.dtype), scorer.encoder.patch_size)
        clip_logits = scores.sample(tuple(head_logits.shape[-2:])) * scorer.protocol.logit_scale
        weight = torch.tensor([self.seen_weight if q in seen else self.unseen_weight
                               for q in queries])
        return geometric_ensemble(head_logits, clip_logits, weight)
