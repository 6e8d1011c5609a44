"""What every open-vocabulary segmentor of the library offers its callers."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor

from ..inference_protocol import InferenceProtocol
from .dense_predictor import Segmentation


@runtime_checkable
class OpenVocabSegmenter(Protocol):
    """A segmentor that takes its vocabulary at call time.

    The inferencer, ``tools/test.py`` and the demo use any segmentor through this alone: its
    :class:`InferenceProtocol` says how to prepare images (short side, mean/std) and its
    background policy; :meth:`segment` labels a batch for the texts given now.
    """

    protocol: InferenceProtocol
    random_weights: bool

    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None,
                return_probs: bool = True) -> list[Segmentation]:
        """Segment normalised images for ``texts``.

        Args:
            images: ``(B, 3, H, W)`` normalised by ``protocol.mean`` / ``protocol.std``.
            texts: one entry per class, synonyms joined by ``;``.
            out_size: size of the results (default the input's).
            prob_threshold, background_index: the background policy; None: the protocol's.
            return_probs: also return the class probabilities ``(K, H, W)``; without them no
                ``(B, K, H, W)`` tensor is built.

        Returns:
            One :class:`Segmentation` per image, labels indexing ``texts``.
        """
        ...
