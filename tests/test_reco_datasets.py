"""The ReCo benchmarks (COCO-Stuff-27, Cityscapes-27, KITTI-STEP) on tiny trees in their real
layouts, loaded through their dataset classes and the pipelines of their dataset configs."""
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T
from mmengine import Config
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from mmseg.registry import DATASETS
from PIL import Image

import densevl.datasets.mm_datasets  # noqa: F401  (registers the datasets and transforms)
from densevl.datasets import coco_stuff27 as cs27
from densevl.models.text import resolve_class_names

REPO = Path(__file__).resolve().parents[1]
NAMES = REPO / 'densevl' / 'datasets' / 'names'


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _rows(values: list[int], width: int = 8) -> np.ndarray:
    """A ``(len(values), width)`` uint8 map whose row ``i`` holds ``values[i]``."""
    return np.repeat(np.array(values, np.uint8)[:, None], width, axis=1)


def _config_dataset(name: str, root: Path, **pipeline_only):
    """The test dataset of ``configs/_base_/datasets/{name}.py`` on the tree at ``root``."""
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'datasets' / f'{name}.py'))
    dataset = cfg.test_dataloader.dataset
    dataset.update(data_root=str(root), test_mode=True, **pipeline_only)
    return DATASETS.build(dataset)


# ---------------------------------------------------------------- COCO-Stuff-27

# raw COCO-Stuff ids (COCO category id - 1) and the coarse class each folds to
COCO_RAW = [0, 89, 91, 156, 181, 255]
# person -> 9 person, toothbrush -> 4 indoor, banner -> 17 textile, sky other -> 23 sky,
# wood -> 24 solid, unlabelled stays ignored
COCO_COARSE = [9, 4, 17, 23, 24, 255]


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / 'cocostuff'
    for stem in ['000000000139', '000000000285', '000000000632']:
        _save(root / 'images' / 'val2017' / f'{stem}.jpg', np.zeros((6, 8, 3), np.uint8))
        _save(root / 'annotations' / 'val2017' / f'{stem}.png', _rows(COCO_RAW))
    curated = root / 'curated' / 'val2017' / 'Coco164kFull_Stuff_Coarse.txt'
    curated.parent.mkdir(parents=True)
    curated.write_text('000000000139\n000000000285\n')   # 632 is not curated
    return root


def test_coco_stuff27_reads_the_curated_list(coco_root):
    dataset = _config_dataset('coco_stuff27', coco_root, pipeline=[dict(type='LoadAnnotations')])
    assert len(dataset) == 2
    for i, stem in enumerate(['000000000139', '000000000285']):
        info = dataset.get_data_info(i)
        assert Path(info['img_path']) == coco_root / 'images' / 'val2017' / f'{stem}.jpg'
        assert Path(info['seg_map_path']) == coco_root / 'annotations' / 'val2017' / f'{stem}.png'
        assert dataset[i]['gt_seg_map'][:, 0].tolist() == COCO_COARSE


def test_coco_stuff27_config_pipeline_scores_the_centre_crop(coco_root):
    sample = _config_dataset('coco_stuff27', coco_root)[0]
    gt = sample['data_samples'].gt_sem_seg.data[0].numpy()
    # 6 x 8 -> short side 320 (6 rows of ~53 pixels) x 427 -> centre crop 320 x 320
    assert sample['inputs'].shape == (3, 320, 320) and gt.shape == (320, 320)
    assert sample['data_samples'].ori_shape == (320, 320)   # predictions come back at the crop
    assert [int(gt[y, 0]) for y in (0, 60, 110, 170, 220, 319)] == COCO_COARSE
    assert (gt == gt[:, :1]).all()


def test_coco_stuff27_crop_matches_torchvision_reference(tmp_path):
    # where mmcv and torchvision agree on the resized size (6 x 9 -> 320 x 480), the labels are
    # the reference's to the pixel: T.Resize(320, NEAREST) then T.CenterCrop(320)
    root = tmp_path / 'cocostuff'
    raw = np.random.default_rng(0).choice(COCO_RAW, size=(6, 9)).astype(np.uint8)
    _save(root / 'images' / 'val2017' / 'a.jpg', np.zeros((6, 9, 3), np.uint8))
    _save(root / 'annotations' / 'val2017' / 'a.png', raw)
    (root / 'curated' / 'val2017').mkdir(parents=True)
    (root / 'curated' / 'val2017' / 'Coco164kFull_Stuff_Coarse.txt').write_text('a\n')
    gt = _config_dataset('coco_stuff27', root)[0]['data_samples'].gt_sem_seg.data[0].numpy()
    reference = np.asarray(T.CenterCrop(320)(T.Resize(320, T.InterpolationMode.NEAREST)(
        Image.fromarray(raw))))
    fold = np.vectorize(lambda r: cs27.RAW_TO_COARSE.get(int(r), r))
    assert np.array_equal(gt, fold(reference))


