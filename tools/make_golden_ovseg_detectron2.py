"""Golden tensors of OVSeg's detectron2 proposal network, for the checkpoint converter's test.

The reference's own modules are built at toy widths and run in fp32, eval: detectron2's
DeepLab-stem ResNet (``build_resnet_deeplab_backbone`` with ov-seg's R101c settings: depth 101,
``STRIDE_IN_1X1`` False, ``RES5_MULTI_GRID`` [1, 2, 4], frozen batch norms; stem 8, width 2,
res2 width 8), ov-seg's Swin (``SwinTransformer``, embed 8, depths 2-2-2-2, heads 1-2-2-4, window
4), and on each, OVSeg's ``OpenVocabMaskFormerHead`` parts: MaskFormer's ``BasePixelDecoder``
(GroupNorm, conv and mask dim 32) and ``OpenVocabTransformerPredictor`` (hidden 32, 4 heads,
feed-forward 64, 2 post-norm decoder layers with deep supervision, 5 queries, the input
projection 64 -> 32, the class MLP 32 -> 48 -> 24). ov-seg's ``open_vocab_seg`` and detectron2's
``detectron2/layers``, ``detectron2/modeling/backbone`` and ``projects/DeepLab`` are extracted from
bare mirrors at pinned commits and imported where they lie; detectron2's registries, config
decorator, environment helpers and fvcore's initialisers (every weight is overwritten) are stubs
for this process only. Nothing of the reference is copied.

Every weight is drawn from one seeded generator and rounded to fp16 (stored so). Saved, per
model (``r101c``, ``swin``): its state dict under the names of a released whole OVSeg model
(``backbone.*``, ``sem_seg_head.*``, ``clip_adapter.non_object_embedding``, and the entries a
release carries that hold no weight: ``clip_adapter.pixel_mean`` / ``pixel_std``,
``criterion.empty_weight``), the two input images (``2 x 3 x 64 x 96``), and the reference's
outputs: the backbone's four levels, the pixel decoder's mask features, the class embeddings and
mask logits of every decoder layer.

Usage::

    python tools/make_golden_ovseg_detectron2.py --mirror-root /work/.mirror \\
        --ref-root /tmp/refs --out tests/golden/ovseg_detectron2.pt
"""
from __future__ import annotations

import importlib
import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import torch
from _golden import (
    Reference,
    fp16_round,
    golden_parser,
    load_module_file,
    reference_package,
    stub_module,
    write_record,
)
from make_golden_ovseg import OVSEG
from torch import nn

D2_MODELING = Reference('facebookresearch/detectron2', 'facebookresearch+detectron2',
                        '02b5c4e295e990042a714712c21dc79b731e8833',
                        ('detectron2/layers', 'detectron2/modeling/backbone', 'projects/DeepLab'))
OVSEG_MODELING = Reference(OVSEG.repo, OVSEG.mirror, OVSEG.commit, ('open_vocab_seg',))
SEED = 2024
IMAGES = (2, 3, 64, 96)
RESNET = dict(DEPTH=101, STEM_TYPE='deeplab', STEM_OUT_CHANNELS=8, NUM_GROUPS=1,
              WIDTH_PER_GROUP=2, RES2_OUT_CHANNELS=8, STRIDE_IN_1X1=False, RES4_DILATION=1,
              RES5_DILATION=1, RES5_MULTI_GRID=[1, 2, 4], NORM='FrozenBN',
              DEFORM_ON_PER_STAGE=[False] * 4, DEFORM_MODULATED=False, DEFORM_NUM_GROUPS=1,
              OUT_FEATURES=['res2', 'res3', 'res4', 'res5'])
SWIN = dict(pretrain_img_size=64, patch_size=4, embed_dim=8, depths=[2, 2, 2, 2],
            num_heads=[1, 2, 2, 4], window_size=4, drop_path_rate=0.0)
HEAD = dict(conv_dim=32, mask_dim=32, hidden_dim=32, nheads=4, dim_feedforward=64, dec_layers=2,
            num_queries=5, embedding_dim=24, embed_hidden_dim=48, embed_layers=2)
NUM_TRAIN_CLASSES = 3
LEVELS = ('res2', 'res3', 'res4', 'res5')


def _noop(*args, **kwargs):
    """fvcore's initialisers: every weight is overwritten by :func:`seed_model`."""


class _Registry:
    def register(self, *args, **kwargs):
        return (lambda obj: obj) if not args else args[0]


