"""The patch-text score map every method consumes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def score_map(dense: Tensor, text: Tensor, logit_scale: float = 1.0) -> Tensor:
    """Cosine between dense image embeddings and text embeddings, times ``logit_scale``.

    Shapes:
        dense: ``(B, C, h, w)``; text: ``(K, C)``; returns ``(B, K, h, w)``.
    """
    if dense.shape[1] != text.shape[1]:
        raise ValueError(f'dense embeddings have {dense.shape[1]} channels but text embeddings '
                         f'{text.shape[1]}; they must come from the same CLIP model')
    dense = F.normalize(dense, dim=1)
    text = F.normalize(text.to(dense.dtype), dim=1)
    return torch.einsum('bchw,kc->bkhw', dense, text) * logit_scale
