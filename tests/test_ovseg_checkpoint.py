"""densevl.models.ovseg.checkpoint and tools/convert_ovseg_clip_checkpoint.py on OVSeg CLIP files
in ov-seg's published key layouts, made from a tiny random OpenAI-layout CLIP (no download)."""
from __future__ import annotations

import argparse
from pathlib import Path

import open_clip
import open_clip.factory
import pytest
import torch
from _tools import load_tool

from densevl.models.clip import create_clip
from densevl.models.ovseg import MaskPromptCLIP, encode_masked_crops, masked_crops
from densevl.models.ovseg import checkpoint as ckpt

KEY = ckpt.MASK_EMBEDDING_KEY

NAME = 'densevl-test-ovseg-tiny-quickgelu'
GELU_NAME = 'densevl-test-ovseg-tiny'
WIDE_NAME = 'densevl-test-ovseg-wide-quickgelu'
CFG = dict(embed_dim=16, quick_gelu=True,
           vision_cfg=dict(image_size=48, patch_size=16, width=64, layers=3, head_width=32),
           text_cfg=dict(context_length=77, vocab_size=500, width=32, heads=1, layers=1))
DEPTH, GRID, WIDTH = 3, 3, 64


convert = load_tool('convert_ovseg_clip_checkpoint')


@pytest.fixture(autouse=True)
def tiny_configs(monkeypatch):
    """The tiny architecture under an open_clip name, for this test only."""
    gelu = {k: v for k, v in CFG.items() if k != 'quick_gelu'}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, NAME, CFG)
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, GELU_NAME, gelu)
    wide = dict(CFG, vision_cfg=dict(CFG['vision_cfg'], width=128))
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, WIDE_NAME, wide)


@pytest.fixture(scope='module')
def original() -> dict:
    """A tiny OpenAI-layout CLIP (fp16, as OpenAI ships it) and a non-zero mask embedding."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip = open_clip.CLIP(**CFG).eval()
        mask_embedding = torch.randn(DEPTH, GRID * GRID, WIDTH)
    state = {k: v.half() for k, v in clip.state_dict().items()}
    state[KEY] = mask_embedding.half()
    # the reference's names: OpenAI's (open_clip's CLIP layout is the same)
    for key in ('visual.transformer.resblocks.2.attn.in_proj_weight', 'visual.proj',
                'visual.class_embedding', 'text_projection', 'ln_final.weight', 'logit_scale'):
        assert key in state
    return dict(state=state)


def _clip_training_file(state: dict, path: Path) -> Path:
    # ov-seg's open_clip_training: DDP-prefixed, wrapped with the optimizer state
    torch.save(dict(epoch=2, name='mask_prompt_tuning', state_dict={
        f'module.{k}': v for k, v in state.items()}, optimizer={'state': {}, 'param_groups': [
            {'lr': 0.05, 'multi': 1.0, 'params': [0, 1]}]}), path)
    return path


def _ovseg_file(state: dict, path: Path) -> Path:
    # a whole OVSeg (detectron2) checkpoint: the CLIP under clip_adapter.clip_model.
    model = {f'clip_adapter.clip_model.{k}': v for k, v in state.items()}
    model.update({'backbone.res2.0.conv1.weight': torch.zeros(4, 3, 1, 1),
                  'sem_seg_head.predictor.class_embed.layers.0.weight': torch.zeros(8, 4),
                  'clip_adapter.non_object_embedding': torch.zeros(1, 16),
                  'clip_adapter.pixel_mean': torch.zeros(1, 3, 1, 1)})
    torch.save({'model': model, 'iteration': 120000}, path)
    return path


def _bare_file(state: dict, path: Path) -> Path:
    # a bare CLIP state dict with OpenAI's non-weight entries
    torch.save({**state, 'input_resolution': torch.tensor(48), 'context_length': torch.tensor(77),
                'vocab_size': torch.tensor(500)}, path)
    return path


LAYOUTS = {'clip_training': _clip_training_file, 'ovseg': _ovseg_file, 'bare': _bare_file}


def _reference_embeddings(state: dict, crops, region_masks) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings computed with the original tensors, without the converter."""
    clip = open_clip.CLIP(**CFG).eval()
    clip.load_state_dict({k: v.float() for k, v in state.items() if k != KEY})
    mpt = MaskPromptCLIP(clip, depth=DEPTH).eval()
    with torch.no_grad():
        mpt.mask_embedding.copy_(state[KEY].float())
        return mpt(crops, region_masks), mpt(crops)


