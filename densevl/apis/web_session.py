"""What the web demo's page runs (``demo/web_demo.py``), without Gradio: the cache of loaded
models, each model's own settings, and one task on one image as pictures, a legend and notes.

Nothing here imports Gradio; the page passes a ``progress(fraction, description)`` callback.
"""
from __future__ import annotations

import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..demo_support import (
    best_detections,
    class_palette,
    contrasts_with_others,
    ground_lowering_threshold,
    label_map,
    pixel_shares,
    split_texts,
)
from ..visualization import draw_grounding, draw_score_map, make_palette
from .image_io import load_image

__all__ = ['DEFAULT_DETECTOR', 'DEFAULT_MODEL', 'DemoInputError', 'LegendEntry', 'PageResult',
           'SegControls', 'WebSession', 'read_image']

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = 'clip-synthetic-tiny'
#: The open-vocabulary Faster R-CNN of the proving ground: any words, and it builds offline (its
#: CLIP is the packaged tiny one); without a checkpoint its heads are random.
DEFAULT_DETECTOR = 'configs/ovdet/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py'
#: Longer image sides are downscaled (with a note): the page is a demo, not a batch tool.
MAX_SIDE = 1280
#: Side of the heat maps of the gallery.
GALLERY_SIDE = 320
#: Retrieved archive images shown per ReCo word.
MAX_RETRIEVED = 8
CACHE_SIZE = 4

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, description: str) -> None:
    logger.info('%3.0f%% %s', 100 * fraction, description)


class DemoInputError(ValueError):
    """A mistake in what the page was given; the message says what to do instead."""


@dataclass(frozen=True)
class SegControls:
    """The settings the page shows for a segmentation model, at the model's own values.

    Attributes:
        kind: ``'clip'`` (a CLIP name: dense mode and windows can be changed), ``'ovseg'``,
            ``'reco'`` or ``'config'`` (any other config: run as it records).
        mode: the dense mode (None: the model has none).
        slide: ``(crop, stride)`` of the sliding windows (the first side), or None.
        bg_threshold: the background threshold (the protocol's ``prob_threshold``).
        ensemble_weight, mask_threshold: OVSeg's λ and mask threshold (None for the others).
        short_side: images are resized to this short side first (None: as given).
        notes: what the page says about the model (random weights, the tiny synthetic CLIP).
    """

    kind: str
    mode: str | None
    slide: tuple[int, int] | None
    bg_threshold: float
    ensemble_weight: float | None = None
    mask_threshold: float | None = None
    short_side: int | None = None
    notes: tuple[str, ...] = ()


@dataclass
class LegendEntry:
    """One row of the page's legend: a name, its colour in the pictures, what it covers."""

    name: str
    colour: tuple[int, int, int]
    detail: str = ''


@dataclass
class PageResult:
    """One task's answer as the page shows it.

    Attributes:
        image: the main picture (overlay with its legend, boxes, or the grounding figure).
        legend: the legend rows.
        gallery: ``(picture, caption)`` pairs: per-class heat maps, or the grounding heat map.
        table: a markdown table of the numbers (shares, detections, candidates).
        notes: what the output means (random weights, the tiny model, downscaling...).
        retrieved: ReCo only: ``(archive image, word)`` pairs the references came from.
    """

    image: np.ndarray
    legend: list[LegendEntry]
    gallery: list[tuple[np.ndarray, str]] = field(default_factory=list)
    table: str = ''
    notes: list[str] = field(default_factory=list)
    retrieved: list[tuple[np.ndarray, str]] = field(default_factory=list)


