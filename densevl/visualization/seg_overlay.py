"""Semantic-segmentation and score-map overlays in plain numpy + Pillow.

Nothing here imports torch or the mm stack, so the functions can draw results coming from
anywhere (an inferencer, a benchmark, a notebook). Images are ``HxWx3`` RGB ``uint8`` arrays.
"""
from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ['make_palette', 'legend_entries', 'draw_sem_seg', 'draw_score_map', 'turbo_lut']

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_VIVID = (0.70, 0.95)  # (saturation, value) of the first colours
_N_VIVID = 16
_SATS = (0.45, 0.6, 0.75, 0.9)
_VALS = (0.55, 0.7, 0.85, 0.95)
# 17 evenly spaced samples of the Turbo colormap (Mikhailov, Google, Apache-2.0), as uint8 RGB.
_TURBO_ANCHORS = np.array(
    [[48, 18, 59], [64, 64, 162], [70, 107, 227], [66, 148, 255], [40, 188, 235],
     [24, 221, 194], [50, 242, 152], [109, 254, 98], [164, 252, 60], [205, 236, 52],
     [238, 207, 58], [253, 172, 52], [251, 126, 33], [235, 80, 14], [208, 47, 5],
     [169, 22, 1], [122, 4, 3]], dtype=np.float64)

_PANEL_BG = (250, 250, 250)
_TEXT = (34, 34, 34)
_MUTED = (130, 130, 130)
_MAX_NAME_CHARS = 32


def make_palette(n: int, seed: int = 0) -> np.ndarray:
    """Distinct, deterministic class colours.

    The first 16 colours step the hue by the golden ratio at a fixed, bright saturation/value, so
    short vocabularies get evenly spread, vivid colours. Longer palettes continue greedily: each
    next colour is the HSV grid candidate farthest (in RGB) from every colour chosen so far.
    Palettes of up to ~500 colours are prefixes of each other, so adding a class keeps the others'
    colours.

    Args:
        n: Number of colours.
        seed: Picks the starting hue; the same ``(n, seed)`` always gives the same palette.

    Shapes:
        returns ``(n, 3)`` ``uint8`` RGB.
    """
    if n < 0:
        raise ValueError(f'n must be >= 0, got {n}')
    hue0 = float(np.random.default_rng(seed).random())
    sat, val = _VIVID
    chosen = [colorsys.hsv_to_rgb((hue0 + i * _GOLDEN) % 1.0, sat, val)
              for i in range(min(n, _N_VIVID))]
    chosen = np.round(np.array(chosen, dtype=np.float64).reshape(-1, 3) * 255)
    if n > _N_VIVID:
        # Twice as many candidates as colours needed, so the greedy pick never runs dry.
        n_hues = max(72, math.ceil(2 * n / (len(_SATS) * len(_VALS))))
        cand = np.array([colorsys.hsv_to_rgb((hue0 + h / n_hues) % 1.0, s, v)
                         for h in range(n_hues) for s in _SATS for v in _VALS])
        cand = np.round(cand * 255)
        dist = np.linalg.norm(cand[:, None] - chosen[None], axis=2).min(axis=1)
        extra = []
        for _ in range(n - _N_VIVID):
            k = int(dist.argmax())
            extra.append(cand[k])
            dist = np.minimum(dist, np.linalg.norm(cand - cand[k], axis=1))
        chosen = np.concatenate([chosen, np.array(extra)])
    return chosen.astype(np.uint8)


