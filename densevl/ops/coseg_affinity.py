"""Co-segmentation affinity (ReCo): each patch's best weighted match in every image.

For ``N`` images of ``P`` patches with features ``f`` and per-patch weights ``w``::

    affinity[i, p, j] = max over patches q of image j of  (f[i, p] . f[j, q]) * w[j, q]

The naive computation builds the ``(N*P) x (N*P)`` similarity matrix (6 GB in float32 for
``N = 50``, ``P = 784``). The matrix is symmetric, so the ops multiply only image pairs
``i <= j``, one bounded tile at a time: a tile's row maxima (weighted by ``w[j]``) are the
affinities of image ``i`` to images ``j``, its column maxima (weighted by ``w[i]``) those of images
``j`` to image ``i``. Half the multiply-adds of the naive version, and memory
``O(tile_bytes + N*P*N)``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ._extension import require_extension, select_backend

DEFAULT_TILE_BYTES = {'cpu': 64 << 20, 'cuda': 128 << 20}
# Row blocks of at least this many patches keep the matrix products efficient for small P; below
# three such blocks of patches in all, one product of everything beats skipping half of it.
ROW_TARGET = 768


def _prepare(feats: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
    if feats.dim() != 3:
        raise ValueError(f'feats must be (N, P, C), got shape {tuple(feats.shape)}')
    if not feats.is_floating_point():
        raise TypeError(f'feats must be floating point, got {feats.dtype}')
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    if weights is None:
        return feats, torch.ones(feats.shape[:2], dtype=dtype, device=feats.device)
    if tuple(weights.shape) != tuple(feats.shape[:2]):
        raise ValueError(f'weights must be (N, P) = {tuple(feats.shape[:2])}, got '
                         f'{tuple(weights.shape)}')
    if weights.device != feats.device:
        raise ValueError(f'weights are on {weights.device} but feats on {feats.device}')
    return feats, weights


def _tiling(num_images: int, num_patches: int, element_size: int,
            tile_bytes: int) -> tuple[int, int]:
    """Images per row block and per column block of a tile, as ``csrc/coseg_tiling.h``."""
    p = max(num_patches, 1)
    rows = num_images if num_images * p <= 3 * ROW_TARGET else min(num_images, -(-ROW_TARGET // p))
    rows = max(rows, 1)
    cols = max(1, min(num_images, tile_bytes // max(rows * p * p * element_size, 1)))
    return rows, cols


def _tile_bytes(tile_bytes: int | None, feats: Tensor) -> int:
    if tile_bytes is None:
        return DEFAULT_TILE_BYTES['cuda' if feats.is_cuda else 'cpu']
    if tile_bytes <= 0:
        raise ValueError(f'tile_bytes must be positive, got {tile_bytes}')
    return int(tile_bytes)


@torch.no_grad()
def coseg_max_affinity_reference(feats: Tensor, weights: Tensor | None = None, *,
                                 tile_bytes: int | None = None) -> Tensor:
    """Pure-PyTorch :func:`coseg_max_affinity`, tiled the same way (arguments and result alike)."""
    feats, weights = _prepare(feats, weights)
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    f = feats.to(dtype).contiguous()
    w = weights.to(dtype)
    n, p, c = f.shape
    out = f.new_empty((n, p, n))
    if out.numel() == 0:
        return out
    rows, cols = _tiling(n, p, f.element_size(), _tile_bytes(tile_bytes, f))
    for i0 in range(0, n, rows):
        r = min(rows, n - i0)
        block = f[i0:i0 + r].reshape(r * p, c)
        for j0 in range(i0, n, cols):
            g = min(cols, n - j0)
            tile = (block @ f[j0:j0 + g].reshape(g * p, c).T).view(r, p, g, p)
            for ii in range(r):
                i = i0 + ii
                # Rows, pairs i <= j; columns, pairs i < j (as csrc/coseg_tiling.h).
                if j0 + g > i:
                    lo = max(i - j0, 0)
                    out[i, :, j0 + lo:j0 + g] = (tile[ii, :, lo:] * w[j0 + lo:j0 + g]).amax(-1)
                if j0 + g > i + 1:
                    lo = max(i + 1 - j0, 0)
                    weighted = tile[ii, :, lo:] * w[i].view(p, 1, 1)
                    out[j0 + lo:j0 + g, :, i] = weighted.amax(dim=0)
    return out


def coseg_max_affinity(feats: Tensor, weights: Tensor | None = None, *,
                       tile_bytes: int | None = None, backend: str = 'auto') -> Tensor:
    """Maximum weighted similarity of every patch to the patches of every image.

    ``affinity[i, p, j] = max_q (feats[i, p] . feats[j, q]) * weights[j, q]``: the column patch's
    weight scales its similarity (a weight of 0 makes a patch score 0, not disappear). ``j = i``
    is included (with L2-normalised features, a patch matches itself with similarity 1). The
    features are used as given (ReCo passes L2-normalised ones). Half and bfloat16 inputs are
    computed in float32. NaN propagates as in ``torch.amax``. No gradient.

    Args:
        feats: patch features of ``N`` images.
        weights: per-patch weights; None for all ones.
        tile_bytes: bound of the similarity tile kept at once (default 64 MiB on the CPU,
            128 MiB on CUDA; at least one ``P x P`` image pair).
        backend: ``'auto'`` (CUDA for CUDA tensors, C++ for CPU tensors, each when built, else
            the reference), or one of ``'cuda'``, ``'cpp'``, ``'reference'``.

    Shapes:
        feats: ``(N, P, C)``; weights: ``(N, P)``; returns ``(N, P, N)`` float32 (float64 for
        float64 feats).
    """
    feats, weights = _prepare(feats, weights)
    tile = _tile_bytes(tile_bytes, feats)
    kind = select_backend(backend, feats.is_cuda)
    if kind == 'reference':
        return coseg_max_affinity_reference(feats, weights, tile_bytes=tile)
    return require_extension(kind).coseg_max_affinity(feats.detach(), weights.detach(), tile)
