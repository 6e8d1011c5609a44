"""OVSeg from the API, the demo and the tools: a tiny checkpoint of the proving-ground config
through ``OpenVocabSegInferencer`` (the reference demo's preset, each variant with a vocabulary at
call time, one name, no valid proposal), ``demo/image_demo.py`` and ``tools/test.py --texts``,
and the bad inputs (missing checkpoints, a mask embedding of another grid), each refused with
its fix."""
from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import mmengine.runner
import numpy as np
import pytest
import torch
from _tools import load_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

import densevl.models.mm_adapters  # noqa: F401
from densevl.apis import OpenVocabSegInferencer
from densevl.registry import SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / 'configs' / 'ovseg' / 'ovseg_clip-synthetic-tiny_400it_synthetic-64.py')
TEXTS = ['pink', 'grass; lawn', 'sky']


def save_checkpoint(path: Path, *, no_masks: bool = False) -> Path:
    """A checkpoint of the config's model with random weights (the packaged tiny CLIP is not in
    it); ``no_masks``: every mask logit 0, so no mask is above a threshold of 0.5."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        model = SEG_MODELS.build(Config.fromfile(CONFIG).model)
    if no_masks:
        with torch.no_grad():
            model.decode_head.pixel_decoder.mask_feature.weight.zero_()
            model.decode_head.pixel_decoder.mask_feature.bias.zero_()
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp('ovseg') / 'ovseg_tiny.pth')


@pytest.fixture(scope='module')
def seg(checkpoint) -> OpenVocabSegInferencer:
    return OpenVocabSegInferencer(CONFIG, weights=str(checkpoint), device='cpu')


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)


def run_demo(*args: str) -> subprocess.CompletedProcess:
    """``demo/image_demo.py`` as a user runs it."""
    return subprocess.run([sys.executable, 'demo/image_demo.py', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def demo():
    """``demo/image_demo.py`` imported, for the cases that need no fresh interpreter."""
    spec = importlib.util.spec_from_file_location('image_demo', ROOT / 'demo' / 'image_demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----- the inferencer ---------------------------------------------------------------------------

def test_the_inferencer_applies_the_reference_demo_preset(seg, checkpoint):
    assert seg.preset == dict(ensemble_weight=0.0, mask_threshold=0.35)
    assert seg.segmenter.ensemble_weight == 0.0 and seg.segmenter.mask_threshold == 0.35
    assert not seg.is_random_weights
    as_is = OpenVocabSegInferencer(CONFIG, weights=str(checkpoint), device='cpu',
                                   demo_preset=False)
    assert as_is.preset == {} and as_is.segmenter.ensemble_weight == 0.7
    assert as_is.segmenter.mask_threshold == 0.5
    changed = OpenVocabSegInferencer(CONFIG, weights=str(checkpoint), device='cpu',
                                     cfg_options={'model.ensemble_weight': 0.6})
    assert changed.preset == dict(mask_threshold=0.35)
    assert changed.segmenter.ensemble_weight == 0.6
    # without a checkpoint the proposal network is random, though the CLIP is trained
    assert OpenVocabSegInferencer(CONFIG, device='cpu').is_random_weights
    with pytest.raises(ValueError, match='cfg_options change a config'):
        OpenVocabSegInferencer('clip-tiny-random', cfg_options={'model.mode': 'sclip'})


@pytest.mark.parametrize('options', [
    {}, {'model.classifier': 'mask_pooling'}, {'model.ensemble_weight': 0.7},
    {'model.ensemble_weight': None}], ids=['crops-alone', 'pooling-alone', 'ensemble', 'head'])
def test_every_variant_takes_its_vocabulary_at_call_time(checkpoint, image, options):
    seg = OpenVocabSegInferencer(CONFIG, weights=str(checkpoint), device='cpu',
                                 cfg_options=options)
    for texts in (TEXTS, ['red', 'blue', 'a purple thing', 'water', 'sand']):
        out = seg(image, texts=texts, return_scores=True, visualize=False)
        prediction = out['predictions'][0]
        assert prediction.texts == texts and prediction.pred_sem_seg.shape == (64, 80)
        assert prediction.scores.shape == (len(texts), 64, 80)
        assert -1 <= int(prediction.pred_sem_seg.min()) <= int(prediction.pred_sem_seg.max()) \
            < len(texts)
        expected = seg.segmenter.segment(seg.preprocess(image), texts, out_size=(64, 80))[0]
        assert torch.equal(prediction.pred_sem_seg, expected.labels)


def test_a_single_name_is_contrasted_with_others(seg, image):
    single = seg(image, texts=['sky'], return_scores=True, visualize=False)['predictions'][0]
    pair = seg(image, texts=['sky', 'others'], return_scores=True,
               visualize=False)['predictions'][0]
    assert single.texts == ['sky'] and single.scores.shape == (1, 64, 80)
    torch.testing.assert_close(single.scores[0], pair.scores[0])
    assert torch.equal(single.pred_sem_seg,
                       torch.where(pair.pred_sem_seg == 1, -1, pair.pred_sem_seg))
    with pytest.raises(ValueError, match="catch-all 'others'"):
        seg(image, texts=['others'])


def test_no_valid_proposal_leaves_every_pixel_unlabelled(tmp_path, image, demo, capsys):
    empty = save_checkpoint(tmp_path / 'no_masks.pth', no_masks=True)
    seg = OpenVocabSegInferencer(CONFIG, weights=str(empty), device='cpu',
                                 cfg_options={'model.mask_threshold': 0.5})
    with pytest.warns(UserWarning, match='no valid mask proposal.*Lower the mask threshold'):
        out = seg(image, texts=TEXTS, return_scores=True, out_dir=tmp_path / 'vis')
    prediction = out['predictions'][0]
    assert torch.equal(prediction.pred_sem_seg, torch.full((64, 80), -1))
    assert not prediction.scores.any() and (tmp_path / 'vis' / 'image_0_seg.png').is_file()
    with pytest.warns(UserWarning, match='no valid mask proposal'):
        assert demo.run(['--scene', '1', '--model', CONFIG, '--weights', str(empty),
                         '--cfg-options', 'model.mask_threshold=0.5', '--out-file',
                         str(tmp_path / 'empty.png')]) == 0
    assert '(background)  100.0%' in capsys.readouterr().out


# ----- bad inputs -------------------------------------------------------------------------------

def test_missing_checkpoints_are_refused_before_any_work(tmp_path, checkpoint, monkeypatch,
                                                         demo, capsys):
    missing = str(tmp_path / 'missing.pth')

    def no_work(*args, **kwargs):
        raise AssertionError('work started before the bad path was refused')

    with monkeypatch.context() as patch:
        patch.setattr(SEG_MODELS, 'build', no_work)
        with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth.* does not exist'):
            OpenVocabSegInferencer(CONFIG, weights=missing, device='cpu')
    with monkeypatch.context() as patch:
        patch.setattr(mmengine.runner, 'load_checkpoint', no_work)
        with pytest.raises(FileNotFoundError, match='SAM checkpoint .*does not exist.*sam_vit_h'):
            OpenVocabSegInferencer(CONFIG, weights=str(checkpoint), device='cpu', cfg_options={
                'model.proposals': dict(type='SAM', checkpoint=str(tmp_path / 'sam.pth'))})
    with pytest.raises(SystemExit, match='missing.pth.* does not exist.*tools/train.py'):
        load_tool('test').setup_cfg(load_tool('test').parse_args([CONFIG, missing]))
    for args in (['--weights', missing],
                 ['--weights', str(checkpoint), '--cfg-options', 'model.proposals.type=SAM',
                  f'model.proposals.checkpoint={tmp_path / "sam.pth"}']):
        assert demo.run(['--scene', '1', '--model', CONFIG, '--out-file',
                         str(tmp_path / 'bad.png'), *args]) == 2
        assert 'does not exist' in capsys.readouterr().err
        assert not (tmp_path / 'bad.png').exists()


def test_a_mask_embedding_of_another_grid_is_refused(tmp_path, checkpoint, image):
    path = tmp_path / 'mask_embedding.pth'      # a 4x4 grid; the tiny CLIP's is 8x8 (64 px)
    torch.save({'mask_embedding': torch.randn(2, 16, 128)}, path)
    seg = OpenVocabSegInferencer(CONFIG, weights=str(checkpoint), device='cpu',
                                 cfg_options={'model.clip.mask_embedding': str(path)})
    with pytest.raises(ValueError, match=r'4x4 grid.*image_size=32'):
        seg(image, texts=TEXTS)


# ----- the demo and tools/test.py end to end ----------------------------------------------------

def test_demo_segments_with_an_ovseg_checkpoint(tmp_path, checkpoint):
    out_file = tmp_path / 'scene_seg.png'
    run = run_demo('--scene', '3', '--model', CONFIG, '--weights', str(checkpoint),
                   '--out-file', str(out_file))
    assert run.returncode == 0, run.stderr
    assert 'model.ensemble_weight=0.0, model.mask_threshold=0.35' in run.stdout
    assert 'RANDOM' not in run.stdout and 'grass' in run.stdout
    assert np.asarray(Image.open(out_file)).shape[0] == 256
    run = run_demo(str(tmp_path / 'scene_seg_input.png'), '--texts', 'sky', '--model', CONFIG,
                   '--weights', str(checkpoint), '--no-demo-preset', '--out-file',
                   str(tmp_path / 'sky.png'))
    assert run.returncode == 0, run.stderr
    assert "contrasted with 'others'" in run.stdout and 'demo preset' not in run.stdout
    assert (tmp_path / 'sky.png').is_file()


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    from densevl.datasets.synthetic import write_dataset
    return write_dataset(tmp_path_factory.mktemp('synthetic'), counts=dict(train=1, test=2),
                         progress=False)


@pytest.mark.parametrize('texts, labels', [('pink,grass;lawn,sky', 3), ('sky', 1)])
def test_tools_test_takes_texts(synthetic_root, checkpoint, tmp_path, texts, labels):
    preds = tmp_path / 'preds.pkl'
    load_tool('test').main([
        CONFIG, str(checkpoint), '--texts', texts, '--work-dir', str(tmp_path / 'work'),
        '--out', str(preds), '--cfg-options',
        f'test_dataloader.dataset.data_root={synthetic_root}', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'])
    with open(preds, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 2
    for result in results:
        data = result['pred_sem_seg']['data']
        assert tuple(data.shape) == (1, 64, 64)
        assert -1 <= int(data.min()) and int(data.max()) < labels
