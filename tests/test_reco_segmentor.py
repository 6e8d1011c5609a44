"""ReCo from the tools: the mmseg adapter, its configs (built without downloads), the pseudo-label
tool and ReCo+'s augmentations, ReCo through ``tools/test.py --texts``, the inferencer and the
demo. Tiny random models, a tiny retrieval index and a tiny synthetic world in tmp folders."""
from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _tools import load_tool
from mmengine.config import Config
from mmseg.registry import TRANSFORMS
from PIL import Image

import densevl.datasets.mm_datasets  # noqa: F401
import densevl.models.mm_adapters  # noqa: F401
from densevl.registry import SEG_DATASETS, SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs' / 'reco'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
TINY = str(CONFIG_DIR / 'reco_clip-synthetic-tiny_training-free_synthetic-64.py')
NAME = re.compile(r'(?P<method>reco|reco-plus)_(?P<backbone>[a-z0-9-]+)_(?P<schedule>training-free|'
                  r'\d+k)_(?P<dataset>[a-z0-9-]+)-(?P<crop>\d+|full)\.py')


@pytest.fixture(scope='module')
def index_dir(tmp_path_factory) -> Path:
    """A retrieval index of six random images, built with the random tiny CLIP."""
    from densevl.models.clip import create_clip
    from densevl.models.reco.index_builder import RetrievalIndexBuilder

    root = tmp_path_factory.mktemp('reco-index')
    rng = np.random.default_rng(0)
    (root / 'archive').mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
            root / 'archive' / f'{i}.png')
    RetrievalIndexBuilder(create_clip('clip-tiny-random'), batch_size=4, num_workers=0,
                          device='cpu', progress=False).build(root / 'archive', root / 'index')
    return root / 'index'


def tiny_options(index_dir: Path, cache: Path) -> dict:
    """The proving-ground config's models replaced by the random tiny ones (no weights read)."""
    return {'model.index': str(index_dir),
            'model.retrieval': dict(model_name='clip-tiny-random', pretrained=None),
            'model.guidance': dict(model_name='clip-tiny-random-rn', pretrained=None,
                                   mode='maskclip'),
            'model.encoder': dict(model_name='clip-tiny-random', pretrained=None),
            'model.k': 4, 'model.context': ('sky',), 'model.reference_cache_dir': str(cache),
            'model.text_cache_dir': False}


def cli_options(options: dict) -> list[str]:
    """``--cfg-options`` arguments of ``options``: dicts as dotted keys, tuples as lists."""
    def flat(key, value):
        if isinstance(value, dict):
            return [arg for k, v in value.items() for arg in flat(f'{key}.{k}', v)]
        if isinstance(value, tuple):
            return [f'{key}=[{",".join(map(str, value))}]']
        return [f'{key}={value}']
    return [arg for key, value in options.items() for arg in flat(key, value)]


def build_tiny(index_dir: Path, cache: Path, **changes):
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(tiny_options(index_dir, cache))
    cfg.model.update(changes)
    return SEG_MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory) -> Path:
    from densevl.datasets.synthetic import write_dataset
    return write_dataset(tmp_path_factory.mktemp('synthetic'), counts=dict(train=3, test=2),
                         progress=False)


# ----- the adapter ------------------------------------------------------------------------------

def test_building_reads_nothing_and_holds_no_weights(tmp_path):
    model = build_tiny(tmp_path / 'no-index', tmp_path / 'cache')
    assert model.random_weights
    assert not list(model.parameters()) and not model.state_dict()
    with pytest.raises(FileNotFoundError, match='no retrieval index'):
        model.core                                                      # noqa: B018


