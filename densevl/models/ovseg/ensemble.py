"""OVSeg's inference: per-proposal class probabilities, the CLIP ensemble, the semantic map.

As the reference's ``semantic_inference``, batched: the mask head's class probabilities are the
softmax over the queries and no-object, no-object then dropped; the masked-crop CLIP's are the
softmax over the queries alone; the two are combined per proposal by a weighted geometric mean,
``p = p_head ** (1 - w) * p_clip ** w``, where a proposal with no crop (an empty mask) takes
``p_clip = 1``; and the semantic map is ``sum_q p_q * sigmoid(mask_q)``. With a vocabulary of
synonyms, each class takes its best synonym's probability after the softmax (the library's one
synonym pooling, :meth:`~densevl.models.text.Vocabulary.pool_synonyms`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..text import Vocabulary

#: The ensemble weights ``w`` of OVSeg's results (its configs and README).
OVSEG_ENSEMBLE_WEIGHTS = {'ade20k': 0.7, 'pascal_context': 0.6, 'pascal_voc20': 0.45}


def _pool(probs: Tensor, vocabulary: Vocabulary | None) -> Tensor:
    return probs if vocabulary is None else vocabulary.pool_synonyms(probs, dim=-1)


def head_class_probs(class_logits: Tensor, vocabulary: Vocabulary | None = None) -> Tensor:
    """The mask head's class probabilities: softmax with no-object, no-object dropped.

    Shapes:
        class_logits: ``(..., Q + 1)``, no-object last; returns ``(..., K)``.
    """
    return _pool(class_logits.softmax(dim=-1)[..., :-1], vocabulary)


def crop_class_probs(crop_logits: Tensor, vocabulary: Vocabulary | None = None) -> Tensor:
    """The masked-crop CLIP's class probabilities: softmax over the queries alone.

    Shapes:
        crop_logits: ``(N, Q)`` (a no-object column must be dropped before, as the reference
        drops it before its softmax); returns ``(N, K)``.
    """
    return _pool(crop_logits.softmax(dim=-1), vocabulary)


def _check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f'the CLIP ensemble weight is in [0, 1], got {weight} (OVSeg: 0.7 on '
                         'ADE20K, 0.6 on Pascal Context, 0.45 on Pascal VOC)')
    return float(weight)


def _scatter(crop_probs: Tensor, valid: Tensor, fill: float, like: Tensor) -> Tensor:
    if crop_probs.shape[0] != int(valid.sum()):
        raise ValueError(f'{crop_probs.shape[0]} crop predictions for {int(valid.sum())} valid '
                         'proposals; give one per valid proposal, image-major in query order '
                         '(as masked_crops orders them)')
    out = like.new_full(like.shape, fill)
    out[valid] = crop_probs.to(like.dtype)
    return out


def ensemble_class_probs(head_probs: Tensor, crop_probs: Tensor, valid: Tensor,
                         weight: float) -> Tensor:
    """The weighted geometric mean ``head ** (1 - w) * clip ** w`` of every proposal.

    Proposals without a crop take ``clip = 1`` (the head's probability to the power ``1 - w``;
    with ``w = 1`` that is 1 for every class, as in the reference).

    Args:
        head_probs: the head's probabilities of every proposal.
        crop_probs: the CLIP's probabilities of the valid proposals, image-major.
        valid: which proposals have a crop.
        weight: ``w`` in ``[0, 1]``.

    Shapes:
        head_probs: ``(B, N, K)``; crop_probs: ``(M, K)``, ``M = valid.sum()``;
        valid: ``(B, N)``; returns ``(B, N, K)``.
    """
    weight = _check_weight(weight)
    clip = _scatter(crop_probs, valid, 1.0, head_probs)
    return torch.pow(head_probs, 1 - weight) * torch.pow(clip, weight)


def semantic_map(class_probs: Tensor, mask_logits: Tensor) -> Tensor:
    """``sum_q class_probs[q] * sigmoid(mask_logits[q])`` per image.

    Shapes:
        class_probs: ``(B, N, K)``; mask_logits: ``(B, N, H, W)``; returns ``(B, K, H, W)``.
    """
    if class_probs.shape[:2] != mask_logits.shape[:2]:
        raise ValueError(f'class probabilities {tuple(class_probs.shape)} and mask logits '
                         f'{tuple(mask_logits.shape)} must have the same (B, N) proposals')
    return torch.einsum('bqc,bqhw->bchw', class_probs, mask_logits.sigmoid())


def semantic_inference(class_logits: Tensor, mask_logits: Tensor, crop_logits: Tensor | None,
                       valid: Tensor | None, *, clip_ensemble_weight: float,
                       vocabulary: Vocabulary | None = None) -> Tensor:
    """OVSeg's semantic map from the mask head and the masked-crop CLIP, as the reference.

    Three cases, as the reference's ``semantic_inference`` and its ``CLIP_ENSEMBLE`` switch:

    * ``crop_logits=None`` (no CLIP ensemble): the head alone.
    * ``0 < clip_ensemble_weight <= 1``: the geometric ensemble
      (:func:`ensemble_class_probs`) over every proposal.
    * ``clip_ensemble_weight == 0``: the CLIP alone, over the valid proposals only (the
      reference's branch for a weight that is not positive; not the head alone, which the
      formula would give).

    Args:
        class_logits: the head's logits, no-object last (:class:`CLIPSpaceClassHead`).
        mask_logits: the proposals' mask logits at the output resolution.
        crop_logits: the CLIP's logits of the valid proposals' crops over the queries (no
            no-object column), image-major; or None.
        valid: which proposals have a crop (:func:`find_proposals`); None with no crops.
        clip_ensemble_weight: ``w`` (OVSeg: 0.7 ADE20K, 0.6 Pascal Context, 0.45 VOC).
        vocabulary: pools synonyms when it has any; None: the queries are the classes.

    Shapes:
        class_logits: ``(B, N, Q + 1)``; mask_logits: ``(B, N, H, W)``; crop_logits:
        ``(M, Q)``; valid: ``(B, N)``; returns ``(B, K, H, W)``.
    """
    head = head_class_probs(class_logits, vocabulary)
    if crop_logits is None:
        return semantic_map(head, mask_logits)
    if valid is None:
        raise ValueError('crop logits need the valid flags of their proposals '
                         '(MaskedCrops.valid or MaskProposals.valid)')
    if crop_logits.shape[-1] != class_logits.shape[-1] - 1:
        raise ValueError(f'crop logits have {crop_logits.shape[-1]} columns but the head has '
                         f'{class_logits.shape[-1] - 1} queries (plus no-object); drop a '
                         'no-object column from the crop logits before')
    crops = crop_class_probs(crop_logits, vocabulary)
    weight = _check_weight(clip_ensemble_weight)
    if weight > 0:
        return semantic_map(ensemble_class_probs(head, crops, valid, weight), mask_logits)
    return semantic_map(_scatter(crops, valid, 0.0, head), mask_logits)
