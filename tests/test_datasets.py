"""COCOObjectDataset, PascalVOC20Dataset, ADE20K847Dataset and PascalContext459Dataset (with
LoadUint16Annotations) on tiny datasets laid out as on disk."""
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
    kwargs.setdefault('pipeline', [LoadAnnotations()])
    return DATASETS.build(dict(
        type=dataset_type, data_root=str(root),
        data_prefix=dict(img_path=img_path, seg_map_path=seg_map_path), test_mode=True,
        **kwargs))


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


# ---------------------------------------------------------------- ADE-847 and PC-459 (16-bit)

REPO = Path(__file__).resolve().parents[1]
IGNORE16 = 65535
# dataset type -> (data root, image folder, label folder, classes, names file), as ov-seg's
# datasets/prepare_ade20k_full_sem_seg.py and prepare_pascal_context.py write them
UINT16 = {
    'ADE20K847Dataset': ('ADE20K_2021_17_01', 'images_detectron2/validation',
                         'annotations_detectron2/validation', 847, 'ade847.txt'),
    'PascalContext459Dataset': ('VOCdevkit/VOC2010', 'JPEGImages',
                                'annotations_detectron2/pc459_val', 459, 'context459.txt'),
}
# two annotated images: every label kind (0, 255, > 255, the last class, ignore) in the maps
UINT16_LABELS = {'val_a': [[0, 255, 256], [IGNORE16, 7, 300]],
                 'val_b': [[IGNORE16, IGNORE16, 1], [2, 3, 0]]}


def _uint16_root(tmp_path: Path, dataset_type: str) -> Path:
    root_name, img_dir, ann_dir, num_classes, _ = UINT16[dataset_type]
    root = tmp_path / root_name
    for stem, rows in UINT16_LABELS.items():
        labels = np.array(rows, np.uint16)
        labels[labels == 300] = num_classes - 1
        (root / ann_dir).mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels).save(root / ann_dir / f'{stem}.tif')   # as the reference: PIL
        _write_image(root / img_dir / f'{stem}.jpg')
    _write_image(root / img_dir / 'unlabelled.jpg')   # VOC2010 holds more images than PC-459
    return root


def _uint16_dataset(root: Path, dataset_type: str, pipeline: list):
    _, img_dir, ann_dir, _, _ = UINT16[dataset_type]
    return DATASETS.build(dict(type=dataset_type, data_root=str(root), test_mode=True,
                               data_prefix=dict(img_path=img_dir, seg_map_path=ann_dir),
                               pipeline=pipeline))


@pytest.mark.parametrize('dataset_type', sorted(UINT16))
def test_uint16_dataset_loads_16_bit_labels(tmp_path, dataset_type):
    root = _uint16_root(tmp_path, dataset_type)
    num_classes = UINT16[dataset_type][3]
    dataset = _uint16_dataset(root, dataset_type, [dict(type='LoadUint16Annotations')])
    assert len(dataset) == 2                      # the label maps, not every image
    assert dataset.ignore_index == IGNORE16 and dataset.metainfo['classes'][0]
    for i, (stem, rows) in enumerate(UINT16_LABELS.items()):
        info = dataset.get_data_info(i)
        assert Path(info['img_path']).name == f'{stem}.jpg'
        gt = dataset[i]['gt_seg_map']
        expected = np.array(rows, np.int64)
        expected[expected == 300] = num_classes - 1
        assert gt.dtype == np.uint16 and np.array_equal(gt, expected)
    # mmseg's own loader folds the labels to 8 bits: why the dataset needs LoadUint16Annotations
    folded = _uint16_dataset(root, dataset_type, [LoadAnnotations()])[0]['gt_seg_map']
    assert folded[0, 2] == 0 and folded[1, 0] == 255


@pytest.mark.parametrize('backend', ['pillow', 'cv2'])
def test_uint16_loader_reads_8_bit_maps_as_mmseg(voc_root, backend):
    ours = _build('PascalVOC20Dataset', voc_root,
                  pipeline=[dict(type='LoadUint16Annotations', imdecode_backend=backend)])
    theirs = _build('PascalVOC20Dataset', voc_root,
                    pipeline=[LoadAnnotations(imdecode_backend=backend)])
    for i in range(len(ours)):
        a, b = ours[i]['gt_seg_map'], theirs[i]['gt_seg_map']
        assert a.dtype == b.dtype == np.uint8 and np.array_equal(a, b)


def test_uint16_dataset_errors_name_the_fix(tmp_path):
    root = _uint16_root(tmp_path, 'ADE20K847Dataset')
    with pytest.raises(ValueError, match='reduce_zero_label must be False'):
        DATASETS.build(dict(type='ADE20K847Dataset', data_root=str(root),
                            reduce_zero_label=True))
    (root / 'images_detectron2/validation/val_b.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='val_b.tif has no image'):
        _uint16_dataset(root, 'ADE20K847Dataset', [])


@pytest.mark.parametrize('dataset_type', sorted(UINT16))
def test_uint16_dataset_names(dataset_type):
    from densevl.models.text import resolve_class_names

    _, _, _, num_classes, names_file = UINT16[dataset_type]
    classes = DATASETS.get(dataset_type).METAINFO['classes']
    assert len(classes) == num_classes
    names = (REPO / 'densevl' / 'datasets' / 'names' / names_file).read_text().splitlines()
    assert list(classes) == names == resolve_class_names(dataset_type)
    # spot checks against the reference's lists (labels 0, 1 and the last)
    expected = {'ADE20K847Dataset': ('wall', 'building, edifice', 'adding machine, totalizer, '
                                     'totaliser'),
                'PascalContext459Dataset': ('accordion', 'aeroplane', 'wool')}[dataset_type]
    assert (classes[0], classes[1], classes[-1]) == expected
