"""DenseCLIP's plain-PyTorch core against golden tensors of the reference, and its behaviour.

``tests/golden/denseclip.pt`` holds tiny seeded weights under the reference's key names, inputs,
and the outputs of the reference code's own modules on them; ``tools/make_golden_denseclip.py``
made it (see ``tests/golden/README.md``). Everything runs in fp32, so agreement is to 1e-5.
"""
from __future__ import annotations

import copy
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, VisionTransformer

from densevl.models.clip import CLIPDenseResNet, CLIPDenseViT
from densevl.models.denseclip import (
    CLIPViTFeaturePyramid,
    ContextDecoder,
    ContextPromptTextEncoder,
    DenseCLIPCore,
    box_score_map_loss,
    drop_path,
    rasterise_box_targets,
)

GOLDEN = Path(__file__).parent / 'golden' / 'denseclip.pt'
ATOL = 1e-5
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture(scope='module')
def tokenizer():
    return open_clip.get_tokenizer('ViT-B-16')


def _float(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def build_clip(golden: dict) -> open_clip.CLIP:
    """An open_clip CLIP: the golden ModifiedResNet as image tower, the golden text tower."""
    cfg = golden['config']
    rn, text = cfg['rn'], cfg['text']
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.CLIP(
            embed_dim=rn['output_dim'], quick_gelu=True,
            vision_cfg=dict(image_size=rn['input_resolution'], layers=tuple(rn['layers']),
                            width=rn['width'], head_width=64),
            text_cfg=dict(context_length=77, vocab_size=text['vocab_size'],
                          width=text['transformer_width'], heads=text['transformer_heads'],
                          layers=text['transformer_layers'])).eval()
    weights = golden['weights']
    model.visual.load_state_dict(_float(weights['rn']), strict=True)
    tower = _float(weights['text'])
    with torch.no_grad():
        model.token_embedding.weight.zero_()
        model.token_embedding.weight[weights['token_rows']] = \
            weights['token_embedding_rows'].float()
    missing = model.load_state_dict({k: v for k, v in tower.items()
                                     if k != 'positional_embedding'}, strict=False)
    assert not missing.unexpected_keys
    return model


def load_denseclip_state(core: DenseCLIPCore, golden: dict) -> DenseCLIPCore:
    weights = golden['weights']
    core.context_decoder.load_state_dict(_float(weights['decoder']), strict=True)
    core.text_encoder.load_truncated_positions(weights['text']['positional_embedding'].float())
    with torch.no_grad():
        core.text_encoder.contexts.copy_(weights['contexts'].float())
        core.gamma.copy_(weights['gamma'].float())
    return core.eval()


def build_pyramid(golden: dict, double_class_embedding: bool = True) -> CLIPViTFeaturePyramid:
    cfg = golden['config']['vit']
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        visual = VisionTransformer(
            image_size=cfg['input_resolution'], patch_size=cfg['patch_size'],
            width=cfg['width'], layers=cfg['layers'], heads=cfg['heads'], mlp_ratio=4.0,
            output_dim=cfg['output_dim'], act_layer=QuickGELU)
    pyramid = CLIPViTFeaturePyramid(visual, feature_indices=tuple(cfg['out_indices']),
                                    drop_path_rate=cfg['drop_path_rate'],
                                    double_class_embedding=double_class_embedding)
    state = {(k if k.startswith('fpn') else f'encoder.visual.{k}'): v
             for k, v in _float(golden['weights']['vit']).items()}
    pyramid.load_state_dict(state, strict=True)
    return pyramid.eval()


def _decoder(golden: dict) -> ContextDecoder:
    cfg = golden['config']['decoder']
    return ContextDecoder(cfg['visual_dim'], width=cfg['transformer_width'],
                          num_heads=cfg['transformer_heads'], layers=cfg['transformer_layers'],
                          dropout=cfg['dropout'])


@pytest.fixture(scope='module')
def cores(golden, tokenizer) -> dict[str, DenseCLIPCore]:
    clip = build_clip(golden)
    names = golden['config']['class_names']
    text = ContextPromptTextEncoder(clip, tokenizer, num_context=8,
                                    name_length=golden['config']['name_length'])
    resnet = CLIPDenseResNet(clip.visual, mode='plain')
    common = dict(class_names=names)
    cores = {
        'rn': DenseCLIPCore(resnet, text, context_decoder=_decoder(golden), **common),
        'vit': DenseCLIPCore(build_pyramid(golden), text, context_decoder=_decoder(golden),
                             **common),
        # detection: the same tower, its pool positions cropped rather than resized
        'det': DenseCLIPCore(CLIPDenseResNet(clip.visual, mode='plain', pool_positions='crop'),
                             text, context_decoder=_decoder(golden),
                             score_scale=1 / golden['config']['tau'], **common),
    }
    return {k: load_denseclip_state(core, golden) for k, core in cores.items()}


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Same shape, and every element of ``actual`` (any device, dtype) within ATOL."""
    torch.testing.assert_close(actual.detach().cpu().float(), expected, rtol=0, atol=ATOL,
                               msg=lambda message: f'{what}: {message}')


# core -> (its golden input, [(output attribute, golden output, what it is)])
GOLDEN_OUTPUTS = {
    'rn': ('rn', [('global_embedding', 'rn_pool_global', 'attention pool global'),
                  ('dense', 'rn_pool_dense', 'attention pool dense'),
                  ('text', 'rn_text', 'refined text'),
                  ('score_map', 'rn_score_map', 'score map')]),
    'vit': ('vit', [('global_embedding', 'vit_global', 'ViT global embedding'),
                    ('dense', 'vit_dense', 'ViT dense embeddings'),
                    ('text', 'vit_text', 'refined text'),
                    ('score_map', 'vit_score_map', 'score map')]),
    'det': ('rn', [('global_embedding', 'det_pool_global', 'cropped pool global'),
                   ('dense', 'det_pool_dense', 'cropped pool dense'),
                   ('text', 'det_text', 'refined text'),
                   ('score_map', 'det_score_map', 'score map / tau')]),
}


@pytest.fixture(scope='module')
def outputs(cores, golden) -> dict:
    """Each core's forward on its golden input."""
    with torch.no_grad():
        return {name: cores[name](golden['inputs'][image].float())
                for name, (image, _) in GOLDEN_OUTPUTS.items()}


def test_golden_file_is_small_and_pinned(golden):
    assert GOLDEN.stat().st_size < 2_000_000
    ref = golden['reference']
    assert len(ref['commit']) == 40 and ref['verified']
    assert 'too long' in golden['long_name_error']


def test_tokens_match_reference(cores, golden):
    assert torch.equal(cores['rn'].tokens, golden['tokens'])


@pytest.mark.parametrize('name', list(GOLDEN_OUTPUTS))
def test_core_matches_reference(outputs, golden, name):
    """Pool (global, dense), refined text and score map of segmentation (ResNet, ViT) and
    detection (ResNet, cropped pool positions, score / tau)."""
    for attribute, key, what in GOLDEN_OUTPUTS[name][1]:
        _close(getattr(outputs[name], attribute), golden['outputs'][key], what)


@pytest.mark.parametrize('name', ['rn', 'vit'])
def test_segmentation_fused_levels_match_reference(outputs, golden, name):
    """The score map fused into res5 (ResNet) or the stride-16 level (ViT)."""
    fused = outputs[name].fused
    if name == 'rn':
        assert len(fused) == 4
    for i, (level, expected) in enumerate(zip(fused, golden['outputs'][f'{name}_fused'])):
        _close(level, expected, f'fused level {i}')


@torch.no_grad()
def test_segmentation_resnet_text_path_matches_reference(cores, outputs, golden):
    core, ref, out = cores['rn'], golden['outputs'], outputs['rn']
    text_eot = core.text_encoder(core.tokens)
    _close(text_eot, ref['text_eot'], 'text encoder at EOT')
    memory = torch.cat([out.global_embedding[:, None], out.dense.flatten(2).transpose(1, 2)], 1)
    delta = core.context_decoder(text_eot.expand(2, -1, -1), memory)
    _close(delta, ref['rn_decoder_delta'], 'context decoder update')


@torch.no_grad()
def test_detection_fusion_and_box_loss_match_reference(cores, outputs, golden):
    core, ref, out = cores['det'], golden['outputs'], outputs['det']
    images = golden['inputs']['rn'].float()
    _close(out.fused[3], ref['det_fused_res5'], 'fused res5')
    stride4 = F.interpolate(out.score_map, size=out.features[0].shape[-2:], mode='bilinear',
                            align_corners=False)
    _close(stride4, ref['det_score_map_stride4'], 'score map at stride 4')
    size = (images.shape[-2] // 4, images.shape[-1] // 4)
    targets, inside = rasterise_box_targets(golden['boxes'], golden['labels'],
                                            core.num_classes, size)
    assert torch.equal(targets.bool(), ref['det_target'])
    assert torch.equal(inside.bool(), ref['det_inside'])
    _close(box_score_map_loss(out.score_map, targets, inside), ref['det_loss'], 'aux loss')


@requires_cuda
@torch.no_grad()
def test_detection_on_cuda(cores, golden, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    monkeypatch.setattr(torch.backends.cuda.matmul, 'allow_tf32', False)
    core, ref = copy.deepcopy(cores['det']).cuda(), golden['outputs']
    images = golden['inputs']['rn'].float().cuda()
    out = core(images)
    _close(out.fused[3], ref['det_fused_res5'], 'fused res5 (cuda)')
    targets, inside = rasterise_box_targets([b.cuda() for b in golden['boxes']],
                                            golden['labels'], core.num_classes, (24, 16))
    assert targets.is_cuda and torch.equal(targets.bool().cpu(), ref['det_target'])
    _close(box_score_map_loss(out.score_map, targets, inside), ref['det_loss'], 'loss (cuda)')


@torch.no_grad()
def test_double_class_embedding_switch(golden):
    """Off, the pyramid's embeddings are CLIP's own (CLIPDenseViT, plain); on, they differ."""
    plain = build_pyramid(golden, double_class_embedding=False)
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    expected = CLIPDenseViT(plain.encoder.visual, mode='plain').forward_dense(images)
    out = plain(images)
    _close(out.dense, expected.dense, 'dense, single class embedding')
    _close(out.global_embedding, expected.global_embedding, 'global, single class embedding')
    doubled = build_pyramid(golden, double_class_embedding=True)(images)
    assert (doubled.dense - out.dense).abs().max() > 1e-2


def test_long_names_grow_the_slot_exactly(cores, tokenizer):
    encoder = cores['rn'].text_encoder
    short = ['wall', 'traffic light']
    long_name = 'a photo of the giant panda bear'
    assert encoder.tokenize(short).shape == (2, 5)
    tokens = encoder.tokenize(short + [long_name])
    assert tokens.shape == (3, 9)
    with torch.no_grad():
        grown = encoder(tokens)
        fitted = encoder(encoder.tokenize(short))
    assert grown.shape == (1, 3, 64)
    _close(grown[:, :2], fitted, 'short names in a grown slot')
    with pytest.raises(ValueError, match='too long'):
        encoder.tokenize(['word ' * 80])


def test_text_tower_frozen_contexts_trained(golden, tokenizer):
    clip = build_clip(golden)
    encoder = ContextPromptTextEncoder(clip, tokenizer)
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable == ['contexts']
    assert encoder.contexts.shape == (1, 8, 64)
    assert encoder.contexts.abs().max() <= 2.0 and 0.7 < encoder.contexts.std() < 1.3
    encoder(encoder.tokenize(['wall', 'sky'])).sum().backward()
    assert encoder.contexts.grad is not None and encoder.contexts.grad.abs().sum() > 0
    assert clip.transformer.resblocks[0].attn.in_proj_weight.grad is None


def test_defaults_gamma_and_decoder_init(golden, tokenizer):
    clip = build_clip(golden)
    core = DenseCLIPCore.from_clip(clip, tokenizer, class_names=['wall', 'sky'])
    assert torch.equal(core.gamma, torch.full((64,), 1e-4))
    decoder = core.context_decoder
    assert len(decoder.decoder) == 3 and decoder.decoder[0].self_attn.num_heads == 4
    assert decoder.text_proj[1].out_features == 256
    assert decoder.decoder[0].self_attn.q_proj.bias is None
    linear = decoder.decoder[0].mlp[0]
    assert 0.015 < linear.weight.std() < 0.025 and not linear.bias.any()
    # training: gradients reach γ, the decoder and the contexts, not the frozen text tower
    core.train()
    core(torch.randn(1, 3, 64, 64)).score_map.sum().backward()
    assert core.gamma.grad is not None and core.text_encoder.contexts.grad is not None
    assert clip.token_embedding.weight.grad is None


@torch.no_grad()
def test_vocabulary(cores, golden, tokenizer):
    closed = cores['rn']
    images = golden['inputs']['rn'].float()[:1]
    with pytest.raises(ValueError, match='vocabulary_agnostic'):
        closed(images, class_names=['wall', 'sky'])
    renamed = closed(images, class_names=['a', 'b', 'c', 'd', 'e'])
    assert renamed.fused[3].shape[1] == 128 + 5
    agnostic = DenseCLIPCore(closed.image_encoder, closed.text_encoder,
                             class_names=['wall', 'sky'], context_decoder=closed.context_decoder,
                             vocabulary_agnostic=True).eval()
    assert agnostic.fused_channels == 64
    for names in (['wall'], ['wall', 'sky', 'person', 'tree', 'car', 'road', 'a b c d e']):
        out = agnostic(images, class_names=names)
        assert out.score_map.shape == (1, len(names), 3, 2)
        assert out.fused[3].shape == (1, 128 + 64, 3, 2)


def test_box_loss_without_boxes_is_zero():
    score = torch.randn(2, 3, 4, 4, requires_grad=True)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    targets, inside = rasterise_box_targets(empty, [torch.zeros(0, dtype=torch.long)] * 2, 3,
                                            (16, 16))
    loss = box_score_map_loss(score, targets, inside)
    loss.backward()
    assert loss.item() == 0.0 and score.grad is not None
    with pytest.raises(ValueError, match='labels'):
        rasterise_box_targets([torch.tensor([[0.0, 0.0, 8.0, 8.0]])], [torch.tensor([3])], 3,
                              (4, 4))


def test_pyramid_shapes_norms_and_drop_path(golden):
    torch.manual_seed(0)
    visual = VisionTransformer(image_size=64, patch_size=8, width=64, layers=4, heads=1,
                               mlp_ratio=4.0, output_dim=32)
    for norm in ('BN', 'GN', 'SyncBN'):
        CLIPViTFeaturePyramid(build_pyramid(golden).encoder, norm=norm)
    with pytest.raises(ValueError, match='norm'):
        CLIPViTFeaturePyramid(visual, norm='LN', feature_indices=(0, 1, 2, 3))
    p8 = CLIPViTFeaturePyramid(visual, feature_indices=(0, 1, 2, 3), drop_path_rate=0.5)
    out = p8.train()(torch.randn(2, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in out.features] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert out.dense.shape == (2, 32, 8, 12)
    assert p8.drop_path_probs == [0.0, 0.5 / 3, 1 / 3, 0.5]
    x = torch.ones(4, 6, 2)
    sample, token = drop_path(x, 0.5, 'sample'), drop_path(x, 0.5, 'token')
    assert (sample == sample[:, :1]).all() and (token == token[:1]).all()
    assert set(sample.unique().tolist()) <= {0.0, 2.0}
