"""ReCo's co-segmentation: from the features of k retrieved images to a concept's reference.

For the ``N = k`` archive images of a concept, with L2-normalised patch features ``f̂`` of the
co-segmentation encoder over all ``N·h·w`` patches:

* language guidance ``LG_p = σ(T · cos(g_p, t_c))``, ``g`` the MaskCLIP dense embedding of the
  same image, the map upsampled bilinearly to the encoder's grid;
* context elimination ``w_p = LG_p · Π_{c'} (1 − σ(cos(f̂_p, r̂_{c'})))`` over the references of
  the context categories built before;
* affinity ``A_pq = cos(f̂_p, f̂_q) · w_q``, per image ``m_n(p) = max_{q∈n} A_pq``,
  ``s(p) = mean_n m_n(p)``; one seed per image, ``argmax_{p∈n} s(p)``;
* reference ``r_c = normalize(mean of the unnormalised seed features)``.

``m`` comes from :func:`densevl.ops.coseg_max_affinity`, never from the ``(N·h·w)²`` matrix.

Slicing: the reference code (NoelShin/reco, ``ReCo._get_reference_image_feature``) takes image
``n``'s columns as ``[start, start + end)`` with ``end = start + h·w``, i.e. the maximum over the
images ``n .. min(2n, N − 1)`` instead of image ``n`` alone. ``slicing='paper'`` (default) is the
paper's per-image maximum; ``slicing='code'`` reproduces the code, with which its released
reference embeddings were made.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops import coseg_max_affinity
from ..clip.score_map import score_map

SLICINGS = ('paper', 'code')
#: Temperature of the language guidance (ReCo's ``_get_text_attention``).
GUIDANCE_TEMPERATURE = 10.0


def check_slicing(slicing: str) -> str:
    if slicing not in SLICINGS:
        raise ValueError(f"unknown slicing {slicing!r}: 'paper' (each image's own maximum) or "
                         "'code' (the reference code's [start, start + end) columns)")
    return slicing


def language_guidance(dense: Tensor, text: Tensor, size: tuple[int, int] | None = None, *,
                      temperature: float = GUIDANCE_TEMPERATURE) -> Tensor:
    """``σ(T · cos(g, t))``, upsampled bilinearly to ``size`` after the sigmoid.

    Shapes:
        dense: ``(B, C, h, w)``; text: ``(C,)`` -> ``(B, H, W)``, or ``(K, C)`` ->
        ``(B, K, H, W)`` (``(H, W) = size``, default ``(h, w)``).
    """
    if text.ndim not in (1, 2):
        raise ValueError(f'text must be (C,) or (K, C), got shape {tuple(text.shape)}')
    weights = torch.sigmoid(score_map(dense, text.reshape(-1, text.shape[-1]), temperature))
    if size is not None and tuple(weights.shape[-2:]) != tuple(size):
        weights = F.interpolate(weights, size=tuple(size), mode='bilinear', align_corners=False)
    return weights[:, 0] if text.ndim == 1 else weights


def context_weights(feats: Tensor, context_refs: Tensor) -> Tensor:
    """``Π_{c'} (1 − σ(cos(f̂_p, r̂_{c'})))``, the context categories taken in order.

    Shapes:
        feats: ``(N, D, h, w)``; context_refs: ``(M, D)`` (``M = 0``: all ones); returns
        ``(N, h, w)``.
    """
    weights = feats.new_ones((feats.shape[0], *feats.shape[-2:]))
    if context_refs.numel() == 0:
        return weights
    sims = torch.sigmoid(score_map(feats, context_refs))
    for m in range(sims.shape[1]):
        weights = weights * (1 - sims[:, m])
    return weights


def per_image_max(affinity: Tensor, slicing: str = 'paper') -> Tensor:
    """``m_n(p)`` from ``affinity[i, p, j] = max_{q∈j} A``: as is for ``'paper'``; for
    ``'code'`` the maximum over the images ``n .. min(2n, N − 1)``.

    Shapes:
        affinity: ``(N, P, N)``; returns ``(N, P, N)``.
    """
    if check_slicing(slicing) == 'paper':
        return affinity
    n = affinity.shape[-1]
    return torch.stack([affinity[..., j:min(2 * j + 1, n)].amax(dim=-1) for j in range(n)], -1)


@dataclass
class CosegResult:
    """One concept's co-segmentation.

    Shapes:
        reference: ``(D,)`` unit norm; seeds: ``(N,)`` flat patch index in each image's
        ``h·w`` grid; seed_features: ``(N, D)`` unnormalised; scores: ``(N, h, w)`` the seed
        score ``s``; weights: ``(N, h, w)`` the patch weights ``w`` (guidance x context).
    """

    reference: Tensor
    seeds: Tensor
    seed_features: Tensor
    scores: Tensor
    weights: Tensor


@torch.no_grad()
def reference_embedding(feats: Tensor, weights: Tensor | None = None, *,
                        slicing: str = 'paper', backend: str = 'auto') -> CosegResult:
    """Seeds and the reference embedding of ``N`` images' patch features.

    Args:
        feats: the co-segmentation encoder's patch features (unnormalised).
        weights: per-patch weights ``w`` in ``[0, 1]``; None for ones.
        slicing: ``'paper'`` or ``'code'`` (see the module's docstring).
        backend: of :func:`~densevl.ops.coseg_max_affinity`.

    Shapes:
        feats: ``(N, D, h, w)``; weights: ``(N, h, w)``.
    """
    check_slicing(slicing)
    if feats.ndim != 4:
        raise ValueError(f'feats must be (N, D, h, w), got shape {tuple(feats.shape)}')
    n, d, h, w = feats.shape
    if n == 0:
        raise ValueError('co-segmentation needs at least one image')
    if weights is None:
        weights = feats.new_ones((n, h, w))
    if tuple(weights.shape) != (n, h, w):
        raise ValueError(f'weights must be (N, h, w) = {(n, h, w)}, got {tuple(weights.shape)}')
    flat = feats.flatten(2).transpose(1, 2)                       # (N, P, D)
    unit = F.normalize(flat.float(), dim=-1)
    affinity = coseg_max_affinity(unit, weights.reshape(n, h * w).float(), backend=backend)
    scores = per_image_max(affinity, slicing).mean(dim=-1)        # (N, P)
    seeds = scores.argmax(dim=1)
    seed_features = flat[torch.arange(n, device=flat.device), seeds]
    reference = F.normalize(seed_features.mean(dim=0), dim=0)
    return CosegResult(reference=reference, seeds=seeds, seed_features=seed_features,
                       scores=scores.view(n, h, w), weights=weights)


@torch.no_grad()
def cosegment(feats: Tensor, dense: Tensor | None, text: Tensor | None,
              context_refs: Tensor | None = None, *, slicing: str = 'paper',
              temperature: float = GUIDANCE_TEMPERATURE, backend: str = 'auto') -> CosegResult:
    """A concept's reference from its archive images: guidance, context elimination, seeds.

    Args:
        feats: the co-segmentation encoder's patch features of the ``N`` archive images.
        dense: their MaskCLIP dense embeddings; None (with ``text``) for no language guidance.
        text: the concept's text embedding in the dense CLIP's space.
        context_refs: references of the context categories built before (None or ``(0, D)``:
            no context elimination).

    Shapes:
        feats: ``(N, D, h, w)``; dense: ``(N, C, h', w')``; text: ``(C,)``; context_refs:
        ``(M, D)``.
    """
    if (dense is None) != (text is None):
        raise ValueError('language guidance needs both the dense embeddings and the text')
    weights = feats.new_ones((feats.shape[0], *feats.shape[-2:]))
    if dense is not None:
        weights = weights * language_guidance(dense, text, tuple(feats.shape[-2:]),
                                              temperature=temperature).to(feats.dtype)
    if context_refs is not None:
        weights = weights * context_weights(feats, context_refs)
    return reference_embedding(feats, weights, slicing=slicing, backend=backend)
