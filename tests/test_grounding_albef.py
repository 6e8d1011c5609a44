"""GroundVLP's ALBEF/TCL heat maps (``albef``, ``albef_heatmap``) against the reference
forward/backward of om-ai-lab/GroundVLP run on a seeded tiny model by
``tools/make_golden_albef.py`` (``tests/golden/albef.pt``); the strict checkpoint loader, the
tokenizer convention, the visual-word aggregation and the errors for missing files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from densevl.models.grounding import (
    ALBEFITM,
    ALBEFConfig,
    ALBEFHeatMap,
    ALBEFTokenizer,
    ParsedExpression,
    load_albef_checkpoint,
)
from densevl.models.grounding.albef_heatmap import visual_token_indices

GOLDEN = Path(__file__).parent / 'golden' / 'albef.pt'
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs CUDA'))]
#: the maps are ~1e-3 at these weights: compare relatively (seen: 1e-6 of the max on CPU)
MAP_TOL = dict(rtol=1e-4, atol=1e-8)


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


def config_of(golden: dict) -> ALBEFConfig:
    vit, bert = golden['vit'], golden['bert']
    return ALBEFConfig(
        image_size=vit['img_size'], patch_size=vit['patch_size'], vision_width=vit['embed_dim'],
        vision_depth=vit['depth'], vision_heads=vit['num_heads'], vocab_size=bert['vocab_size'],
        hidden_size=bert['hidden_size'], num_layers=bert['num_hidden_layers'],
        num_heads=bert['num_attention_heads'], intermediate_size=bert['intermediate_size'],
        fusion_layer=bert['fusion_layer'],
        max_position_embeddings=bert['max_position_embeddings'])


def released_state(golden: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in golden['state_dict'].items()}


@pytest.fixture(scope='module')
def files(golden, tmp_path_factory) -> dict:
    """The golden weights as a released-style checkpoint, and the vocab folder."""
    root = tmp_path_factory.mktemp('albef')
    (root / 'vocab.txt').write_text('\n'.join(golden['vocab']) + '\n')
    torch.save({'model': released_state(golden), 'epoch': 29}, root / 'tiny.pth')
    return {'weights': root / 'tiny.pth', 'vocab': root}


def build_heat(golden: dict, files: dict, device: str = 'cpu', **kwargs) -> ALBEFHeatMap:
    return ALBEFHeatMap.from_checkpoint(files['weights'], files['vocab'],
                                        config=config_of(golden), layer=golden['layer'],
                                        device=device, **kwargs)


def parsed_captions(golden: dict) -> list[ParsedExpression]:
    return [ParsedExpression(c, tuple(w for w, _ in golden['parses'][c]),
                             tuple(t for _, t in golden['parses'][c]), None)
            for c in golden['captions']]


def test_golden_file_is_small_and_pinned(golden):
    assert GOLDEN.stat().st_size < 2_500_000
    ref = golden['references']['groundvlp']
    assert len(ref['commit']) == 40 and ref['verified']


def test_tokenizer_is_cls_then_tokens_without_sep(golden, files):
    tok = ALBEFTokenizer(files['vocab'])
    prompts = [golden['template'].format(c) for c in golden['captions']]
    out = tok(prompts)
    length = out.input_ids.shape[1]
    torch.testing.assert_close(out.input_ids, golden['input_ids'][:, :length])
    torch.testing.assert_close(out.attention_mask, golden['attention_mask'][:, :length])
    assert (golden['attention_mask'][:, length:] == 0).all()   # the reference pads to 50
    sep = golden['vocab'].index('[SEP]')
    assert (out.input_ids[:, 0] == golden['vocab'].index('[CLS]')).all()
    assert not (out.input_ids == sep).any()
    long = tok(['there ' * 80])
    assert long.input_ids.shape == (1, 50) and long.attention_mask.all()


@pytest.mark.parametrize('device', DEVICES)
def test_heat_maps_match_groundvlp(golden, files, device):
    """ITM logits, per-token maps H_t and the aggregated upsampled maps of one batched
    forward/backward equal the reference's get_results_for_rec."""
    heat = build_heat(golden, files, device)
    image = golden['image'].float().to(device)
    tokens = heat.tokenizer(heat.prompts(golden['captions']))
    logits, maps = heat.token_maps(image, tokens)
    torch.testing.assert_close(logits.cpu(), golden['itm_logits'], rtol=0, atol=1e-5)
    length = maps.shape[1]
    torch.testing.assert_close(maps.cpu(), golden['token_maps'][:, :length], **MAP_TOL)
    out = heat(image, parsed_captions(golden), out_size=tuple(golden['image_hw']))
    torch.testing.assert_close(out.cpu(), golden['heat'], **MAP_TOL)
    assert (out[0] - out[1]).abs().max() > 100 * MAP_TOL['rtol'] * out.abs().max()


def test_chunks_equal_one_batch(golden, files):
    image, size = golden['image'].float(), tuple(golden['image_hw'])
    parsed = parsed_captions(golden)
    whole = build_heat(golden, files)(image, parsed, out_size=size)
    chunked = build_heat(golden, files, max_batch=2)(image, parsed, out_size=size)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-9)


def test_visual_word_rows_match_reference(golden, files):
    """[CLS] + the tokens of NOUN/VERB/ADJ/PROPN/NUM words (multi-piece words, a possessive, an
    [UNK] word); None (every non-pad token) for a caption without visual words."""
    heat = build_heat(golden, files)
    tokens = heat.tokenizer(heat.prompts(golden['captions']))
    start = golden['template'].index('{}')
    for k, parsed in enumerate(parsed_captions(golden)):
        assert visual_token_indices(parsed, tokens.offsets[k], start) == golden['focus_rows'][k]
    assert golden['focus_rows'][2] is None


