import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from densevl.apis import OpenVocabSegInferencer, load_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def inferencer():
    return OpenVocabSegInferencer('clip-tiny-random', device='cpu', templates=['a {}.'],
                                  short_side=64)


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(48, 72, 3), dtype=np.uint8)


def test_every_input_kind(inferencer, photo, tmp_path):
    path = tmp_path / 'photo.png'
    Image.fromarray(photo).save(path)
    out = inferencer([str(path), photo, Image.fromarray(photo)], texts=['cat', 'dog; puppy'],
                     return_scores=True, out_dir=tmp_path / 'vis')
    labels = [p.pred_sem_seg for p in out['predictions']]
    assert all(lab.shape == (48, 72) for lab in labels)
    assert torch.equal(labels[0], labels[1]) and torch.equal(labels[1], labels[2])
    assert out['predictions'][0].scores.shape == (2, 48, 72)
    assert (tmp_path / 'vis' / 'photo_seg.png').is_file()
    assert (tmp_path / 'vis' / 'image_1_seg.png').is_file()
    assert out['visualization'][0].shape[0] == 48 and out['visualization'][0].shape[1] > 72


def test_background_threshold_gives_minus_one(inferencer, photo):
    out = inferencer(photo, texts=['a', 'b', 'c'], bg_threshold=1.01)
    assert (out['predictions'][0].pred_sem_seg == -1).all()


def test_random_weights_are_flagged(inferencer):
    assert inferencer.is_random_weights


@pytest.mark.parametrize('texts, message', [([], 'empty'), (['cat', ' '], 'blank'),
                                            (['cat', 'dog', 'cat'], 'duplicate')])
def test_bad_vocabularies(inferencer, photo, texts, message):
    with pytest.raises(ValueError, match=message):
        inferencer(photo, texts=texts)


def test_image_conversions(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert load_image(gray).shape == (3, 4, 3)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 3] = 0                       # fully transparent: composited over white
    assert (load_image(rgba) == 255).all()
    deep = np.full((2, 2, 3), 65535, dtype=np.uint16)
    assert (load_image(deep) == 255).all()
    Image.fromarray(np.full((5, 6), 4000, dtype=np.uint16)).save(tmp_path / 'deep.png')
    assert load_image(tmp_path / 'deep.png').shape == (5, 6, 3)
    Image.fromarray(rgba).save(tmp_path / 'rgba.png')
    assert load_image(tmp_path / 'rgba.png').shape == (2, 2, 3)


def test_unreadable_and_truncated_files(tmp_path):
    junk = tmp_path / 'junk.jpg'
    junk.write_bytes(b'not an image at all')
    with pytest.raises(ValueError, match='not an image file'):
        load_image(junk)
    full = tmp_path / 'full.jpg'
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        full, quality=95)
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(full.read_bytes()[:600])
    with pytest.raises(ValueError, match='truncated'):
        load_image(cut)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_image(tmp_path / 'missing.png')


def test_image_smaller_than_a_patch(photo):
    small = OpenVocabSegInferencer('clip-tiny-random', device='cpu', templates=['a {}.'],
                                   short_side=None)
    with pytest.raises(ValueError, match='smaller than one 16x16 patch'):
        small(photo[:8, :8], texts=['a', 'b'])


@pytest.mark.openmmlab  # the demo / mmseg adapter
def test_demo_script_writes_an_overlay(tmp_path):
    out_file = tmp_path / 'seg.png'
    run = subprocess.run(
        [sys.executable, 'demo/image_demo.py', 'demo/images/chelsea.jpg', '--texts',
         'cat;kitten,grass', '--templates', 'single', '--out-file', str(out_file),
         '--model', 'clip-tiny-random'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert 'RANDOM weights' in run.stdout and 'cat' in run.stdout
    image = np.asarray(Image.open(out_file))
    assert image.shape[0] == 300 and image.shape[1] > 451


@pytest.mark.openmmlab  # the demo / mmseg adapter
def test_demo_script_reports_missing_weights(tmp_path):
    run = subprocess.run(
        [sys.executable, 'demo/image_demo.py', 'demo/images/chelsea.jpg', '--texts', 'cat',
         '--weights', str(tmp_path / 'missing.pt')],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert 'does not exist' in run.stderr and 'Traceback' not in run.stderr


@pytest.mark.openmmlab  # the demo / mmseg adapter
def test_demo_default_segments_a_generated_scene_offline(tmp_path):
    out_file = tmp_path / 'demo_seg.png'
    run = subprocess.run([sys.executable, 'demo/image_demo.py', '--scene', '3', '--out-file',
                          str(out_file)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert 'RANDOM' not in run.stdout and 'scene 3:' in run.stdout
    assert (tmp_path / 'demo_seg_input.png').is_file()
    assert np.asarray(Image.open(out_file)).shape[0] == 256
