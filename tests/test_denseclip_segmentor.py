"""DenseCLIPSegmentor (mmseg adapter), its configs, tools and checkpoint converter, on tiny CLIPs.

The converter is checked twice. (1) Round trip: a tiny segmentor's tensors are written under the
key names of DenseCLIP's released segmentation checkpoints, converted, loaded strictly
into a freshly built model, which must then compute what the original did. (2) Reference: the
tiny *reference* weights of ``tests/golden/denseclip.pt`` (saved under the reference modules' own
state-dict keys), assembled into the published layout and converted, must reproduce the outputs
of the reference code stored there.

How the published names are derived (``published_layout``): the reference's ``DenseCLIP``
segmentor (``segmentation/denseclip/denseclip.py`` @ 5eda47f) assigns ``self.backbone``,
``self.text_encoder``, ``self.context_decoder``, ``self.contexts`` (a bare Parameter),
``self.gamma``, ``self.neck``, ``self.decode_head`` and ``self.identity_head`` (an mmseg decode
head whose ``conv_seg`` is set to None: no parameters). Its backbones (``models.py``) name their
parts as CLIP does (ResNet: ``conv1..bn3``, ``layer1-4``, ``attnpool``; ViT: ``conv1``,
``class_embedding``, ``positional_embedding``, ``ln_pre``, ``transformer``, ``ln_post``,
``proj``) and the ViT adds ``fpn1..fpn4``; ``CLIPTextContextEncoder`` holds ``transformer``,
``token_embedding``, ``positional_embedding`` (``context_length`` = 13 rows), ``ln_final`` and
``text_projection``. The golden file lists the reference's own keys of the backbones, text tower
and context decoder; the test checks the derived names against them.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import densevl.datasets.mm_datasets  # noqa: F401
import densevl.models.mm_adapters  # noqa: F401
from densevl.apis import OpenVocabSegInferencer
from densevl.models.clip import build_dense_encoder, check_activation, create_clip, score_map
from densevl.models.clip.model_zoo import MODEL_ZOO, SYNTHETIC_CONFIGS, ZooEntry
from densevl.models.denseclip.checkpoint import (
    compare_state_dicts,
    convert_denseclip_state_dict,
    fit_state_dict,
    set_position_grid,
)
from densevl.registry import SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs' / 'denseclip'
GOLDEN = Path(__file__).parent / 'golden' / 'denseclip.pt'
NAME = re.compile(r'(?P<method>denseclip|denseclip-agnostic|clip-fpn)_'
                  r'(?P<backbone>r50|r101|vit-b16|clip-synthetic-tiny)_(?P<schedule>\d+k|\d+it)_'
                  r'(?P<dataset>ade20k|synthetic)-(?P<crop>\d+)\.py')
CONFIGS = sorted(p for p in CONFIG_DIR.glob('*.py') if NAME.fullmatch(p.name))
SYNTHETIC = {m: CONFIG_DIR / f'{m}_clip-synthetic-tiny_400it_synthetic-64.py'
             for m in ('denseclip', 'denseclip-agnostic', 'clip-fpn')}
SEEN = ['grass', 'sky', 'water', 'sand', 'brick', 'wood', 'red', 'orange', 'yellow', 'green',
        'blue', 'white']
ATOL = 1e-5

_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1)
_GOLDEN_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=2)
TINY = {
    # stand-ins with the real configs' structure: ViT-B/16-like (patch 16) and synthetic (8)
    'test-denseclip-vit16': dict(embed_dim=32, quick_gelu=True, text_cfg=_TEXT, vision_cfg=dict(
        image_size=64, patch_size=16, width=64, layers=4, head_width=64)),
    'test-denseclip-vit8': dict(embed_dim=32, quick_gelu=True, text_cfg=dict(
        _TEXT, context_length=32), vision_cfg=dict(image_size=64, patch_size=8, width=64,
                                                   layers=4, head_width=64)),
    # the architectures of tests/golden/denseclip.pt
    'test-golden-rn': dict(embed_dim=64, quick_gelu=True, text_cfg=_GOLDEN_TEXT, vision_cfg=dict(
        image_size=128, layers=(1, 1, 1, 1), width=4, head_width=64)),
    'test-golden-vit': dict(embed_dim=64, quick_gelu=True, text_cfg=_GOLDEN_TEXT, vision_cfg=dict(
        image_size=64, patch_size=16, width=64, layers=4, head_width=64)),
}
TINY_FOR = {'r50': 'clip-tiny-random-rn', 'r101': 'clip-tiny-random-rn',
            'vit-b16': 'test-denseclip-vit16', 'clip-synthetic-tiny': 'test-denseclip-vit8'}


@pytest.fixture(scope='module', autouse=True)
def tiny_zoo():
    mp = pytest.MonkeyPatch()
    for name, config in TINY.items():
        mp.setitem(MODEL_ZOO, name, ZooEntry(config=config))
    init_default_scope('mmseg')
    yield
    mp.undo()


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(path: Path, **model) -> Config:
    cfg = Config.fromfile(str(path))
    backbone = NAME.fullmatch(path.name)['backbone']
    cfg.model.clip = dict(model_name=TINY_FOR[backbone], pretrained=None)
    for key, value in model.items():
        cfg.model[key] = value
    return cfg


def build(path: Path, seed: int = 0, **model):
    torch.manual_seed(seed)
    return SEG_MODELS.build(load_config(path, **model).model)


def batch(num_classes: int, size: int = 64, count: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(count):
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size), padding_size=[0, 0, 0, 0]))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, size, size),
                                                         generator=g))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
              for _ in range(count)]
    return dict(inputs=images, data_samples=samples)


def _depth(path: Path) -> int:
    bases = Config._get_base_files(str(path))
    return 1 + max((_depth((path.parent / b).resolve()) for b in bases), default=0)


def plain_levels(model) -> list[int]:
    """Channels of the image encoder's four levels, before any fusion."""
    encoder = model.image_encoder
    if hasattr(encoder, 'fpn1'):    # DenseCLIP's ViT pyramid: the token width at every level
        return [encoder.width] * 4
    visual = encoder.visual
    return [layer[-1].conv3.out_channels
            for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4)]


