"""A synthetic scene world in real dataset formats: the offline proving ground of densevl.

Plain numpy/Pillow (no torch, no OpenMMLab). See :mod:`.world` for the vocabulary and the
novel-split rules, :func:`sample_scene` for one scene, :func:`write_dataset` for the on-disk
ADE20K / COCO / RefCOCO layouts and :func:`iter_caption_batches` for CLIP training batches.
"""
from .refer import candidate_expressions, referring_expressions, resolve_expression
from .scene import Scene, SceneObject, caption_for, sample_scene
from .world import (
    CLASSES,
    DEFAULT_SPEC,
    HELD_OUT_COMBOS,
    LABELED_SPLITS,
    NOVEL_CLASSES,
    PATTERN_WORDS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    SIZES,
    SPLITS,
    STUFF_CLASSES,
    THING_CLASSES,
    SceneWorldSpec,
)
from .writer import IMAGE_ID_BASE, iter_caption_batches, scene_rng, write_dataset

__all__ = [
    'CLASSES', 'DEFAULT_SPEC', 'HELD_OUT_COMBOS', 'IMAGE_ID_BASE', 'LABELED_SPLITS',
    'NOVEL_CLASSES', 'PATTERNS', 'PATTERN_WORDS', 'POSITIONS', 'SHAPES', 'SIZES', 'SPLITS',
    'STUFF_CLASSES', 'THING_CLASSES', 'Scene', 'SceneObject', 'SceneWorldSpec',
    'candidate_expressions', 'caption_for', 'iter_caption_batches', 'referring_expressions',
    'resolve_expression', 'sample_scene', 'scene_rng', 'write_dataset'
]
