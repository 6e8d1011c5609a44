"""Sample one synthetic scene: textured stuff, 1-4 patterned things, label maps and captions.

Objects are listed in drawing order: a later object occludes the earlier ones, and every object's
``mask`` is what remains visible. An object left with less than ``spec.min_visible_fraction`` of
its area, or fewer than ``spec.min_visible_pixels`` pixels, is dropped before drawing, so every
listed object is also visible in the image and in the label map.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .refer import referring_expressions, resolve_expression
from .shapes import pattern_mask, shape_mask
from .textures import draw_stuff
from .world import DEFAULT_SPEC, PATTERN_WORDS, POSITIONS, SceneWorldSpec, _check_split

__all__ = ['Scene', 'SceneObject', 'caption_for', 'referring_expressions', 'resolve_expression',
           'sample_scene']

_POSITION_PHRASES = {'top left': 'at the top left', 'top': 'at the top',
                     'top right': 'at the top right', 'left': 'on the left',
                     'center': 'in the center', 'right': 'on the right',
                     'bottom left': 'at the bottom left', 'bottom': 'at the bottom',
                     'bottom right': 'at the bottom right'}
_CAPTION_TEMPLATES = ('a {bg} background with {objs}', '{objs} on a {bg} background',
                      'a picture of {objs} on {bg}', '{objs} on {bg}')
# Pattern ink: shade of the object's own colour, black or white (weights; white objects get no
# light/white ink).
_INKS = ('dark', 'black', 'light', 'white')
_INK_CDF = np.cumsum([0.4, 0.25, 0.2, 0.15])
_INK_CDF_WHITE = np.cumsum([0.5, 0.5])
_MAX_TRIES = 100


@dataclass
class SceneObject:
    """One visible thing.

    Attributes:
        colour: Thing class (its colour name).
        pattern / shape / size_name: Attributes from the world's vocabularies.
        bbox: ``(x, y, w, h)`` of the visible mask, in pixels (COCO convention).
        mask: ``(H, W)`` bool, the visible pixels (after occlusion by later objects).
        area: Number of visible pixels.
        center: ``(cx, cy)`` of the object's frame (before occlusion), in pixels.
        side: Side of the object's square frame, in pixels.
        full_area: Pixels the shape would cover without occlusion.
    """

    colour: str
    pattern: str
    shape: str
    size_name: str
    bbox: tuple[float, float, float, float]
    mask: np.ndarray
    area: int
    center: tuple[float, float]
    side: float
    full_area: int

    @property
    def position(self) -> str:
        """One of :data:`POSITIONS`, from the frame centre on a 3x3 grid."""
        h, w = self.mask.shape
        col = min(2, int(3 * self.center[0] / w))
        row = min(2, int(3 * self.center[1] / h))
        return POSITIONS[3 * row + col]


@dataclass
class Scene:
    """A rendered scene with its labels.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        semantic: ``(H, W)`` uint8 label map, ``spec.label_of(name)`` per pixel (never 0).
        objects: Visible things in drawing order (later ones occlude earlier ones).
        caption: One caption that names every object's colour and the stuff.
        stuff: The stuff classes, top to bottom (one or two).
        split: The split whose rules the scene follows.
    """

    image: np.ndarray
    semantic: np.ndarray
    objects: list[SceneObject]
    caption: str
    stuff: tuple[str, ...]
    split: str


def _article(word: str) -> str:
    return 'an' if word[0] in 'aeiou' else 'a'


def _object_phrase(obj: SceneObject, rng: np.random.Generator) -> str:
    words = []
    if rng.random() < 0.7:
        words.append(obj.size_name)
    words.append(obj.colour)
    if rng.random() < 0.75 and (obj.pattern != 'solid' or rng.random() < 0.4):
        words.append(PATTERN_WORDS[obj.pattern])
    words.append(obj.shape)
    phrase = ' '.join([_article(words[0]), *words])
    if rng.random() < 0.15:
        phrase += ' ' + _POSITION_PHRASES[obj.position]
    return phrase


def caption_for(objects: list[SceneObject], stuff: tuple[str, ...],
                rng: np.random.Generator) -> str:
    """A caption naming the stuff and every object's colour (attributes sometimes omitted).

    Word order within an object phrase is fixed (``size colour pattern shape``); the template,
    the object order, the articles and which optional words appear vary with ``rng``.
    """
    phrases = [_object_phrase(objects[i], rng) for i in rng.permutation(len(objects))]
    objs = phrases[0] if len(phrases) == 1 else ', '.join(phrases[:-1]) + ' and ' + phrases[-1]
    bg = ' and '.join(stuff)
    template = _CAPTION_TEMPLATES[rng.integers(len(_CAPTION_TEMPLATES))]
    return template.format(bg=bg, objs=objs)


def _draw_background(rng: np.random.Generator, spec: SceneWorldSpec,
                     size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Background image ``(H, W, 3)`` float32 and stuff label map ``(H, W)`` uint8."""
    names = spec.stuff_classes
    if rng.random() >= spec.two_stuff_prob:
        name = names[rng.integers(len(names))]
        return draw_stuff(name, rng, size, size), np.full((size, size), spec.label_of(name),
                                                         np.uint8), (name,)
    i, j = rng.choice(len(names), 2, replace=False)
    top, bottom = names[i], names[j]
    if bottom == 'sky':
        top, bottom = bottom, top
    x = np.arange(size, dtype=np.float32)
    horizon = size * rng.uniform(0.35, 0.65) + size * rng.uniform(0, 0.06) * np.sin(
        2 * np.pi * x / (size * rng.uniform(0.4, 1.2)) + rng.uniform(0, 2 * np.pi))
    below = np.arange(size, dtype=np.float32)[:, None] >= horizon[None, :]
    image = np.where(below[..., None], draw_stuff(bottom, rng, size, size),
                     draw_stuff(top, rng, size, size))
    labels = np.where(below, spec.label_of(bottom), spec.label_of(top)).astype(np.uint8)
    return image, labels, (top, bottom)