# ----- configs ---------------------------------------------------------------------------------

def test_there_is_a_config_per_variant_and_backbone():
    names = sorted(p.name for p in CONFIGS)
    assert len(names) == 9, names
    for method in ('denseclip', 'clip-fpn'):
        for backbone in ('r50_80k_ade20k-512', 'r101_80k_ade20k-512', 'vit-b16_80k_ade20k-640',
                         'clip-synthetic-tiny_400it_synthetic-64'):
            assert f'{method}_{backbone}.py' in names
    assert SYNTHETIC['denseclip-agnostic'].name in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds(path):
    match = NAME.fullmatch(path.name)
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmseg' and _depth(path) <= 3
    crop = int(match['crop'])
    assert tuple(cfg.model.data_preprocessor.size) == (crop, crop)
    assert cfg.train_dataloader.dataset.pipeline[3]['crop_size'] == (crop, crop)
    if match['dataset'] == 'ade20k':
        assert cfg.train_cfg.max_iters == 80000 and cfg.train_dataloader.batch_size == 4
        assert cfg.model.test_cfg == dict(mode='slide', crop_size=(crop, crop),
                                          stride=(crop * 2 // 3, crop * 2 // 3))
        assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
        # OpenAI's weights in their own (QuickGELU) architecture
        assert cfg.model.clip.model_name.endswith('-quickgelu')
        check_activation(cfg.model.clip.model_name, cfg.model.clip.pretrained)
    model = build(path)
    agnostic = match['method'] == 'denseclip-agnostic'
    expected_levels = plain_levels(model)
    if match['method'] == 'clip-fpn':
        assert type(model).__name__ == 'CLIPFPNSegmentor' and not hasattr(model, 'core')
        assert not hasattr(model, 'identity_loss')
        # every parameter is used: the embedding head is gone
        assert not any(k.startswith('backbone.visual.attnpool') or 'ln_post' in k or
                       k.endswith('visual.proj') for k in model.state_dict())
    else:
        assert model.core.vocabulary_agnostic == agnostic
        assert model.identity_loss.loss_weight == 0.4 and model.tau == 0.07
        # K score channels (or C, vocabulary-agnostic) join the level of the score map's stride
        index = {'vit-b16': 2, 'clip-synthetic-tiny': 1}.get(match['backbone'], 3)
        expected_levels[index] += model.core.embed_dim if agnostic else len(model.class_names)
    assert model.neck.in_channels == expected_levels
    assert type(model.decode_head).__name__ == ('TextCosineFPNHead' if agnostic else 'FPNHead')
    expected = 150 if match['dataset'] == 'ade20k' else 14
    assert len(model.class_names) == expected


def test_openai_weights_need_the_quickgelu_architecture():
    with pytest.raises(ValueError, match="QuickGELU.*use model_name='RN50-quickgelu'"):
        check_activation('RN50', 'openai')
    with pytest.raises(ValueError, match='QuickGELU'):
        build(CONFIG_DIR / 'denseclip_r50_80k_ade20k-512.py',
              clip=dict(model_name='ViT-B-16', pretrained='openai'))


def test_ade_vocabulary_is_the_datasets():
    model = build(CONFIG_DIR / 'denseclip_r50_80k_ade20k-512.py')
    assert 'traffic light' in model.class_names and 'bed' in model.class_names
    assert model.core.tokens.shape[0] == 150


def test_schedule_freezes_the_text_tower_and_scales_the_backbone():
    model = build(SYNTHETIC['denseclip'])
    cfg = Config.fromfile(str(SYNTHETIC['denseclip']))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr, wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {names[id(g['params'][0])]: g for g in wrapper.optimizer.param_groups}
    visual = 'core.image_encoder.encoder.visual.transformer.resblocks.0.attn.in_proj_weight'
    assert groups[visual]['lr'] == pytest.approx(0.1 * lr)
    assert groups['core.text_encoder.contexts']['lr'] == lr
    assert groups['core.text_encoder.contexts']['weight_decay'] == wd
    assert groups['core.context_decoder.decoder.0.norm1.weight']['weight_decay'] == 0
    trainable = [n for n, p in model.named_parameters()
                 if p.requires_grad and n.startswith('core.text_encoder')]
    assert trainable == ['core.text_encoder.contexts']
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    assert id(model.core.text_encoder.token_embedding.weight) not in in_optimizer


# ----- loss, predict, vocabulary ---------------------------------------------------------------

@pytest.mark.parametrize('method', sorted(SYNTHETIC))
def test_loss_and_predict(method):
    model = build(SYNTHETIC[method])
    data = model.data_preprocessor(batch(len(SEEN)), True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    expected = {'decode.loss_ce', 'decode.acc_seg'}
    if method != 'clip-fpn':
        expected |= {'aux_identity.loss_ce', 'aux_identity.acc_seg'}
    assert set(losses) == expected
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert any(n.startswith('decode_head.') for n in grads)
    if method != 'clip-fpn':
        assert {'core.gamma', 'core.text_encoder.contexts'} <= grads
    model.eval()
    with torch.no_grad():
        out = model.test_step(batch(len(SEEN), count=1))
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert 'seg_logits' not in out[0]     # labels only, unless asked (with_seg_logits)
    model.with_seg_logits = True
    with torch.no_grad():
        out = model.test_step(batch(len(SEEN), count=1))
    assert out[0].seg_logits.data.shape == (14, 64, 64)


def test_identity_head_is_cross_entropy_on_the_score_map():
    model = build(SYNTHETIC['denseclip']).eval()   # eval: no dropout, so the two agree exactly
    data = model.data_preprocessor(batch(14, seed=1), True)
    with torch.no_grad():
        losses = model.loss(data['inputs'], data['data_samples'])
        out = model.core(data['inputs'])
    labels = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])[:, 0]
    logits = F.interpolate(out.score_map / 0.07, size=(64, 64), mode='bilinear',
                           align_corners=False)
    expected = 0.4 * F.cross_entropy(logits, labels, ignore_index=255)
    assert losses['aux_identity.loss_ce'].item() == pytest.approx(expected.item(), rel=1e-5)


def test_closed_set_refuses_another_number_of_texts():
    model = build(SYNTHETIC['denseclip']).eval()
    images = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r'exactly 14 classes, not 3.*vocabulary-agnostic'):
        model.segment(images, ['pink', 'purple', 'grass'])
    renamed = model.segment(images, [f'name {i}' for i in range(14)], return_probs=False)
    assert renamed[0].labels.shape == (64, 64) and renamed[0].class_probs is None
    # 14 classes, one of them with a synonym: its score channel is the better of the two
    names = list(model.class_names)
    with_synonym = model.segment(images, [names[0] + '; lawn', *names[1:]])[0]
    assert with_synonym.class_probs.shape == (14, 64, 64)
    vocab = model.vocabulary([names[0] + '; lawn', *names[1:]])
    with torch.no_grad():
        out = model.core(model.data_preprocessor(batch(14, count=1), False)['inputs'], vocab)
    assert out.text.shape[1] == 15 and out.score_map.shape[1] == 14
    per_query = score_map(out.dense, out.text, model.core.score_scale)
    assert torch.equal(out.score_map[:, 0], per_query[:, :2].amax(1))
    assert torch.equal(out.score_map[:, 1:], per_query[:, 2:])
    with pytest.raises(ValueError, match='vocabulary-agnostic'):
        model.class_names = ['pink', 'purple']
    with pytest.raises(ValueError, match='fixed classes'):
        build(SYNTHETIC['clip-fpn']).segment(images, ['a', 'b'])