def import_reference(ovseg_root: Path, d2_root: Path) -> SimpleNamespace:
    """The reference's modules with detectron2's real layers and stubs for the rest."""
    stub_module('fvcore.nn.weight_init', c2_xavier_fill=_noop, c2_msra_fill=_noop)
    stub_module('fvcore.nn.distributed', differentiable_all_reduce=_noop)
    torch_version = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
    stub_module('detectron2.utils.env', TORCH_VERSION=torch_version)
    stub_module('detectron2.utils.comm', get_world_size=lambda: 1)
    stub_module('detectron2.config', configurable=lambda init: init)
    layers = reference_package('detectron2.layers', d2_root / 'detectron2' / 'layers')
    for name in ('shape_spec', 'wrappers', 'batch_norm', 'blocks'):
        importlib.import_module(f'detectron2.layers.{name}')
    stub_module('detectron2.layers', Conv2d=layers.wrappers.Conv2d,
                ShapeSpec=layers.shape_spec.ShapeSpec, get_norm=layers.batch_norm.get_norm,
                CNNBlockBase=layers.blocks.CNNBlockBase, DeformConv=None,
                ModulatedDeformConv=None)
    registry = _Registry()
    stub_module('detectron2.modeling', BACKBONE_REGISTRY=registry,
                SEM_SEG_HEADS_REGISTRY=registry, ShapeSpec=layers.shape_spec.ShapeSpec)
    reference_package('detectron2.modeling.backbone',
                      d2_root / 'detectron2' / 'modeling' / 'backbone')
    stub_module('detectron2.modeling.backbone.build', BACKBONE_REGISTRY=registry)
    backbone = importlib.import_module('detectron2.modeling.backbone.backbone')
    stub_module('detectron2.modeling', Backbone=backbone.Backbone)
    importlib.import_module('detectron2.modeling.backbone.resnet')
    deeplab = load_module_file('deeplab_resnet',
                         d2_root / 'projects' / 'DeepLab' / 'deeplab' / 'resnet.py')

    reference_package('open_vocab_seg', ovseg_root / 'open_vocab_seg')
    for sub in ('modeling', 'modeling/backbone', 'modeling/heads', 'modeling/transformer'):
        reference_package(f'open_vocab_seg.{sub.replace("/", ".")}',
                          ovseg_root / 'open_vocab_seg' / sub)
    modules = SimpleNamespace(
        deeplab=deeplab, shape_spec=layers.shape_spec,
        swin=importlib.import_module('open_vocab_seg.modeling.backbone.swin'),
        pixel_decoder=importlib.import_module('open_vocab_seg.modeling.heads.pixel_decoder'),
        predictor=importlib.import_module(
            'open_vocab_seg.modeling.transformer.open_vocab_transformer_predictor'))
    for name, module in vars(modules).items():
        root = d2_root if name in ('deeplab', 'shape_spec') else ovseg_root
        assert module.__file__.startswith(str(root)), (name, module.__file__)
    return modules