def _draw_attributes(rng: np.random.Generator, spec: SceneWorldSpec, split: str,
                     novel: bool) -> tuple[str, str, str, int]:
    """``(colour, pattern, shape, size index)`` for one object of ``split``.

    ``novel=True`` forces a novel object (novel colour or held-out combination).
    """
    if novel:
        combos = spec.held_out_combos
        if combos and (not spec.novel_classes or rng.random() < spec.novel_combo_prob):
            colour, pattern = combos[rng.integers(len(combos))]
        else:
            colour = spec.novel_classes[rng.integers(len(spec.novel_classes))]
            pattern = spec.patterns[rng.integers(len(spec.patterns))]
    else:
        colours = spec.allowed_colours(split)
        colour = colours[rng.integers(len(colours))]
        patterns = spec.allowed_patterns(colour, split)
        pattern = patterns[rng.integers(len(patterns))]
    return (colour, pattern, spec.shapes[rng.integers(len(spec.shapes))],
            int(rng.integers(len(spec.sizes))))


def _object_colours(rng: np.random.Generator, spec: SceneWorldSpec,
                    colour: str) -> tuple[np.ndarray, np.ndarray]:
    """Body and pattern-ink RGB (float32) of one object, brightness-jittered."""
    rgb = np.asarray(spec.rgb(colour), np.float32)
    j = spec.brightness_jitter
    is_white = colour == 'white'
    body = np.clip(rgb * rng.uniform(1 - j, 1 if is_white else 1 + j), 0, 255)
    cdf = _INK_CDF_WHITE if is_white else _INK_CDF
    ink = _INKS[int(np.searchsorted(cdf, rng.random() * cdf[-1], side='right'))]
    if ink == 'dark':
        ink_rgb = body * 0.45
    elif ink == 'light':
        ink_rgb = body + (255 - body) * 0.6
    else:
        ink_rgb = np.full(3, 25 if ink == 'black' else 245, np.float32)
    return body.astype(np.float32), ink_rgb.astype(np.float32)