def test_agnostic_variant_takes_any_texts():
    model = build(SYNTHETIC['denseclip-agnostic']).eval()
    assert model.class_names[11:13] == ['purple', 'pink'] and model.core.num_classes == 12
    images = torch.randn(2, 3, 64, 48)
    for texts in (['pink'], ['pink', 'purple; violet', 'a photo of grass'],
                  [f'word {i}' for i in range(20)]):
        results = model.segment(images, texts, out_size=(32, 24))
        assert len(results) == 2
        assert results[0].labels.shape == (32, 24) and int(results[0].labels.max()) < len(texts)
        assert results[0].class_probs.shape == (len(texts), 32, 24)
        if not any(';' in t for t in texts):
            assert torch.allclose(results[0].class_probs.sum(0), torch.ones(32, 24), atol=1e-5)
    # synonyms: each query has its own softmax probability, a class the largest of its queries'
    pooled = model.segment(images, ['pink', 'purple; violet', 'grass'])[1].class_probs
    queries = model.segment(images, ['pink', 'purple', 'violet', 'grass'])[1].class_probs
    expected = torch.stack([queries[0], queries[1:3].amax(0), queries[3]])
    assert torch.allclose(pooled, expected, atol=1e-6)
    samples = model.predict(images, texts=['pink', 'grass'])
    assert samples[0].pred_sem_seg.data.shape == (1, 64, 48)
    # the slide buffer follows the vocabulary in use, and is restored after the call
    model.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(24, 24))
    assert model.segment(images, ['pink', 'grass', 'sky'])[0].class_probs.shape == (3, 64, 48)
    assert model.out_channels == 12


