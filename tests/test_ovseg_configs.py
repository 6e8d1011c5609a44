"""The published OVSeg recipes' configs (ov-seg configs/ovseg_R101c_vitB_bs32_120k.yaml and
ovseg_swinB_vitL_bs32_120k.yaml, with the defaults of open_vocab_seg/config.py and detectron2):
each builds its model without downloading anything, and resolves to the published values."""
from __future__ import annotations

import re
from pathlib import Path

import open_clip
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import densevl.datasets.mm_datasets  # noqa: F401
import densevl.models.mm_adapters  # noqa: F401
from densevl.registry import SEG_DATASETS, SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs' / 'ovseg'
NAME = re.compile(r'ovseg_(?P<backbone>r101c-vit-b16|swin-b-vit-l14)_120k_coco-stuff171-'
                  r'(?P<crop>\d+)(_test-(?P<test>ade847|context459|context59|voc20))?\.py')
CONFIGS = sorted(p for p in CONFIG_DIR.glob('ovseg_*.py') if NAME.fullmatch(p.name))

# The reference yamls' values (SOLVER, INPUT, MODEL.MASK_FORMER, MODEL.CLIP_ADAPTER).
PUBLISHED = {
    'r101c-vit-b16': dict(clip='ViT-B-16-quickgelu', clip_dim=512, lr=0.0002, weight_decay=0.0001,
                          backbone_multiplier=0.1, mask_threshold=0.5, crop=512,
                          test_size=(2048, 512), backbone='ResNetV1c',
                          in_channels=[256, 512, 1024, 2048],
                          train_resize=dict(type='ResizeShortestEdge', scale=800, max_size=1333)),
    'swin-b-vit-l14': dict(clip='ViT-L-14-quickgelu', clip_dim=768, lr=0.00006, weight_decay=0.01,
                           backbone_multiplier=1.0, mask_threshold=0.4, crop=640,
                           test_size=(2560, 640), backbone='SwinTransformer',
                           in_channels=[128, 256, 512, 1024],
                           train_resize=dict(type='RandomChoiceResize',
                                             scales=[int(x * 0.1 * 640) for x in range(5, 21)],
                                             resize_type='ResizeShortestEdge', max_size=2560)),
}
# Both: IMS_PER_BATCH 32, MAX_ITER 120000, WARMUP_ITERS 1500 (factor 1e-6), WarmupPolyLR (0.9),
# CLIP_GRADIENTS full_model 0.01 (norm 2), NUM_OBJECT_QUERIES 100, DEC_LAYERS 6, HIDDEN_DIM 256,
# NHEADS 8, DIM_FEEDFORWARD 2048, DROPOUT 0.1, MASK_DIM 256, EMBED_HIDDEN_DIM 1024,
# TEXT_TEMPLATES vild, CLIP_ENSEMBLE_WEIGHT 0.7 (ADE); the paper's λ on the other benchmarks.
ENSEMBLE_WEIGHT = {None: 0.7, 'ade847': 0.7, 'context459': 0.6, 'context59': 0.6, 'voc20': 0.45}
TEST_DATASET = {None: 'ADE20KDataset', 'ade847': 'ADE20K847Dataset',
                'context459': 'PascalContext459Dataset', 'context59': 'PascalContextDataset59',
                'voc20': 'PascalVOC20Dataset'}


def _depth(path: Path) -> int:
    bases = Config._get_base_files(str(path))
    return 1 + max((_depth((path.parent / b).resolve()) for b in bases), default=0)


