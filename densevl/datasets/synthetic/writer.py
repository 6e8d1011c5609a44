"""Write the synthetic world to disk in the layouts of real datasets, and stream CLIP batches.

Layout under ``root`` (``<split>`` in ``train``, ``val``, ``test``, ``novel``)::

    classes.txt                                  14 classes, one a line (label = line number)
    README.md                                    splits, novel rules, id scheme
    images/<split>/<split>_000000.jpg            ADE20K-style images (JPEG q95, 4:4:4)
    annotations/<split>/<split>_000000.png       uint8 label maps, 0 = unlabelled, 1..14
    coco/instances_<split>.json                  COCO instances (things, ids 1..8, RLE masks)
    coco/captions_<split>.json                   COCO captions
    refcoco/refs(synthetic).p                    RefCOCO refs (pickle) for every split
    refcoco/instances.json                       every split's images/annotations, same ids
    unlabeled/images/unlabeled_000000.jpg        retrieval gallery (no split rules)
    unlabeled/metadata.json                      its captions and objects, for scoring only

Every scene is drawn from its own generator seeded by ``(seed, split, index)``, so a split's
images do not depend on the other splits' counts, and the first ``n`` images of a split do not
depend on its own count either.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .scene import Scene, SceneObject, caption_for, referring_expressions, sample_scene
from .world import DEFAULT_SPEC, LABELED_SPLITS, PATTERN_WORDS, SceneWorldSpec

__all__ = ['IMAGE_ID_BASE', 'iter_caption_batches', 'scene_rng', 'write_dataset']

_SPLIT_SEED_IDS = dict(train=1, val=2, test=3, novel=4, unlabeled=5, clip_train=6)
# Image ids are IMAGE_ID_BASE[split] + index; annotation id = 10 * image id + object index;
# ref id = annotation id; sentence id = 10 * annotation id + sentence index.
IMAGE_ID_BASE = dict(train=1_000_000, val=2_000_000, test=3_000_000, novel=4_000_000)
_MAX_PER_SPLIT = 1_000_000
_JPEG = dict(quality=95, subsampling=0)  # 4:4:4: chroma subsampling smears 10-px objects


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator that draws scene ``index`` of ``split`` for dataset seed ``seed``."""
    return np.random.default_rng([seed, _SPLIT_SEED_IDS[split], index])


