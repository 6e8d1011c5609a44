"""DenseCRF post-processing as ReCo applies it, on Krähenbühl's permutohedral implementation.

``pydensecrf`` is the module of the ``pydensecrf2`` package on PyPI (a maintained build of the
same code ReCo imports; ``pip install pydensecrf2`` or ``pip install -e '.[reco]'``). It is
imported on the first call, so the rest of ReCo works without it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: ``-log`` of a probability is taken after clipping it to this (``unary_from_softmax``'s default).
UNARY_CLIP = 1e-5


@dataclass(frozen=True)
class DenseCRFSettings:
    """Mean-field iterations and kernel parameters (ReCo's ``utils/crf.py``, from STEGO).

    Attributes:
        iterations: mean-field updates.
        gaussian: ``(sxy, compat)`` of the smoothness kernel (std in pixels, Potts weight).
        bilateral: ``(sxy, srgb, compat)`` of the appearance kernel (stds in pixels and in
            0-255 colour levels, Potts weight).
    """

    iterations: int = 10
    gaussian: tuple[float, float] = (1.0, 3.0)
    bilateral: tuple[float, float, float] = (67.0, 3.0, 4.0)


#: ReCo's settings.
RECO_CRF = DenseCRFSettings()


def _densecrf():
    try:
        import pydensecrf.densecrf as densecrf
    except ImportError as err:
        raise ImportError("ReCo's DenseCRF needs pydensecrf: pip install pydensecrf2 (or "
                          "pip install -e '.[reco]'); or segment with crf=None") from err
    return densecrf


def unnormalise(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Normalised images back to uint8 pixels, truncated as ``to_pil_image`` truncates.

    Shapes:
        images: ``(B, 3, H, W)`` normalised by ``mean``/``std`` (0-255 scale); returns
        ``(B, H, W, 3)`` uint8 on the CPU.
    """
    mean_t = images.new_tensor(mean).view(1, 3, 1, 1)
    std_t = images.new_tensor(std).view(1, 3, 1, 1)
    pixels = (images.float() * std_t + mean_t).clamp(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()


def dense_crf(image: Tensor | np.ndarray, probs: Tensor,
              settings: DenseCRFSettings = RECO_CRF) -> Tensor:
    """Mean-field marginals of a fully connected CRF with Gaussian and bilateral kernels.

    Unary ``-log(clip(probs, 1e-5))``; the image is given to the bilateral kernel in BGR order,
    as ReCo's ``dense_crf`` gives it (the permutohedral lattice is not exactly symmetric in the
    channels, so the order changes the result slightly).

    Args:
        image: RGB pixels.
        probs: class probabilities (ReCo passes ``softmax`` of its score map).

    Shapes:
        image: ``(H, W, 3)`` uint8; probs: ``(K, H, W)``; returns ``(K, H, W)`` float32 on
        ``probs``' device.
    """
    densecrf = _densecrf()
    pixels = np.asarray(image.cpu() if isinstance(image, Tensor) else image)
    k, h, w = probs.shape
    if pixels.shape != (h, w, 3) or pixels.dtype != np.uint8:
        raise ValueError(f'image must be ({h}, {w}, 3) uint8 to match probs {tuple(probs.shape)},'
                         f' got {pixels.shape} {pixels.dtype}')
    p = probs.detach().float().cpu().numpy()
    unary = np.ascontiguousarray(-np.log(np.clip(p, UNARY_CLIP, 1.0)).reshape(k, -1))
    crf = densecrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(unary)
    sxy, compat = settings.gaussian
    crf.addPairwiseGaussian(sxy=sxy, compat=compat)
    sxy, srgb, compat = settings.bilateral
    crf.addPairwiseBilateral(sxy=sxy, srgb=srgb, rgbim=np.ascontiguousarray(pixels[:, :, ::-1]),
                             compat=compat)
    q = np.array(crf.inference(settings.iterations), dtype=np.float32).reshape(k, h, w)
    return torch.from_numpy(q).to(probs.device)
