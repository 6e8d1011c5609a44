"""The synthetic scene world: vocabulary, colours and the novel-split rules.

A scene is one or two textured *stuff* backgrounds with 1-4 flat-coloured *things* on top.
Things are named by their colour, because a tiny CLIP trained contrastively on 64-px scenes with
a patch-8 ViT learns colour well, texture fairly and shape hardly at all; pattern, shape, size
and position are attributes that captions and referring expressions use.

Classes (semantic label = class index + 1, 0 = unlabelled, the ADE20K convention read with
``reduce_zero_label=True``)::

    stuff  1 grass   2 sky     3 water   4 sand    5 brick   6 wood
    things 7 red     8 orange  9 yellow 10 green  11 blue   12 purple  13 pink  14 white

COCO instance files list the eight things only, as category ids 1..8 in the order above.

Splits and the novel rules (who may see what)
=============================================

* ``clip_train`` (captions for training the tiny CLIP, drawn on the fly): all eight colours,
  **including pink and purple**, with every pattern *except* the held-out (colour, pattern)
  combinations ``red+dots``, ``blue+stripes``, ``yellow+checker``. The tiny CLIP therefore
  knows every word of the vocabulary, but has never seen a held-out combination.
* ``train`` / ``val`` / ``test`` (segmentation labels, instances, referring expressions): only
  the six base colours (no pink, no purple anywhere in the image) and never a held-out
  combination. Downstream segmentation/detection training never sees a novel class.
* ``novel``: every scene holds at least one visible *novel* object: a pink or purple thing, or a
  held-out combination (about half each); its other objects are drawn from all colours and
  combinations.
* ``unlabeled`` (retrieval gallery): no restriction at all.

In ``novel``, pink and purple are unseen *classes* (segmentation, detection). A held-out
combination keeps its seen colour class (a red dotted star is labelled ``red``); it tests
compositional generalisation instead (referring expressions, retrieval, attribute queries).

The rules live in :class:`SceneWorldSpec` (``allowed_colours``, ``allows``, ``is_novel``), so a
world with other held-out sets is one ``dataclasses.replace`` away.
"""
from __future__ import annotations

from dataclasses import dataclass

STUFF_CLASSES = ('grass', 'sky', 'water', 'sand', 'brick', 'wood')
THING_CLASSES = ('red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white')
CLASSES = STUFF_CLASSES + THING_CLASSES

# Saturated thing colours, kept apart from each other and from the muted stuff textures.
THING_RGB = dict(red=(225, 25, 30), orange=(255, 140, 0), yellow=(255, 230, 20),
                 green=(20, 205, 70), blue=(35, 75, 245), purple=(140, 40, 200),
                 pink=(255, 120, 205), white=(245, 245, 245))
# Mean colour of each stuff texture; also its palette entry for label visualisation.
STUFF_RGB = dict(grass=(70, 125, 45), sky=(130, 180, 230), water=(30, 85, 135),
                 sand=(215, 190, 135), brick=(160, 65, 45), wood=(150, 100, 55))

PATTERNS = ('solid', 'stripes', 'dots', 'checker', 'zigzag')
# Adjective of each pattern in captions and referring expressions.
PATTERN_WORDS = dict(solid='plain', stripes='striped', dots='dotted', checker='checkered',
                     zigzag='zigzag')
SHAPES = ('circle', 'square', 'triangle', 'star', 'heart', 'ring', 'cross', 'diamond')
SHAPE_PLURALS = {s: s + ('es' if s.endswith('s') else 's') for s in SHAPES}
SIZES = ('small', 'large')
# Side of an object's square frame as a fraction of the image side.
SIZE_RANGES = ((0.14, 0.22), (0.28, 0.45))
# 3x3 grid of positions, from an object's centre.
POSITIONS = ('top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom',
             'bottom right')

NOVEL_CLASSES = ('pink', 'purple')
HELD_OUT_COMBOS = (('red', 'dots'), ('blue', 'stripes'), ('yellow', 'checker'))

LABELED_SPLITS = ('train', 'val', 'test', 'novel')
SPLITS = (*LABELED_SPLITS, 'clip_train', 'unlabeled')


