"""Fused bilinear upsampling + argmax + softmax max-probability over a large vocabulary.

``F.interpolate(logits, size).argmax(1)`` materialises ``B x K x H x W`` values: 7 GB per image in
float32 for 847 names at 2048 x 1024. :func:`upsample_argmax` interpolates the ``K`` values of each
output pixel on the fly, keeping the first maximum and the softmax normaliser, so its memory is
``O(B x H x W)`` plus the low-resolution input.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._extension import require_extension, select_backend

# Upper bound of the reference's working buffer: one chunk of channels at full resolution.
REFERENCE_CHUNK_BYTES = 64 << 20


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Reduced precision is computed (and returned) in float32, float64 in float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_args(logits: Tensor, size: Sequence[int], scale: float) -> tuple[int, int]:
    if logits.dim() != 4:
        raise ValueError(f'logits must be (B, K, h, w), got shape {tuple(logits.shape)}')
    if not logits.is_floating_point():
        raise TypeError(f'logits must be floating point, got {logits.dtype}')
    if min(logits.shape[1:]) < 1:
        raise ValueError(f'logits need K, h, w >= 1, got shape {tuple(logits.shape)}')
    if len(size) != 2 or min(int(s) for s in size) < 1:
        raise ValueError(f'size must be two positive ints (H, W), got {tuple(size)}')
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f'scale must be a finite number >= 0, got {scale}')
    return int(size[0]), int(size[1])


def _merge_totals(first: tuple[Tensor, Tensor, Tensor], second: tuple[Tensor, Tensor, Tensor],
                  scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """Combine ``(labels, best, total)`` of two channel ranges, the first range coming first.

    ``total`` is ``sum exp(scale * (v - best))`` over the range; ties keep the first range's label
    and a NaN wins as in ``torch.max``.
    """
    labels_a, best_a, total_a = first
    labels_b, best_b, total_b = second
    take = (best_b > best_a) | (best_b.isnan() & ~best_a.isnan())
    high = torch.where(take, best_b, best_a)
    decay = torch.exp((torch.where(take, best_a, best_b) - high) * scale)
    total = torch.where(take, total_a * decay + total_b, total_a + total_b * decay)
    return torch.where(take, labels_b, labels_a), high, total


def merge_upsample_argmax(first: Sequence[Tensor], second: Sequence[Tensor], *,
                          scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Merge two results of ``upsample_argmax(..., return_best=True)`` over disjoint channels.

    For channel chunks processed one at a time (each chunk's labels already offset to global
    channel indices, ``first`` holding the earlier channels), the merge equals the result over
    all channels: labels of the first maximum, the softmax max-probability over all channels.

    Shapes:
        ``first``, ``second`` and the result: ``(labels, max_prob, best)``, each ``(B, H, W)``.
    """
    labels, best, total = _merge_totals((first[0], first[2], first[1].reciprocal()),
                                        (second[0], second[2], second[1].reciprocal()), scale)
    return labels, total.reciprocal(), best


@torch.no_grad()
def upsample_argmax_reference(logits: Tensor, size: Sequence[int], align_corners: bool = False,
                              *, scale: float = 1.0, return_best: bool = False
                              ) -> tuple[Tensor, ...]:
    """Pure-PyTorch :func:`upsample_argmax`: ``F.interpolate`` on chunks of channels.

    Each chunk is upsampled with ``F.interpolate`` itself, its maximum and softmax normaliser
    taken, and merged into a running result; a chunk holds at most ``REFERENCE_CHUNK_BYTES``, so
    memory is bounded whatever ``K`` is. Arguments and results as :func:`upsample_argmax`.
    """
    height, width = _check_args(logits, size, scale)
    dtype = _compute_dtype(logits.dtype)
    batch, channels = logits.shape[:2]
    per_channel = batch * height * width * torch.finfo(dtype).bits // 8
    step = max(1, REFERENCE_CHUNK_BYTES // per_channel)
    state = None
    for start in range(0, channels, step):
        chunk = logits[:, start:start + step].to(dtype).contiguous()
        up = F.interpolate(chunk, size=(height, width), mode='bilinear',
                           align_corners=align_corners)
        best, labels = up.max(dim=1)
        total = up.sub_(best[:, None]).mul_(scale).exp_().sum(dim=1)
        del up
        result = (labels + start, best, total)
        state = result if state is None else _merge_totals(state, result, scale)
    labels, best, total = state
    max_prob = total.reciprocal_()
    return (labels, max_prob, best) if return_best else (labels, max_prob)


def upsample_argmax(logits: Tensor, size: Sequence[int], align_corners: bool = False, *,
                    scale: float = 1.0, return_best: bool = False, backend: str = 'auto'
                    ) -> tuple[Tensor, ...]:
    """Labels and softmax max-probability of bilinearly upsampled logits, never upsampling them.

    Equals ``up = F.interpolate(logits, size, mode='bilinear', align_corners=align_corners)``
    followed by ``labels = up.argmax(1)`` and
    ``max_prob = softmax(scale * up, 1).amax(1) = exp(scale * best - logsumexp(scale * up, 1))``,
    with the sampling positions and weights of ``F.interpolate`` (values agree to float
    rounding). Ties go to the first channel, NaN wins as in ``torch.max``. Half and bfloat16
    inputs are computed in float32, as if upcast first. No gradient.

    Args:
        logits: low-resolution scores of ``K`` channels.
        size: output ``(H, W)``.
        align_corners: as in ``F.interpolate``.
        scale: temperature (>= 0) of the softmax, e.g. CLIP's logit scale; the labels do not
            depend on it.
        return_best: also return ``best``, the upsampled value of the winning channel (what
            :func:`merge_upsample_argmax` needs to combine chunks of channels).
        backend: ``'auto'`` (the CUDA kernel for CUDA tensors, the C++ path for CPU tensors, each
            when built, else the reference), or one of ``'cuda'``, ``'cpp'``, ``'reference'``.

    Returns:
        ``(labels, max_prob)`` or ``(labels, max_prob, best)``.

    Shapes:
        logits: ``(B, K, h, w)``; labels: ``(B, H, W)`` int64 in ``[0, K)``; max_prob and best:
        ``(B, H, W)`` float32 (float64 for float64 logits).
    """
    height, width = _check_args(logits, size, scale)
    kind = select_backend(backend, logits.is_cuda)
    if kind == 'reference':
        return upsample_argmax_reference(logits, (height, width), align_corners, scale=scale,
                                         return_best=return_best)
    labels, max_prob, best = require_extension(kind).upsample_argmax(
        logits.detach(), height, width, bool(align_corners), float(scale))
    return (labels, max_prob, best) if return_best else (labels, max_prob)
