"""The synthetic scene world: determinism, novel-split rules, labels, expressions, file formats."""
from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densevl.datasets.synthetic import (
    DEFAULT_SPEC,
    HELD_OUT_COMBOS,
    NOVEL_CLASSES,
    PATTERN_WORDS,
    Scene,
    SceneObject,
    caption_for,
    iter_caption_batches,
    referring_expressions,
    resolve_expression,
    sample_scene,
    scene_rng,
    write_dataset,
)

COUNTS = dict(train=5, val=5, test=5, novel=5)
SPEC = DEFAULT_SPEC
TOOL = Path(__file__).resolve().parents[1] / 'tools' / 'make_synthetic_dataset.py'
NOVEL_LABELS = {SPEC.label_of(c) for c in NOVEL_CLASSES}


def _scenes(split: str, n: int, seed: int = 0) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, split=split) for _ in range(n)]


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('synthetic')
    return write_dataset(root, counts=COUNTS, seed=0, unlabeled=5, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


# ------------------------------------------------------------------------------ determinism
def test_sample_scene_is_deterministic():
    a, b = _scenes('train', 3, seed=1), _scenes('train', 3, seed=1)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.semantic, y.semantic)
        assert x.caption == y.caption
    c = _scenes('train', 3, seed=2)
    assert not any(np.array_equal(x.image, z.image) for x, z in zip(a, c))


def test_write_dataset_is_byte_identical(dataset, tmp_path):
    again = write_dataset(tmp_path / 'again', counts=COUNTS, seed=0, unlabeled=5, progress=False)
    assert _files(dataset) == _files(again)
    other = _files(write_dataset(tmp_path / 'other', counts=COUNTS, seed=1, progress=False))
    first = _files(dataset)
    for split in COUNTS:
        name = f'images/{split}/{split}_000000.jpg'
        assert other[name] != first[name]


def test_split_counts_do_not_change_other_images(dataset, tmp_path):
    small = _files(write_dataset(tmp_path / 'small', counts=dict(train=2, val=5), seed=0,
                                 progress=False))
    full = _files(dataset)
    for name, data in small.items():
        if name.startswith(('images/', 'annotations/')):
            assert data == full[name], name
    assert 'images/train/train_000002.jpg' not in small


# ------------------------------------------------------------------------------ novel rules
@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_base_splits_never_hold_novel_things(split):
    for scene in _scenes(split, 150, seed=3):
        assert not NOVEL_LABELS & set(np.unique(scene.semantic).tolist())
        for obj in scene.objects:
            assert obj.colour not in NOVEL_CLASSES
            assert (obj.colour, obj.pattern) not in HELD_OUT_COMBOS
            assert not SPEC.is_novel(obj.colour, obj.pattern)


def test_every_novel_scene_holds_a_novel_object():
    kinds = set()
    for scene in _scenes('novel', 150, seed=4):
        novel = [o for o in scene.objects if SPEC.is_novel(o.colour, o.pattern)]
        assert novel
        kinds |= {'class' if o.colour in NOVEL_CLASSES else 'combo' for o in novel}
    assert kinds == {'class', 'combo'}


def test_clip_train_knows_novel_classes_but_not_held_out_combos():
    colours = set()
    for scene in _scenes('clip_train', 300, seed=5):
        for obj in scene.objects:
            assert (obj.colour, obj.pattern) not in HELD_OUT_COMBOS
            colours.add(obj.colour)
    assert set(NOVEL_CLASSES) <= colours


def test_iter_caption_batches():
    images, captions = next(iter_caption_batches(np.random.default_rng(0), SPEC, batch_size=4))
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
    assert len(captions) == 4 and all(isinstance(c, str) and c for c in captions)


# ------------------------------------------------------------------------------ labels, text
def test_label_maps_agree_with_object_masks():
    for scene in _scenes('novel', 60, seed=6) + _scenes('train', 60, seed=6):
        stuff_labels = {SPEC.label_of(s) for s in scene.stuff}
        covered = np.zeros(scene.semantic.shape, bool)
        for obj in scene.objects:
            assert not (covered & obj.mask).any()  # visible masks are disjoint
            covered |= obj.mask
            assert (scene.semantic[obj.mask] == SPEC.label_of(obj.colour)).all()
            assert obj.area == obj.mask.sum() >= SPEC.min_visible_pixels
            assert obj.area >= SPEC.min_visible_fraction * obj.full_area
            ys, xs = np.nonzero(obj.mask)
            assert obj.bbox == (xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1)
        assert set(np.unique(scene.semantic[~covered]).tolist()) <= stuff_labels
        assert 1 <= len(scene.objects) <= SPEC.max_objects


