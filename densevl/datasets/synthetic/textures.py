"""Procedural stuff textures: every call draws a new variation (scale, phase, tone, layout).

Shapes:
    every ``draw_*`` returns ``(h, w, 3)`` float32 RGB in roughly ``[0, 255]`` (not clipped).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from .world import STUFF_RGB

_TAU = 2 * np.pi


@lru_cache(maxsize=64)
def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Interpolation weights ``(n_out, n_in)`` that stretch ``n_in`` samples to ``n_out``.

    Smoothstep rather than linear weights, so thresholded noise gives round blobs, not diamonds.
    """
    pos = (np.arange(n_out) + 0.5) * (n_in - 1) / n_out
    lo = np.minimum(pos.astype(int), n_in - 2)
    frac = pos - lo
    frac = (frac * frac * (3 - 2 * frac)).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] = 1 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells_y: int,
                 cells_x: int) -> np.ndarray:
    """Value noise in ``[0, 1]``: a ``(cells_y+1, cells_x+1)`` random grid, smoothly stretched."""
    grid = rng.random((cells_y + 1, cells_x + 1), dtype=np.float32)
    return _interp_matrix(h, cells_y + 1) @ grid @ _interp_matrix(w, cells_x + 1).T


@lru_cache(maxsize=16)
def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def _tone(rng: np.random.Generator, name: str, spread: float = 0.12) -> np.ndarray:
    """The class's mean colour with a per-scene brightness and hue jitter."""
    rgb = np.asarray(STUFF_RGB[name], np.float32)
    return rgb * rng.uniform(1 - spread, 1 + spread) * rng.uniform(0.94, 1.06, 3).astype(np.float32)


def _mix(base: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """``(h, w)`` multiplicative shade times an RGB base -> ``(h, w, 3)``."""
    return shade[..., None] * base


def draw_grass(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Short vertical blades (noise stretched along y) over patchy darker/lighter areas."""
    scale = max(h, w) / 64
    blade_len = rng.uniform(3, 6) * scale
    blades = smooth_noise(rng, h, w, max(1, int(h / blade_len)), w - 1)
    patches = smooth_noise(rng, h, w, 3, 3)
    shade = 0.55 + 0.75 * blades ** 1.5 + 0.35 * (patches - 0.5)
    return _mix(_tone(rng, 'grass'), shade)


def draw_sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A vertical blue gradient with soft white clouds."""
    yy, _ = _coords(h, w)
    base = _tone(rng, 'sky', 0.08)
    top = base * np.float32(rng.uniform(0.7, 0.85))
    bottom = np.minimum(base * np.float32(rng.uniform(1.05, 1.15)), 250)
    t = (yy / max(h - 1, 1))[..., None]
    img = top * (1 - t) + bottom * t
    cells = int(rng.integers(2, 5))
    clouds = 0.7 * smooth_noise(rng, h, w, cells, cells + 1) + 0.3 * smooth_noise(
        rng, h, w, 2 * cells, 2 * cells + 2)
    cover = np.clip((clouds - rng.uniform(0.5, 0.7)) * 4, 0, 1)[..., None] * 0.85
    return img * (1 - cover) + np.float32(240) * cover


def draw_water(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Dark blue-green water: irregular horizontal ripples, deeper patches, a few bright glints."""
    scale = max(h, w) / 64
    yy, xx = _coords(h, w)
    period = rng.uniform(4, 7) * scale
    wobble = rng.uniform(10, 20) * scale
    warp = 0.3 * period * np.sin(_TAU * xx / wobble + rng.uniform(0, _TAU))
    warp = warp + 2.5 * period * smooth_noise(rng, h, w, 3, 4)
    ripple = np.sin(_TAU * (yy + warp) / period).astype(np.float32)
    depth = smooth_noise(rng, h, w, 2, 3)
    shade = 0.8 + 0.2 * ripple + 0.35 * (depth - 0.5)
    img = _mix(_tone(rng, 'water'), shade)
    glint = (ripple > 0.92) & (rng.random((h, w), dtype=np.float32) < 0.2)
    img[glint] = img[glint] * 0.4 + 150
    return img


def draw_sand(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Beige grain (per-pixel noise, dark specks) over gentle diagonal dunes."""
    scale = max(h, w) / 64
    yy, xx = _coords(h, w)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(12, 24) * scale
    dunes = np.sin(_TAU * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, _TAU))
    grain = rng.random((h, w), dtype=np.float32)
    shade = 0.9 + 0.06 * dunes.astype(np.float32) + 0.16 * (grain - 0.5)
    shade = np.where(grain > 0.96, shade * 0.7, shade)
    return _mix(_tone(rng, 'sand', 0.08), shade)


def draw_brick(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A running-bond wall: per-brick tone, light mortar lines, a little grain."""
    scale = max(h, w) / 64
    yy, xx = _coords(h, w)
    bh = max(3, round(rng.uniform(5, 8) * scale))
    bw = max(6, round(rng.uniform(10, 16) * scale))
    oy, ox = rng.integers(0, bh), rng.integers(0, bw)
    row = ((yy + oy) // bh).astype(np.int64)
    xs = xx + ox + (row % 2) * (bw // 2)
    col = (xs // bw).astype(np.int64)
    tones = 0.8 + 0.35 * rng.random((row.max() + 1, col.max() + 1), dtype=np.float32)
    shade = tones[row, col] + 0.1 * (rng.random((h, w), dtype=np.float32) - 0.5)
    img = _mix(_tone(rng, 'brick'), shade)
    line = max(1, round(scale))
    mortar = (((yy + oy) % bh) < line) | ((xs % bw) < line)
    img[mortar] = np.float32(rng.uniform(170, 205)) * np.array([1, 0.97, 0.92], np.float32)
    return img


def draw_wood(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Planks with wavy grain lines along them and dark seams between them."""
    scale = max(h, w) / 64
    yy, xx = _coords(h, w)
    if rng.random() < 0.5:  # planks run horizontally or vertically
        yy, xx = xx, yy
    plank = max(6, round(rng.uniform(10, 18) * scale))
    off = rng.integers(0, plank)
    idx = ((yy + off) // plank).astype(np.int64)
    tones = 0.8 + 0.3 * rng.random(idx.max() + 1, dtype=np.float32)
    warp = smooth_noise(rng, h, w, 3, 3)
    period = rng.uniform(2.5, 4.5) * scale
    grain = np.sin(_TAU * (yy + 3 * scale * warp + 0.08 * xx) / period).astype(np.float32)
    shade = tones[idx] * (0.92 + 0.1 * grain)
    seam = ((yy + off) % plank) < max(1, round(scale))
    shade = np.where(seam, shade * 0.55, shade)
    return _mix(_tone(rng, 'wood'), shade)


STUFF_DRAWERS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = dict(
    grass=draw_grass, sky=draw_sky, water=draw_water, sand=draw_sand, brick=draw_brick,
    wood=draw_wood)


def draw_stuff(name: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Draw one stuff texture.

    Shapes:
        returns ``(h, w, 3)`` float32 RGB (unclipped).
    """
    try:
        drawer = STUFF_DRAWERS[name]
    except KeyError:
        raise ValueError(f'no texture for stuff class {name!r}') from None
    return drawer(rng, h, w)
