"""What the command-line demo (``demo/image_demo.py``) and the web demo (``demo/web_demo.py``)
share: the vocabulary syntax, the synthetic scenes, grounding's threshold search and the plain
summaries of a result."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch-free at import: the CLI demo parses its arguments first
    from .apis.grounding_inferencer import GroundingInferencer, GroundingPrediction
    from .apis.image_io import ImageInput

__all__ = ['SCENE_SIZE', 'best_detections', 'class_palette', 'contrasts_with_others',
           'format_detections', 'format_share_table', 'ground_lowering_threshold', 'label_map',
           'pixel_shares', 'render_scene', 'split_texts']

#: Side of the synthetic scenes the demos generate (the world's design size is 64).
SCENE_SIZE = 256


def split_texts(texts: str) -> list[str]:
    """``'cat; kitten, dog,,grass'`` -> ``['cat;kitten', 'dog', 'grass']``: classes separated by
    ``,``, synonyms of one class by ``;``."""
    classes = []
    for item in texts.split(','):
        synonyms = [s.strip() for s in item.split(';') if s.strip()]
        if synonyms:
            classes.append(';'.join(synonyms))
    return classes


def render_scene(seed: int, size: int = SCENE_SIZE):
    """Synthetic scene ``seed`` of the test split (what ``image_demo.py --scene SEED`` shows).

    Returns:
        a :class:`~densevl.datasets.synthetic.scene.Scene` (``image`` ``(size, size, 3)`` uint8,
        ``caption``, ``stuff``, ``objects``).
    """
    from .datasets.synthetic import sample_scene

    return sample_scene(np.random.default_rng(seed), size=size, split='test')


def class_palette(classes: Sequence[str]) -> np.ndarray:
    """``(K, 3)`` uint8 colours: the synthetic world's own (grass green, red red...) when every
    class is one of its words (the first synonym counts), else the library's palette."""
    from .datasets.synthetic import CLASSES, DEFAULT_SPEC
    from .visualization import make_palette

    names = [c.split(';')[0].strip() for c in classes]
    if names and all(n in CLASSES for n in names):
        return np.asarray([DEFAULT_SPEC.palette[CLASSES.index(n)] for n in names], np.uint8)
    return make_palette(len(classes))


def pixel_shares(labels: np.ndarray, classes: Sequence[str]) -> list[tuple[str, float]]:
    """Share of the image each class covers, background (negative labels) last."""
    total = max(labels.size, 1)
    rows = [(name, float((labels == i).sum()) / total) for i, name in enumerate(classes)]
    rows.append(('(background)', float((labels < 0).sum()) / total))
    return rows


def format_share_table(rows: list[tuple[str, float]]) -> str:
    width = max(len('class'), *(len(name) for name, _ in rows))
    lines = [f'{"class":<{width}}  pixels', f'{"-" * width}  ------']
    lines += [f'{name:<{width}}  {100 * share:5.1f}%' for name, share in rows]
    return '\n'.join(lines)


def label_map(prediction) -> np.ndarray:
    """``(H, W)`` int labels from a prediction's ``pred_sem_seg`` (PixelData or tensor)."""
    sem_seg = prediction.pred_sem_seg
    data = getattr(sem_seg, 'data', sem_seg)
    if hasattr(data, 'cpu'):
        data = data.cpu().numpy()
    return np.asarray(data).reshape(np.shape(data)[-2:])


def best_detections(prediction, limit: int = 20) -> list[tuple[str, float, list[int]]]:
    """The first ``limit`` detections (best first) as (class entry, score, rounded xyxy box)."""
    rows = zip(prediction.boxes.tolist(), prediction.labels.tolist(), prediction.scores.tolist())
    return [(prediction.texts[label], score, [round(v) for v in box])
            for box, label, score in list(rows)[:limit]]


def format_detections(prediction, limit: int = 20) -> str:
    """One line per detection (best first): class, score, box."""
    return '\n'.join([f'{len(prediction.scores)} detections'] + [
        f'  {name:<20} {score:.2f}  {box}' for name, score, box in
        best_detections(prediction, limit)])


def contrasts_with_others(segmenter) -> bool:
    """Whether the model appends ``'others'`` to a one-name vocabulary (OVSeg)."""
    try:
        from .models.segmentors.ovseg_segmentor import OVSegSegmentor
    except ImportError:    # no OpenMMLab: no OVSeg either
        return False
    return isinstance(segmenter, OVSegSegmentor)


def ground_lowering_threshold(inferencer: GroundingInferencer, image: ImageInput, query: str,
                              category: str | None = None,
                              ) -> tuple[GroundingPrediction, float]:
    """GroundVLP's answer for ``query``, the detector's threshold lowered until it finds a box.

    The threshold starts at GroundVLP's (0.3, or 0.15 with the ground-truth ``category``) and is
    halved (down to 0.01) until the category has a box; below that the class-agnostic proposals
    are the candidates (``prediction.fallback``).

    Returns:
        the prediction and the threshold it was made with.
    """
    from .apis.grounding_inferencer import GT_SCORE_THRESHOLD, PREDICTED_SCORE_THRESHOLD
    categories = [category] if category else None
    threshold = GT_SCORE_THRESHOLD if categories else PREDICTED_SCORE_THRESHOLD
    while True:
        prediction = inferencer(image, [query], gt_categories=categories,
                                score_threshold=threshold)['predictions'][0]
        if not prediction.fallback or prediction.category is None or threshold < 0.01:
            return prediction, threshold
        threshold /= 2
