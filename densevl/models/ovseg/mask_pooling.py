"""Mask pooling: proposal embeddings from one dense CLIP forward per image (plain PyTorch).

The fast alternative to masked crops (one CLIP forward per proposal): the image goes once through
a dense CLIP encoder, and each valid proposal's embedding is the average of the dense embeddings
under its binary mask, as FC-CLIP (Yu et al., NeurIPS 2023) classifies its mask proposals. The
binary mask (the same ``sigmoid(logit) > threshold`` as the crops use,
:func:`~densevl.models.ovseg.masked_crops.find_proposals`) is brought to the dense grid by
adaptive average pooling, so each grid cell weighs by the fraction of its pixels inside the mask:
every valid mask, however small, keeps a positive weight somewhere, and the valid proposals are
exactly those that masked crops would classify.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .masked_crops import MaskProposals


def mask_pool(dense: Tensor, proposals: MaskProposals) -> Tensor:
    """The coverage-weighted mean of the dense embeddings under each valid proposal's mask.

    Args:
        dense: dense embeddings of the images the proposals were found in (any grid: the masks
            are pooled onto it).
        proposals: from :func:`~densevl.models.ovseg.masked_crops.find_proposals`.

    Returns:
        One embedding per valid proposal, image-major and in query order (the order of
        :func:`~densevl.models.ovseg.masked_crops.encode_masked_crops`), not normalised.

    Shapes:
        dense: ``(B, C, h, w)``; proposals.binary ``(B, Q, H, W)``; returns ``(N, C)``,
        ``N = proposals.valid.sum()``.
    """
    if dense.ndim != 4 or dense.shape[0] != proposals.binary.shape[0]:
        raise ValueError(f'dense embeddings {tuple(dense.shape)} must be (B, C, h, w) for the '
                         f'{proposals.binary.shape[0]} images of the proposals')
    if proposals.num_crops == 0:
        return dense.new_zeros(0, dense.shape[1])
    coverage = F.adaptive_avg_pool2d(proposals.binary.to(dense.dtype), dense.shape[-2:])
    pooled = torch.einsum('bqhw,bchw->bqc', coverage, dense)
    area = coverage.sum(dim=(-2, -1))[..., None]
    valid = proposals.image_index, proposals.query_index
    return pooled[valid] / area[valid]
