"""The patch-text score map every method consumes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def score_map(dense: Tensor, text: Tensor, logit_scale: float = 1.0) -> Tensor:
    """Cosine between dense image embeddings and text embeddings, times ``logit_scale``.

    The text is shared by the batch ``(K, C)``, or each image has its own ``(B, K, C)`` (text
    refined per image, as DenseCLIP's context decoder does).

    Shapes:
        dense: ``(B, C, h, w)``; text: ``(K, C)`` or ``(B, K, C)``; returns ``(B, K, h, w)``.
    """
    if dense.shape[1] != text.shape[-1]:
        raise ValueError(f'dense embeddings have {dense.shape[1]} channels but text embeddings '
                         f'{text.shape[-1]}; they must come from the same CLIP model')
    dense = F.normalize(dense, dim=1)
    text = F.normalize(text.to(dense.dtype), dim=-1)
    pattern = 'bchw,kc->bkhw' if text.ndim == 2 else 'bchw,bkc->bkhw'
    return torch.einsum(pattern, dense, text) * logit_scale


def dense_score_map(encoder: nn.Module, images: Tensor, text: Tensor) -> Tensor:
    """A dense CLIP encoder's score map of ``images`` against ``text`` (cosine, unscaled).

    Shapes:
        images: ``(B, 3, H, W)``; text: ``(K, C)``; returns ``(B, K, H / p, W / p)``.
    """
    return score_map(encoder.forward_dense(images, return_global=False).dense, text)