class _Progress:
    """mmengine's ProgressBar when available, else a line every 10%."""

    def __init__(self, total: int, title: str, enabled: bool) -> None:
        self.total, self.done, self.title, self.bar = total, 0, title, None
        self.enabled = enabled and total > 0
        if self.enabled:
            print(f'{title}: {total} images', flush=True)
            try:
                from mmengine.utils import ProgressBar
                self.bar = ProgressBar(total)
            except ImportError:
                pass

    def update(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update()
            if self.done == self.total:
                print()
        elif self.done == self.total or self.done % max(1, self.total // 10) == 0:
            print(f'  {self.title}: {self.done}/{self.total}', flush=True)


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def _object_record(obj: SceneObject) -> dict:
    return dict(colour=obj.colour, pattern=obj.pattern, shape=obj.shape, size=obj.size_name,
                position=obj.position, bbox=list(obj.bbox), area=obj.area)


def _dump_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, separators=(',', ':'))


def _categories(spec: SceneWorldSpec) -> list[dict]:
    return [dict(id=spec.category_id(c), name=c, supercategory='thing')
            for c in spec.thing_classes]


def _info(split: str, seed: int) -> dict:
    return dict(description=f'densevl synthetic scene world, split {split}', version='1.0',
                year=2026, contributor='densevl', seed=seed)


def _write_split(root: Path, split: str, count: int, size: int, seed: int, spec: SceneWorldSpec,
                 captions_per_image: int, refs_per_object: int, progress: bool,
                 all_images: list, all_anns: list, refs: list) -> None:
    img_dir, ann_dir = root / 'images' / split, root / 'annotations' / split
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    images, anns, captions = [], [], []
    bar = _Progress(count, split, progress)
    for index in range(count):
        rng = scene_rng(seed, split, index)
        scene = sample_scene(rng, spec, size=size, split=split)
        stem = f'{split}_{index:06d}'
        image_id = IMAGE_ID_BASE[split] + index
        Image.fromarray(scene.image).save(img_dir / f'{stem}.jpg', **_JPEG)
        Image.fromarray(scene.semantic, mode='L').save(ann_dir / f'{stem}.png')
        image = dict(id=image_id, file_name=f'{stem}.jpg', width=size, height=size,
                     stuff=list(scene.stuff))
        images.append(image)
        all_images.append({**image, 'file_name': f'{split}/{stem}.jpg', 'split': split})
        texts = [scene.caption] + [caption_for(scene.objects, scene.stuff, rng)
                                   for _ in range(captions_per_image - 1)]
        captions += [dict(id=10 * image_id + k, image_id=image_id, caption=t)
                     for k, t in enumerate(texts)]
        for k, obj in enumerate(scene.objects):
            anns.append(dict(id=10 * image_id + k, image_id=image_id,
                             category_id=spec.category_id(obj.colour), segmentation=_rle(obj.mask),
                             area=obj.area, bbox=list(obj.bbox), iscrowd=0,
                             attributes=dict(pattern=obj.pattern, shape=obj.shape,
                                             size=obj.size_name, position=obj.position)))
        all_anns += anns[len(anns) - len(scene.objects):]
        refs += _scene_refs(scene, rng, image_id, split, stem, spec, refs_per_object)
        bar.update()
    categories = _categories(spec)
    _dump_json(root / 'coco' / f'instances_{split}.json',
               dict(info=_info(split, seed), licenses=[], images=images, annotations=anns,
                    categories=categories))
    _dump_json(root / 'coco' / f'captions_{split}.json',
               dict(info=_info(split, seed), licenses=[], images=images, annotations=captions))


def _scene_refs(scene: Scene, rng: np.random.Generator, image_id: int, split: str, stem: str,
                spec: SceneWorldSpec, per_object: int) -> list[dict]:
    by_object: dict[int, list[str]] = {}
    for sentence, k in referring_expressions(scene, rng, per_object=per_object, spec=spec):
        by_object.setdefault(k, []).append(sentence)
    refs = []
    for k, sentences in by_object.items():
        ann_id = 10 * image_id + k
        sents = [dict(sent_id=10 * ann_id + j, sent=s, raw=s, tokens=s.split())
                 for j, s in enumerate(sentences)]
        refs.append(dict(ref_id=ann_id, ann_id=ann_id, image_id=image_id, split=split,
                         sentences=sents, sent_ids=[s['sent_id'] for s in sents],
                         category_id=spec.category_id(scene.objects[k].colour),
                         file_name=f'{split}/{stem}.jpg'))
    return refs


def _write_unlabeled(root: Path, count: int, size: int, seed: int, spec: SceneWorldSpec,
                     progress: bool) -> None:
    img_dir = root / 'unlabeled' / 'images'
    img_dir.mkdir(parents=True, exist_ok=True)
    records = []
    bar = _Progress(count, 'unlabeled', progress)
    for index in range(count):
        scene = sample_scene(scene_rng(seed, 'unlabeled', index), spec, size=size,
                             split='unlabeled')
        name = f'unlabeled_{index:06d}.jpg'
        Image.fromarray(scene.image).save(img_dir / name, **_JPEG)
        records.append(dict(file_name=name, caption=scene.caption, stuff=list(scene.stuff),
                            objects=[_object_record(o) for o in scene.objects]))
        bar.update()
    _dump_json(root / 'unlabeled' / 'metadata.json',
               dict(info=_info('unlabeled', seed), images=records))


def iter_caption_batches(rng: np.random.Generator, spec: SceneWorldSpec = DEFAULT_SPEC,
                         batch_size: int = 256, size: int = 64
                         ) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Endless batches of fresh ``clip_train`` scenes and their captions, for contrastive training.

    ``clip_train`` holds every colour (the novel ones included) but never a held-out
    (colour, pattern) combination; see :mod:`.world`.

    Shapes:
        yields ``images`` ``(batch_size, size, size, 3)`` uint8 RGB and ``batch_size`` captions.
    """
    while True:
        images = np.empty((batch_size, size, size, 3), np.uint8)
        captions = []
        for b in range(batch_size):
            scene = sample_scene(rng, spec, size=size, split='clip_train')
            images[b] = scene.image
            captions.append(scene.caption)
        yield images, captions


def write_dataset(root: str | Path, *, counts: dict[str, int], size: int = 64, seed: int = 0,
                  unlabeled: int = 0, spec: SceneWorldSpec = DEFAULT_SPEC,
                  captions_per_image: int = 3, refs_per_object: int = 3,
                  progress: bool = True) -> Path:
    """Write a synthetic dataset (see the module docstring for the layout).

    Args:
        root: Output folder (created; existing files of the same names are overwritten).
        counts: Images per labelled split, keys among ``'train'``, ``'val'``, ``'test'``,
            ``'novel'``; a missing key writes no images for that split.
        size: Image side in pixels.
        seed: Dataset seed; the same seed and arguments give byte-identical files.
        unlabeled: Images in the unlabeled retrieval gallery.
        spec: The world.
        captions_per_image: Captions per image in ``coco/captions_<split>.json``.
        refs_per_object: At most this many referring expressions per object.
        progress: Print progress.

    Returns:
        ``root`` as a :class:`~pathlib.Path`.
    """
    unknown = set(counts) - set(LABELED_SPLITS)
    if unknown:
        raise ValueError(f'unknown splits {sorted(unknown)}; expected {LABELED_SPLITS}.')
    if any(not 0 <= n < _MAX_PER_SPLIT for n in (*counts.values(), unlabeled)):
        raise ValueError(f'counts must lie in [0, {_MAX_PER_SPLIT}).')
    if not (1 <= captions_per_image <= 10 and 0 <= refs_per_object <= 10):
        raise ValueError('captions_per_image must lie in 1..10 and refs_per_object in 0..10 '
                         '(ids leave room for ten each).')
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / 'classes.txt').write_text(''.join(c + '\n' for c in spec.classes))
    all_images: list[dict] = []
    all_anns: list[dict] = []
    refs: list[dict] = []
    for split in LABELED_SPLITS:
        if counts.get(split, 0):
            _write_split(root, split, counts[split], size, seed, spec, captions_per_image,
                         refs_per_object, progress, all_images, all_anns, refs)
    (root / 'refcoco').mkdir(exist_ok=True)
    with open(root / 'refcoco' / 'refs(synthetic).p', 'wb') as f:
        pickle.dump(refs, f, protocol=4)
    _dump_json(root / 'refcoco' / 'instances.json',
               dict(info=_info('all', seed), licenses=[], images=all_images,
                    annotations=all_anns, categories=_categories(spec)))
    if unlabeled:
        _write_unlabeled(root, unlabeled, size, seed, spec, progress)
    (root / 'README.md').write_text(_readme(counts, unlabeled, size, seed, spec,
                                                  captions_per_image))
    return root


def _readme(counts: dict[str, int], unlabeled: int, size: int, seed: int, spec: SceneWorldSpec,
            captions_per_image: int) -> str:
    rows = []
    for c in spec.classes:
        kind, cat = ('thing', spec.category_id(c)) if c in spec.thing_classes else ('stuff', '')
        rows.append(f'| {spec.label_of(c)} | {c} | {kind} | {cat} |')
    labels = '\n'.join(rows)
    combos = ', '.join(f'{c} + {p} ("{c} {PATTERN_WORDS[p]}")' for c, p in spec.held_out_combos)
    count_lines = '\n'.join(f'| {s} | {counts.get(s, 0)} |' for s in LABELED_SPLITS)
    return f"""# densevl synthetic scene world

Generated by `densevl.datasets.synthetic.write_dataset` (size {size} px, seed {seed}).
Regenerate with `python tools/make_synthetic_dataset.py --seed {seed} --size {size} ...`;
the same arguments give byte-identical files.

Each image: one or two textured stuff backgrounds and 1-4 flat-coloured things named by
colour, each with a pattern, a shape and a size. Later things occlude earlier ones; a thing
less than {spec.min_visible_fraction:.0%} visible (or under {spec.min_visible_pixels} px) is
not drawn.

* stuff: {', '.join(spec.stuff_classes)}
* things (colours): {', '.join(spec.thing_classes)}
* patterns: {', '.join(f'{p} ("{PATTERN_WORDS[p]}")' for p in spec.patterns)}
* shapes: {', '.join(spec.shapes)}
* sizes: {', '.join(spec.sizes)}

## Classes

Label maps: value = class index + 1, 0 = unlabelled (ADE20K convention; read with
`reduce_zero_label=True`). COCO files list the things only, ids 1..{len(spec.thing_classes)}.

| label | class | kind | COCO id |
|---|---|---|---|
{labels}

## Splits and novel rules

| split | images |
|---|---|
{count_lines}
| unlabeled | {unlabeled} |

* **train / val / test**: only the base colours ({', '.join(spec.base_colours)});
  never {' or '.join(spec.novel_classes)}; never a held-out combination.
* **novel**: every image holds at least one novel object: a {' or '.join(spec.novel_classes)}
  thing, or a held-out combination; its other objects are unrestricted.
* **clip_train** (not on disk; `iter_caption_batches` streams it): all colours, including
  {' and '.join(spec.novel_classes)}, but never a held-out combination. The tiny CLIP knows
  every word; segmentation/detection training on train never sees a novel class.
* **unlabeled**: no restriction; `unlabeled/metadata.json` holds captions and objects for
  scoring retrieval only.

Held-out (colour, pattern) combinations: {combos}.
In the novel split, {' and '.join(spec.novel_classes)} are the unseen *classes* (segmentation,
detection); the held-out combinations keep their seen colour class and test compositional
generalisation (referring expressions, retrieval, attribute queries).

## Files and ids

* `images/<split>/<split>_NNNNNN.jpg`, `annotations/<split>/<split>_NNNNNN.png`
* `coco/instances_<split>.json`: RLE masks of the visible pixels, bbox xywh of the visible mask,
  extra `attributes` (pattern, shape, size, position) per annotation, `stuff` per image;
  `file_name` relative to `images/<split>/`.
* `coco/captions_<split>.json`: {captions_per_image} captions per image.
* `refcoco/refs(synthetic).p` + `refcoco/instances.json`: RefCOCO layout (`file_name`
  relative to `images/`; mmdet `RefCocoDataset` with `data_prefix=dict(img_path='images/')`,
  `split_file='refcoco/refs(synthetic).p'`, `split` in train/val/test/novel).
* ids: image = base + index (train 1000000, val 2000000, test 3000000, novel 4000000);
  annotation = 10 x image id + object index; ref id = annotation id; sentence id =
  10 x annotation id + sentence index.
"""
