"""CLIP heat maps (``clip_heatmap``) and GroundVLP fusion (``fusion``), checked to 1e-5 (fp32
throughout) against ReCLIP's ``ClipGradcamExecutor`` and GroundVLP's ``cal_score`` run on seeded
tiny OpenAI-layout CLIPs by ``tools/make_golden_groundvlp.py`` (``tests/golden/README.md``);
plus the bad-input cases of the fusion.
"""
from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch

from densevl.models.grounding.clip_heatmap import CLIPHeatMap
from densevl.models.grounding.fusion import box_heat_scores, fuse_heat_and_boxes

GOLDEN = Path(__file__).parent / 'golden' / 'groundvlp.pt'
TOWERS = ('rn', 'vit')
ATOL = 1e-5
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs CUDA'))]


def build_clip(golden: dict, tower: str, device: str = 'cpu') -> open_clip.CLIP:
    """An open_clip CLIP with the golden dims (OpenAI: 64-wide heads, QuickGELU) and weights."""
    dims, text = golden['towers'][tower]['dims'], golden['text']
    vision = dict(layers=dims['vision_layers'], width=dims['vision_width'], head_width=64,
                  image_size=dims['image_resolution'])
    if tower == 'vit':
        vision['patch_size'] = dims['vision_patch_size']
    model = open_clip.CLIP(
        embed_dim=dims['embed_dim'], vision_cfg=vision, quick_gelu=True,
        text_cfg=dict(context_length=text['context_length'], vocab_size=text['vocab_size'],
                      width=text['transformer_width'], heads=text['transformer_heads'],
                      layers=text['transformer_layers']))
    state = {k: v.float() for k, v in golden['towers'][tower]['state_dict'].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith('num_batches_tracked') for k in missing), missing
    return model.eval().to(device)


def tokenizer_of(golden: dict):
    table = {'a photo of ' + c: t for c, t in zip(golden['captions'], golden['tokens'])}
    return lambda texts: torch.stack([table[t] for t in texts])


def boxes_xyxy(golden: dict) -> torch.Tensor:
    xywh = golden['boxes_xywh']
    return torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


def test_golden_file_is_small_and_pinned(golden):
    assert GOLDEN.stat().st_size < 2_500_000
    for name, ref in golden['references'].items():
        assert len(ref['commit']) == 40 and ref['verified'], name


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('tower', TOWERS)
def test_heat_maps_match_reclip_executor(golden, tower, device):
    """One batched forward/backward reproduces ReCLIP's per-caption Grad-CAM / relevancy."""
    heat = CLIPHeatMap(build_clip(golden, tower, device), tokenizer_of(golden))
    image = golden['towers'][tower]['image'].float().to(device)
    out = heat(image, golden['captions'], out_size=tuple(golden['image_hw']))
    torch.testing.assert_close(out.cpu(), golden['towers'][tower]['heat'], rtol=0, atol=ATOL)


def test_heat_maps_in_chunks_equal_one_batch(golden):
    model, tok = build_clip(golden, 'vit'), tokenizer_of(golden)
    image = golden['towers']['vit']['image'].float()
    size = tuple(golden['image_hw'])
    whole = CLIPHeatMap(model, tok)(image, golden['captions'], out_size=size)
    chunked = CLIPHeatMap(model, tok, max_batch=1)(image, golden['captions'], out_size=size)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize('tower', TOWERS)
def test_box_scores_match_reclip_alpha_half(golden, tower):
    """``Σ_box H / sqrt(area)`` (ReCLIP with gradcam_alpha 0.5 = GroundVLP without d_i)."""
    ref = golden['towers'][tower]
    scores = box_heat_scores(ref['heat'], boxes_xyxy(golden))
    torch.testing.assert_close(scores, ref['box_scores'], rtol=1e-6, atol=ATOL)


@pytest.mark.parametrize('tower', TOWERS)
@pytest.mark.parametrize('mode', ('detector', 'fallback'))
def test_fusion_chooses_groundvlp_box(golden, tower, mode):
    ref = golden['towers'][tower]
    boxes = boxes_xyxy(golden)
    d = golden['detector_scores'] if mode == 'detector' else None
    for heat, expected in zip(ref['heat'], ref['chosen'][mode]):
        result = fuse_heat_and_boxes(heat, boxes, d)
        if expected.abs().sum() == 0:     # GroundVLP's sentinel: no score above 0
            assert result.scores.max() <= 0
        else:
            torch.testing.assert_close(boxes[result.index], expected)


def test_subject_option_averages_maps(golden):
    heat = CLIPHeatMap(build_clip(golden, 'rn'), tokenizer_of(golden))
    image, size = golden['towers']['rn']['image'].float(), tuple(golden['image_hw'])
    captions = golden['captions']
    alone = heat(image, captions, out_size=size)
    mixed = heat(image, captions[:2], out_size=size, subjects=[None, captions[2]])
    torch.testing.assert_close(mixed[0], alone[0])
    torch.testing.assert_close(mixed[1], (alone[1] + alone[2]) / 2, rtol=0, atol=ATOL)
    assert heat(image, [], out_size=size).shape == (0, *size)
    with pytest.raises(ValueError, match='subjects'):
        heat(image, captions, out_size=size, subjects=['x'])


def test_fusion_bad_boxes():
    heat = torch.rand(20, 30)
    empty = fuse_heat_and_boxes(heat, torch.zeros(0, 4))
    assert empty.index is None and empty.scores.shape == (0,)
    boxes = torch.tensor([[-10.0, -5.0, 100.0, 60.0],   # outside: clipped to the whole image
                          [5.0, 5.0, 5.0, 15.0],          # zero width
                          [8.0, 8.0, 2.0, 2.0]])          # inverted
    result = fuse_heat_and_boxes(heat, boxes, torch.tensor([1.0, 1.0, 1.0]))
    torch.testing.assert_close(result.scores[0], heat.sum() / 600 ** 0.5)
    assert result.scores[1:].isneginf().all() and result.index == 0
    assert fuse_heat_and_boxes(heat, boxes[1:]).index is None
    outside = fuse_heat_and_boxes(heat, torch.tensor([[40.0, 30.0, 50.0, 40.0]]))
    assert outside.index is None
    with pytest.raises(ValueError, match='detector scores'):
        fuse_heat_and_boxes(heat, boxes, torch.ones(2))


def test_fusion_batched_heat_maps():
    heat = torch.rand(3, 20, 30)
    boxes = torch.tensor([[1.5, 2.25, 10.0, 19.9], [0.0, 0.0, 30.0, 20.0]])
    scores = box_heat_scores(heat, boxes)
    assert scores.shape == (3, 2)
    expected = heat[:, 2:19, 1:10].sum((1, 2)) / ((10.0 - 1.5) * (19.9 - 2.25)) ** 0.5
    torch.testing.assert_close(scores[:, 0], expected)
