"""COCOObjectDataset and PascalVOC20Dataset on tiny datasets laid out as on disk."""
from pathlib import Path

import numpy as np
import pytest
from mmseg.datasets import PascalVOCDataset
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS
from PIL import Image

import densevl.datasets.mm_datasets  # noqa: F401  (registers the datasets)

H, W = 6, 8


def _write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)


def _write_label(path: Path, values: list[int], palette: list[list[int]] | None = None) -> None:
    """A (H, W) label map whose rows cycle through ``values``; P-mode (as VOC's) with a palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.array([values[i % len(values)] for i in range(H)], np.uint8)
    img = Image.fromarray(np.repeat(rows[:, None], W, axis=1))
    if palette is not None:
        # a full 256-entry palette, as VOC's: a short one would let PNG drop index bits
        full = [*palette, *[[224, 224, 192]] * (256 - len(palette))]
        img.putpalette([c for rgb in full for c in rgb])  # L -> P, indices kept
    img.save(path)


def _labels(dataset, index: int) -> np.ndarray:
    return dataset[index]['gt_seg_map']


# dataset type -> (image folder, label folder) under its data root
LAYOUTS = {'PascalVOC20Dataset': ('JPEGImages', 'SegmentationClass'),
           'COCOObjectDataset': ('images/val2017', 'annotations/val2017')}


def _build(dataset_type: str, root: Path, **kwargs):
    """``dataset_type`` on the tiny tree at ``root``, in test mode, loading its label maps."""
    img_path, seg_map_path = LAYOUTS[dataset_type]
    return DATASETS.build(dict(
        type=dataset_type, data_root=str(root),
        data_prefix=dict(img_path=img_path, seg_map_path=seg_map_path),
        pipeline=[LoadAnnotations()], test_mode=True, **kwargs))


# ---------------------------------------------------------------- PASCAL VOC 20


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    root = tmp_path / 'VOCdevkit' / 'VOC2012'
    palette = PascalVOCDataset.METAINFO['palette']
    for stem, values in [('2007_000033', [0, 1, 255]), ('2007_000042', [15, 20, 0]),
                         ('2007_000061', [7])]:
        _write_image(root / 'JPEGImages' / f'{stem}.jpg')
        _write_label(root / 'SegmentationClass' / f'{stem}.png', values, palette)
    split = root / 'ImageSets' / 'Segmentation' / 'val.txt'
    split.parent.mkdir(parents=True)
    split.write_text('2007_000033\n2007_000042\n')
    return root


def test_voc20_metainfo():
    classes = DATASETS.get('PascalVOC20Dataset').METAINFO['classes']
    assert len(classes) == 20 and classes[0] == 'aeroplane' and classes[-1] == 'tvmonitor'


def test_voc20_split_and_pairing(voc_root):
    dataset = _build('PascalVOC20Dataset', voc_root, ann_file='ImageSets/Segmentation/val.txt')
    assert len(dataset) == 2
    for i, stem in enumerate(['2007_000033', '2007_000042']):
        info = dataset.get_data_info(i)
        assert Path(info['img_path']) == voc_root / 'JPEGImages' / f'{stem}.jpg'
        assert Path(info['seg_map_path']) == voc_root / 'SegmentationClass' / f'{stem}.png'
        assert info['reduce_zero_label']


def test_voc20_without_split_lists_all_images(voc_root):
    assert len(_build('PascalVOC20Dataset', voc_root)) == 3


def test_voc20_drops_background(voc_root):
    dataset = _build('PascalVOC20Dataset', voc_root, ann_file='ImageSets/Segmentation/val.txt')
    # background (0) and boundary (255) -> ignore; aeroplane (1) -> 0; person 15 -> 14
    assert _labels(dataset, 0)[:3, 0].tolist() == [255, 0, 255]
    assert _labels(dataset, 1)[:3, 0].tolist() == [14, 19, 255]
    assert _labels(dataset, 0).shape == (H, W)


def test_voc20_refuses_background_scoring(voc_root):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        _build('PascalVOC20Dataset', voc_root, reduce_zero_label=False)


# ---------------------------------------------------------------- COCO-Object


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / 'coco_stuff164k'
    for stem, values in [('000000000139', [0, 1, 80]), ('000000000285', [23, 0])]:
        _write_image(root / 'images' / 'val2017' / f'{stem}.jpg')
        ann = root / 'annotations' / 'val2017'
        _write_label(ann / f'{stem}_instanceTrainIds.png', values)
        # the COCO-Stuff maps the conversion leaves beside its own must not be picked up
        _write_label(ann / f'{stem}_labelTrainIds.png', [170])
        _write_label(ann / f'{stem}.png', [181])
    return root


def test_coco_object_metainfo():
    meta = DATASETS.get('COCOObjectDataset').METAINFO
    assert len(meta['classes']) == len(meta['palette']) == 81
    assert meta['classes'][:2] == ('background', 'person')
    assert meta['classes'][-1] == 'toothbrush'


def test_coco_object_pairing(coco_root):
    dataset = _build('COCOObjectDataset', coco_root)
    assert len(dataset) == 2
    for i, stem in enumerate(['000000000139', '000000000285']):
        info = dataset.get_data_info(i)
        assert Path(info['img_path']) == coco_root / 'images' / 'val2017' / f'{stem}.jpg'
        assert Path(info['seg_map_path']) == (
            coco_root / 'annotations' / 'val2017' / f'{stem}_instanceTrainIds.png')
        assert not info['reduce_zero_label']


def test_coco_object_keeps_labels(coco_root):
    dataset = _build('COCOObjectDataset', coco_root)
    assert _labels(dataset, 0)[:3, 0].tolist() == [0, 1, 80]
    assert _labels(dataset, 1)[:2, 0].tolist() == [23, 0]


def test_coco_object_refuses_reduce_zero_label(coco_root):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        _build('COCOObjectDataset', coco_root, reduce_zero_label=True)
