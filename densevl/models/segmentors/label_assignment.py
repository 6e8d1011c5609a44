"""From score maps to labels: the postprocessing the training-free references share."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops import merge_upsample_argmax, upsample_argmax
from .slide_inference import SlideScores

# Bound of one chunk of queries averaged at full resolution when labelling sliding windows.
SLIDE_CHUNK_BYTES = 64 << 20


def pool_query_probs(probs: Tensor, query_to_class: Tensor) -> Tensor:
    """Each class's probability is the largest of its synonyms'.

    Shapes:
        probs: ``(B, Q, ...)``; returns ``(B, K, ...)``.
    """
    num_classes = int(query_to_class.max()) + 1
    if num_classes == probs.shape[1]:
        return probs
    index = query_to_class.to(probs.device).view(1, -1, *([1] * (probs.ndim - 2))).expand_as(probs)
    pooled = probs.new_zeros((probs.shape[0], num_classes, *probs.shape[2:]))
    return pooled.scatter_reduce(1, index, probs, reduce='amax', include_self=False)


def best_queries(scores: Tensor | SlideScores, *, logit_scale: float,
                 out_size: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
    """Winning query and its softmax probability per pixel, without full-resolution scores.

    Low-resolution maps go through the fused :func:`densevl.ops.upsample_argmax`; sliding-window
    scores are averaged a chunk of queries at a time (at most ``SLIDE_CHUNK_BYTES``) and the
    chunks' results merged, so memory is ``O(B x H x W)`` whatever the vocabulary.

    Shapes:
        scores: ``(B, Q, h, w)`` or a :class:`SlideScores`; returns the query ``(B, H, W)`` int64
        and its probability ``(B, H, W)``, ``(H, W)`` being ``out_size`` (default: the scores').
    """
    if isinstance(scores, Tensor):
        return upsample_argmax(scores, out_size or tuple(scores.shape[-2:]), scale=logit_scale)
    out_size = out_size or scores.size
    per_query = scores.batch_size * scores.size[0] * scores.size[1] * 4
    step = max(1, SLIDE_CHUNK_BYTES // per_query)
    state = None
    for start in range(0, scores.num_queries, step):
        labels, max_prob, best = upsample_argmax(scores.average(start, start + step), out_size,
                                                 scale=logit_scale, return_best=True)
        chunk = (labels + start, max_prob, best)
        state = chunk if state is None else merge_upsample_argmax(state, chunk, scale=logit_scale)
    return state[0], state[1]


def assign_labels(scores: Tensor | SlideScores, query_to_class: Tensor, *, logit_scale: float,
                  out_size: tuple[int, int] | None = None, prob_threshold: float = 0.0,
                  background_index: int = 0, return_probs: bool = True
                  ) -> tuple[Tensor, Tensor | None]:
    """Upsample cosine score maps, softmax over queries, pool synonyms, argmax, threshold.

    Every query (synonym) gets its own softmax probability; a class takes the largest of its
    synonyms'. Pixels whose winning probability is below ``prob_threshold`` go to
    ``background_index`` (a named background row, or -1 for "none of these").

    The softmax is monotonic and shared by all queries of a pixel, so the winning class is the
    class of the highest-scoring query. Without ``return_probs`` the labels come from
    :func:`best_queries`, which never materialises ``(B, Q, H, W)``, with the same result.

    Shapes:
        scores: ``(B, Q, h, w)`` cosine similarities, or a :class:`SlideScores`;
        query_to_class: ``(Q,)`` in ``[0, K)``; returns labels ``(B, H, W)`` int64 and, if
        asked, class probabilities ``(B, K, H, W)``.
    """
    if not return_probs:
        best_query, max_prob = best_queries(scores, logit_scale=logit_scale, out_size=out_size)
        labels = query_to_class.to(best_query.device)[best_query]
        if prob_threshold > 0:
            labels[max_prob < prob_threshold] = background_index
        return labels, None
    if isinstance(scores, SlideScores):
        scores = scores.average()
    if out_size is not None and tuple(scores.shape[-2:]) != tuple(out_size):
        scores = F.interpolate(scores, size=out_size, mode='bilinear', align_corners=False)
    probs = pool_query_probs(torch.softmax(scores * logit_scale, dim=1),
                             query_to_class.to(scores.device))
    max_prob, labels = probs.max(dim=1)
    if prob_threshold > 0:
        labels[max_prob < prob_threshold] = background_index
    return labels, probs