def test_adapter_segments_for_any_vocabulary(index_dir, tmp_path):
    from densevl.models.segmentors import OpenVocabSegmenter

    model = build_tiny(index_dir, tmp_path / 'cache', with_seg_logits=True)
    assert isinstance(model, OpenVocabSegmenter)
    assert model.protocol.mean == pytest.approx([122.771, 116.746, 104.094])
    images = torch.randn(2, 3, 64, 64)
    samples = model.predict(images, texts=['pink', 'grass;lawn', 'sky'])
    assert [tuple(s.pred_sem_seg.data.shape) for s in samples] == [(1, 64, 64)] * 2
    assert tuple(samples[0].seg_logits.data.shape) == (3, 64, 64)
    assert int(samples[0].pred_sem_seg.data.max()) < 3
    # the dataset's vocabulary by default; S before the CRF from encode_decode
    assert tuple(model.encode_decode(images, []).shape) == (2, 14, 64, 64)
    # the 14 classes (the context, sky, among them) and the synonym 'lawn', each cached once
    assert len(list((tmp_path / 'cache').rglob('*.pt'))) == 15
    assert not model.random_weights or model.core.random_weights


def test_ablation_switches_reach_the_core(index_dir, tmp_path):
    model = build_tiny(index_dir, tmp_path / 'cache', coseg_guidance=False, context=(),
                       crf=None, inference_guidance=False, slicing='code')
    core = model.core
    assert core.crf is None and not core.inference_guidance
    settings = core.references.settings
    assert (settings.language_guidance, settings.context, settings.slicing) == (False, (), 'code')
    labels = model.segment(torch.randn(1, 3, 64, 64), ['red', 'sky'])[0].labels
    assert labels.shape == (64, 64)


def test_an_index_of_another_model_is_refused(index_dir, tmp_path):
    from densevl.models.reco.retrieval_index import IndexModelMismatchError

    model = build_tiny(index_dir, tmp_path / 'cache',
                       retrieval=dict(model_name='clip-tiny-random-rn', pretrained=None))
    with pytest.raises(IndexModelMismatchError, match='clip-tiny-random'):
        model.core                                                      # noqa: B018


# ----- configs ----------------------------------------------------------------------------------

def _depth(path: Path) -> int:
    # mmengine resolves a base as the config loader does: relative, or 'mmseg::...' in a package
    bases = [Path(Config._get_cfg_path(b, str(path))[0]).resolve()
             for b in Config._get_base_files(str(path))]
    return 1 + max((_depth(b) for b in bases), default=0)


def test_there_is_a_config_per_benchmark():
    names = {p.name for p in CONFIGS}
    for method, backbone, schedule in (('reco', 'vit-l14-deit-s-rn50x16', 'training-free'),
                                       ('reco-plus', 'deeplabv3plus-r101-d8', '20k')):
        for dataset in ('coco-stuff27-320', 'cityscapes27-320'):
            assert f'{method}_{backbone}_{schedule}_{dataset}.py' in names
    assert 'reco_vit-l14-deit-s-rn50x16_training-free_kitti-step-full.py' in names
    assert 'reco-plus_deeplabv3plus-r101-d8_20k_kitti-step-320.py' in names
    assert 'reco_clip-synthetic-tiny_training-free_synthetic-64.py' in names
    assert 'reco-plus_deeplabv3plus-r18-w16_4k_synthetic-64.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_builds_without_downloads(path):
    assert NAME.fullmatch(path.name), path.name
    assert _depth(path) <= 3
    cfg = Config.fromfile(str(path))
    model = SEG_MODELS.build(cfg.model)        # ReCo loads on first use; ReCo+ at init_weights
    dataset = cfg.test_dataloader.dataset
    assert SEG_DATASETS.get(dataset.type) is not None
    if path.name.startswith('reco-plus'):
        train = cfg.train_dataloader.dataset
        assert 'reco_pseudo_labels' in train.data_prefix.seg_map_path
        for step in train.pipeline:
            assert TRANSFORMS.get(step['type']) is not None, step['type']
        assert model.decode_head.num_classes == len(SEG_DATASETS.get(dataset.type)
                                                    .METAINFO['classes'])
    else:
        assert model.protocol.logit_scale == 1.0 and not list(model.parameters())


