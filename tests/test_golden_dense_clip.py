"""CLIPDenseViT against golden tensors from the reference implementations.

``tests/golden/dense_clip.pt`` holds a tiny seeded OpenAI-layout ViT, two image batches and, per
dense mode, the output of the reference code on those weights (SCLIP, ClearCLIP's harness for
MaskCLIP and ClearCLIP, NACLIP); ``tools/make_golden_dense_clip.py`` made it, see
``tests/golden/README.md``. Everything runs in fp32, so agreement is to 1e-5.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from open_clip.transformer import QuickGELU, VisionTransformer

from densevl.models.clip import CLIPDenseViT
from densevl.models.clip.last_block import DENSE_MODES

GOLDEN = Path(__file__).parent / 'golden' / 'dense_clip.pt'
ATOL = 1e-5
INPUTS = ('square', 'nonsquare')
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
DEVICES = ['cpu', pytest.param('cuda', marks=requires_cuda)]


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


def build_visual(golden: dict, device: str = 'cpu') -> VisionTransformer:
    """An open_clip ViT with the golden dims (OpenAI: 64-wide heads, QuickGELU) and weights."""
    dims = golden['dims']
    visual = VisionTransformer(
        image_size=dims['image_size'], patch_size=dims['patch_size'], width=dims['width'],
        layers=dims['layers'], heads=dims['width'] // dims['head_width'], mlp_ratio=4.0,
        output_dim=dims['embed_dim'], act_layer=QuickGELU)
    # open_clip keeps OpenAI's key names under ``visual.``
    state = {k.removeprefix('visual.'): v.float() for k, v in golden['visual_state_dict'].items()}
    visual.load_state_dict(state, strict=True)
    return visual.eval().to(device)


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Same shape, and every element of ``actual`` (any device, dtype) within ATOL."""
    torch.testing.assert_close(actual.detach().cpu().float(), expected, rtol=0, atol=ATOL,
                               msg=lambda message: f'{what}: {message}')


def test_golden_file_is_small_and_pinned(golden):
    assert GOLDEN.stat().st_size < 2_000_000
    assert set(golden['golden']) == set(DENSE_MODES)
    for name, ref in golden['references'].items():
        assert len(ref['commit']) == 40 and ref['verified'], name
    for key, diff in golden['cross_checks_max_abs_diff'].items():
        assert diff <= ATOL, key


def test_weights_load_into_open_clip(golden):
    """open_clip's own forward reproduces the reference's plain CLIP, so the weights map 1:1."""
    visual = build_visual(golden)
    visual.output_tokens = True
    x = golden['inputs']['square'].float()
    with torch.no_grad():
        pooled, tokens = visual(x)
        tokens = tokens @ visual.proj   # open_clip 3.x returns the patch tokens unprojected
    b, c, gh, gw = golden['golden']['plain']['square'].shape
    _assert_close(tokens.transpose(1, 2).reshape(b, c, gh, gw),
                  golden['golden']['plain']['square'], 'open_clip tokens')
    _assert_close(pooled, golden['global_embedding']['square'], 'open_clip pooled')


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('input_name', INPUTS)
@pytest.mark.parametrize('mode', DENSE_MODES)
def test_dense_matches_reference(golden, mode, input_name, device):
    encoder = CLIPDenseViT(build_visual(golden, device), mode=mode,
                           naclip_std=golden['naclip_std'])
    x = golden['inputs'][input_name].float().to(device)
    with torch.no_grad():
        out = encoder.forward_dense(x, mode)
    _assert_close(out.dense, golden['golden'][mode][input_name], f'{mode}/{input_name}')
    # the global embedding is CLIP's own, whatever the dense mode
    _assert_close(out.global_embedding, golden['global_embedding'][input_name],
                  f'global embedding {mode}/{input_name}')


def test_default_mode_is_used(golden):
    encoder = CLIPDenseViT(build_visual(golden), mode='clearclip')
    with torch.no_grad():
        dense = encoder.forward_dense(golden['inputs']['nonsquare'].float()).dense
    _assert_close(dense, golden['golden']['clearclip']['nonsquare'], 'default mode clearclip')
