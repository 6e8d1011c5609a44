"""Detection pictures: boxes (and instance masks) with class names and scores, numpy + Pillow."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .seg_overlay import _as_rgb, _font, _font_size, _text_size, make_palette

__all__ = ['draw_boxes']


def _label_colour(rgb: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``rgb``."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma > 150 else (255, 255, 255)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, names: Sequence[str],
               scores: np.ndarray | None = None, masks: np.ndarray | None = None, *,
               mask_alpha: float = 0.45, palette: np.ndarray | Sequence | None = None,
               line_width: int | None = None) -> np.ndarray:
    """Draw boxes with a ``name score`` tag each, over optional instance masks.

    Highest-scoring detections are drawn last (on top). Each class keeps its colour of
    :func:`make_palette` (the segmentation overlays' colours).

    Args:
        image: RGB image (a grey ``(H, W)`` image is accepted too).
        boxes: ``x1, y1, x2, y2`` in pixels.
        labels: class indices into ``names``; synonyms written ``'cat;kitten'`` are shown by
            their first name.
        names: class names.
        scores: confidences shown in the tags; None shows names only.
        masks: instance masks, tinted with the class colour.
        mask_alpha: opacity of the mask tint.
        palette: ``(K, 3)`` RGB colours; default :func:`make_palette`.
        line_width: box outline width; default from the image size.

    Shapes:
        image ``(H, W, 3)`` uint8; boxes ``(N, 4)``; labels ``(N,)``; scores ``(N,)``;
        masks ``(N, H, W)`` bool; returns ``(H, W, 3)`` uint8.
    """
    image = _as_rgb(image)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n = len(boxes)
    if len(labels) != n:
        raise ValueError(f'{n} boxes but {len(labels)} labels')
    if n and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError(f'labels must index the {len(names)} names, got {labels.tolist()}')
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != n:
            raise ValueError(f'{n} boxes but {len(scores)} scores')
    colours = make_palette(len(names)) if palette is None else np.asarray(palette, np.uint8)
    if colours.ndim != 2 or colours.shape[1] != 3 or len(colours) < len(names):
        raise ValueError(f'palette must be (>= {len(names)}, 3) RGB, got {colours.shape}')
    order = np.argsort(scores, kind='stable') if scores is not None else np.arange(n)

    out = image.astype(np.float32)
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (n, *image.shape[:2]):
            raise ValueError(f'masks must be (N, H, W) = {(n, *image.shape[:2])}, got '
                             f'{masks.shape}')
        for i in order:
            tint = colours[labels[i]].astype(np.float32)
            out[masks[i]] = (1.0 - mask_alpha) * out[masks[i]] + mask_alpha * tint
    canvas = Image.fromarray(np.round(out).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    height, width = image.shape[:2]
    line_width = line_width or max(1, round(min(height, width) / 200))
    font = _font(max(10, round(_font_size(height) * 0.8)))
    for i in order:
        colour = tuple(int(c) for c in colours[labels[i]])
        x1, y1, x2, y2 = boxes[i].tolist()
        draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=colour, width=line_width)
        name = names[labels[i]].split(';')[0].strip()
        tag = name if scores is None else f'{name} {scores[i]:.2f}'
        tw, th, top = _text_size(draw, tag, font)
        pad = 2
        ty = y1 - th - 2 * pad if y1 - th - 2 * pad >= 0 else y1
        tx = min(max(0.0, x1), max(0.0, width - tw - 2 * pad))
        draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=colour)
        draw.text((tx + pad, ty + pad - top), tag, fill=_label_colour(colour), font=font)
    return np.asarray(canvas)