def read_image(path: str | Path | None, max_side: int = MAX_SIDE) -> tuple[np.ndarray, list[str]]:
    """The uploaded file as RGB ``(H, W, 3)`` uint8, downscaled to ``max_side`` with a note.

    Raises:
        DemoInputError: no image given, or one too large for Pillow to open safely.
        ValueError, FileNotFoundError: the library's own messages (:func:`load_image`) for a file
            that is not a readable image.
    """
    if path is None or not str(path).strip():
        raise DemoInputError('no image: upload one, or pick an example below the image box')
    notes = []
    try:
        with Image.open(path) as pil:
            width, height = pil.size
            if max(width, height) > max_side:
                pil.thumbnail((max_side, max_side), Image.LANCZOS)   # decodes JPEG reduced
                notes.append(f'The image ({width}×{height} px) was downscaled to '
                             f'{pil.size[0]}×{pil.size[1]} px for the page (longest side '
                             f'{max_side} px); the API takes it at full size.')
            return load_image(pil), notes
    except Image.DecompressionBombError as err:
        raise DemoInputError(f'{Path(path).name}: {err}. Downscale the image before uploading '
                             'it.') from err
    except (UnidentifiedImageError, OSError):
        return load_image(path), []   # raises the library's message for this file


def _weights(value: str | None) -> str | None:
    value = (value or '').strip()
    return value or None


def _resolve(path: str | None) -> str | None:
    """A config or checkpoint path as typed, else the same path under the repository root (the
    page may be served from another folder)."""
    if not path:
        return path
    if not Path(path).exists() and (ROOT / path).exists():
        return str(ROOT / path)
    return path


def _is_config(model: str) -> bool:
    return model.endswith('.py')


def _frozen(mapping: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in mapping.items()))


def _tiny_synthetic_note(name: str) -> str | None:
    if 'clip-synthetic-tiny' not in name:
        return None
    from ..datasets.synthetic import CLASSES

    return ('**The embedded tiny CLIP** knows only the synthetic scene world it was trained on: '
            'scenes of coloured shapes on a background, and the words '
            f'*{", ".join(CLASSES)}*. On those scenes (the examples) with those words its maps '
            'are real predictions; on photographs, or for any other word, its output is not '
            'meaningful. Give real CLIP weights (e.g. model `ViT-B-16`, weights a local '
            '`ViT-B-16.pt`) for photographs.')


def _random_note(what: str, fix: str) -> str:
    return (f'**RANDOM WEIGHTS: the {what} is MEANINGLESS.** It only shows that the pipeline '
            f'runs end to end. {fix}')


def _found_checkpoints(config: str) -> list[str]:
    """``tools/train.py`` checkpoints of ``config`` already in ``work_dirs/`` (newest first):
    its default work dir, or a seed's folder of the proving-ground procedure
    (``work_dirs/seed{S}/``, tools/quality_runs.py)."""
    stem = Path(config).stem
    found = sorted([*(ROOT / 'work_dirs').glob(f'{stem}*/iter_*.pth'),
                    *(ROOT / 'work_dirs').glob(f'seed*/{stem}/iter_*.pth')],
                   key=lambda p: p.stat().st_mtime, reverse=True)
    return [str(p.relative_to(ROOT)) for p in found[:3]]


def _detector_fix(config: str) -> str:
    fix = (f'Train it with `.venv/bin/python tools/train.py {config}` (it writes '
           f'`work_dirs/{Path(config).stem}/iter_*.pth`) and give that checkpoint as the '
           'detector weights.')
    found = _found_checkpoints(config)
    if found:
        fix += ' Checkpoints found here: ' + ', '.join(f'`{p}`' for p in found) + '.'
    return fix