def test_coco_stuff27_fold_tables():
    coarse_classes, fine_classes, fold = cs27.COARSE_CLASSES, cs27.FINE_CLASSES, cs27.FINE_TO_COARSE
    assert len(coarse_classes) == 27 and len(fine_classes) == len(fold) == 171
    assert sorted(cs27.RAW_TO_COARSE) == list(range(182))   # never-annotated ids included
    assert set(fold) == set(range(27))                      # every coarse class has fine ones

    def coarse(fine: str) -> str:
        return coarse_classes[fold[fine_classes.index(fine)]]

    # spot checks against the reference's 171 -> 27 table
    assert [coarse(f) for f in ('person', 'tv', 'toothbrush', 'hot dog', 'tree', 'playingfield',
                                'fog', 'wood', 'light', 'banner')] == [
        'person', 'electronic', 'indoor', 'food things', 'plant', 'ground', 'water', 'solid',
        'furniture stuff', 'textile']
    # the raw id of a stuff class is its fine index + 11 (the ids COCO never annotated)
    assert cs27.RAW_TO_COARSE[fine_classes.index('wood') + 11] == coarse_classes.index('solid')


def test_coco_stuff27_refuses_changes(coco_root):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        _config_dataset('coco_stuff27', coco_root, reduce_zero_label=True)
    with pytest.raises(ValueError, match='cannot be changed'):
        _config_dataset('coco_stuff27', coco_root, metainfo=dict(classes=['sky']))


# ---------------------------------------------------------------- Cityscapes-27

# labelIds: unlabeled 0, ground 6 (void), road 7, parking 9, person 24, bicycle 33
CITY_LABEL_IDS = [0, 6, 7, 9, 24, 33]
CITY_27 = [255, 255, 0, 2, 17, 26]   # labelId - 7, void ignored


@pytest.fixture
def city_root(tmp_path: Path) -> Path:
    root = tmp_path / 'cityscapes'
    for stem in ['frankfurt_000000_000294', 'lindau_000000_000019']:
        city = stem.split('_')[0]
        _save(root / 'leftImg8bit' / 'val' / city / f'{stem}_leftImg8bit.png',
              np.zeros((6, 12, 3), np.uint8))
        gt_dir = root / 'gtFine' / 'val' / city
        _save(gt_dir / f'{stem}_gtFine_labelIds.png', _rows(CITY_LABEL_IDS, 12))
        # what cityscapesScripts and mmseg's converter leave beside it must not be read
        _save(gt_dir / f'{stem}_gtFine_labelTrainIds.png', _rows([1] * 6, 12))
        _save(gt_dir / f'{stem}_gtFine_instanceIds.png', _rows([2] * 6, 12))
    return root


def test_cityscapes27_shifts_label_ids(city_root):
    dataset = _config_dataset('cityscapes27', city_root, pipeline=[dict(type='LoadAnnotations')])
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    assert Path(info['seg_map_path']) == (city_root / 'gtFine' / 'val' / 'frankfurt'
                                          / 'frankfurt_000000_000294_gtFine_labelIds.png')
    for i in range(2):
        assert dataset[i]['gt_seg_map'][:, 0].tolist() == CITY_27


def test_cityscapes27_config_pipeline(city_root):
    sample = _config_dataset('cityscapes27', city_root)[0]
    gt = sample['data_samples'].gt_sem_seg.data[0].numpy()
    # 6 x 12 -> 320 x 640 -> centre crop 320 x 320; rows of ~53 pixels keep their labels
    assert gt.shape == (320, 320) and sample['data_samples'].ori_shape == (320, 320)
    assert [int(gt[y, 0]) for y in (0, 60, 110, 170, 220, 319)] == CITY_27


# ---------------------------------------------------------------- KITTI-STEP

KITTI_SEMANTIC = [0, 13, 18, 255]      # road, car, bicycle, void (trainIds)