def test_published_reco_and_reco_plus_values():
    reco = Config.fromfile(str(CONFIG_DIR /
                               'reco_vit-l14-deit-s-rn50x16_training-free_cityscapes27-320.py'))
    m = reco.model
    assert (m.retrieval.model_name, m.guidance.model_name, m.guidance.mode) == (
        'ViT-L-14-336', 'RN50x16', 'maskclip')
    assert m.encoder.model_name == 'timm/deit_small_distilled_patch16_224'
    assert (m.k, tuple(m.context), m.templates, m.archive_size) == (
        50, ('tree', 'sky', 'building', 'road', 'person'), 'reco85', 224)
    assert m.crf == dict(iterations=10, gaussian=(1.0, 3.0), bilateral=(67.0, 3.0, 4.0))
    assert reco.test_evaluator.type == 'ReCoIoUMetric'
    coco = Config.fromfile(str(CONFIG_DIR /
                               'reco_vit-l14-deit-s-rn50x16_training-free_coco-stuff27-320.py'))
    assert coco.test_evaluator.fine_to_coarse == 'dataset'
    assert len(SEG_MODELS.build(coco.model).class_names) == 171

    plus = Config.fromfile(str(CONFIG_DIR /
                               'reco-plus_deeplabv3plus-r101-d8_20k_coco-stuff27-320.py'))
    assert plus.test_evaluator == dict(type='ReCoIoUMetric')        # 27 classes, no fold
    optim = plus.optim_wrapper
    assert (optim.optimizer.type, optim.optimizer.lr, optim.optimizer.betas,
            optim.optimizer.weight_decay) == ('Adam', 5e-4, (0.9, 0.999), 2e-4)
    assert optim.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    (poly,) = plus.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 0.9, 1e-6, 20000)
    assert plus.train_cfg.max_iters == 20000 and plus.train_dataloader.batch_size == 8
    head, backbone = plus.model.decode_head, plus.model.backbone
    assert (backbone.type, backbone.depth, backbone.strides, backbone.dilations) == (
        'ResNetV1c', 101, (1, 2, 1, 1), (1, 1, 2, 4))
    assert (head.type, head.dilations, head.channels, head.c1_channels) == (
        'DepthwiseSeparableASPPHead', (1, 12, 24, 36), 256, 48)
    steps = {s['type']: s for s in plus.train_dataloader.dataset.pipeline}
    assert steps['RandomResize']['ratio_range'] == (0.5, 2.0)
    assert steps['RandomCrop']['crop_size'] == (320, 320)
    assert steps['RandomColorJitter']['prob'] == 0.8 and steps['RandomColorJitter']['hue'] == 0.2
    assert steps['RandomGaussianBlur']['prob'] == 0.5


# ----- ReCo+'s augmentations ---------------------------------------------------------------------

def test_padding_uses_the_image_mean_and_ignores_the_labels():
    pad = TRANSFORMS.build(dict(type='PadToSizeWithMean', size=(6, 5)))
    img = np.zeros((4, 3, 3), np.uint8)
    img[..., 0] = 10
    img[0, 0] = (30, 0, 0)
    out = pad(dict(img=img, gt_seg_map=np.ones((4, 3), np.uint8), seg_fields=['gt_seg_map']))
    assert out['img'].shape == (6, 5, 3) and out['img_shape'] == (6, 5)
    assert tuple(out['img'][5, 4]) == (11, 0, 0)           # the mean colour, truncated
    assert (out['gt_seg_map'][4:] == 255).all() and (out['gt_seg_map'][:4, :3] == 1).all()