def test_resnet_config_slides_over_a_larger_image():
    model = build(CONFIG_DIR / 'denseclip_r50_80k_ade20k-512.py',
                  test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(48, 48))).eval()
    out = model.segment(torch.randn(1, 3, 96, 80), model.class_names, return_probs=False)
    assert out[0].labels.shape == (96, 80) and int(out[0].labels.max()) < 150


# ----- inferencer, tools -----------------------------------------------------------------------

def test_inferencer_segments_new_texts_from_a_checkpoint(tmp_path):
    config = tmp_path / 'agnostic.py'
    config.write_text(f"_base_ = ['{SYNTHETIC['denseclip-agnostic']}']\n"
                      "model = dict(clip=dict(model_name='test-denseclip-vit8'))\n")
    model = SEG_MODELS.build(Config.fromfile(str(config)).model).eval()
    with torch.no_grad():   # make the heads differ from a fresh build's
        for p in model.decode_head.parameters():
            p.add_(0.01)
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    texts = ['pink', 'purple', 'grass', 'sky', 'a blue thing']
    seg = OpenVocabSegInferencer(str(config), weights=str(checkpoint), device='cpu')
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    out = seg(image, texts=texts, return_scores=True, visualize=False)
    prediction = out['predictions'][0]
    assert prediction.pred_sem_seg.shape == (64, 80) and prediction.texts == texts
    assert prediction.scores.shape == (5, 64, 80)
    expected = model.segment(seg.preprocess(image), texts)[0]
    assert torch.equal(prediction.pred_sem_seg, expected.labels)


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    from densevl.datasets.synthetic import write_dataset
    return write_dataset(tmp_path_factory.mktemp('synthetic'), counts=dict(train=8, test=4),
                         progress=False)