def test_captions_mention_every_object_colour_and_the_stuff():
    rng = np.random.default_rng(7)
    for scene in _scenes('clip_train', 100, seed=7):
        for caption in (scene.caption, caption_for(scene.objects, scene.stuff, rng)):
            words = caption.split()
            for obj in scene.objects:
                assert obj.colour in words
            assert all(s in words for s in scene.stuff)
            counts = {c: words.count(c) for c in SPEC.thing_classes}
            assert counts == {c: sum(o.colour == c for o in scene.objects)
                              for c in SPEC.thing_classes}


def _brute_force_simple(scene: Scene, sentence: str) -> list[int]:
    """Objects matching a plain attribute description, read word by word."""
    pattern_of = {w: p for p, w in PATTERN_WORDS.items()}
    words = sentence.split()[1:]
    hits = []
    for i, o in enumerate(scene.objects):
        ok = all(w == o.size_name or w == o.colour or pattern_of.get(w) == o.pattern
                 for w in words[:-1])
        hits += [i] if ok and words[-1] in ('object', o.shape) else []
    return hits


def test_referring_expressions_identify_exactly_one_object():
    rng = np.random.default_rng(8)
    kinds = set()
    for scene in _scenes('train', 80, seed=8) + _scenes('novel', 40, seed=8):
        for sentence, index in referring_expressions(scene, rng):
            assert resolve_expression(scene, sentence) == [index], sentence
            words = sentence.split()
            if not {'larger', 'smaller', 'left', 'right', 'above', 'below', 'leftmost',
                    'rightmost', 'topmost', 'bottommost'} & set(words):
                assert _brute_force_simple(scene, sentence) == [index], sentence
                kinds.add('attributes')
            else:
                kinds.add('relational')
    assert kinds == {'attributes', 'relational'}


def _toy_scene(*objects: tuple[str, str, str, str, float, float, float]) -> Scene:
    objs = [SceneObject(colour, pattern, shape, size, (0.0, 0.0, 1.0, 1.0),
                        np.zeros((64, 64), bool), 1, (cx, cy), side, 1)
            for colour, pattern, shape, size, cx, cy, side in objects]
    return Scene(np.zeros((64, 64, 3), np.uint8), np.ones((64, 64), np.uint8), objs, '',
                 ('grass',), 'train')


def test_resolve_expression_semantics():
    scene = _toy_scene(('red', 'solid', 'circle', 'small', 10, 30, 10),
                       ('blue', 'dots', 'ring', 'large', 40, 30, 20),
                       ('green', 'stripes', 'circle', 'large', 48, 30, 20))
    assert resolve_expression(scene, 'the red object') == [0]
    assert resolve_expression(scene, 'the circle') == [0, 2]
    assert resolve_expression(scene, 'the large striped circle') == [2]
    assert resolve_expression(scene, 'the circle left of the blue ring') == [0]
    assert resolve_expression(scene, 'the object right of the red circle') == [1, 2]
    assert resolve_expression(scene, 'the larger of the two circles') == [2]
    assert resolve_expression(scene, 'the smaller of the two circles') == [0]
    assert resolve_expression(scene, 'the leftmost circle') == [0]
    # centres 8 px apart with sides 20 and 20 (margin 10): borderline, so ill-posed
    assert resolve_expression(scene, 'the rightmost large object') == []
    assert resolve_expression(scene, 'the larger of the two large objects') == []
    assert resolve_expression(scene, 'the circle left of the circle') == []  # two anchors
    assert resolve_expression(scene, 'the object above the red circle') == []
    with pytest.raises(ValueError):
        resolve_expression(scene, 'the purple elephant')


# ------------------------------------------------------------------------------ file formats
def test_layout_and_label_maps(dataset):
    assert (dataset / 'classes.txt').read_text().split('\n')[:-1] == list(SPEC.classes)
    assert (dataset / 'README.md').is_file()
    for split, n in COUNTS.items():
        images = sorted((dataset / 'images' / split).glob('*.jpg'))
        labels = sorted((dataset / 'annotations' / split).glob('*.png'))
        assert [p.stem for p in images] == [p.stem for p in labels] == [
            f'{split}_{i:06d}' for i in range(n)]
        for path in labels:
            values = np.unique(np.asarray(Image.open(path)))
            assert values.min() >= 1 and values.max() <= len(SPEC.classes)
    assert len(list((dataset / 'unlabeled' / 'images').glob('*.jpg'))) == 5
    meta = json.loads((dataset / 'unlabeled' / 'metadata.json').read_text())
    assert len(meta['images']) == 5


