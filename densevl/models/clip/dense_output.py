"""The one output type of every dense CLIP image encoder."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class DenseOutput:
    """What :meth:`forward_dense` returns.

    Shapes:
        dense: ``(B, C, h, w)`` patch embeddings in the joint image-text space (not normalised).
        global_embedding: ``(B, C)`` the whole-image embedding CLIP was trained with (None when
            not asked for).
        features: multi-level feature maps ``(B, C_i, h_i, w_i)`` for necks (empty unless asked).
    """

    dense: Tensor
    global_embedding: Tensor | None
    features: list[Tensor] = field(default_factory=list)
