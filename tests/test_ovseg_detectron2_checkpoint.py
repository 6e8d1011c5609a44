"""Released OVSeg (detectron2) checkpoints into OVSegSegmentor: densevl.models.ovseg.
detectron2_checkpoint and tools/convert_ovseg_checkpoint.py.

The golden file ``tests/golden/ovseg_detectron2.pt`` holds the reference's own modules at toy
widths (detectron2's DeepLab-stem ResNet-101 with ov-seg's R101c settings, ov-seg's Swin, and on
each MaskFormer's pixel decoder and OVSeg's open-vocabulary transformer predictor), their state
dicts in a released model's key layout and their outputs; made from facebookresearch/ov-seg
36f49d496714998058d115ffb6172d9d84c59065 and facebookresearch/detectron2
02b5c4e295e990042a714712c21dc79b731e8833 by ``.venv/bin/python
tools/make_golden_ovseg_detectron2.py --mirror-root /work/.mirror --ref-root /tmp/refs --out
tests/golden/ovseg_detectron2.pt`` (byte-identical on reruns). The published sizes are checked
on key lists written from ov-seg's two configs.
"""
from __future__ import annotations

from pathlib import Path

import open_clip
import open_clip.factory
import pytest
import torch
import torch.nn.functional as F
from _tools import load_tool
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.structures import SegDataSample

import densevl.models.mm_adapters  # noqa: F401
from densevl.models.ovseg import detectron2_checkpoint as d2
from densevl.models.ovseg.checkpoint import MASK_EMBEDDING_KEY, OVSEG_CLIP_PREFIX
from densevl.models.text import Vocabulary
from densevl.registry import SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / 'tests' / 'golden' / 'ovseg_detectron2.pt'
BASE = ROOT / 'configs' / '_base_' / 'models' / 'ovseg_clip-synthetic-tiny.py'
CLASSES = ['wall', 'sky', 'person']

# The golden's toy sizes, as densevl configures them.
BACKBONES = dict(
    r101c=dict(type='ResNetV1c', depth=101, stem_channels=8, base_channels=2, num_stages=4,
               strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), multi_grid=(1, 2, 4),
               out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=False),
               norm_eval=True, style='pytorch', init_cfg=None),
    swin=dict(type='SwinTransformer', pretrain_img_size=64, embed_dims=8, patch_size=4,
              window_size=4, mlp_ratio=4, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
              strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True, drop_rate=0.0,
              attn_drop_rate=0.0, drop_path_rate=0.0, patch_norm=True, use_abs_pos_embed=False,
              init_cfg=None))
CONFIG = """_base_ = ['{base}']
model = dict(
    train_class_names={classes},
    backbone=dict(_delete_=True, **{backbone}),
    decode_head=dict(
        in_channels=[8, 16, 32, 64], feat_channels=32, out_channels=32, num_queries=5,
        embed_dims=24, text_width=24, class_hidden_dims=48, class_layers=2,
        positional_encoding=dict(num_feats=16, normalize=True),
        transformer_decoder=dict(num_layers=2, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=32, num_heads=4),
            cross_attn_cfg=dict(embed_dims=32, num_heads=4),
            ffn_cfg=dict(embed_dims=32, feedforward_channels=64)))))
"""

convert_tool = load_tool('convert_ovseg_checkpoint')


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def configs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('configs')
    paths = {}
    for kind, backbone in BACKBONES.items():
        paths[kind] = folder / f'ovseg_{kind}-toy.py'
        paths[kind].write_text(CONFIG.format(base=BASE, classes=CLASSES, backbone=backbone))
    return paths


def build_segmentor(config: Path):
    return SEG_MODELS.build(Config.fromfile(str(config)).model).eval()


def head_outputs(head, features, vocabulary: Vocabulary, image_hw) -> tuple:
    samples = [SegDataSample(metainfo=dict(img_shape=image_hw, batch_input_shape=image_hw))
               for _ in range(features[0].shape[0])]
    with head.vocabulary_in_use(vocabulary):
        return head(features, samples)


