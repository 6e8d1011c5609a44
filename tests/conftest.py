"""Shared fixtures: tiny random CLIP models built from config dicts, no downloads."""
from __future__ import annotations

import sys
from pathlib import Path

import open_clip
import pytest
import torch

# A test that loads a tool by its file path finds the tool's own modules (tools/_cli.py,
# tools/_golden.py) as the tool does when it runs as a script: Python puts the script's folder
# on sys.path.
TOOLS_DIR = str(Path(__file__).resolve().parents[1] / 'tools')
if TOOLS_DIR not in sys.path:
    sys.path.append(TOOLS_DIR)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')

TINY_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1)


@pytest.fixture(autouse=True, scope='session')
def _isolated_cache(tmp_path_factory):
    """Keep every test's text-embedding cache out of the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv('DENSEVL_CACHE', str(tmp_path_factory.mktemp('densevl-cache')))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _mmseg_scope_per_test():
    """Each test starts in mmseg's default scope and leaves no scope behind: a test that calls
    ``init_default_scope('mmdet')`` must not change how the next one builds mmseg modules."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def make_tiny_vit(image_size: int = 64, width: int = 128, layers: int = 3, seed: int = 0,
                  **vision) -> open_clip.CLIP:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.CLIP(embed_dim=32, quick_gelu=True, text_cfg=TINY_TEXT,
                              vision_cfg=dict(image_size=image_size, patch_size=16, width=width,
                                              layers=layers, head_width=64, **vision)).eval()


def make_tiny_resnet(image_size: int = 64, seed: int = 0) -> open_clip.CLIP:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.CLIP(embed_dim=32, text_cfg=TINY_TEXT,
                              vision_cfg=dict(image_size=image_size, layers=(1, 1, 1, 1),
                                              width=8, head_width=64)).eval()


@pytest.fixture
def tiny_vit() -> open_clip.CLIP:
    return make_tiny_vit()


@pytest.fixture
def tiny_resnet() -> open_clip.CLIP:
    return make_tiny_resnet()