def turbo_lut(n: int = 256) -> np.ndarray:
    """Turbo colormap as a lookup table, linearly interpolated between built-in anchors.

    Shapes:
        returns ``(n, 3)`` ``uint8`` RGB, from low (dark blue) to high (dark red).
    """
    xs = np.linspace(0.0, 1.0, len(_TURBO_ANCHORS))
    x = np.linspace(0.0, 1.0, n)
    lut = np.stack([np.interp(x, xs, _TURBO_ANCHORS[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def legend_entries(labels: np.ndarray, names: Sequence[str], *,
                   only_present: bool = True) -> list[tuple[int, str]]:
    """The ``(class index, name)`` pairs a legend shows, in class order.

    Args:
        labels: Label map; negative values are unlabeled, others index ``names``.
        names: Class names.
        only_present: Keep only classes with at least one pixel in ``labels``.

    Shapes:
        labels: ``(H, W)`` int.
    """
    if not only_present:
        return list(enumerate(names))
    present = np.unique(labels[labels >= 0])
    return [(int(i), names[int(i)]) for i in present]


def draw_sem_seg(image: np.ndarray, labels: np.ndarray, names: Sequence[str], *,
                 alpha: float = 0.5, palette: np.ndarray | Sequence | None = None,
                 legend: bool = True, only_present: bool = True) -> np.ndarray:
    """Blend class colours over an image, outline the classes and add a legend panel on the right.

    Args:
        image: RGB image (a grey ``(H, W)`` image is accepted too).
        labels: Label map; ``-1`` (any negative value) is unlabeled and left uncoloured, other
            values index ``names``.
        names: Class names; synonyms written ``'cat;kitten'`` are shown by their first name.
        alpha: Opacity of the class colours.
        palette: ``(K, 3)`` RGB colours, at least one per name; default :func:`make_palette`.
        legend: Append the legend panel (colour swatch + name), wrapped into columns when the
            vocabulary is long.
        only_present: List only the classes present in ``labels``.

    Shapes:
        image: ``(H, W, 3)`` uint8; labels: ``(H, W)`` int; returns ``(H, W + legend_width, 3)``
        uint8 (``legend_width`` is 0 without a legend).
    """
    image = _as_rgb(image)
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f'labels {labels.shape} must match the image size {image.shape[:2]}')
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f'labels must be integers, got {labels.dtype}')
    if labels.size and labels.max() >= len(names):
        raise ValueError(f'label {int(labels.max())} has no name ({len(names)} names given)')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    colours = make_palette(len(names)) if palette is None else np.asarray(palette, dtype=np.uint8)
    if colours.ndim != 2 or colours.shape[1] != 3 or len(colours) < len(names):
        raise ValueError(f'palette must be (>= {len(names)}, 3) RGB, got {colours.shape}')

    out = image.copy()
    labeled = labels >= 0
    if labeled.any():
        tint = colours[labels[labeled]].astype(np.float32)
        out[labeled] = np.round(
            (1.0 - alpha) * image[labeled].astype(np.float32) + alpha * tint).astype(np.uint8)
        edges = _boundaries(labels, width=max(1, round(min(labels.shape) / 300)))
        # A light 50% line reads on both bright and dark colours without hiding the image.
        out[edges] = ((out[edges].astype(np.uint16) + 255) // 2).astype(np.uint8)
    if not legend:
        return out
    entries = [(i, n.split(';')[0].strip()) for i, n in
               legend_entries(labels, names, only_present=only_present)]
    panel = _legend_panel(entries, colours, height=image.shape[0])
    return np.concatenate([out, panel], axis=1)


def draw_score_map(image: np.ndarray, scores: np.ndarray, title: str | None = None, *,
                   alpha: float = 0.55, vmin: float | None = None,
                   vmax: float | None = None, colorbar: bool = True) -> np.ndarray:
    """Overlay a score map (e.g. one text query's similarity) as a Turbo heat map.

    Scores of another size than the image (a patch-grid map) are resized bilinearly.

    Args:
        image: RGB image (a grey ``(H, W)`` image is accepted too).
        scores: Float scores; NaNs are drawn as the lowest colour.
        title: Text drawn in a band above the image.
        alpha: Opacity of the heat map.
        vmin: Score mapped to the lowest colour; default the minimum of ``scores``.
        vmax: Score mapped to the highest colour; default the maximum of ``scores``.
        colorbar: Append a colour bar labelled with ``vmin`` and ``vmax`` on the right.

    Shapes:
        image: ``(H, W, 3)`` uint8; scores: ``(h, w)`` float; returns
        ``(H + title_height, W + colorbar_width, 3)`` uint8.
    """
    image = _as_rgb(image)
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2:
        raise ValueError(f'scores must be (h, w), got {scores.shape}')
    h, w = image.shape[:2]
    if scores.shape != (h, w):
        scores = np.asarray(Image.fromarray(scores).resize((w, h), Image.BILINEAR))
    finite = scores[np.isfinite(scores)]
    if vmin is None:
        vmin = float(finite.min()) if finite.size else 0.0
    if vmax is None:
        vmax = float(finite.max()) if finite.size else 1.0
    lo, hi = float(vmin), float(vmax)
    norm = np.nan_to_num((scores - lo) / max(hi - lo, 1e-12), nan=0.0)
    lut = turbo_lut()
    heat = lut[np.round(np.clip(norm, 0.0, 1.0) * 255).astype(np.int64)].astype(np.float32)
    out = np.round((1.0 - alpha) * image.astype(np.float32) + alpha * heat).astype(np.uint8)

    font_size = _font_size(h)
    if colorbar:
        out = np.concatenate([out, _colorbar_panel(lut, lo, hi, h, font_size)], axis=1)
    if title:
        out = np.concatenate([_title_band(title, out.shape[1], font_size), out], axis=0)
    return out


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be (H, W, 3) RGB, got {image.shape}')
    if image.dtype != np.uint8:
        raise TypeError(f'image must be uint8, got {image.dtype}')
    return image


def _boundaries(labels: np.ndarray, width: int) -> np.ndarray:
    """Pixels next to a different label, thickened to ``width`` pixels; unlabeled pixels excluded
    so that the outline sits inside the coloured regions."""
    edge = np.zeros(labels.shape, dtype=bool)
    diff_x = labels[:, 1:] != labels[:, :-1]
    diff_y = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    for _ in range(width - 1):
        grown = edge.copy()
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        edge = grown
    return edge & (labels >= 0)


def _font_size(height: int) -> int:
    return int(np.clip(round(height * 0.032), 12, 36))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int, int]:
    """Width, height and top offset of ``text`` as drawn at the origin."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top, top


def _shorten(name: str) -> str:
    return name if len(name) <= _MAX_NAME_CHARS else name[:_MAX_NAME_CHARS - 1] + '…'


def _legend_panel(entries: list[tuple[int, str]], colours: np.ndarray,
                  height: int) -> np.ndarray:
    """White panel listing ``entries`` as swatch + name, column after column.

    Shapes:
        returns ``(height, panel_width, 3)`` uint8.
    """
    font_size = _font_size(height)
    font = _font(font_size)
    pad = max(6, font_size // 2)
    row_h = round(font_size * 1.5)
    swatch = font_size
    gap = max(4, font_size // 2)
    texts = [_shorten(name) for _, name in entries] or ['(no class)']
    measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    text_w = max(_text_size(measure, t, font)[0] for t in texts)
    col_w = swatch + gap + text_w + 2 * pad
    rows = max(1, (height - 2 * pad) // row_h)
    n_cols = math.ceil(len(texts) / rows)
    # Balance the columns instead of filling the first ones to the brim.
    rows = math.ceil(len(texts) / n_cols)

    panel = Image.new('RGB', (n_cols * col_w + pad, height), _PANEL_BG)
    draw = ImageDraw.Draw(panel)
    for k, text in enumerate(texts):
        x = pad + (k // rows) * col_w
        y = pad + (k % rows) * row_h
        cy = y + row_h // 2
        tx = x
        if entries:
            fill = tuple(int(c) for c in colours[entries[k][0]])
            box = [x, cy - swatch // 2, x + swatch - 1, cy - swatch // 2 + swatch - 1]
            draw.rounded_rectangle(box, radius=max(1, swatch // 5), fill=fill,
                                   outline=(90, 90, 90), width=1)
            tx = x + swatch + gap
        _, th, top = _text_size(draw, text, font)
        draw.text((tx, cy - th // 2 - top), text, fill=_TEXT if entries else _MUTED, font=font)
    return np.asarray(panel)


def _colorbar_panel(lut: np.ndarray, lo: float, hi: float, height: int,
                    font_size: int) -> np.ndarray:
    """Vertical colour bar (high at the top) with its end values written beside it."""
    font = _font(max(10, round(font_size * 0.85)))
    pad = max(6, font_size // 2)
    bar_w = max(10, font_size)
    labels = [f'{hi:.3g}', f'{lo:.3g}']
    measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    sizes = [_text_size(measure, t, font) for t in labels]
    width = pad + bar_w + pad // 2 + max(s[0] for s in sizes) + pad
    panel = Image.new('RGB', (width, height), _PANEL_BG)
    bar_h = max(2, height - 2 * pad)
    idx = np.linspace(len(lut) - 1, 0, bar_h).round().astype(np.int64)
    bar = np.repeat(lut[idx][:, None, :], bar_w, axis=1)
    panel.paste(Image.fromarray(bar), (pad, pad))
    draw = ImageDraw.Draw(panel)
    draw.rectangle([pad, pad, pad + bar_w - 1, pad + bar_h - 1], outline=(90, 90, 90))
    tx = pad + bar_w + pad // 2
    (_, _, top_hi), (_, th_lo, top_lo) = sizes
    draw.text((tx, pad - top_hi), labels[0], fill=_TEXT, font=font)
    draw.text((tx, pad + bar_h - th_lo - top_lo), labels[1], fill=_TEXT, font=font)
    return np.asarray(panel)


def _title_band(title: str, width: int, font_size: int) -> np.ndarray:
    font = _font(font_size)
    band_h = round(font_size * 1.8)
    band = Image.new('RGB', (width, band_h), _PANEL_BG)
    draw = ImageDraw.Draw(band)
    _, th, top = _text_size(draw, title, font)
    draw.text((max(4, font_size // 2), (band_h - th) // 2 - top), title, fill=_TEXT, font=font)
    return np.asarray(band)