def test_train_and_test_tools(synthetic_root, tmp_path):
    weights = tmp_path / 'clip.pt'   # random weights of the proving ground's CLIP architecture
    torch.manual_seed(0)
    torch.save(open_clip.CLIP(**SYNTHETIC_CONFIGS['vit']['config']).state_dict(), weights)
    config = str(SYNTHETIC['denseclip'])
    options = [f'model.clip.pretrained={weights}']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={synthetic_root}', f'{loader}.batch_size=2',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    work = tmp_path / 'work'
    _tool('train').main([config, '--work-dir', str(work), '--cfg-options', *options,
                         'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                         'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1'])
    assert (work / 'iter_3.pth').is_file()
    log = next(work.glob('*/*.log')).read_text()
    assert 'aux_identity.loss_ce' in log and 'mIoU' in log
    preds = tmp_path / 'preds.pkl'
    _tool('test').main([config, str(work / 'iter_3.pth'), '--work-dir', str(tmp_path / 'test'),
                        '--out', str(preds), '--cfg-options', *options])
    import pickle
    with open(preds, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4 and results[0]['pred_sem_seg']['data'].shape == (1, 64, 64)
    assert 'seg_logits' not in results[0]
    # multi-scale + flip: 12 predictions per image, their softmax averaged by SegTTAModel
    _tool('test').main([config, str(work / 'iter_3.pth'), '--work-dir', str(tmp_path / 'tta'),
                        '--tta', '--out', str(preds), '--cfg-options', *options])
    with open(preds, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4 and results[0]['pred_sem_seg']['data'].shape == (1, 64, 64)
    averaged = results[0]['seg_logits']['data'].exp()   # the log of the averaged softmax
    assert averaged.shape == (14, 64, 64)
    assert torch.allclose(averaged.sum(0), torch.ones(64, 64), atol=1e-5)
    assert torch.equal(results[0]['pred_sem_seg']['data'][0], averaged.argmax(0))
    training_free = 'configs/training_free/sclip_clip-synthetic-tiny_training-free_synthetic-64.py'
    with pytest.raises(SystemExit, match='--tta needs tta_pipeline in the config'):
        _tool('test').setup_cfg(_tool('test').parse_args([str(ROOT / training_free), '--tta']))


# ----- checkpoint conversion -------------------------------------------------------------------

def published_layout(model) -> dict[str, torch.Tensor]:
    """``model``'s tensors under the keys of a released DenseCLIP segmentor (see the module
    docstring for how each name is derived)."""
    core, out = model.core, {}
    encoder = core.image_encoder
    if hasattr(encoder, 'fpn1'):   # CLIPVisionTransformer: CLIP's ViT plus fpn1..fpn4
        parts = {'': encoder.encoder.visual,
                 **{f'fpn{i}.': getattr(encoder, f'fpn{i}') for i in range(1, 5)}}
    else:                          # CLIPResNetWithAttention: CLIP's ModifiedResNet
        parts = {'': encoder.visual}
    for sub, module in parts.items():
        out.update({f'backbone.{sub}{k}': v for k, v in module.state_dict().items()})
    text = core.text_encoder
    rows = text.num_context + text.name_length   # CLIPTextContextEncoder.context_length
    out['text_encoder.positional_embedding'] = text.positional_embedding[:rows]
    out['text_encoder.text_projection'] = text.text_projection
    for part in ('token_embedding', 'transformer', 'ln_final'):
        out.update({f'text_encoder.{part}.{k}': v
                    for k, v in getattr(text, part).state_dict().items()})
    out['contexts'] = text.contexts
    out['gamma'] = core.gamma
    out.update({f'context_decoder.{k}': v for k, v in core.context_decoder.state_dict().items()})
    for head in ('neck', 'decode_head'):
        out.update({f'{head}.{k}': v for k, v in getattr(model, head).state_dict().items()})
    return {k: v.detach().clone() for k, v in out.items()}


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


def golden_config(tmp_path: Path, golden: dict, kind: str) -> Path:
    cfg = golden['config']
    decoder = cfg['decoder']
    vit = '    vit=None,\n' if kind == 'rn' else (
        f"    vit=dict(norm='SyncBN', feature_indices={tuple(cfg['vit']['out_indices'])}, "
        'double_class_embedding=True),\n')
    path = tmp_path / f'golden_{kind}.py'
    path.write_text(
        f"_base_ = ['{SYNTHETIC['denseclip']}']\n"
        'model = dict(\n'
        f"    clip=dict(model_name='test-golden-{kind}', pretrained=None),\n"
        f"    class_names={list(cfg['class_names'])!r},\n"
        f"    input_resolution={cfg[kind]['input_resolution']},\n{vit}"
        f"    context_decoder=dict(width={decoder['transformer_width']}, "
        f"num_heads={decoder['transformer_heads']}, layers={decoder['transformer_layers']}),\n"
        f"    decode_head=dict(num_classes={len(cfg['class_names'])}))\n")
    return path


@pytest.mark.parametrize('kind', ['rn', 'vit'])
def test_converter_round_trip(tmp_path, golden, kind, capsys):
    config = golden_config(tmp_path, golden, kind)
    original = SEG_MODELS.build(Config.fromfile(str(config)).model).eval()
    published = published_layout(original)
    # the derived names are the reference modules' own (golden: their state-dict keys)
    backbone = {k[len('backbone.'):] for k in published if k.startswith('backbone.')}
    assert backbone == set(golden['weights'][kind])
    text = {k[len('text_encoder.'):] for k in published if k.startswith('text_encoder.')}
    assert text == set(golden['weights']['text']) | {'token_embedding.weight'}
    decoder = {k[len('context_decoder.'):] for k in published if k.startswith('context_decoder')}
    assert decoder == set(golden['weights']['decoder'])

    src, dst = tmp_path / 'released.pth', tmp_path / 'converted.pth'
    torch.save(dict(meta=dict(CLASSES=golden['config']['class_names']), state_dict=published), src)
    _tool('convert_denseclip_checkpoint').main([str(src), str(dst), '--config', str(config)])
    assert 'loaded strictly' in capsys.readouterr().out
    torch.manual_seed(123)   # other random heads, decoder and contexts
    fresh = SEG_MODELS.build(Config.fromfile(str(config)).model).eval()
    load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(fresh._forward(images), original._forward(images), atol=ATOL)
        expected = original.segment(images, list(golden['config']['class_names']))
        got = fresh.segment(images, list(golden['config']['class_names']))
    assert torch.equal(got[0].labels, expected[0].labels)


@pytest.mark.parametrize('kind', ['rn', 'vit'])
def test_converted_reference_weights_reproduce_the_reference(tmp_path, golden, kind):
    """The reference's own tiny weights, in the published layout, give its outputs here."""
    weights = {k: (v.float() if v.is_floating_point() else v) if torch.is_tensor(v) else
               {kk: vv.float() if vv.is_floating_point() else vv for kk, vv in v.items()}
               for k, v in golden['weights'].items()}
    model = SEG_MODELS.build(Config.fromfile(str(golden_config(tmp_path, golden, kind))).model)
    tokens = torch.zeros(49408, 64)
    tokens[weights['token_rows']] = weights['token_embedding_rows']
    published = {f'backbone.{k}': v for k, v in weights[kind].items()}
    published.update({f'text_encoder.{k}': v for k, v in weights['text'].items()})
    published['text_encoder.token_embedding.weight'] = tokens
    published.update({f'context_decoder.{k}': v for k, v in weights['decoder'].items()})
    published.update(contexts=weights['contexts'], gamma=weights['gamma'])
    published.update({k: v for k, v in published_layout(model).items()
                      if k.startswith(('neck.', 'decode_head.'))})
    converted, skipped = convert_denseclip_state_dict(published)
    state, notes = fit_state_dict(converted, model.state_dict())
    assert not skipped and len(notes) == 1 and 'first 13 of 77 rows' in notes[0]
    assert compare_state_dicts(state, model.state_dict()).ok
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model.eval().core(golden['inputs'][kind].float())
    reference = golden['outputs']
    for name, actual in (('text', out.text), ('score_map', out.score_map),
                         *((f'fused {i}', f) for i, f in enumerate(out.fused))):
        key = f'{kind}_{name}' if not name.startswith('fused') else f'{kind}_fused'
        expected = reference[key][int(name[-1])] if name.startswith('fused') else reference[key]
        diff = (actual - expected.float()).abs().max().item()
        assert diff <= ATOL, f'{name}: {diff:.2e}'


def test_converter_reports_what_does_not_fit(tmp_path, golden, capsys):
    config = golden_config(tmp_path, golden, 'rn')
    published = published_layout(SEG_MODELS.build(Config.fromfile(str(config)).model))
    del published['backbone.layer1.0.conv1.weight']
    published['decode_head.conv_seg.weight'] = torch.zeros(9, 64, 1, 1)
    published['identity_head.unused'] = torch.zeros(1)
    src = tmp_path / 'broken.pth'
    torch.save(dict(state_dict=published), src)
    with pytest.raises(SystemExit) as exit_info:
        _tool('convert_denseclip_checkpoint').main(
            [str(src), str(tmp_path / 'out.pth'), '--config', str(config)])
    assert exit_info.value.code == 1 and not (tmp_path / 'out.pth').exists()
    captured = capsys.readouterr()
    assert 'core.image_encoder.visual.layer1.0.conv1.weight' in captured.err
    assert 'decode_head.conv_seg.weight: (9, 64, 1, 1) vs (5, 64, 1, 1)' in captured.err
    assert 'dropped 1 keys' in captured.out and 'identity_head.unused' in captured.out


def test_position_grids_are_resized_as_the_reference_does():
    """DenseCLIP's load-time resize: class row kept, the grid bilinear (align_corners=False)."""
    def reference(pos: torch.Tensor, new: int) -> torch.Tensor:
        old, dim = int((pos.shape[0] - 1) ** 0.5), pos.shape[1]
        grid = pos[1:].reshape(1, old, old, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(new, new), mode='bilinear')
        return torch.cat([pos[:1], grid.reshape(dim, new * new).permute(1, 0)])

    for name, owner in (('clip-tiny-random-rn', lambda v: v.attnpool),
                        ('clip-tiny-random', lambda v: v)):
        visual = create_clip(name).model.visual
        before = owner(visual).positional_embedding.detach().clone()
        set_position_grid(build_dense_encoder(visual, mode='plain'), 16)
        assert torch.allclose(owner(visual).positional_embedding, reference(before, 16))
    converted, notes = fit_state_dict({'core.image_encoder.visual.attnpool.positional_embedding':
                                       before},
                                      {'core.image_encoder.visual.attnpool.positional_embedding':
                                       torch.zeros(1 + 5 * 5, before.shape[1])})
    assert 'resized bilinearly to 5x5' in notes[0]
    assert torch.allclose(next(iter(converted.values())), reference(before, 5))


@pytest.mark.parametrize('method', ['denseclip', 'clip-fpn'])
def test_pretrained_clip_loads_in_init_weights(tmp_path, method):
    """Weights given by ``clip.pretrained`` (open_clip names) load in init_weights, resized."""
    model = build(CONFIG_DIR / f'{method}_r50_80k_ade20k-512.py')
    source = open_clip.CLIP(**MODEL_ZOO['clip-tiny-random-rn'].config)
    torch.nn.init.normal_(source.visual.attnpool.positional_embedding)
    torch.nn.init.normal_(source.visual.layer4[0].conv1.weight)
    weights = tmp_path / 'clip.pt'
    torch.save(source.state_dict(), weights)
    model._pending_clip = dict(model_name='clip-tiny-random-rn', pretrained=str(weights))
    model.init_weights()
    assert not model.clip_random_weights
    visual = model.image_encoder.visual
    assert torch.equal(visual.layer4[0].conv1.weight, source.visual.layer4[0].conv1.weight)
    if method == 'clip-fpn':   # no embedding head, as DenseCLIP's CLIPResNet
        assert visual.attnpool is None
        assert not any('attnpool' in k for k in model.state_dict())
        return
    pool = visual.attnpool.positional_embedding
    assert pool.shape == (1 + 16 * 16, 256)
    assert torch.equal(pool[0], source.visual.attnpool.positional_embedding[0])
    assert torch.equal(model.core.text_encoder.token_embedding.weight,
                       source.token_embedding.weight)
