"""The training-free segmentor through mmseg: every config builds; tools/test.py runs end to end."""
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import densevl.datasets.mm_datasets  # noqa: F401
import densevl.models.mm_adapters  # noqa: F401
from densevl.registry import SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / 'configs').glob('training_free/*_vit-b16_*.py'))
TINY = dict(model_name='clip-tiny-random', pretrained=None)


def test_there_are_configs_for_every_method_and_benchmark():
    methods = {p.name.split('_')[0] for p in CONFIGS}
    assert methods == {'maskclip', 'sclip', 'clearclip', 'naclip'}
    assert len(CONFIGS) == 32


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds(config):
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    cfg.model.clip = TINY
    model = SEG_MODELS.build(cfg.model)
    assert model.core.encoder.mode == cfg.model.mode
    assert len(model.class_names) >= 19


def write_ade_layout(root: Path, count: int = 3) -> None:
    rng = np.random.default_rng(0)
    for sub in ('images/validation', 'annotations/validation'):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        label = np.zeros((96, 128), dtype=np.uint8)
        label[:48] = 1     # wall
        label[48:, :64] = 3  # sky
        label[48:, 64:] = 2  # building
        Image.fromarray(image).save(root / f'images/validation/ADE_val_{i:08d}.jpg')
        Image.fromarray(label).save(root / f'annotations/validation/ADE_val_{i:08d}.png')


def run_test_tool(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    config = ROOT / 'configs/training_free/naclip_vit-b16_training-free_ade20k-336.py'
    command = [
        sys.executable, 'tools/test.py', str(config), '--work-dir', str(tmp_path / 'work'),
        '--cfg-options', 'model.clip.model_name=clip-tiny-random', 'model.clip.pretrained=None',
        'model.templates=single', f'test_dataloader.dataset.data_root={tmp_path / "ade"}',
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1', *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_tools_test_runs_the_mmseg_loop(tmp_path):
    write_ade_layout(tmp_path / 'ade')
    run = run_test_tool(tmp_path, '--out', str(tmp_path / 'preds.pkl'))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert 'mIoU' in run.stdout + run.stderr
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 3
    labels = preds[0]['pred_sem_seg']['data']
    assert tuple(labels.shape) == (1, 96, 128)     # back at the original size
    assert int(labels.max()) < 150


def test_tools_test_takes_a_vocabulary(tmp_path):
    write_ade_layout(tmp_path / 'ade', count=1)
    run = run_test_tool(tmp_path, '--out', str(tmp_path / 'preds.pkl'), '--texts',
                        'wall,building;house,sky')
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        labels = pickle.load(f)[0]['pred_sem_seg']['data']
    assert int(labels.max()) < 3