@dataclass(frozen=True)
class SceneWorldSpec:
    """Everything that decides what a scene may contain.

    Args:
        stuff_classes: Background texture classes (labels 1..len).
        thing_classes: Object colour classes (labels after the stuff ones).
        thing_rgb: RGB of each thing class, in ``thing_classes`` order.
        patterns / shapes / sizes: Attribute vocabularies.
        size_ranges: ``(lo, hi)`` object side as a fraction of the image side, per size.
        novel_classes: Thing classes that only the ``novel`` and ``clip_train`` splits contain.
        held_out_combos: ``(colour, pattern)`` pairs that only ``novel`` and ``unlabeled``
            contain.
        min_objects / max_objects: Objects drawn per scene (before occlusion drops some).
        min_visible_fraction / min_visible_pixels: An object less visible than either after
            occlusion is dropped (not drawn, not annotated).
        brightness_jitter: Relative per-object brightness jitter.
        two_stuff_prob: Chance of a second stuff class below a wavy horizon.
        novel_combo_prob: In ``novel`` scenes, chance that the forced novel object is a
            held-out combination rather than a novel colour.
    """

    stuff_classes: tuple[str, ...] = STUFF_CLASSES
    thing_classes: tuple[str, ...] = THING_CLASSES
    thing_rgb: tuple[tuple[int, int, int], ...] = tuple(THING_RGB[c] for c in THING_CLASSES)
    patterns: tuple[str, ...] = PATTERNS
    shapes: tuple[str, ...] = SHAPES
    sizes: tuple[str, ...] = SIZES
    size_ranges: tuple[tuple[float, float], ...] = SIZE_RANGES
    novel_classes: tuple[str, ...] = NOVEL_CLASSES
    held_out_combos: tuple[tuple[str, str], ...] = HELD_OUT_COMBOS
    min_objects: int = 1
    max_objects: int = 4
    min_visible_fraction: float = 0.2
    min_visible_pixels: int = 12
    brightness_jitter: float = 0.1
    two_stuff_prob: float = 0.3
    novel_combo_prob: float = 0.5

    def __post_init__(self) -> None:
        if not set(self.novel_classes) <= set(self.thing_classes):
            raise ValueError(f'novel_classes {self.novel_classes} must be thing classes.')
        for colour, pattern in self.held_out_combos:
            if colour not in self.base_colours or pattern not in self.patterns:
                raise ValueError(f'held-out combination ({colour}, {pattern}) needs a base '
                                 'colour and a known pattern.')
        if len(self.thing_rgb) != len(self.thing_classes):
            raise ValueError('thing_rgb needs one colour per thing class.')
        if len(self.size_ranges) != len(self.sizes):
            raise ValueError('size_ranges needs one range per size.')

    @property
    def classes(self) -> tuple[str, ...]:
        """Semantic classes, stuff then things; label value = index + 1."""
        return self.stuff_classes + self.thing_classes

    @property
    def base_colours(self) -> tuple[str, ...]:
        """Thing classes that the labelled train/val/test splits may contain."""
        return tuple(c for c in self.thing_classes if c not in self.novel_classes)

    @property
    def palette(self) -> list[list[int]]:
        """One RGB per class in :attr:`classes` order (stuff: texture mean; things: colour)."""
        stuff = [list(STUFF_RGB.get(s, (128, 128, 128))) for s in self.stuff_classes]
        return stuff + [list(rgb) for rgb in self.thing_rgb]

    def label_of(self, name: str) -> int:
        """Label-map value of a class name (index + 1; 0 is unlabelled)."""
        return self.classes.index(name) + 1

    def category_id(self, colour: str) -> int:
        """COCO category id of a thing class (1..len(thing_classes))."""
        return self.thing_classes.index(colour) + 1

    def rgb(self, colour: str) -> tuple[int, int, int]:
        return self.thing_rgb[self.thing_classes.index(colour)]

    def is_novel(self, colour: str, pattern: str) -> bool:
        """Whether an object may only appear in the ``novel`` (and ``unlabeled``) split."""
        return colour in self.novel_classes or (colour, pattern) in self.held_out_combos

    def allowed_colours(self, split: str) -> tuple[str, ...]:
        """Thing colours that scenes of ``split`` may contain."""
        _check_split(split)
        return self.base_colours if split in ('train', 'val', 'test') else self.thing_classes

    def allows(self, colour: str, pattern: str, split: str) -> bool:
        """Whether an object of this colour and pattern may appear in ``split``."""
        if colour not in self.allowed_colours(split):
            return False
        return split in ('novel', 'unlabeled') or (colour, pattern) not in self.held_out_combos

    def allowed_patterns(self, colour: str, split: str) -> tuple[str, ...]:
        return tuple(p for p in self.patterns if self.allows(colour, p, split))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; expected one of {SPLITS}.')


DEFAULT_SPEC = SceneWorldSpec()