@pytest.mark.parametrize('kind', ['r101c', 'swin'])
def test_converted_reference_matches_its_forward(golden, configs, kind):
    """Backbone levels, mask features, every decoder layer's masks and class logits."""
    ref = golden[kind]
    weights = d2.convert_ovseg_detectron2_state_dict(ref['state_dict'], kind)
    assert weights.backbone == ('resnet' if kind == 'r101c' else 'swin')
    model = build_segmentor(configs[kind])
    model.load_state_dict(weights.state_dict, strict=True)

    images = golden['images']
    text = F.normalize(torch.randn(len(CLASSES), 24, generator=torch.Generator().manual_seed(0)),
                       dim=-1)
    vocabulary = Vocabulary.parse(CLASSES).with_embeddings(text)
    with torch.no_grad():
        features = model.extract_feat(images)
        mask_features, _ = model.decode_head.pixel_decoder(features, [])
        all_cls, all_masks = head_outputs(model.decode_head, features, vocabulary,
                                          tuple(images.shape[-2:]))
    for level, (ours, theirs) in enumerate(zip(features, ref['features'])):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4, msg=f'level {level}')
    torch.testing.assert_close(mask_features, ref['mask_features'], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(all_masks, ref['mask_logits'], atol=1e-4, rtol=1e-4)
    # the reference's logits: 100 cos(class embedding, [text; no-object])
    non_object = ref['state_dict']['clip_adapter.non_object_embedding'].float()
    classes = torch.cat([text, F.normalize(non_object, dim=-1)])
    expected = 100 * F.normalize(ref['class_embeddings'], dim=-1) @ classes.t()
    torch.testing.assert_close(all_cls, expected, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize('kind', ['r101c', 'swin'])
def test_every_released_entry_maps_one_to_one(golden, configs, kind):
    source = golden[kind]['state_dict']
    weights = d2.convert_ovseg_detectron2_state_dict(source)
    target = build_segmentor(configs[kind]).state_dict()
    added = [k for k in weights.state_dict if k.endswith('num_batches_tracked')]
    assert sorted(weights.dropped) == ['clip_adapter.pixel_mean', 'clip_adapter.pixel_std',
                                       'criterion.empty_weight']
    assert len(weights.state_dict) - len(added) == len(source) - len(weights.dropped)
    assert sorted(weights.state_dict) == sorted(target)
    if kind == 'swin':   # the reference's relative position index is mmseg's, entry for entry
        for key, value in weights.state_dict.items():
            if key.endswith('relative_position_index'):
                assert torch.equal(value, target[key]), key


def test_unfold_channel_order_matches_mmseg_patch_merging():
    """A 2x2 neighbourhood laid out as the reference concatenates it lands where nn.Unfold
    puts each pixel."""
    c = 3
    x = torch.arange(2 * 2 * c, dtype=torch.float32).view(1, c, 2, 2)
    reference = torch.cat([x[:, :, 0, 0], x[:, :, 1, 0], x[:, :, 0, 1], x[:, :, 1, 1]], dim=-1)
    unfolded = F.unfold(x, kernel_size=2, stride=2)[..., 0]
    assert torch.equal(d2.unfold_channel_order(reference), unfolded)


# ----------------------------------------------------------------------------- published sizes

def _conv(keys: dict, name: str, out: int, inp: int, k: int, norm: str | None = None,
          bias: bool = False) -> None:
    keys[f'{name}.weight'] = (out, inp, k, k)
    if bias:
        keys[f'{name}.bias'] = (out,)
    leaves = {'FrozenBN': ('weight', 'bias', 'running_mean', 'running_var'),
              'GN': ('weight', 'bias'), None: ()}[norm]
    keys.update({f'{name}.norm.{leaf}': (out,) for leaf in leaves})


def released_r101c_backbone() -> dict:
    """``backbone.*`` of ovseg_R101c_vitB16_ft_mpt.pth, from ov-seg's R101c config (DeepLab stem
    of 128, depth 101, res2 of 256, frozen batch norms)."""
    keys: dict = {}
    for i, (out, inp) in enumerate([(64, 3), (64, 64), (128, 64)]):
        _conv(keys, f'backbone.stem.conv{i + 1}', out, inp, 3, 'FrozenBN')
    channels = 128
    for stage, (blocks, width) in enumerate(zip((3, 4, 23, 3), (64, 128, 256, 512))):
        for b in range(blocks):
            name = f'backbone.res{stage + 2}.{b}'
            if b == 0:
                _conv(keys, f'{name}.shortcut', 4 * width, channels, 1, 'FrozenBN')
            _conv(keys, f'{name}.conv1', width, channels if b == 0 else 4 * width, 1, 'FrozenBN')
            _conv(keys, f'{name}.conv2', width, width, 3, 'FrozenBN')
            _conv(keys, f'{name}.conv3', 4 * width, width, 1, 'FrozenBN')
        channels = 4 * width
    return keys


def released_swin_b_backbone() -> dict:
    """``backbone.*`` of ovseg_swinbase_vitL14_ft_mpt.pth, from ov-seg's Swin-B config (embed
    128, depths 2-2-18-2, heads 4-8-16-32, window 12, patch norm, no absolute positions)."""
    keys = {'backbone.patch_embed.proj.weight': (128, 3, 4, 4),
            'backbone.patch_embed.proj.bias': (128,), 'backbone.patch_embed.norm.weight': (128,),
            'backbone.patch_embed.norm.bias': (128,)}
    for i, (depth, heads) in enumerate(zip((2, 2, 18, 2), (4, 8, 16, 32))):
        dim = 128 * 2 ** i
        for b in range(depth):
            name = f'backbone.layers.{i}.blocks.{b}'
            keys.update({f'{name}.{n}.{leaf}': (dim,) for n in ('norm1', 'norm2')
                         for leaf in ('weight', 'bias')})
            keys.update({f'{name}.attn.relative_position_bias_table': (23 * 23, heads),
                         f'{name}.attn.relative_position_index': (144, 144),
                         f'{name}.attn.qkv.weight': (3 * dim, dim),
                         f'{name}.attn.qkv.bias': (3 * dim,),
                         f'{name}.attn.proj.weight': (dim, dim), f'{name}.attn.proj.bias': (dim,),
                         f'{name}.mlp.fc1.weight': (4 * dim, dim),
                         f'{name}.mlp.fc1.bias': (4 * dim,),
                         f'{name}.mlp.fc2.weight': (dim, 4 * dim), f'{name}.mlp.fc2.bias': (dim,)})
        if i < 3:
            keys.update({f'backbone.layers.{i}.downsample.reduction.weight': (2 * dim, 4 * dim),
                         f'backbone.layers.{i}.downsample.norm.weight': (4 * dim,),
                         f'backbone.layers.{i}.downsample.norm.bias': (4 * dim,)})
        keys.update({f'backbone.norm{i}.{leaf}': (dim,) for leaf in ('weight', 'bias')})
    return keys


def released_head(in_channels: list[int], embed_dim: int) -> dict:
    """``sem_seg_head.*`` and the no-object embedding: BasePixelDecoder (GN, 256) and the
    open-vocabulary TransformerPredictor (100 queries, 6 decoder layers, feed-forward 2048, class
    MLP 256 -> 1024 -> ``embed_dim``), as ov-seg's configs build them."""
    keys: dict = {}
    pd, pr = 'sem_seg_head.pixel_decoder', 'sem_seg_head.predictor'
    for k, c in enumerate(in_channels[:-1]):
        _conv(keys, f'{pd}.adapter_{k + 1}', 256, c, 1, 'GN')
        _conv(keys, f'{pd}.layer_{k + 1}', 256, 256, 3, 'GN')
    _conv(keys, f'{pd}.layer_4', 256, in_channels[-1], 3, 'GN')
    _conv(keys, f'{pd}.mask_features', 256, 256, 3, bias=True)
    _conv(keys, f'{pr}.input_proj', 256, in_channels[-1], 1, bias=True)
    keys[f'{pr}.query_embed.weight'] = (100, 256)
    for i in range(6):
        name = f'{pr}.transformer.decoder.layers.{i}'
        for attn in ('self_attn', 'multihead_attn'):
            keys.update({f'{name}.{attn}.in_proj_weight': (768, 256),
                         f'{name}.{attn}.in_proj_bias': (768,),
                         f'{name}.{attn}.out_proj.weight': (256, 256),
                         f'{name}.{attn}.out_proj.bias': (256,)})
        keys.update({f'{name}.linear1.weight': (2048, 256), f'{name}.linear1.bias': (2048,),
                     f'{name}.linear2.weight': (256, 2048), f'{name}.linear2.bias': (256,)})
        keys.update({f'{name}.norm{n}.{leaf}': (256,) for n in (1, 2, 3)
                     for leaf in ('weight', 'bias')})
    keys.update({f'{pr}.transformer.decoder.norm.{leaf}': (256,) for leaf in ('weight', 'bias')})
    for i in range(3):
        keys.update({f'{pr}.mask_embed.layers.{i}.weight': (256, 256),
                     f'{pr}.mask_embed.layers.{i}.bias': (256,)})
    keys.update({f'{pr}.class_embed.layers.0.weight': (1024, 256),
                 f'{pr}.class_embed.layers.0.bias': (1024,),
                 f'{pr}.class_embed.layers.1.weight': (embed_dim, 1024),
                 f'{pr}.class_embed.layers.1.bias': (embed_dim,),
                 'clip_adapter.non_object_embedding': (1, embed_dim),
                 'clip_adapter.pixel_mean': (1, 3, 1, 1), 'clip_adapter.pixel_std': (1, 3, 1, 1),
                 'criterion.empty_weight': (172,)})
    return keys


PUBLISHED = dict(
    r101c=(released_r101c_backbone, [256, 512, 1024, 2048], 512, dict(
        type='ResNetV1c', depth=101, stem_channels=128, base_channels=64,
        multi_grid=(1, 2, 4), norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True,
        style='pytorch', init_cfg=None),
        dict(type='ResNetV1c', depth=101, blocks=[3, 4, 23, 3], stem_channels=128,
             base_channels=64)),
    swin=(released_swin_b_backbone, [128, 256, 512, 1024], 768, dict(
        type='SwinTransformer', pretrain_img_size=384, embed_dims=128, depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32), window_size=12, drop_path_rate=0.3, patch_norm=True,
        use_abs_pos_embed=False, init_cfg=None),
        dict(type='SwinTransformer', embed_dims=128, patch_size=4, depths=[2, 2, 18, 2],
             num_heads=[4, 8, 16, 32], window_size=12)))


@pytest.mark.parametrize('kind', ['r101c', 'swin'])
def test_published_layouts_load_strictly(kind):
    make_backbone, in_channels, embed_dim, backbone_cfg, described = PUBLISHED[kind]
    layout = {**make_backbone(), **released_head(in_channels, embed_dim)}
    source = {k: torch.zeros(shape, dtype=torch.long if k.endswith('_index') else torch.float16)
              for k, shape in layout.items()}
    source.update({f'{OVSEG_CLIP_PREFIX}visual.proj': torch.zeros(1)})   # left to the CLIP
    weights = d2.convert_ovseg_detectron2_state_dict(source)
    assert weights.clip_keys == 1
    description = d2.describe_ovseg_detectron2(weights)
    assert description['backbone'] == described
    assert description['decode_head'] == dict(
        in_channels=in_channels, feat_channels=256, out_channels=256, num_queries=100,
        decoder_layers=6, feedforward_channels=2048, embed_dims=embed_dim,
        class_hidden_dims=1024, class_layers=2)

    cfg = Config.fromfile(str(BASE)).model
    head = cfg.decode_head
    head.update(in_channels=in_channels, feat_channels=256, out_channels=256, num_queries=100,
                embed_dims=embed_dim, num_classes=171, class_hidden_dims=1024,
                positional_encoding=dict(num_feats=128, normalize=True))
    head.transformer_decoder.num_layers = 6
    layer = head.transformer_decoder.layer_cfg
    for part in (layer.self_attn_cfg, layer.cross_attn_cfg):
        part.update(embed_dims=256, num_heads=8)
    layer.ffn_cfg.update(embed_dims=256, feedforward_channels=2048)
    built = {'backbone': SEG_MODELS.build(backbone_cfg), 'decode_head': SEG_MODELS.build(head)}
    for prefix, module in built.items():
        part = {k[len(prefix) + 1:]: v for k, v in weights.state_dict.items()
                if k.startswith(prefix + '.')}
        module.load_state_dict(part, strict=True)


# ----------------------------------------------------------------------------- errors

def test_unknown_and_missing_entries_are_named(golden):
    state = dict(golden['r101c']['state_dict'])
    extra = 'sem_seg_head.predictor.transformer.encoder.layers.0.linear1.weight'
    with pytest.raises(ValueError, match='transformer.encoder.layers.0.linear1.weight'):
        d2.convert_ovseg_detectron2_state_dict({**state, extra: torch.zeros(1)}, 'x.pth')
    cut = {k: v for k, v in state.items() if 'query_embed' not in k}
    with pytest.raises(ValueError, match=r'x\.pth lacks .*decode_head\.query_embed\.weight'):
        d2.convert_ovseg_detectron2_state_dict(cut, 'x.pth')
    clip_only = {f'{OVSEG_CLIP_PREFIX}visual.proj': torch.zeros(1)}
    with pytest.raises(ValueError, match='convert_ovseg_clip_checkpoint'):
        d2.convert_ovseg_detectron2_state_dict(clip_only, 'x.pth')


# ----------------------------------------------------------------------------- the tool

CLIP_NAME = 'densevl-test-ovseg-d2-quickgelu'
CLIP_CFG = dict(embed_dim=24, quick_gelu=True,
                vision_cfg=dict(image_size=48, patch_size=16, width=64, layers=3, head_width=32),
                text_cfg=dict(context_length=77, vocab_size=500, width=32, heads=1, layers=1))


@pytest.fixture
def released(golden, tmp_path, monkeypatch) -> Path:
    """A whole OVSeg checkpoint as released: the toy R101c model with a mask-prompted CLIP."""
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, CLIP_NAME, CLIP_CFG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip = {k: v.half() for k, v in open_clip.CLIP(**CLIP_CFG).state_dict().items()}
        clip[MASK_EMBEDDING_KEY] = torch.randn(3, 9, 64).half()
    model = dict(golden['r101c']['state_dict'])
    model.update({OVSEG_CLIP_PREFIX + k: v for k, v in clip.items()})
    path = tmp_path / 'ovseg_R101c_toy.pth'
    torch.save(dict(model=model, iteration=120000), path)
    return path


def test_tool_writes_an_mmengine_checkpoint_and_the_clip_files(released, configs, tmp_path,
                                                               capsys):
    dst, clip_dst = tmp_path / 'out' / 'ovseg.pth', tmp_path / 'out' / 'clip.pth'
    convert_tool.main([str(released), str(dst), '--config', str(configs['r101c']),
                       '--clip-dst', str(clip_dst), '--clip-model-name', CLIP_NAME])
    assert 'loaded strictly' in capsys.readouterr().out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['backbone'] == 'resnet' and saved['meta']['clip'] == 'clip.pth'
    model = build_segmentor(configs['r101c'])
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    source = torch.load(released, map_location='cpu', weights_only=True)['model']
    assert torch.equal(model.decode_head.cls_embed.non_object_embedding,
                       source['clip_adapter.non_object_embedding'].float())
    clip = torch.load(clip_dst, map_location='cpu', weights_only=True)
    assert MASK_EMBEDDING_KEY not in clip and 'visual.proj' in clip
    mask = torch.load(clip_dst.with_name('clip.mask_embedding.pth'), weights_only=True)
    assert torch.equal(mask['mask_embedding'],
                       source[OVSEG_CLIP_PREFIX + MASK_EMBEDDING_KEY].float())


def test_tool_without_config_says_what_the_weights_need(released, tmp_path, capsys):
    dst = tmp_path / 'ovseg.pth'
    convert_tool.main([str(released), str(dst)])
    out = capsys.readouterr().out
    assert "'depth': 101" in out and "'num_queries': 5" in out
    assert dst.is_file()


def test_tool_writes_nothing_for_a_config_that_does_not_fit(released, configs, tmp_path):
    dst, clip_dst = tmp_path / 'ovseg.pth', tmp_path / 'clip.pth'
    with pytest.raises(SystemExit, match=r'does not fit .*nothing was written'):
        convert_tool.main([str(released), str(dst), '--config', str(configs['swin']),
                           '--clip-dst', str(clip_dst), '--clip-model-name', CLIP_NAME])
    assert not dst.exists() and not clip_dst.exists()
    with pytest.raises(SystemExit, match='needs --clip-model-name'):
        convert_tool.main([str(released), str(dst), '--clip-dst', str(clip_dst)])
