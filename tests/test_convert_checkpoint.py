"""tools/convert_clip_checkpoint.py and densevl.models.clip.checkpoint on a tiny random CLIP."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import open_clip
import pytest
import torch
from _tools import load_tool

from densevl.models.clip.checkpoint import (
    check_state_dict,
    is_torchscript_archive,
    read_clip_state_dict,
)

REPO = Path(__file__).resolve().parents[1]
TINY_NAME = 'densevl-test-tiny-clip'
TINY_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=1, head_width=64),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
)


convert = load_tool('convert_clip_checkpoint')


@pytest.fixture(scope='module', autouse=True)
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp('cfg') / f'{TINY_NAME}.json'
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)


def _tiny_clip(seed: int = 0, **vision) -> open_clip.CLIP:
    torch.manual_seed(seed)
    cfg = dict(TINY_CFG, vision_cfg=dict(TINY_CFG['vision_cfg'], **vision))
    return open_clip.CLIP(**cfg).eval()


def _save_plain(model, path):
    torch.save(model.state_dict(), path)


def _save_wrapped(model, path):
    torch.save(dict(epoch=3, state_dict={f'module.{k}': v for k, v in model.state_dict().items()}),
                path)


def _save_torchscript_fp16(model, path):
    # Like OpenAI's release: a TorchScript archive with fp16 weights.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer and deprecation warnings
        traced = torch.jit.trace_module(model, dict(encode_image=torch.randn(1, 3, 32, 32)))
        traced.half().save(str(path))


@pytest.mark.parametrize('save, fp16', [(_save_plain, False), (_save_wrapped, False),
                                        (_save_torchscript_fp16, True)],
                         ids=['plain', 'wrapped-ddp', 'torchscript-fp16'])
def test_convert_roundtrip(tmp_path, save, fp16):
    model = _tiny_clip()
    src, dst = tmp_path / 'src.pt', tmp_path / 'out' / 'clip.pth'
    save(model, src)
    assert is_torchscript_archive(src) == fp16

    convert.main([str(src), str(dst), '--model-name', TINY_NAME])

    converted = torch.load(dst, weights_only=True)
    assert all(v.dtype == torch.float32 for v in converted.values() if v.is_floating_point())
    loaded = open_clip.create_model(TINY_NAME, pretrained=str(dst))
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for key, value in expected.items():
        value = value.half().float() if fp16 else value
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert [p.name for p in dst.parent.iterdir()] == ['clip.pth']  # no temporary left over


def test_mismatched_model_name_lists_keys(tmp_path, capsys):
    src, dst = tmp_path / 'src.pt', tmp_path / 'clip.pth'
    _save_plain(_tiny_clip(layers=2, patch_size=4), src)
    with pytest.raises(SystemExit) as exc:
        convert.main([str(src), str(dst), '--model-name', TINY_NAME])
    message = str(exc.value)
    assert f'does not fit --model-name {TINY_NAME}' in message
    assert 'unexpected keys (12):' in message
    assert 'visual.transformer.resblocks.1.attn.in_proj_weight' in message
    assert 'shape mismatches (2):' in message
    assert 'visual.conv1.weight: checkpoint (64, 3, 4, 4), model (64, 3, 8, 8)' in message
    assert 'Fix: pass the --model-name' in message
    assert not dst.exists()


def test_check_state_dict_caps_listing():
    model = _tiny_clip()
    state_dict = {f'extra.{i}': torch.zeros(1) for i in range(13)}
    state_dict.update(model.state_dict())
    state_dict['logit_scale'] = torch.zeros(2)
    del state_dict['visual.proj'], state_dict['text_projection']
    with pytest.raises(ValueError) as exc:
        check_state_dict(model, state_dict)
    message = str(exc.value)
    assert 'missing keys (2):' in message and 'visual.proj' in message
    assert 'unexpected keys (13):' in message and '... and 3 more' in message
    assert 'logit_scale: checkpoint (2,), model ()' in message
    check_state_dict(model, model.state_dict())


def test_read_rejects_non_state_dict(tmp_path):
    path = tmp_path / 'not_clip.pt'
    torch.save(dict(epoch=1, name='run'), path)
    with pytest.raises(ValueError, match='expected a state dict'):
        read_clip_state_dict(path)


def test_cli_runs_from_repo_root(tmp_path):
    src, dst = tmp_path / 'src.pt', tmp_path / 'clip.pth'
    _save_wrapped(_tiny_clip(), src)
    proc = subprocess.run([sys.executable, 'tools/convert_clip_checkpoint.py', str(src), str(dst)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'fp32' in proc.stdout
    assert read_clip_state_dict(dst).keys() == _tiny_clip().state_dict().keys()