@pytest.fixture(scope='module')
def inputs() -> dict:
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 40, 56, generator=gen) * 255
    # two blobs per proposal: their tight box holds blank patches, which get mask prompts
    logits = torch.full((2, 4, 40, 56), -6.0)
    for b in range(2):
        for q in range(4):
            y, x = torch.randint(0, 12, (2,), generator=gen).tolist()
            logits[b, q, y:y + 6, x:x + 8] = 6.0
            logits[b, q, 28 + y // 4:40, 40 + x // 4:56] = 6.0
    crops = masked_crops(images, logits, 0.5, size=48)
    assert crops.crops.shape[0] >= 4
    return dict(images=images, logits=logits, crops=crops)


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_read_and_strict_load(original, inputs, layout, tmp_path):
    path = LAYOUTS[layout](original['state'], tmp_path / 'ovseg_clip.pth')
    weights = ckpt.read_ovseg_clip_checkpoint(path)
    assert weights.ignored == (4 if layout == 'ovseg' else 0)
    assert weights.depth == DEPTH and weights.mask_embedding.dtype == torch.float32
    assert torch.equal(weights.mask_embedding, original['state'][KEY].float())
    clip = open_clip.CLIP(**CFG).eval()
    clip.load_state_dict(weights.clip, strict=True)
    for key, value in clip.state_dict().items():
        assert torch.equal(value, original['state'][key].float()), key
    mpt = ckpt.build_mask_prompt_clip(clip, weights.mask_embedding)
    assert isinstance(mpt, MaskPromptCLIP) and mpt.visual is clip.visual and not mpt.training
    crops = inputs['crops']
    prompted, plain = _reference_embeddings(original['state'], crops.crops, crops.region_masks)
    with torch.no_grad():
        assert torch.equal(mpt(crops.crops, crops.region_masks), prompted)
    assert (prompted - plain).abs().max() > 1e-3           # the mask prompts take part


def test_tool_output_loads_with_create_clip(original, inputs, tmp_path, capsys):
    src = _ovseg_file(original['state'], tmp_path / 'ovseg_swinbase_vitL14_ft_mpt.pth')
    dst = tmp_path / 'out' / 'ovseg_clip.pth'
    convert.main([str(src), str(dst), '--model-name', NAME])
    mask_dst = tmp_path / 'out' / 'ovseg_clip.mask_embedding.pth'
    assert 'left out' in capsys.readouterr().out and mask_dst.is_file()
    bundle = create_clip(NAME, pretrained=str(dst))
    assert not bundle.random_weights
    mask_embedding = ckpt.read_mask_embedding(mask_dst)
    mpt = ckpt.build_mask_prompt_clip(bundle.model, mask_embedding)
    crops = inputs['crops']
    prompted, _ = _reference_embeddings(original['state'], crops.crops, crops.region_masks)
    with torch.no_grad():
        embeddings, proposals = encode_masked_crops(mpt, inputs['images'], inputs['logits'], 0.5,
                                                    size=48, chunk_size=3)
    assert torch.equal(proposals.valid, crops.valid)
    torch.testing.assert_close(embeddings, prompted, atol=1e-6, rtol=0)
    # the mask embedding file is also a MaskPromptCLIP (partial) state dict
    fresh = MaskPromptCLIP(bundle.model, depth=DEPTH)
    missing, unexpected = fresh.load_state_dict(torch.load(mask_dst, weights_only=True),
                                                strict=False)
    assert not unexpected and all(k.startswith('visual.') for k in missing)
    assert torch.equal(fresh.mask_embedding, mpt.mask_embedding)


def test_shared_mask_embedding(original, tmp_path):
    state = dict(original['state'])
    state[KEY] = torch.randn(2, 1, WIDTH)    # one embedding for every position
    weights = ckpt.read_ovseg_clip_checkpoint(_bare_file(state, tmp_path / 'shared.pth'))
    clip = open_clip.CLIP(**CFG).eval()
    clip.load_state_dict(weights.clip)
    mpt = ckpt.build_mask_prompt_clip(clip.visual, weights.mask_embedding)
    assert mpt.depth == 2 and mpt.mask_embedding.shape == (2, 1, WIDTH)


def test_missing_file_and_no_mask_embedding(original, tmp_path, capsys):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match=r"nope\.pth.*ovseg_swinbase_vitL14_ft_mpt"):
        ckpt.read_ovseg_clip_checkpoint(missing)
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit, match='does not exist'):
        convert.main([str(missing), str(dst), '--model-name', NAME])
    plain = {k: v for k, v in original['state'].items() if k != KEY}
    with pytest.raises(ValueError, match='no visual.mask_embedding.*convert_clip_checkpoint'):
        ckpt.read_ovseg_clip_checkpoint(_clip_training_file(plain, tmp_path / 'plain.pth'))
    no_prompts = {**plain, KEY: torch.zeros(0, GRID * GRID, WIDTH)}
    with pytest.raises(ValueError, match='depth 0.*no mask prompts'):
        ckpt.split_ovseg_clip_state_dict(no_prompts)
    with pytest.raises(ValueError, match='no CLIP ViT image tower'):
        ckpt.split_ovseg_clip_state_dict({'backbone.conv.weight': torch.zeros(1)})
    with pytest.raises(FileNotFoundError, match='convert_ovseg_clip_checkpoint'):
        ckpt.read_mask_embedding(missing)
    assert not dst.exists()


