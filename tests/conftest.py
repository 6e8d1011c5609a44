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

# Test modules that need only torch and open_clip (and what a GPU machine's image has: numpy,
# Pillow, scipy...), run on a bare GPU machine by tools/gpu_check.sh (`pytest -m torch_only`).
# Their tests that need OpenMMLab are marked `openmmlab`; every other test of them gets
# `torch_only`. tests/test_torch_only_selection.py runs the selection with OpenMMLab's imports
# blocked and checks that no module importable without OpenMMLab is left out.
TORCH_ONLY_MODULES = frozenset({
    'test_dense_clip', 'test_denseclip_core', 'test_factory', 'test_golden_dense_clip',
    'test_grounding_heatmap', 'test_grounding_text', 'test_inferencer', 'test_ops',
    'test_ovseg_core', 'test_ovseg_proposals', 'test_reco_core', 'test_segmenter',
    'test_quality_runs', 'test_synthetic_world', 'test_text_embedder', 'test_tiny_clip_training',
    'test_visualization',
})


def pytest_configure(config):
    config.addinivalue_line('markers', 'torch_only: needs only torch and open_clip (set by '
                            'conftest.TORCH_ONLY_MODULES; run by tools/gpu_check.sh)')
    config.addinivalue_line('markers', 'openmmlab: needs mmcv / mmengine / mmseg / mmdet, in a '
                            'module of TORCH_ONLY_MODULES')
    config.addinivalue_line('markers', 'full_install: needs another dependency of the full '
                            'install (pydensecrf2), in a module of TORCH_ONLY_MODULES')


def pytest_collection_modifyitems(config, items):
    try:
        import mmengine  # noqa: F401
        have_openmmlab = True
    except ImportError:
        have_openmmlab = False
    for item in items:
        # skipped only on the bare GPU machine (no OpenMMLab: not the full install); in the full
        # install a missing dependency fails the test instead of skipping it
        if item.get_closest_marker('openmmlab') or item.get_closest_marker('full_install'):
            if not have_openmmlab:
                item.add_marker(pytest.mark.skip(reason='needs the full install (OpenMMLab, '
                                                 'pydensecrf2), not on the bare GPU machine'))
        elif item.path.stem in TORCH_ONLY_MODULES:
            item.add_marker(pytest.mark.torch_only)

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
    try:
        from mmengine.registry import DefaultScope
    except ImportError:  # a GPU machine runs the torch-only tests without OpenMMLab
        yield
        return
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