def test_there_is_a_config_per_recipe_and_benchmark():
    names = {p.name for p in CONFIGS}
    assert len(names) == 10, sorted(names)
    for recipe in ('r101c-vit-b16_120k_coco-stuff171-512', 'swin-b-vit-l14_120k_coco-stuff171-640'):
        assert f'ovseg_{recipe}.py' in names
        for test in ('ade847', 'context459', 'context59', 'voc20'):
            assert f'ovseg_{recipe}_test-{test}.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_resolves_to_the_published_recipe(path):
    match = NAME.fullmatch(path.name)
    published = PUBLISHED[match['backbone']]
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmseg' and _depth(path) <= 3
    model = cfg.model
    assert model.type == 'OVSegSegmentor' and model.decode_head.type == 'OVSegMaskFormerHead'
    assert model.clip == dict(model_name=published['clip'], pretrained='openai',
                              mask_embedding=None)
    assert model.templates == 'vild14' and model.classifier == 'masked_crops'
    assert model.train_class_names == 'COCOStuffDataset'
    assert model.ensemble_weight == ENSEMBLE_WEIGHT[match['test']]
    assert model.mask_threshold == published['mask_threshold']
    assert model.backbone.type == published['backbone']
    head = model.decode_head
    assert head.in_channels == published['in_channels']
    assert head.num_queries == 100 and head.feat_channels == head.out_channels == 256
    assert head.class_hidden_dims == 1024 and head.class_layers == 2
    assert head.no_object_weight == 0.1
    assert head.loss_mask.loss_weight == 20.0 and head.loss_dice.loss_weight == 1.0
    assert head.pixel_decoder.norm_cfg == dict(type='GN', num_groups=32)
    decoder = head.transformer_decoder
    assert decoder.num_layers == 6 and decoder.return_intermediate      # deep supervision
    for attention in (decoder.layer_cfg.self_attn_cfg, decoder.layer_cfg.cross_attn_cfg):
        assert attention.embed_dims == 256 and attention.num_heads == 8
        assert attention.attn_drop == attention.proj_drop == 0.1
    assert decoder.layer_cfg.ffn_cfg.feedforward_channels == 2048
    assert decoder.layer_cfg.ffn_cfg.ffn_drop == 0.1
    assert model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    assert model.data_preprocessor.std == [58.395, 57.12, 57.375]
    crop = published['crop']
    assert int(match['crop']) == crop and model.data_preprocessor.size == (crop, crop)
    test = cfg.test_dataloader.dataset
    assert test.type == TEST_DATASET[match['test']]
    resize = [t for t in test.pipeline if t.type == 'Resize']
    assert resize == [dict(type='Resize', scale=published['test_size'], keep_ratio=True)]
    ignore = 65535 if match['test'] in ('ade847', 'context459') else 255
    assert cfg.test_evaluator.get('ignore_index', 255) == ignore
    if match['test'] is None:   # the training configs
        train = cfg.train_dataloader
        assert train.dataset.type == 'COCOStuffDataset'
        assert train.batch_size * 8 == 32 and cfg.auto_scale_lr.base_batch_size == 32
        assert train.dataset.pipeline[2] == published['train_resize']
        assert train.dataset.pipeline[3] == dict(type='RandomCrop', crop_size=(crop, crop),
                                                 cat_max_ratio=1.0)
        assert cfg.train_cfg.max_iters == 120000
        optim = cfg.optim_wrapper
        assert optim.optimizer == dict(type='AdamW', lr=published['lr'],
                                       weight_decay=published['weight_decay'])
        assert optim.clip_grad == dict(max_norm=0.01, norm_type=2)
        keys = optim.paramwise_cfg.custom_keys
        assert keys.get('backbone', {}).get('lr_mult', 1.0) == published['backbone_multiplier']
        assert optim.paramwise_cfg.norm_decay_mult == 0.0
        assert keys.query_embed.decay_mult == 0.0
        warmup, poly = cfg.param_scheduler
        assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-6, 1500)
        assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 0.9, 0.0, 120000)


@pytest.mark.parametrize('backbone', sorted(PUBLISHED))
def test_recipe_builds_without_downloading(backbone, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError('building the model downloaded weights')

    monkeypatch.setattr(open_clip.pretrained, 'download_pretrained', no_download)
    monkeypatch.setattr(open_clip.factory, 'download_pretrained', no_download, raising=False)
    init_default_scope('mmseg')
    path = next(p for p in CONFIGS if NAME.fullmatch(p.name)['backbone'] == backbone
                and NAME.fullmatch(p.name)['test'] is None)
    published = PUBLISHED[backbone]
    model = SEG_MODELS.build(Config.fromfile(str(path)).model)
    head = model.decode_head
    assert type(model.backbone).__name__ == published['backbone']
    assert head.num_classes == 171 and head.num_queries == 100
    assert head.transformer_decoder.num_layers == 6
    assert head.cls_embed.embed_dim == published['clip_dim'] == model._frozen[0].embed_dim
    assert model.mask_threshold == published['mask_threshold'] and model.ensemble_weight == 0.7
    assert model._pending_clip is not None     # the OpenAI weights load when first used
    assert SEG_DATASETS.get('COCOStuffDataset') is not None