def test_blur_and_jitter_keep_the_image_shape():
    # the transforms draw from numpy's and torch's global generators: seeded, so that the blur's
    # sigma (uniform in 0.1-2) is not one that leaves a 9-pixel kernel's output unchanged
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (100, 90, 3), dtype=np.uint8)
    blur = TRANSFORMS.build(dict(type='RandomGaussianBlur', prob=1.0))
    jitter = TRANSFORMS.build(dict(type='RandomColorJitter', prob=1.0))
    never = TRANSFORMS.build(dict(type='RandomColorJitter', prob=0.0))
    for transform in (blur, jitter):
        out = transform(dict(img=img.copy()))['img']
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert np.array_equal(never(dict(img=img.copy()))['img'], img)


# ----- pseudo-labels ----------------------------------------------------------------------------

def _dataset(kind: str, root: Path, seg_dir: str):
    """A benchmark's dataset (real class, real loader) on ``root`` with labels from ``seg_dir``."""
    load = dict(type='LoadKittiStepAnnotations') if kind == 'KittiStepDataset' else \
        dict(type='LoadAnnotations')
    cfg = dict(type=kind, data_root=str(root), data_prefix=dict(img_path='img',
                                                                seg_map_path=seg_dir),
               pipeline=[load])
    if kind == 'COCOStuff27Dataset':
        cfg['ann_file'] = 'list.txt'
    if kind == 'SyntheticSceneDataset':
        cfg.update(img_suffix='.png')
    return SEG_DATASETS.build(cfg)


@pytest.mark.parametrize('kind, suffix, classes', [
    ('SyntheticSceneDataset', '.png', 14), ('Cityscapes27Dataset', '_gtFine_labelIds.png', 27),
    ('COCOStuff27Dataset', '.png', 27), ('KittiStepDataset', '.png', 19)])
def test_label_files_read_back_through_the_dataset(tmp_path, kind, suffix, classes):
    from densevl.datasets.label_files import encode_labels, write_label_file

    img_suffix = '_leftImg8bit.png' if kind == 'Cityscapes27Dataset' else (
        '.jpg' if kind == 'COCOStuff27Dataset' else '.png')
    (tmp_path / 'img' / 'a').mkdir(parents=True)
    stem = 'a/x' if kind != 'COCOStuff27Dataset' else 'x'
    (tmp_path / 'img' / f'{stem}{img_suffix}').parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'img' / f'{stem}{img_suffix}').write_bytes(b'')
    (tmp_path / 'list.txt').write_text('x\n')
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, (5, 7))
    labels[0, 0] = 255
    dataset = _dataset(kind, tmp_path, 'pseudo')
    info = dataset.get_data_info(0)
    assert info['seg_map_path'].endswith(f'pseudo/{stem}{suffix}')
    write_label_file(info['seg_map_path'], encode_labels(dataset, labels))
    loaded = dataset.pipeline(dict(info, seg_fields=[]))['gt_seg_map']
    np.testing.assert_array_equal(loaded, labels)


def test_pseudo_label_tool_writes_what_the_model_predicts(synthetic_root, index_dir, tmp_path):
    out = synthetic_root / 'reco_pseudo_labels' / 'train'
    options = cli_options(tiny_options(index_dir, tmp_path / 'cache'))
    options += [f'test_dataloader.dataset.data_root={synthetic_root}']
    tool = load_tool('reco_pseudo_labels')
    tool.main([TINY, '--split', 'images/train', '--out', str(out), '--cfg-options', *options])
    files = sorted(out.glob('*.png'))
    assert len(files) == 3 and (out / 'pseudo_labels.json').is_file()
    first = files[0].stat().st_mtime_ns
    tool.main([TINY, '--split', 'images/train', '--out', str(out), '--cfg-options', *options])
    assert files[0].stat().st_mtime_ns == first                   # kept, not redone
    # the dataset reads them as ReCo's labels; ReCo+'s proving-ground config trains on them
    cfg = Config.fromfile(str(CONFIG_DIR / 'reco-plus_deeplabv3plus-r18-w16_4k_synthetic-64.py'))
    train = cfg.train_dataloader.dataset
    train.update(data_root=str(synthetic_root), pipeline=[dict(type='LoadImageFromFile'),
                                                          dict(type='LoadAnnotations'),
                                                          dict(type='PackSegInputs')])
    dataset = SEG_DATASETS.build(train)
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(tiny_options(index_dir, tmp_path / 'cache'))
    model = SEG_MODELS.build(cfg.model)
    from mmengine.dataset import pseudo_collate
    sample = dataset[0]
    predicted = model.test_step(pseudo_collate([sample]))[0].pred_sem_seg.data
    np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data, predicted)


