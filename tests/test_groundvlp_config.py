"""GroundVLP configs under tools/test.py: the mmengine adapter scores what GroundingInferencer
answers, every config loads, and missing data or a stray checkpoint is a clear error.

The proving-ground config runs on a tiny synthetic RefCOCO split with random weights of the tiny
CLIP's architecture (heat maps and the detector's backbone) and a saved random detector, so the
adapter and the reference inferencer load the same weights.
"""
from __future__ import annotations

import ast
import pickle
from collections import defaultdict
from pathlib import Path

import open_clip
import pytest
import torch
from _tools import load_tool
from mmengine.config import Config
from mmengine.evaluator import DumpResults
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import densevl.datasets.mm_datasets  # noqa: F401 - registers RefCOCOGroundingDataset
from densevl.apis import GroundingInferencer, OpenVocabDetInferencer
from densevl.evaluation.grounding_accuracy import refcoco_iou
from densevl.models.clip.model_zoo import SYNTHETIC_CONFIGS

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs' / 'groundvlp'
SYNTHETIC = CONFIG_DIR / 'groundvlp_clip-synthetic-tiny-ovdet_training-free_synthetic-refcoco.py'
REAL = CONFIG_DIR / 'groundvlp_vit-b32-mask-rcnn-r101_training-free_refcoco-val.py'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
SPLITS = {'refcoco': ('refs(unc).p', {'val', 'testA', 'testB'}),
          'refcoco+': ('refs(unc).p', {'val', 'testA', 'testB'}),
          'refcocog': ('refs(umd).p', {'val', 'test'})}


def _depth(path: Path) -> int:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_'
                                                for t in node.targets):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return 1 + max(_depth((path.parent / b).resolve()) for b in bases)
    return 1


@pytest.mark.parametrize('path', CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads_and_its_name_says_its_data(path):
    cfg = Config.fromfile(str(path), import_custom_modules=False)
    assert _depth(path) <= 3
    assert cfg.default_scope == 'mmdet' and cfg.model.type == 'GroundVLP'
    assert 'densevl.models.mm_adapters' in cfg.custom_imports['imports']
    assert (cfg.model.predicted_score_thr, cfg.model.gt_score_thr) == (0.3, 0.15)
    assert Path(cfg.model.detector.config).is_file()
    dataset = cfg.test_dataloader.dataset
    assert dataset.type == 'RefCOCOGroundingDataset'
    assert cfg.test_evaluator.type == 'GroundingAccuracyMetric'
    data = path.stem.rsplit('_', 1)[1]
    if data == 'synthetic-refcoco':
        assert dataset.split == 'test' and dataset.split_file == 'refs(synthetic).p'
        assert cfg.model.category_from == 'phrase'
        return
    name, split = data.rsplit('-', 1)
    split_file, splits = SPLITS[name]
    assert dataset.data_root == f'data/{name}/' and dataset.split_file == split_file
    assert dataset.split == split and split in splits
    assert cfg.model.category_from == 'subject' and cfg.model.clip_weights == 'openai'


@pytest.fixture(scope='module')
def world(tmp_path_factory) -> Path:
    from densevl.datasets.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp('world'), counts={'test': 3},
                         refs_per_object=2, progress=False)


@pytest.fixture(scope='module')
def weights(tmp_path_factory) -> dict[str, str]:
    """Random tiny-CLIP weights and a random detector checkpoint (no packaged weights needed)."""
    tmp = tmp_path_factory.mktemp('weights')
    torch.manual_seed(0)
    clip = tmp / 'clip.pth'
    torch.save(open_clip.CLIP(**SYNTHETIC_CONFIGS['vit']['config']).state_dict(), clip)
    detector_cfg = Config.fromfile(Config.fromfile(str(SYNTHETIC)).model.detector.config)
    detector_cfg.model.backbone.clip.pretrained = str(clip)
    detector_cfg.model.text = dict(templates=('{}', ), cache_dir=False)
    detector_cfg.model.test_cfg.rcnn.score_thr = 0.0   # random heads: keep boxes to choose from
    # Object-sized anchors (16 px and up on the 64-px scenes): with the box regression zeroed
    # below, the detector's boxes are these anchors, and some of them hit.
    detector_cfg.model.rpn_head.anchor_generator.scales = [8]
    config = tmp / 'detector.py'
    detector_cfg.dump(config)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = OpenVocabDetInferencer(str(config), device='cpu')
    state = detector.model.state_dict()
    for key in ('rpn_head.rpn_reg', 'roi_head.bbox_head.fc_reg'):
        # no box regression: random deltas would give thin boxes that never hit
        state[f'{key}.weight'].zero_()
        state[f'{key}.bias'].zero_()
    checkpoint = tmp / 'detector.pth'
    torch.save(dict(state_dict=state, meta={}), checkpoint)
    return dict(clip=str(clip), config=str(config), checkpoint=str(checkpoint))


def _tiny_config(world: Path, weights: dict, mode: str, work_dir: Path) -> Config:
    cfg = Config.fromfile(str(SYNTHETIC))
    cfg.model.update(clip_weights=weights['clip'], category_mode=mode, device='cpu',
                     detector=dict(config=weights['config'], weights=weights['checkpoint']))
    cfg.test_dataloader.dataset.data_root = str(world / 'refcoco')
    cfg.test_dataloader.batch_size = 4   # an image's sentences split across batches
    cfg.work_dir = str(work_dir)
    return cfg