@pytest.mark.parametrize('shape, match', [
    ((DEPTH, 16, WIDTH), r'16 patch positions \(a 4x4 grid, 64-px crops: build the tower at '
                         r'image_size=64\) but the ViT has 9'),
    ((DEPTH, 7, WIDTH), 'not a square grid'),
    ((DEPTH, GRID * GRID, 32), 'width 32 but the ViT has width 64'),
    ((4, GRID * GRID, WIDTH), 'depth 4 but the ViT has 3 blocks'),
    ((GRID * GRID, WIDTH), r'must be \(depth, grid \*\* 2, width\)'),
])
def test_mask_embedding_that_does_not_fit(original, tmp_path, shape, match):
    state = {**original['state'], KEY: torch.zeros(shape)}
    src = _ovseg_file(state, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=match):
        ckpt.read_ovseg_clip_checkpoint(src)
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit, match=match):
        convert.main([str(src), str(dst), '--model-name', NAME])
    assert list(tmp_path.iterdir()) == [src]                # nothing written
    clip = open_clip.CLIP(**CFG)
    with pytest.raises(ValueError, match=match):
        ckpt.build_mask_prompt_clip(clip, torch.zeros(shape))


def test_tool_writes_nothing_for_a_wrong_model(original, tmp_path):
    src = _clip_training_file(original['state'], tmp_path / 'epoch_2.pt')
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit, match=f'uses GELU.*--model-name {NAME}'):
        convert.main([str(src), str(dst), '--model-name', GELU_NAME])
    with pytest.raises(SystemExit, match=f'(?s)does not fit --model-name {WIDE_NAME}.*'
                                         f'shape mismatches.*matching open_clip names: {NAME}\\)'):
        convert.main([str(src), str(dst), '--model-name', WIDE_NAME])
    with pytest.raises(SystemExit, match='unknown open_clip model'):
        convert.main([str(src), str(dst), '--model-name', 'ViT-Q-99'])
    assert list(tmp_path.iterdir()) == [src]


def test_pickled_objects_are_not_unpickled(original, tmp_path):
    src = tmp_path / 'model_final.pth'
    model = {f'clip_adapter.clip_model.{k}': v for k, v in original['state'].items()}
    torch.save({'model': model, 'trainer': argparse.Namespace(iteration=3)}, src)
    with pytest.raises(ValueError, match=r"(?s)Python objects.*weights_only=False\)\['model'\]"):
        ckpt.read_ovseg_clip_checkpoint(src)