def _panoptic(semantic: list[int], width: int = 10) -> np.ndarray:
    """An RGB panoptic map: red the semantic rows, green * 256 + blue an instance id."""
    rgb = np.zeros((len(semantic), width, 3), np.uint8)
    rgb[..., 0] = _rows(semantic, width)
    rgb[..., 1], rgb[..., 2] = 1, 7      # instance 263 everywhere: must not leak into labels
    return rgb


@pytest.fixture
def kitti_root(tmp_path: Path) -> Path:
    root = tmp_path / 'kitti_step'
    for split, frames in [('val', ['0002/000000', '0002/000001', '0006/000000']),
                          ('train', ['0000/000000'])]:
        for frame in frames:
            _save(root / split / f'{frame}.png', np.zeros((4, 10, 3), np.uint8))
            _save(root / 'panoptic_maps' / split / f'{frame}.png', _panoptic(KITTI_SEMANTIC))
    return root


def test_kitti_step_pairs_frames_of_each_sequence(kitti_root):
    dataset = _config_dataset('kitti_step', kitti_root)
    assert len(dataset) == 3                         # val only
    for i, frame in enumerate(['0002/000000', '0002/000001', '0006/000000']):
        info = dataset.get_data_info(i)
        assert Path(info['img_path']) == kitti_root / 'val' / f'{frame}.png'
        assert Path(info['seg_map_path']) == kitti_root / 'panoptic_maps' / 'val' / f'{frame}.png'


def test_kitti_step_config_keeps_full_resolution(kitti_root):
    sample = _config_dataset('kitti_step', kitti_root)[0]
    gt = sample['data_samples'].gt_sem_seg.data[0].numpy()
    assert gt.shape == (4, 10) and sample['data_samples'].ori_shape == (4, 10)
    assert gt[:, 0].tolist() == KITTI_SEMANTIC and (gt == gt[:, :1]).all()


@pytest.mark.parametrize('backend', ['pillow', 'cv2'])
def test_kitti_step_loader_reads_the_red_channel(kitti_root, backend):
    loaded = _config_dataset('kitti_step', kitti_root, pipeline=[
        dict(type='LoadKittiStepAnnotations', imdecode_backend=backend)])[0]
    assert loaded['gt_seg_map'].dtype == np.uint8
    assert loaded['gt_seg_map'][:, 0].tolist() == KITTI_SEMANTIC


# ---------------------------------------------------------------- names

# dataset type -> (names file, number of classes, first and last class)
NAMED = {'COCOStuff27Dataset': ('coco_stuff27.txt', 27, 'electronic', 'water'),
         'Cityscapes27Dataset': ('cityscapes27.txt', 27, 'road', 'bicycle'),
         'KittiStepDataset': ('kitti_step.txt', 19, 'road', 'bicycle')}


@pytest.mark.parametrize('dataset_type', sorted(NAMED))
def test_names_are_packaged_and_resolve(dataset_type):
    names_file, num_classes, first, last = NAMED[dataset_type]
    classes = DATASETS.get(dataset_type).METAINFO['classes']
    names = (NAMES / names_file).read_text().splitlines()
    assert len(classes) == num_classes and (classes[0], classes[-1]) == (first, last)
    assert list(classes) == names == resolve_class_names(dataset_type)


def test_coco_stuff27_fine_names_are_a_vocabulary():
    meta = DATASETS.get('COCOStuff27Dataset').METAINFO
    fine = resolve_class_names(str(NAMES / 'coco_stuff171_reco.txt'))   # validated: unique
    assert fine == list(meta['fine_classes']) == list(cs27.FINE_CLASSES)
    assert (fine[0], fine[62], fine[-1]) == ('person', 'tv', 'wood')
    assert 'parking lot' in DATASETS.get('Cityscapes27Dataset').METAINFO['classes']


def test_coco_stuff27_scored_end_to_end_over_fine_predictions(coco_root):
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'datasets' / 'coco_stuff27.py'))
    dataset = _config_dataset('coco_stuff27', coco_root)
    evaluator = Evaluator(cfg.reco_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    # predict, for every labelled pixel, the first fine class of its coarse class
    first_fine = {c: cs27.FINE_TO_COARSE.index(c) for c in set(cs27.FINE_TO_COARSE)}
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_sem_seg.data
        pred = gt.clone().apply_(lambda c: first_fine.get(c, 0))
        sample.pred_sem_seg = PixelData(data=pred)
        evaluator.process([sample.to_dict()])
    scores = evaluator.evaluate(len(dataset))
    assert scores == dict(aAcc=100.0, mIoU=100.0, mAcc=100.0)
