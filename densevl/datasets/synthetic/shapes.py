"""Hard (alias-free) masks of the object shapes and of the patterns drawn inside them.

Masks are evaluated at pixel centres from implicit functions, so an object's label mask and its
drawn pixels are the same set by construction.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Star: five outer points at radius 1, inner points at this radius (fatter than a pentagram so
# the arms survive at 10 px).
_STAR_INNER = 0.48


def _polygon(points: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Even-odd point-in-polygon test for a fixed polygon ``(n, 2)`` of ``(u, v)`` vertices."""
    starts, ends = points, np.roll(points, -1, axis=0)

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        result = np.zeros(np.broadcast_shapes(u.shape, v.shape), bool)
        for (u1, v1), (u2, v2) in zip(starts, ends):
            if v1 == v2:
                continue
            crosses = (v1 > v) != (v2 > v)
            u_cross = u1 + (v - v1) * (u2 - u1) / (v2 - v1)
            result ^= crosses & (u < u_cross)
        return result

    return inside


def _star_points() -> np.ndarray:
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 1.0, _STAR_INNER)
    pts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    pts[:, 1] += (1 - pts[:, 1].max()) / 2  # centre the star vertically in [-1, 1]
    return pts


_star = _polygon(_star_points())
_triangle = _polygon(np.array([[0.0, -0.95], [0.98, 0.8], [-0.98, 0.8]]))


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # The sextic heart spans x in [-1.14, 1.14] and y in [-1, 1.24]; map it onto [-1, 1]^2.
    x, y = u * 1.14, -v * 1.12 + 0.12
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0


SHAPE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = dict(
    circle=lambda u, v: u * u + v * v <= 1,
    square=lambda u, v: (np.abs(u) <= 0.86) & (np.abs(v) <= 0.86),
    triangle=_triangle,
    star=_star,
    heart=_heart,
    ring=lambda u, v: (u * u + v * v <= 1) & (u * u + v * v >= 0.55 ** 2),
    cross=lambda u, v: ((np.abs(u) <= 0.34) | (np.abs(v) <= 0.34))
    & (np.abs(u) <= 0.95) & (np.abs(v) <= 0.95),
    diamond=lambda u, v: np.abs(u) + np.abs(v) <= 1,
)


def shape_mask(shape: str, cx: float, cy: float, side: float, h: int,
               w: int) -> tuple[int, int, np.ndarray]:
    """Mask of a shape in a square frame of ``side`` px centred at ``(cx, cy)``.

    Returns:
        ``(y0, x0, mask)``: the mask covers rows ``y0:y0+mask.shape[0]`` and columns
        ``x0:x0+mask.shape[1]`` of the ``(h, w)`` image (clipped to it).
    """
    half = side / 2
    x0, x1 = max(0, math.floor(cx - half)), min(w, math.ceil(cx + half))
    y0, y1 = max(0, math.floor(cy - half)), min(h, math.ceil(cy + half))
    u = ((np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / half)[None, :]
    v = ((np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / half)[:, None]
    return y0, x0, SHAPE_FUNCTIONS[shape](u, v)


def pattern_mask(pattern: str, rng: np.random.Generator, shape: tuple[int, int],
                 scale: float) -> np.ndarray | None:
    """Where the pattern's ink goes, in an object's frame; ``None`` for ``'solid'``.

    Args:
        pattern: One of the world's patterns.
        rng: Draws the pattern's phase, period and orientation.
        shape: ``(h, w)`` of the object's frame.
        scale: Image side / 64; periods are in 64-px-image pixels times this.
    """
    if pattern == 'solid':
        return None
    h, w = shape
    y = np.arange(h, dtype=np.float32)[:, None] + np.float32(rng.uniform(0, 8 * scale))
    x = np.arange(w, dtype=np.float32)[None, :] + np.float32(rng.uniform(0, 8 * scale))
    if pattern == 'stripes':
        period = rng.uniform(4, 5.5) * scale
        angle = rng.choice((0, 45, 90, 135)) * np.pi / 180
        t = x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))
        return (t % period) < 0.45 * period
    if pattern == 'dots':
        period = rng.uniform(4.5, 5.5) * scale
        radius = 0.26 * period
        dy = y % period - period / 2
        dx = (x + (y // period % 2) * period / 2) % period - period / 2
        return dx * dx + dy * dy <= radius * radius
    if pattern == 'checker':
        cell = rng.uniform(2.5, 3.5) * scale
        return ((x // cell + y // cell) % 2).astype(bool)
    if pattern == 'zigzag':
        period = rng.uniform(5, 7) * scale
        along, across = (x, y) if rng.random() < 0.5 else (y, x)  # lines run across or down
        tri = 0.3 * period * np.abs((along / (period / 2)) % 2 - 1)
        return ((across + tri) % period) < 0.42 * period
    raise ValueError(f'unknown pattern {pattern!r}')