def _value(name: str, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Seeded values of trained-network magnitudes for one entry."""
    randn = torch.randn(t.shape, generator=gen)
    leaf = name.rsplit('.', 1)[-1]
    if leaf == 'running_var':
        return 0.5 + torch.rand(t.shape, generator=gen)
    if t.ndim == 1 and leaf == 'weight':   # norms
        return 1.0 + 0.1 * randn
    if t.ndim == 1 or leaf == 'relative_position_bias_table':
        return 0.1 * randn
    scale = 0.5 if '.conv3.' in name else 1.0   # keeps 33 residual blocks tame
    return scale * randn * math.prod(t.shape[1:]) ** -0.5


def seed_model(model: nn.Module, gen: torch.Generator) -> None:
    state = {k: fp16_round(_value(k, v, gen)) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True)


def build_backbone(ref: SimpleNamespace, kind: str) -> nn.Module:
    if kind == 'r101c':
        cfg = SimpleNamespace(MODEL=SimpleNamespace(RESNETS=SimpleNamespace(**RESNET),
                                                    BACKBONE=SimpleNamespace(FREEZE_AT=2)))
        return ref.deeplab.build_resnet_deeplab_backbone(cfg, ref.shape_spec.ShapeSpec(channels=3))
    return ref.swin.SwinTransformer(**SWIN)


def build_head(ref: SimpleNamespace, channels: list[int]) -> nn.ModuleDict:
    """OVSeg's ``sem_seg_head`` children: ``pixel_decoder`` and ``predictor``."""
    shapes = {name: ref.shape_spec.ShapeSpec(channels=c, stride=4 * 2 ** i)
              for i, (name, c) in enumerate(zip(LEVELS, channels))}
    pixel_decoder = ref.pixel_decoder.BasePixelDecoder(
        shapes, conv_dim=HEAD['conv_dim'], mask_dim=HEAD['mask_dim'], norm='GN')
    predictor = ref.predictor.OpenVocabTransformerPredictor(
        channels[-1], mask_classification=True, embedding_dim=HEAD['embedding_dim'],
        embed_hidden_dim=HEAD['embed_hidden_dim'], embed_layers=HEAD['embed_layers'],
        hidden_dim=HEAD['hidden_dim'], num_queries=HEAD['num_queries'], nheads=HEAD['nheads'],
        dropout=0.1, dim_feedforward=HEAD['dim_feedforward'], enc_layers=0,
        dec_layers=HEAD['dec_layers'], pre_norm=False, deep_supervision=True,
        mask_dim=HEAD['mask_dim'], enforce_input_project=False)
    return nn.ModuleDict(dict(pixel_decoder=pixel_decoder, predictor=predictor))


@torch.no_grad()
def run_model(ref: SimpleNamespace, kind: str, images: torch.Tensor,
              gen: torch.Generator) -> dict:
    backbone = build_backbone(ref, kind)
    backbone.eval()   # not chained: the reference Swin's train() returns None
    seed_model(backbone, gen)
    features = backbone(images)
    head = build_head(ref, [features[k].shape[1] for k in LEVELS]).eval()
    seed_model(head, gen)
    non_object = fp16_round(0.2 * torch.randn(1, HEAD['embedding_dim'], generator=gen))
    mask_features, _ = head['pixel_decoder'].forward_features(features)
    out = head['predictor'](features['res5'], mask_features)
    layers = out['aux_outputs'] + [dict(pred_logits=out['pred_logits'],
                                        pred_masks=out['pred_masks'])]
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state.update({f'sem_seg_head.{k}': v for k, v in head.state_dict().items()})
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    state['clip_adapter.non_object_embedding'] = non_object.half()
    # entries of a released model that hold no weight the segmentor uses
    state['clip_adapter.pixel_mean'] = torch.tensor([122.7709, 116.7460, 104.0937]).view(
        1, 3, 1, 1)
    state['clip_adapter.pixel_std'] = torch.tensor([68.5005, 66.6322, 70.3232]).view(1, 3, 1, 1)
    state['criterion.empty_weight'] = torch.tensor([1.0] * NUM_TRAIN_CLASSES + [0.1])
    return dict(
        state_dict=state,
        features=[features[k] for k in LEVELS],
        mask_features=mask_features,
        class_embeddings=torch.stack([x['pred_logits'] for x in layers]),
        mask_logits=torch.stack([x['pred_masks'] for x in layers]))


def main(argv=None) -> None:
    parser = golden_parser(
        __doc__, ref_root_help='where the reference folders are (extracted with --mirror-root)',
        mirror_root_help='folder of the bare mirrors (<owner>+<name>/repo)',
        default_out='tests/golden/ovseg_detectron2.pt')
    args = parser.parse_args(argv)
    ovseg_root, d2_root = args.ref_root / 'ovseg', args.ref_root / 'detectron2-modeling'
    verified = (OVSEG_MODELING.prepare(ovseg_root, args.mirror_root)
                and D2_MODELING.prepare(d2_root, args.mirror_root))
    ref = import_reference(ovseg_root, d2_root)
    gen = torch.Generator().manual_seed(SEED)
    images = fp16_round(torch.randn(IMAGES, generator=gen))
    record = dict(reference=[OVSEG_MODELING.record(verified), D2_MODELING.record(verified)],
                  seed=SEED, images=images, head=HEAD, resnet=RESNET, swin=SWIN)
    for kind in ('r101c', 'swin'):
        record[kind] = run_model(ref, kind, images, gen)
        sizes = ', '.join(f'{k} {tuple(v.shape)} max {v.abs().max():.3g}' for k, v in (
            ('res5', record[kind]['features'][-1]),
            ('masks', record[kind]['mask_logits']),
            ('class', record[kind]['class_embeddings'])))
        print(f'{kind}: {len(record[kind]["state_dict"])} entries; {sizes}')
    write_record(record, args.out)


if __name__ == '__main__':
    main()
