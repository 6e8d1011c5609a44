"""From OVSeg's semantic map to labels: the background policy, the single-name rule, no proposal.

:func:`~densevl.models.ovseg.ensemble.semantic_inference` gives per-class scores
``sum_q p_q(c) * sigmoid(mask_q)``, which do not sum to one over the classes. Here they are
normalised per pixel into class probabilities (what ``return_probs`` returns and
``prob_threshold`` compares with); a pixel with no score at all (outside every proposal, e.g.
outside all of SAM's hard masks, or with CLIP alone where no proposal is valid) gets
``background_index``, and so does every pixel of an image without any valid proposal (with a
warning).

The single-name rule (:func:`add_others`): OVSeg classifies contrastively, by a softmax over the
names, so a single name would take every proposal. As the reference's demo does, ``'others'`` is
appended to a one-class vocabulary; pixels won by ``'others'`` get ``background_index`` and the
results have the one class asked for.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..segmentors.dense_predictor import Segmentation

#: The name appended to a one-class vocabulary (ov-seg's demo: ``class_names.append('others')``).
OTHERS = 'others'


def add_others(texts: Sequence[str]) -> tuple[list[str], bool]:
    """The vocabulary to classify with: ``texts``, plus ``'others'`` when it has one class.

    Returns:
        The names and whether ``'others'`` was appended (then the last class is dropped from
        the results, see :func:`label_semantic_map`).

    Raises:
        ValueError: a single class that is itself ``'others'`` (nothing to contrast it with).
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f'texts must be a list of class names, got the single string {texts!r}; '
                        f'wrap it in a list ([{texts!r}])')
    names = list(texts)
    if len(names) != 1:
        return names, False
    if OTHERS in (s.strip().casefold() for s in str(names[0]).split(';')):
        raise ValueError(f"a single class {names[0]!r} is OVSeg's own catch-all 'others', which "
                         'it appends to one-name vocabularies; name what to segment instead, or '
                         'give at least two classes')
    return names + [OTHERS], True


def label_semantic_map(semseg: Tensor, valid: Tensor, *, out_size: tuple[int, int] | None = None,
                       prob_threshold: float = 0.0, background_index: int = -1,
                       drop_last: bool = False, return_probs: bool = True,
                       mask_threshold: float | None = None) -> list[Segmentation]:
    """Labels (and class probabilities) of a batch's semantic maps.

    The map is resized to ``out_size`` (bilinear, as the reference's postprocessing), normalised
    over the classes per pixel and its argmax taken; pixels without any score, pixels whose best
    probability is below ``prob_threshold``, pixels won by the appended ``'others'``
    (``drop_last``) and every pixel of an image without a valid proposal (a warning says which)
    get ``background_index``.

    Args:
        semseg: :func:`~densevl.models.ovseg.ensemble.semantic_inference`'s scores.
        valid: which proposals had a mask above the threshold.
        out_size: size of the results (default the map's).
        prob_threshold, background_index: the background policy.
        drop_last: the last class is the appended ``'others'`` (:func:`add_others`).
        return_probs: also return the class probabilities.
        mask_threshold: named by the warning.

    Shapes:
        semseg: ``(B, K, H, W)``; valid: ``(B, N)``; each result's labels ``out_size``, its
        probabilities ``(K', *out_size)`` with ``K' = K - drop_last``.
    """
    if semseg.ndim != 4 or valid.shape[0] != semseg.shape[0]:
        raise ValueError(f'expected semantic maps (B, K, H, W) and valid flags (B, N) of the same '
                         f'batch, got {tuple(semseg.shape)} and {tuple(valid.shape)}')
    size = tuple(semseg.shape[-2:]) if out_size is None else (int(out_size[0]), int(out_size[1]))
    if size != tuple(semseg.shape[-2:]):
        semseg = F.interpolate(semseg, size=size, mode='bilinear', align_corners=False)
    mass = semseg.sum(dim=1)
    probs = semseg / mass.clamp_min(torch.finfo(semseg.dtype).tiny)[:, None]
    max_prob, labels = probs.max(dim=1)
    background = mass <= 0
    if drop_last:
        background |= labels == semseg.shape[1] - 1
        probs = probs[:, :-1]
    if prob_threshold > 0:
        background |= max_prob < prob_threshold
    empty = ~valid.any(dim=1)
    for index in empty.nonzero().flatten().tolist():
        where = '' if mask_threshold is None else f' (sigmoid > {mask_threshold})'
        warnings.warn(f'image {index} of the batch has no valid mask proposal: no mask has a '
                      f'pixel above the mask threshold{where}; every pixel gets the background '
                      f'index {background_index}. Lower the mask threshold, or check the '
                      'proposal network (or SAM) on this image', stacklevel=3)
        background[index] = True
        probs[index] = 0
    labels[background] = background_index
    return [Segmentation(labels=lab, class_probs=p if return_probs else None)
            for lab, p in zip(labels, probs)]