def test_aggregation_rule():
    offsets = [(0, 0), (0, 3), (4, 9), (9, 10)]     # [CLS] red shirt ##s of "red shirts"
    parsed = ParsedExpression('red shirts', ('red', 'shirts'), ('ADJ', 'NOUN'), 'shirts')
    assert visual_token_indices(parsed, offsets, 0) == [0, 1, 2, 3]
    only_det = ParsedExpression('the it', ('the', 'it'), ('DET', 'PRON'), None)
    assert visual_token_indices(only_det, offsets[:3], 0) is None
    proper = ParsedExpression('Bob 2', ('bob', '2'), ('PROPN', 'NUM'), None)
    assert visual_token_indices(proper, [(0, 0), (0, 3), (4, 5)], 0) == [0, 1, 2]
    verb = ParsedExpression('man running', ('man', 'running'), ('NOUN', 'VERB'), 'man')
    assert visual_token_indices(verb, [(0, 0), (0, 3), (4, 11)], 0) == [0, 1, 2]


def test_no_visual_words_averages_all_real_tokens(golden, files):
    heat = build_heat(golden, files)
    caption = golden['captions'][2]
    tokens = heat.tokenizer(heat.prompts([caption]))
    _, maps = heat.token_maps(golden['image'].float(), tokens)
    parsed = parsed_captions(golden)[2]
    torch.testing.assert_close(heat.aggregate(maps, [parsed], tokens)[0], maps[0].mean(0))


def test_string_expressions_use_the_parser(golden, files):
    heat = build_heat(golden, files)
    image, size = golden['image'].float(), tuple(golden['image_hw'])
    out = heat(image, ['skateboarder in red shirt'], out_size=size)   # offline parser
    torch.testing.assert_close(out[0], golden['heat'][0], **MAP_TOL)
    assert heat(image, [], out_size=size).shape == (0, *size)
    with pytest.raises(ValueError, match='subject'):
        heat(image, ['red shirt'], out_size=size, subjects=['shirt'])


def test_preprocess_matches_albef_transform(golden, files):
    heat = build_heat(golden, files)
    ref = golden['transform']
    heat.model.config = ALBEFConfig(**{**vars(heat.model.config), 'image_size': 256})
    out = heat.preprocess(ref['image'].numpy())[0]
    torch.testing.assert_close(out[:, ::8, ::8], ref['sample'], rtol=0, atol=1e-6)
    assert abs(out.double().sum() - ref['sum']) < 1e-2


def test_loader_ignores_the_released_extras_and_lists_mismatches(golden, files, tmp_path):
    cfg = config_of(golden)
    state = released_state(golden)
    extras = {'visual_encoder_m.cls_token': torch.zeros(1), 'text_encoder_m.bert.x': torch.zeros(1),
              'text_encoder.cls.predictions.bias': torch.zeros(1), 'vision_proj.weight':
              torch.zeros(1), 'text_proj_m.bias': torch.zeros(1), 'temp': torch.zeros(()),
              'image_queue': torch.zeros(1), 'text_queue': torch.zeros(1),
              'queue_ptr': torch.zeros(1, dtype=torch.long)}
    path = tmp_path / 'ALBEF.pth'
    torch.save({'model': {**state, **extras}}, path)
    ignored = load_albef_checkpoint(ALBEFITM(cfg), path)
    assert set(ignored) == set(extras) | {'text_encoder.embeddings.position_ids'}

    bad = dict(state)
    bad['text_encoder.bert.encoder.layer.0.crossattention.self.query.weight'] = torch.zeros(1)
    del bad['itm_head.bias']
    torch.save(bad, path)                                     # a bare state dict works too
    with pytest.raises(KeyError) as err:
        load_albef_checkpoint(ALBEFITM(cfg), path)
    assert 'layer.0.crossattention.self.query.weight' in str(err.value)
    assert "missing keys ['itm_head.bias']" in str(err.value)

    wrong = dict(state)
    wrong['itm_head.weight'] = torch.zeros(3, cfg.hidden_size)
    torch.save(wrong, path)
    with pytest.raises(ValueError, match='itm_head.weight'):
        load_albef_checkpoint(ALBEFITM(cfg), path)


def test_missing_files_say_what_to_get(golden, files, tmp_path):
    with pytest.raises(FileNotFoundError, match='ALBEF.pth'):
        load_albef_checkpoint(ALBEFITM(config_of(golden)), tmp_path / 'ALBEF.pth')
    with pytest.raises(FileNotFoundError, match='bert-base-uncased'):
        ALBEFTokenizer(tmp_path / 'bert-base-uncased')
    with pytest.raises(ValueError, match='fusion layers are 2..5'):
        ALBEFHeatMap(ALBEFITM(config_of(golden)), ALBEFTokenizer(files['vocab']), layer=1)


def test_inferencer_uses_the_albef_heat_map(golden, files):
    from test_grounding_inferencer import FixedDetector

    from densevl.apis import GroundingInferencer

    heat = build_heat(golden, files)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    ground = GroundingInferencer('clip-tiny-random', detector=FixedDetector(
        [[2, 2, 20, 30], [10, 5, 38, 40]], [0, 4], [0.9, 0.8]), device='cpu', heat_model=heat)
    out = ground(Image.fromarray(rgb), ['red shirt', 'the blue one'])
    expected = heat(heat.preprocess(rgb), ground.parse(['red shirt', 'the blue one']),
                    out_size=(48, 40))
    for pred, h in zip(out['predictions'], expected):
        torch.testing.assert_close(pred.heat_map, h)
    with pytest.raises(ValueError, match='heat_weights'):
        GroundingInferencer('clip-tiny-random', detector=FixedDetector([], [], []),
                            device='cpu', heat_model='albef')