def _reference(cfg: Config, mode: str) -> tuple[list[float], dict[int, list[float]]]:
    """GroundingInferencer on the config's samples, grouped by image as
    tools/benchmark_grounding.py does: each sentence's refcoco_iou with its ground truth, and
    its box by ``sent_id``."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import DATASETS

        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    m = cfg.model
    ground = GroundingInferencer(m.clip, m.clip_weights, device='cpu',
                                 detector=(m.detector.config, m.detector.weights),
                                 category_from=m.category_from)
    by_image = defaultdict(list)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        by_image[info['img_path']].append(info)
    ious, boxes = [], {}
    for path, infos in by_image.items():
        gt = [s['category'] for s in infos] if mode == 'gt' else None
        out = ground(path, [s['text'] for s in infos], gt_categories=gt,
                     score_threshold=m.gt_score_thr if mode == 'gt' else m.predicted_score_thr)
        for info, prediction in zip(infos, out['predictions']):
            boxes[info['sent_id']] = prediction.box.tolist()
            ious.append(refcoco_iou(prediction.box.tolist(), info['gt_bbox']))
    assert len(ious) == len(dataset) >= 5
    return ious, boxes


@pytest.mark.parametrize('mode', ['predicted', 'gt'])
def test_test_loop_scores_what_the_inferencer_answers(world, weights, mode, tmp_path):
    cfg = _tiny_config(world, weights, mode, tmp_path / 'work')
    # Random weights seldom reach IoU 0.5: a loose threshold too, so that the equality is not
    # only 0 = 0.
    cfg.test_evaluator = [cfg.test_evaluator, dict(type='GroundingAccuracyMetric',
                                                   iou_threshold=0.05, prefix='loose')]
    runner = Runner.from_cfg(cfg)
    dump = tmp_path / 'preds.pkl'
    runner.test_evaluator.metrics.append(DumpResults(out_file_path=str(dump)))
    metrics = runner.test()

    ious, boxes = _reference(cfg, mode)
    assert set(metrics) == {'grounding/Acc@0.5', 'loose/Acc@0.05'}
    for key, threshold in (('grounding/Acc@0.5', 0.5), ('loose/Acc@0.05', 0.05)):
        expected = 100.0 * sum(iou >= threshold for iou in ious) / len(ious)
        assert metrics[key] == pytest.approx(expected)
    assert metrics['loose/Acc@0.05'] > 0
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert sorted(p['sent_id'] for p in predictions) == sorted(boxes)
    for p in predictions:
        torch.testing.assert_close(p['pred_bbox'].float(), torch.tensor(boxes[p['sent_id']]))
    assert {'pred_score', 'pred_category', 'fallback', 'gt_bbox', 'text'} <= set(predictions[0])


def test_tools_test_runs_without_a_checkpoint_and_refuses_one(world, weights, tmp_path):
    config = tmp_path / 'groundvlp_tiny.py'
    _tiny_config(world, weights, 'predicted', tmp_path / 'work').dump(config)
    tool = load_tool('test')
    tool.main([str(config)])
    log = ''.join(p.read_text() for p in (tmp_path / 'work').glob('*/*.log'))
    assert 'grounding/Acc@0.5' in log
    with pytest.raises(SystemExit, match='takes no checkpoint.*model.detector.weights'):
        tool.main([str(config), weights['checkpoint']])


def test_missing_data_or_weights_is_a_clear_error(tmp_path, weights):
    tool = load_tool('test')
    # before any model is built (no weights are downloaded)
    with pytest.raises(SystemExit, match=r'refcoco/refs\(unc\)\.p does not exist.*lichengunc'):
        tool.main([str(REAL), '--work-dir', str(tmp_path), '--cfg-options',
                   f'test_dataloader.dataset.data_root={tmp_path / "refcoco"}/'])
    refcocog = CONFIG_DIR / 'groundvlp_vit-b32-mask-rcnn-r101_training-free_refcocog-test.py'
    (tmp_path / 'refcocog').mkdir()
    (tmp_path / 'refcocog' / 'refs(umd).p').write_bytes(pickle.dumps([]))
    with pytest.raises(SystemExit, match=r'refcocog/instances\.json does not exist.*train2014'):
        tool.main([str(refcocog), '--work-dir', str(tmp_path), '--cfg-options',
                   f'test_dataloader.dataset.data_root={tmp_path / "refcocog"}/'])

    from densevl.models.grounding.groundvlp_model import GroundVLP

    with pytest.raises(FileNotFoundError, match="'missing.pth' does not exist.*tools/train.py"):
        GroundVLP(clip='clip-synthetic-tiny', clip_weights=weights['clip'], device='cpu',
                  detector=dict(config=weights['config'], weights='missing.pth'))
    with pytest.raises(ValueError, match='category_mode'):
        GroundVLP(clip='clip-synthetic-tiny', clip_weights=weights['clip'], device='cpu',
                  detector=dict(config=weights['config']), category_mode='oracle')