# pycocotools' own numpy-2 deprecation, not ours
@pytest.mark.filterwarnings('ignore:__array__ implementation:DeprecationWarning')
def test_coco_instances_load_and_decode(dataset):
    from pycocotools.coco import COCO
    for split in COUNTS:
        coco = COCO(str(dataset / 'coco' / f'instances_{split}.json'))
        assert sorted(coco.getCatIds()) == list(range(1, 9))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SPEC.thing_classes)
        assert len(coco.getImgIds()) == COUNTS[split]
        for img in coco.loadImgs(coco.getImgIds()):
            label = np.asarray(Image.open(dataset / 'annotations' / split /
                                          img['file_name'].replace('.jpg', '.png')))
            assert (dataset / 'images' / split / img['file_name']).is_file()
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            assert anns
            things = np.zeros(label.shape, bool)
            for ann in anns:
                mask = coco.annToMask(ann).astype(bool)
                assert mask.sum() == ann['area'] > 0
                assert (label[mask] == len(SPEC.stuff_classes) + ann['category_id']).all()
                x, y, w, h = ann['bbox']
                ys, xs = np.nonzero(mask)
                assert (x, y, w, h) == (xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1)
                things |= mask
            assert (label[~things] <= len(SPEC.stuff_classes)).all()
        captions = json.loads((dataset / 'coco' / f'captions_{split}.json').read_text())
        assert len(captions['annotations']) == 3 * COUNTS[split]


def test_refs_match_instances_and_scenes(dataset):
    refs = pickle.loads((dataset / 'refcoco' / 'refs(synthetic).p').read_bytes())
    instances = json.loads((dataset / 'refcoco' / 'instances.json').read_text())
    anns = {a['id']: a for a in instances['annotations']}
    images = {i['id']: i for i in instances['images']}
    assert len(images) == sum(COUNTS.values())
    assert {r['split'] for r in refs} == set(COUNTS)
    assert len({r['ref_id'] for r in refs}) == len(refs)
    for ref in refs:
        ann, img = anns[ref['ann_id']], images[ref['image_id']]
        assert ann['image_id'] == ref['image_id'] and ann['category_id'] == ref['category_id']
        assert img['file_name'] == ref['file_name'] and img['split'] == ref['split']
        assert (dataset / 'images' / ref['file_name']).is_file()
        split, stem = ref['file_name'].split('/')
        scene = sample_scene(scene_rng(0, split, int(stem[-10:-4])), split=split)
        for sent in ref['sentences']:
            assert sent['tokens'] == sent['sent'].split() and sent['raw'] == sent['sent']
            assert resolve_expression(scene, sent['sent']) == [ref['ann_id'] % 10]


def test_cli_writes_a_dataset(tmp_path):
    spec = importlib.util.spec_from_file_location('make_synthetic_dataset', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--out', str(tmp_path), '--train', '1', '--val', '1', '--test', '0', '--novel', '1',
          '--unlabeled', '1', '--quiet'])
    assert (tmp_path / 'images' / 'novel' / 'novel_000000.jpg').is_file()
    assert not (tmp_path / 'images' / 'test').exists()


# ------------------------------------------------------------------------------ mmseg
@pytest.mark.openmmlab
def test_mmseg_dataset_reads_the_ade_layout(dataset, tmp_path):
    from mmengine.registry import DefaultScope
    from mmseg.datasets.transforms import LoadAnnotations
    from mmseg.registry import DATASETS

    import densevl.datasets.synthetic_seg  # noqa: F401  (registers SyntheticSceneDataset)

    # One label map with an unlabelled (0) block, to see it become the ignore index.
    root = tmp_path / 'ade'
    for sub in ('images/val', 'annotations/val'):
        (root / sub).mkdir(parents=True)
        for p in (dataset / sub).iterdir():
            (root / sub / p.name).write_bytes(p.read_bytes())
    label_path = root / 'annotations/val/val_000000.png'
    label = np.asarray(Image.open(label_path)).copy()
    label[:4, :4] = 0
    Image.fromarray(label).save(label_path)

    # other tests may have left mmdet as the default scope
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(dict(type='SyntheticSceneDataset', data_root=str(root),
                                 data_prefix=dict(img_path='images/val',
                                                  seg_map_path='annotations/val'),
                                 pipeline=[]))
    assert len(ds) == COUNTS['val']
    assert ds.metainfo['classes'] == SPEC.classes and len(ds.metainfo['palette']) == 14
    load = LoadAnnotations()
    seen = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert Path(info['img_path']).stem == Path(info['seg_map_path']).stem
        out = load(dict(info))
        raw = np.asarray(Image.open(info['seg_map_path'])).astype(int)
        expected = np.where(raw == 0, 255, raw - 1)
        assert np.array_equal(out['gt_seg_map'], expected)
        seen |= set(np.unique(out['gt_seg_map']).tolist())
    assert 255 in seen and seen - {255} <= set(range(14))
    with pytest.raises(ValueError):
        DATASETS.build(dict(type='SyntheticSceneDataset', data_root=str(root),
                            reduce_zero_label=False))