def _compose(rng: np.random.Generator, spec: SceneWorldSpec, size: int,
             split: str) -> tuple[np.ndarray, np.ndarray, list[SceneObject], tuple[str, ...]]:
    image, semantic, stuff = _draw_background(rng, spec, size)
    scale = size / 64
    for _ in range(_MAX_TRIES):
        n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
        forced = int(rng.integers(n)) if split == 'novel' else -1
        plans = []
        for k in range(n):
            colour, pattern, shape, size_idx = _draw_attributes(rng, spec, split, k == forced)
            lo, hi = spec.size_ranges[size_idx]
            side = size * rng.uniform(lo, hi)
            cx, cy = rng.uniform(side / 2, size - side / 2, 2)
            y0, x0, m = shape_mask(shape, cx, cy, side, size, size)
            plans.append((colour, pattern, shape, size_idx, side, float(cx), float(cy), y0, x0, m))
        # Top-down: an object claims what is still free; a dropped one claims nothing, so the
        # objects under it keep those pixels.
        claimed = np.zeros((size, size), bool)
        kept = []
        for plan in reversed(plans):
            y0, x0, m = plan[7:]
            crop = claimed[y0:y0 + m.shape[0], x0:x0 + m.shape[1]]
            vis = m & ~crop
            full_area, area = int(m.sum()), int(vis.sum())
            if area < max(spec.min_visible_pixels, spec.min_visible_fraction * full_area):
                continue
            crop |= vis
            kept.append((plan, vis, full_area, area))
        kept.reverse()
        if split != 'novel' or any(spec.is_novel(p[0], p[1]) for p, *_ in kept):
            break
    else:
        raise RuntimeError(f'could not place a novel object in {_MAX_TRIES} tries; check spec.')

    objects = []
    for (colour, pattern, shape, size_idx, side, cx, cy, y0, x0, _), vis, full_area, area in kept:
        body, ink = _object_colours(rng, spec, colour)
        region = image[y0:y0 + vis.shape[0], x0:x0 + vis.shape[1]]
        pat = pattern_mask(pattern, rng, vis.shape, scale)
        region[vis] = body
        if pat is not None:
            region[vis & pat] = ink
        mask = np.zeros((size, size), bool)
        mask[y0:y0 + vis.shape[0], x0:x0 + vis.shape[1]] = vis
        semantic[mask] = spec.label_of(colour)
        rows, cols = np.nonzero(vis.any(1))[0], np.nonzero(vis.any(0))[0]
        bbox = (float(x0 + cols[0]), float(y0 + rows[0]), float(cols[-1] - cols[0] + 1),
                float(rows[-1] - rows[0] + 1))
        objects.append(SceneObject(colour, pattern, shape, spec.sizes[size_idx], bbox, mask, area,
                                   (cx, cy), float(side), full_area))
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return image, semantic, objects, stuff


def sample_scene(rng: np.random.Generator, spec: SceneWorldSpec = DEFAULT_SPEC, *,
                 size: int = 64, split: str = 'train') -> Scene:
    """Draw one scene that follows ``split``'s rules (see :mod:`.world`).

    Args:
        rng: Source of all randomness; the same generator state gives the same scene.
        spec: The world.
        size: Image side in pixels (64 is the design size; lengths scale with it).
        split: ``'train'``, ``'val'``, ``'test'``, ``'novel'``, ``'clip_train'`` or
            ``'unlabeled'``.

    Shapes:
        ``image`` ``(size, size, 3)`` uint8; ``semantic`` ``(size, size)`` uint8;
        each object's ``mask`` ``(size, size)`` bool.
    """
    _check_split(split)
    if split == 'novel' and not (spec.novel_classes or spec.held_out_combos):
        raise ValueError('a novel split needs novel_classes or held_out_combos in the spec.')
    image, semantic, objects, stuff = _compose(rng, spec, size, split)
    return Scene(image, semantic, objects, caption_for(objects, stuff, rng), stuff, split)
