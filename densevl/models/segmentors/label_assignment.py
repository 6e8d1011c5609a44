"""From score maps to labels: the postprocessing the training-free references share."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pool_query_probs(probs: Tensor, query_to_class: Tensor) -> Tensor:
    """Each class's probability is the largest of its synonyms'. Shapes: ``(B, Q, ...) -> (B, K, ...)``."""
    num_classes = int(query_to_class.max()) + 1
    if num_classes == probs.shape[1]:
        return probs
    index = query_to_class.to(probs.device).view(1, -1, *([1] * (probs.ndim - 2))).expand_as(probs)
    pooled = probs.new_zeros((probs.shape[0], num_classes, *probs.shape[2:]))
    return pooled.scatter_reduce(1, index, probs, reduce='amax', include_self=False)


def assign_labels(scores: Tensor, query_to_class: Tensor, *, logit_scale: float,
                  out_size: tuple[int, int] | None = None, prob_threshold: float = 0.0,
                  background_index: int = 0, return_probs: bool = True
                  ) -> tuple[Tensor, Tensor | None]:
    """Upsample cosine score maps, softmax over queries, pool synonyms, argmax, threshold.

    Every query (synonym) gets its own softmax probability; a class takes the largest of its
    synonyms'. Pixels whose winning probability is below ``prob_threshold`` go to
    ``background_index`` (a named background row, or -1 for "none of these").

    The softmax is monotonic and shared by all queries of a pixel, so the winning class is the
    class of the highest-scoring query: without ``return_probs`` and threshold no probability
    is materialised, and the result is the same.

    Shapes:
        scores: ``(B, Q, h, w)`` cosine similarities; query_to_class: ``(Q,)`` in ``[0, K)``;
        returns labels ``(B, H, W)`` int64 and, if asked, class probabilities ``(B, K, H, W)``.
    """
    if out_size is not None and tuple(scores.shape[-2:]) != tuple(out_size):
        scores = F.interpolate(scores, size=out_size, mode='bilinear', align_corners=False)
    query_to_class = query_to_class.to(scores.device)
    if not return_probs:
        best_score, best_query = scores.max(dim=1)
        labels = query_to_class[best_query]
        if prob_threshold > 0:
            scaled = scores * logit_scale
            max_prob = torch.exp(best_score * logit_scale - torch.logsumexp(scaled, dim=1))
            labels[max_prob < prob_threshold] = background_index
        return labels, None
    probs = pool_query_probs(torch.softmax(scores * logit_scale, dim=1), query_to_class)
    max_prob, labels = probs.max(dim=1)
    if prob_threshold > 0:
        labels[max_prob < prob_threshold] = background_index
    return labels, probs