def _small(image: np.ndarray, side: int = GALLERY_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def _first_name(name: str) -> str:
    return name.split(';')[0].strip()


@contextmanager
def _ovseg_ensemble(segmenter, defaults: SegControls, ensemble: dict):
    """OVSeg's λ and mask threshold changed to ``ensemble``'s for one call (the cached model
    keeps its own; :meth:`OVSegSegmentor.set_ensemble` checks the values)."""
    if not ensemble:
        yield
        return
    own = dict(ensemble_weight=defaults.ensemble_weight, mask_threshold=defaults.mask_threshold)
    segmenter.set_ensemble(**{**own, **ensemble})
    try:
        yield
    finally:
        segmenter.set_ensemble(**own)


class WebSession:
    """Loaded models, cached per (model, weights, settings that rebuild it), and the three tasks.

    One lock serialises loading and inference: the models are not thread-safe (their text
    caches) and the page serves one run at a time anyway.

    Args:
        device: where the models run (default cpu: the page is for trying things out).
        cache_size: models kept loaded; the least recently used one is dropped first.
    """

    def __init__(self, device: str = 'cpu', cache_size: int = CACHE_SIZE) -> None:
        self.device = device
        self.cache_size = cache_size
        self._models: OrderedDict = OrderedDict()
        self._lock = threading.RLock()

    # -- the model cache ------------------------------------------------------------------------

    def _cached(self, key: tuple, build: Callable[[], object], what: str, progress: Progress):
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            progress(0.05, f'loading {what} (first use; cached afterwards)')
            model = build()
            self._models[key] = model
            while len(self._models) > self.cache_size:
                self._models.popitem(last=False)
            return model

    def seg_inferencer(self, model: str, weights: str | None = None, *,
                       changes: dict | None = None, progress: Progress = _no_progress):
        """The :class:`OpenVocabSegInferencer` of ``model`` with protocol ``changes`` (a CLIP
        name), loaded once."""
        from .seg_inferencer import OpenVocabSegInferencer

        model, weights = (model or '').strip(), _weights(weights)
        if not model:
            raise DemoInputError('no model: choose one (the default is clip-synthetic-tiny)')
        model = _resolve(model) if _is_config(model) else model
        weights = _resolve(weights) if _is_config(model) else weights
        changes = dict(changes or {})
        key = ('seg', model, weights, _frozen(changes))

        def build():
            inferencer = OpenVocabSegInferencer(model, weights=weights, device=self.device,
                                                **changes)
            if type(inferencer.segmenter).__name__ == 'ReCoSegmentor':
                progress(0.2, "loading ReCo's three models and its retrieval index")
                inferencer.segmenter.core    # noqa: B018 - loads them now, not mid-run
            return inferencer

        return self._cached(key, build, f'{Path(model).name} on {self.device}', progress)

    def det_inferencer(self, config: str, weights: str | None = None,
                       progress: Progress = _no_progress):
        """The :class:`OpenVocabDetInferencer` of a detection config, loaded once."""
        from .det_inferencer import OpenVocabDetInferencer

        config, weights = _resolve((config or '').strip()), _resolve(_weights(weights))
        if not config:
            raise DemoInputError(f'no detector: give a detection config, e.g. {DEFAULT_DETECTOR}')
        return self._cached(('det', config, weights),
                            lambda: OpenVocabDetInferencer(config, weights=weights,
                                                           device=self.device),
                            f'the detector {Path(config).name}', progress)

    def grounding_inferencer(self, model: str, weights: str | None, detector: str,
                             detector_weights: str | None, progress: Progress = _no_progress):
        """A :class:`GroundingInferencer` whose detector slot holds the cached detector (its
        ``category_from`` is set per call)."""
        from .grounding_inferencer import GroundingInferencer

        model, weights = (model or '').strip(), _weights(weights)
        if _is_config(model):
            raise DemoInputError('grounding takes a CLIP name as the model (its heat map comes '
                                 f'from a CLIP), got the config {model}; choose e.g. '
                                 f'{DEFAULT_MODEL}')
        det = self.det_inferencer(detector, detector_weights, progress)
        key = ('ground', model, weights, id(det))
        return self._cached(key, lambda: GroundingInferencer(
            model, weights, detector=det, device=self.device),
            f'the grounding CLIP {model}', progress)

    # -- each model's own settings --------------------------------------------------------------

    def seg_controls(self, model: str, weights: str | None = None,
                     progress: Progress = _no_progress) -> SegControls:
        """The model's own settings (its :class:`InferenceProtocol`, OVSeg's λ and mask
        threshold after its demo preset), read from the model as loaded."""
        inferencer = self.seg_inferencer(model, weights, progress=progress)
        protocol, segmenter = inferencer.protocol, inferencer.segmenter
        name = type(segmenter).__name__
        kind = {'ZeroShotSegmenter': 'clip', 'OVSegSegmentor': 'ovseg',
                'ReCoSegmentor': 'reco'}.get(name, 'config')
        slide = (protocol.slide.crop[0], protocol.slide.stride[0]) \
            if protocol.slide is not None and protocol.slide.crop is not None else None
        notes = [n for n in [_tiny_synthetic_note(model)] if n]
        if inferencer.is_random_weights:
            fix = ('Give a checkpoint of this config (tools/train.py writes '
                   '`work_dirs/<config>/iter_*.pth`).' if _is_config(model) else
                   'Give the CLIP weights: an open_clip tag (downloads, needs the network) or a '
                   'local weights file.')
            notes.insert(0, _random_note('segmentation', fix))
        if inferencer.preset:
            notes.append(f"{name} runs with the reference demo's preset " + ', '.join(
                f'`{k}={v}`' for k, v in inferencer.preset.items()) + '.')
        return SegControls(
            kind=kind, mode=protocol.mode, slide=slide, bg_threshold=protocol.prob_threshold,
            ensemble_weight=getattr(segmenter, 'ensemble_weight', None) if kind == 'ovseg'
            else None,
            mask_threshold=getattr(segmenter, 'mask_threshold', None) if kind == 'ovseg'
            else None,
            short_side=protocol.short_side, notes=tuple(notes))

    # -- the tasks ------------------------------------------------------------------------------

    def segment(self, image_path, words: str, model: str, weights: str | None = None, *,
                mode: str | None = None, slide: tuple[int, int] | None | str = 'default',
                bg_threshold: float | None = None, ensemble_weight: float | None = None,
                mask_threshold: float | None = None,
                progress: Progress = _no_progress) -> PageResult:
        """Segment the image into ``words`` (``,`` between classes, ``;`` between synonyms).

        Settings left None (``slide='default'``) or equal to the model's own keep the model's.
        """
        image, notes = read_image(image_path)     # a bad upload fails before any model loads
        defaults = self.seg_controls(model, weights, progress)
        changes, ensemble = {}, {}
        if defaults.kind == 'clip':
            if mode and mode != defaults.mode:
                changes['mode'] = mode
            if slide != 'default' and slide != defaults.slide:
                changes['slide'] = None if slide is None else dict(crop=int(slide[0]),
                                                                    stride=int(slide[1]))
        elif defaults.kind == 'ovseg':    # read at inference: set per call, not rebuilt
            for key, value in (('ensemble_weight', ensemble_weight),
                               ('mask_threshold', mask_threshold)):
                if value is not None and value != getattr(defaults, key):
                    ensemble[key] = float(value)
        inferencer = self.seg_inferencer(model, weights, changes=changes, progress=progress)
        classes = split_texts(words or '')
        self._prepare_words(inferencer, classes, progress)
        progress(0.8, 'segmenting')
        palette = class_palette(classes)
        with self._lock, _ovseg_ensemble(inferencer.segmenter, defaults, ensemble):
            out = inferencer(image, texts=classes, return_scores=True,
                             bg_threshold=bg_threshold, palette=palette)
        prediction = out['predictions'][0]
        shares = pixel_shares(label_map(prediction), classes)
        legend = [LegendEntry(_first_name(name), tuple(int(c) for c in palette[i]),
                              f'{100 * share:.1f} %') for i, (name, share) in
                  enumerate(shares[:-1])]
        legend.append(LegendEntry('(background)', (255, 255, 255), f'{100 * shares[-1][1]:.1f} %'))
        progress(0.9, 'drawing the heat maps')
        small = _small(image)
        gallery = [(draw_score_map(small, scores.numpy(), title=_first_name(name), vmin=0.0,
                                   vmax=1.0), f'{_first_name(name)}: class probability')
                   for name, scores in zip(classes, prediction.scores)]
        table = '| class | pixels |\n|---|---|\n' + '\n'.join(
            f'| {name} | {100 * share:.1f} % |' for name, share in shares)
        notes = list(defaults.notes) + notes
        if changes or ensemble:
            notes.append('Settings changed from the model\'s own: ' + ', '.join(
                f'`{k}={v}`' for k, v in {**changes, **ensemble}.items()) + '.')
        if len(classes) == 1 and contrasts_with_others(inferencer.segmenter):
            notes.append(f"One class: {classes[0]!r} is contrasted with 'others', whose pixels "
                         'are background.')
        retrieved = self._retrieved(inferencer, classes, notes)
        return PageResult(out['visualization'][0], legend, gallery, table, notes, retrieved)

    def _prepare_words(self, inferencer, classes: Sequence[str], progress: Progress) -> None:
        """The slow first use of new words, one step at a time so the page shows it: the text
        tower's embeddings, or ReCo's retrieval and co-segmentation of each word."""
        if not classes:
            return
        segmenter = inferencer.segmenter
        with self._lock:
            if type(segmenter).__name__ == 'ReCoSegmentor':
                core = segmenter.core
                queries = core.vocabulary(classes).queries
                for i, query in enumerate(queries):
                    progress(0.3 + 0.5 * i / len(queries),
                             f'ReCo: retrieving and co-segmenting the references of {query!r} '
                             '(seconds for a new word; cached afterwards)')
                    core.references.reference(query)
            elif hasattr(segmenter, 'vocabulary'):
                progress(0.3, 'encoding the words with the text tower (cached afterwards)')
                segmenter.vocabulary(classes)

    @staticmethod
    def _retrieved(inferencer, classes: Sequence[str],
                   notes: list[str]) -> list[tuple[np.ndarray, str]]:
        """ReCo: the first archive images each word's reference was co-segmented from."""
        if type(inferencer.segmenter).__name__ != 'ReCoSegmentor':
            return []
        references = inferencer.segmenter.core.references
        shown, missing = [], 0
        for query in inferencer.segmenter.core.vocabulary(classes).queries:
            for path in references.retrieve(references.settings.resolve(query))[:MAX_RETRIEVED]:
                try:
                    shown.append((_small(load_image(path), 128), query))
                except (FileNotFoundError, ValueError):
                    missing += 1
        if missing:
            notes.append(f'{missing} retrieved archive images are missing or unreadable (the '
                         'index lists them; its image folder moved?), so they are not shown.')
        return shown

    def detect(self, image_path, words: str, detector: str, detector_weights: str | None = None,
               *, score_threshold: float | None = None,
               progress: Progress = _no_progress) -> PageResult:
        """Detect ``words`` (empty: the detector's own classes) with a detection config."""
        image, notes = read_image(image_path)     # a bad upload fails before any model loads
        inferencer = self.det_inferencer(detector, detector_weights, progress)
        texts = split_texts(words or '') or None
        if score_threshold is None:
            score_threshold = detection_score_threshold()
        progress(0.6, 'detecting')
        with self._lock:
            out = inferencer(image, texts=texts, score_threshold=score_threshold)
        prediction = out['predictions'][0]
        names = prediction.texts
        palette = make_palette(len(names))
        counts = np.bincount(prediction.labels.numpy(), minlength=len(names))
        legend = [LegendEntry(_first_name(name), tuple(int(c) for c in palette[i]),
                              f'{counts[i]} box{"es" if counts[i] != 1 else ""}')
                  for i, name in enumerate(names)]
        rows = [f'| {_first_name(name)} | {score:.2f} | {", ".join(map(str, box))} |'
                for name, score, box in best_detections(prediction)]
        table = (f'{len(prediction.scores)} detections scoring ≥ {score_threshold:g}'
                 + (' (the best 20)' if len(rows) < len(prediction.scores) else '')
                 + '\n\n| class | score | box x1, y1, x2, y2 |\n|---|---|---|\n' + '\n'.join(rows))
        if texts is None:
            notes.append("No words given: the detector's own classes (" + ', '.join(names)
                         + ').')
        if inferencer.is_random_weights:
            notes.insert(0, _random_note('detector', _detector_fix(detector)))
        if 'clip-synthetic-tiny' in Path(detector).name:
            notes.append(_tiny_synthetic_note(detector))
        return PageResult(out['visualization'][0], legend, [], table, notes)

    def ground(self, image_path, words: str, model: str, weights: str | None, detector: str,
               detector_weights: str | None = None, *, category_from: str | None = None,
               progress: Progress = _no_progress) -> PageResult:
        """Find the object the referring expression ``words`` names (GroundVLP: the CLIP heat
        map x the detector's boxes; the detector's threshold lowered until it finds one)."""
        category_from = category_from or grounding_category_from()
        image, notes = read_image(image_path)     # a bad upload fails before any model loads
        inferencer = self.grounding_inferencer(model, weights, detector, detector_weights,
                                               progress)
        query = (words or '').strip()
        progress(0.6, 'grounding: the heat map and the detector')
        with self._lock:
            inferencer.category_from = category_from
            prediction, threshold = ground_lowering_threshold(inferencer, image, query)
        figure = draw_grounding(image, prediction.heat_map.numpy(),
                                prediction.candidates.numpy(),
                                prediction.candidate_scores.numpy(), prediction.box.numpy(),
                                title=query)
        source = ('class-agnostic proposals (no box of the category)' if prediction.fallback
                  else f"the detector's boxes of {prediction.category!r} scoring ≥ "
                       f'{threshold:.3g}')
        legend = [LegendEntry(f'chosen box (score {prediction.score:.3g})', (230, 30, 30)),
                  LegendEntry(f'{len(prediction.candidates)} candidate'
                              f'{"s" if len(prediction.candidates) != 1 else ""}',
                              (200, 200, 200), source)]
        order = np.argsort(-prediction.candidate_scores.numpy())[:10]
        table = (f'subject **{prediction.subject}** → category **{prediction.category}**\n\n'
                 '| candidate | fused score | box x1, y1, x2, y2 |\n|---|---|---|\n' + '\n'.join(
                     f'| {"chosen" if i == order[0] else i} | '
                     f'{float(prediction.candidate_scores[i]):.3g} | '
                     f'{", ".join(str(round(v)) for v in prediction.candidates[i].tolist())} |'
                     for i in order))
        if inferencer.clip.random_weights:
            notes.insert(0, _random_note('answer', 'Give the CLIP weights: an open_clip tag '
                                         '(downloads) or a local weights file.'))
        elif getattr(inferencer.detector, 'is_random_weights', False):
            notes.insert(0, '**The detector has RANDOM WEIGHTS: its candidate boxes are random**, '
                         'so the chosen box is only the random box the heat map favours (the '
                         "heat map itself is the CLIP's real output). " + _detector_fix(detector))
        tiny = _tiny_synthetic_note(model)
        if tiny:
            notes.append(tiny)
        # the figure holds the heat map beside the boxes: no gallery
        return PageResult(figure, legend, [], table, notes)


def detection_score_threshold() -> float:
    """:class:`OpenVocabDetInferencer`'s own default score threshold."""
    from .det_inferencer import OpenVocabDetInferencer

    return inspect.signature(OpenVocabDetInferencer.__call__).parameters[
        'score_threshold'].default


def grounding_category_from() -> str:
    """:class:`GroundingInferencer`'s own default of ``category_from``."""
    from .grounding_inferencer import GroundingInferencer

    return inspect.signature(GroundingInferencer.__init__).parameters['category_from'].default