def test_pseudo_labels_fold_fine_names_to_the_dataset_classes():
    from densevl.datasets.coco_stuff27 import FINE_CLASSES, FINE_TO_COARSE, COCOStuff27Dataset

    tool = load_tool('reco_pseudo_labels')
    fine = np.array([[0, 170], [62, 255]])
    folded = tool.fold_to_dataset_classes(fine, list(FINE_CLASSES), COCOStuff27Dataset.METAINFO)
    assert folded.tolist() == [[FINE_TO_COARSE[0], FINE_TO_COARSE[170]], [FINE_TO_COARSE[62], 255]]
    same = tool.fold_to_dataset_classes(fine, ['a'] * 27, COCOStuff27Dataset.METAINFO)
    assert same is fine


# ----- tools/test.py, the inferencer, the demo ----------------------------------------------------

@pytest.mark.parametrize('texts, labels_count', [('pink,grass;lawn,sky', 3), ('sky', 1)])
def test_tools_test_takes_texts(synthetic_root, index_dir, tmp_path, texts, labels_count):
    preds = tmp_path / 'preds.pkl'
    load_tool('test').main([
        TINY, '--texts', texts, '--work-dir', str(tmp_path / 'work'), '--out', str(preds),
        '--cfg-options', *cli_options(tiny_options(index_dir, tmp_path / 'cache')),
        f'test_dataloader.dataset.data_root={synthetic_root}', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'])
    with open(preds, 'rb') as f:
        labels = torch.stack([r['pred_sem_seg']['data'] for r in pickle.load(f)])
    assert labels.shape == (2, 1, 64, 64)                       # ReCo has no background
    assert 0 <= int(labels.min()) and int(labels.max()) < labels_count


def test_inferencer_takes_the_vocabulary_at_call_time(index_dir, tmp_path):
    from densevl.apis import OpenVocabSegInferencer

    seg = OpenVocabSegInferencer(TINY, device='cpu',
                                 cfg_options=tiny_options(index_dir, tmp_path / 'cache'))
    assert seg.is_random_weights and seg.protocol.short_side is None
    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    for texts in (['red', 'sky'], ['blue', 'grass;lawn', 'water']):
        out = seg(image, texts=texts, return_scores=True)
        pred = out['predictions'][0]
        assert pred.pred_sem_seg.shape == (48, 80) and pred.scores.shape == (len(texts), 48, 80)
        assert int(pred.pred_sem_seg.max()) < len(texts)
        assert out['visualization'][0].shape[0] == 48


def test_demo_segments_with_reco(index_dir, tmp_path):
    options = cli_options(tiny_options(index_dir, tmp_path / 'cache'))
    out_file = tmp_path / 'scene_seg.png'
    run = subprocess.run([sys.executable, 'demo/image_demo.py', '--scene', '3', '--model', TINY,
                          '--out-file', str(out_file), '--cfg-options', *options],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert 'RANDOM' in run.stdout and 'grass' in run.stdout
    assert out_file.is_file()


def test_options_round_trip_through_the_command_line():
    import argparse

    from mmengine.config import DictAction

    options = tiny_options(Path('/x'), Path('/c'))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg, expected = Config.fromfile(TINY), Config.fromfile(TINY)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *cli_options(options)]).cfg_options)
    expected.merge_from_dict(options)
    assert cfg.model.to_dict() == {**expected.model.to_dict(), 'context': ['sky']}
