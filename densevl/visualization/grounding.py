"""Grounding figures: the image with the candidate boxes and the chosen one, beside the heat map."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .seg_overlay import _as_rgb, _font, _font_size, _text_size, _title_band, draw_score_map

__all__ = ['draw_grounding']

_CANDIDATE = (200, 200, 200)
_CHOSEN = (230, 30, 30)
_GAP = 6


def _draw_candidates(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None,
                     chosen: np.ndarray | None, scale: float) -> np.ndarray:
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(min(image.shape[:2]) / 150))
    font = _font(max(10, round(_font_size(image.shape[0]) * 0.7)))
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=_CANDIDATE, width=width)
        if scores is not None and np.isfinite(scores[i]):
            tag = f'{scores[i]:.3g}'
            tw, th, top = _text_size(draw, tag, font)
            draw.rectangle([x1, y1, x1 + tw + 2, y1 + th + 2], fill=(60, 60, 60))
            draw.text((x1 + 1, y1 + 1 - top), tag, fill=(255, 255, 255), font=font)
    if chosen is not None:
        x1, y1, x2, y2 = (float(v) * scale for v in chosen)
        draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=_CHOSEN, width=2 * width + 1)
    return np.asarray(canvas)


def draw_grounding(image: np.ndarray, heat_map: np.ndarray, candidates: np.ndarray,
                   candidate_scores: np.ndarray | None = None, chosen: np.ndarray | None = None,
                   *, title: str | None = None, min_side: int = 256) -> np.ndarray:
    """A grounding figure: left the image with the candidate boxes (grey, tagged with their
    fused scores) and the chosen box (red); right the heat map over the image, with the chosen
    box and a colour bar. Small images are enlarged (nearest) to ``min_side`` pixels.

    Shapes:
        image: ``(H, W, 3)`` uint8; heat_map: ``(H, W)`` (or any size: resized);
        candidates: ``(N, 4)`` xyxy in image pixels; candidate_scores: ``(N,)``;
        chosen: ``(4,)``; returns ``(H', W', 3)`` uint8.
    """
    image = _as_rgb(image)
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 4)
    if candidate_scores is not None:
        candidate_scores = np.asarray(candidate_scores, dtype=np.float64).reshape(-1)
        if len(candidate_scores) != len(candidates):
            raise ValueError(f'{len(candidates)} candidates but {len(candidate_scores)} scores')
    chosen = None if chosen is None else np.asarray(chosen, dtype=np.float64).reshape(4)
    h, w = image.shape[:2]
    scale = max(1.0, min_side / min(h, w))
    size = (round(w * scale), round(h * scale))
    big = np.asarray(Image.fromarray(image).resize(size, Image.NEAREST))
    heat = np.asarray(heat_map, dtype=np.float32)
    heat = np.asarray(Image.fromarray(heat).resize(size, Image.BILINEAR))
    left = _draw_candidates(big, candidates, candidate_scores, chosen, scale)
    right = draw_score_map(_draw_candidates(big, candidates[:0], None, chosen, scale), heat)
    pad = np.full((big.shape[0], _GAP, 3), 255, np.uint8)
    out = np.concatenate([left, pad, right], axis=1)
    if title:
        out = np.concatenate([_title_band(title, out.shape[1], _font_size(big.shape[0])), out])
    return out
