"""A few steps of the proving ground's tiny-CLIP training, as CI can afford."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from densevl.datasets.synthetic import sample_scene
from densevl.models.clip import create_clip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
from train_tiny_clip import concept_caption  # noqa: E402


def test_concept_captions_name_only_what_is_in_the_scene():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scene = sample_scene(rng, split='clip_train')
        words = concept_caption(scene, rng).split(', ')
        present = {*scene.stuff, *(o.colour for o in scene.objects)}
        assert words and set(words) <= present and len(words) == len(set(words))


def test_training_runs_saves_and_resumes(tmp_path):
    out, work = tmp_path / 'tiny.pt', tmp_path / 'work'
    base = [sys.executable, 'tools/train_tiny_clip.py', '--out', str(out), '--work-dir', str(work),
            '--batch-size', '8', '--warmup', '1', '--log-interval', '1', '--save-interval', '2']
    first = subprocess.run([*base, '--steps', '2'], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert 'step 2/2' in first.stdout
    resumed = subprocess.run([*base, '--steps', '3', '--resume'], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 'resumed from step 2' in resumed.stdout and 'step 3/3' in resumed.stdout
    weights = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    bundle = create_clip('clip-synthetic-tiny', pretrained=str(out))
    assert not bundle.random_weights
    assert bundle.tokenizer(['a red star']).shape == (1, 32)
