"""From an image and a window scorer to a label map: the one dense prediction of the library.

Every segmentor predicts through :class:`DensePredictor`: it gives the predictor a function from
an image window to low-resolution per-query scores (a dense CLIP's score map, a head's logits)
and its :class:`~densevl.models.text.Vocabulary`; the predictor places the windows (one whole
image, or overlapping slides), upsamples, takes the softmax over the queries, pools synonyms into
their class, applies the background policy, undoes flips and returns labels, never building a
``(B, Q, H, W)`` tensor unless probabilities are asked for.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops import merge_upsample_argmax, upsample_argmax
from ..inference_protocol import SlideWindows
from ..text import Vocabulary
from .windows import SlideScores, score_slide

# Bound of one chunk of queries averaged at full resolution when labelling sliding windows.
SLIDE_CHUNK_BYTES = 64 << 20

ScoreFn = Callable[[Tensor], Tensor]
FLIP_DIMS = {'horizontal': -1, 'vertical': -2}


@dataclass
class Segmentation:
    """One image's result.

    Shapes:
        labels: ``(H, W)`` int64 indices into the vocabulary's classes (``background_index`` where
        the threshold rejected every class); class_probs: ``(K, H, W)``, or None when not asked.
    """

    labels: Tensor
    class_probs: Tensor | None


class DensePredictor:
    """Whole-image or sliding-window inference with the fused upsample-argmax.

    Args:
        slide: the windows; None for one forward of the whole image whose scores are upsampled
            once to the output size (the training-free references' whole-image inference).
        pad_to: each window is padded (centred) to a multiple of it (a ViT's patch size).
        logit_scale: temperature of the scores before the softmax over the queries.
    """

    def __init__(self, slide: SlideWindows | None, *, pad_to: int = 1,
                 logit_scale: float = 1.0) -> None:
        self.slide = slide
        self.pad_to = int(pad_to)
        self.logit_scale = float(logit_scale)

    def scores(self, images: Tensor, score_fn: ScoreFn,
               region: tuple[int, int, int, int] | None = None) -> Tensor | SlideScores:
        """Low-resolution scores of the whole image, or of its windows.

        Shapes:
            images: ``(B, 3, H, W)``; returns ``(B, Q, h, w)`` or a :class:`SlideScores` whose
            averages cover ``region`` ``(top, left, height, width)`` (default the image).
        """
        if self.slide is None:
            return score_fn(images)
        return score_slide(score_fn, images, self.slide, pad_to=self.pad_to, region=region)

    @torch.no_grad()
    def predict(self, images: Tensor, score_fn: ScoreFn, vocabulary: Vocabulary, *,
                out_size: tuple[int, int] | None = None,
                region: tuple[int, int, int, int] | None = None, flip: str | None = None,
                prob_threshold: float = 0.0, background_index: int = -1,
                return_probs: bool = False) -> list[Segmentation]:
        """Label maps of a batch for ``vocabulary``.

        Every query (synonym) gets its own softmax probability; a class takes the largest of its
        synonyms'. Pixels whose winning probability is below ``prob_threshold`` get
        ``background_index``. The softmax is monotonic and shared by a pixel's queries, so the
        winning class is the class of the best query: without ``return_probs`` the labels come
        from the fused upsample-argmax (sliding windows averaged a chunk of queries at a time),
        in ``O(B x H x W)`` memory whatever the vocabulary.

        Args:
            images: ``(B, 3, H, W)`` normalised.
            score_fn: a window to its ``(B, Q, h, w)`` scores, ``Q = vocabulary.num_queries``.
            out_size: size of the results (default: the region's, else the image's).
            region: ``(top, left, height, width)`` of the image the results cover (mmseg's
                padding is outside it); sliding windows only.
            flip: ``'horizontal'`` / ``'vertical'``: the image was flipped, flip the results back.
            return_probs: also return the class probabilities ``(K, H, W)``.
        """
        if flip is not None and flip not in FLIP_DIMS:
            raise ValueError(f'flip {flip!r}: images are flipped horizontal or vertical')
        if region is not None and self.slide is None:
            raise ValueError('a region needs sliding windows (SlideWindows.whole_input() for one)')
        scores = self.scores(images, score_fn, region)
        if out_size is None:
            out_size = scores.size if isinstance(scores, SlideScores) else images.shape[-2:]
        out_size = (int(out_size[0]), int(out_size[1]))
        if return_probs:
            probs = self._class_probs(scores, out_size, vocabulary)
            max_prob, labels = probs.max(dim=1)
        else:
            best, max_prob = self.best_query(scores, out_size)
            labels, probs = vocabulary.query_to_class.to(best.device)[best], None
        if prob_threshold > 0:
            labels[max_prob < prob_threshold] = background_index
        if flip is not None:
            labels = labels.flip(FLIP_DIMS[flip])
            probs = probs.flip(FLIP_DIMS[flip]) if probs is not None else None
        if probs is None:
            return [Segmentation(labels=lab, class_probs=None) for lab in labels]
        return [Segmentation(labels=lab, class_probs=p) for lab, p in zip(labels, probs)]

    def _class_probs(self, scores: Tensor | SlideScores, out_size: tuple[int, int],
                     vocabulary: Vocabulary) -> Tensor:
        """Shapes: returns ``(B, K, *out_size)``."""
        if isinstance(scores, SlideScores):
            scores = scores.average()
        if tuple(scores.shape[-2:]) != out_size:
            scores = F.interpolate(scores, size=out_size, mode='bilinear', align_corners=False)
        return vocabulary.pool_synonyms(torch.softmax(scores * self.logit_scale, dim=1))

    def best_query(self, scores: Tensor | SlideScores,
                    out_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Winning query and its softmax probability per pixel, ``(B, *out_size)`` each.

        Sliding windows are averaged a chunk of queries at a time (at most
        ``SLIDE_CHUNK_BYTES``), each chunk labelled by the fused op and the chunks merged.
        """
        if isinstance(scores, Tensor):
            return upsample_argmax(scores, out_size, scale=self.logit_scale)
        per_query = scores.batch_size * scores.size[0] * scores.size[1] * 4
        step = max(1, SLIDE_CHUNK_BYTES // per_query)
        state = None
        for start in range(0, scores.num_queries, step):
            labels, max_prob, best = upsample_argmax(scores.average(start, start + step),
                                                     out_size, scale=self.logit_scale,
                                                     return_best=True)
            chunk = (labels + start, max_prob, best)
            state = chunk if state is None else merge_upsample_argmax(state, chunk,
                                                                      scale=self.logit_scale)
        return state[0], state[1]
