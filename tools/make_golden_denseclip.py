"""Golden DenseCLIP tensors from the reference implementation (the DenseCLIP reference code).

The reference's ``segmentation/denseclip`` and ``detection/denseclip`` folders are extracted from
a bare mirror at a pinned commit and imported where they lie, as two packages. They were written
for mmcv 1.x / mmseg 0.x / mmdet 2.x; the names they import from those (registries, base
classes, small helpers) are replaced by stubs in ``sys.modules`` for this process only (the real
mmseg 1.x cannot take them: it registers its own ``CLIPTextEncoder``), and timm 1.x gets back
the ``timm.models.layers.drop`` alias the reference imports. Nothing of the reference is copied.

Every module is built tiny, every parameter and buffer filled from one seeded generator and
rounded to fp16 (stored so), and the reference forwards run in fp32, eval mode:

* ``CLIPResNetWithAttention`` (segmentation: pool positions resized; detection: cropped), layers
  (1, 1, 1, 1), width 4 (res5 128 channels), 128-px pool grid (4x4), joint dim 64. The
  reference hard-codes 32 pool heads (right for RN50/RN101's 2048 channels); set to 128 / 64 = 2,
  the head width of CLIP, as open_clip builds it.
* ``CLIPVisionTransformer``: patch 16, width 64 (one 64-wide head), 4 blocks, pyramid from blocks
  0-3, 64-px training grid (4x4) run on 64x48 images (4x3 grid, so the bilinear resize runs),
  drop-path 0.1 (inactive in eval), joint dim 64.
* ``CLIPTextContextEncoder``: width 64, 1 head, 2 layers, context length 13; 5 class names
  tokenised by the reference into 5 tokens; 8 context vectors.
* ``ContextDecoder``: width 64, 2 heads (so that the head split is exercised), 2 layers.
* ``gamma`` ~ 0.5 instead of 1e-4, so that the decoder's update is visible in the refined text.

Saved (one ``torch.save`` file, what ``tests/test_denseclip_core.py`` needs): the fp16 weights
under the reference's key names (the token embedding only at the rows the names use), the fp16
inputs, the reference's tokens, and its outputs in fp32: the attention pool (both variants), the
text encoder at ``[EOT]``, the decoder's update, refined text, score maps and fused neck inputs of
segmentation (ResNet, ViT) and detection (ResNet; its levels 0-2 are the segmentation ResNet's,
so only res5 is stored), and the detection auxiliary targets and loss.

Usage::

    python tools/make_golden_denseclip.py --mirror-root /work/.mirror --ref-root /tmp/refs \\
        --out tests/golden/denseclip.pt
"""
from __future__ import annotations

import importlib
import math
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch
from _golden import Reference, fp16_round, golden_parser, max_abs, stub_module, write_record
from torch import nn

FOLDERS = {'seg': 'segmentation/denseclip', 'det': 'detection/denseclip'}
REFERENCE = Reference('the DenseCLIP reference code', 'raoyongming+DenseCLIP',
                      '5eda47f01a1011286c98425554cc96e7df6eb759', tuple(FOLDERS.values()))
SEED = 2022
CLASS_NAMES = ('wall', 'sky', 'traffic light', 'chest of drawers', 'person')
NAME_LENGTH = 5
TEXT_CONTEXT = 13
TAU = 0.07
RN = dict(layers=[1, 1, 1, 1], output_dim=64, input_resolution=128, width=4)
VIT = dict(input_resolution=64, patch_size=16, width=64, layers=4, heads=1, output_dim=64,
           drop_path_rate=0.1, out_indices=[0, 1, 2, 3], get_embeddings=True)
TEXT = dict(context_length=TEXT_CONTEXT, vocab_size=49408, transformer_width=64,
            transformer_heads=1, transformer_layers=2, embed_dim=64)
DECODER = dict(transformer_width=64, transformer_heads=2, transformer_layers=2, visual_dim=64,
               dropout=0.1)
INPUT_SHAPES = {'rn': (2, 3, 96, 64), 'vit': (2, 3, 64, 48)}
# per image of the ResNet batch: (x1, y1, x2, y2) in pixels and a label; covers fractional
# corners, boxes past the right/bottom edge, a one-cell-wide box, a box inside one cell (draws
# nothing), and overlaps within and across classes
BOXES = (
    ([[3.5, 5.2, 40.9, 60.1], [30.0, 10.0, 64.0, 96.0], [10.0, 10.0, 13.0, 40.0],
      [20.0, 20.0, 22.0, 22.0], [0.0, 0.0, 20.0, 20.0]], [2, 0, 1, 4, 2]),
    ([[8.0, 48.0, 56.0, 92.0]], [3]),
)
MIN_VISIBLE = 1e-2


# ----------------------------------------------------------------------------- reference import

class _Registry:
    def register_module(self, *args, **kwargs):
        return lambda cls: cls


def _unused(*args, **kwargs):
    raise NotImplementedError('stubbed mm helper; the golden forwards do not call it')


def install_stubs() -> None:
    """The mmcv 1.x / mmseg 0.x / mmdet 2.x names the reference imports, and timm's old alias."""
    import timm.layers.drop
    import timm.models.layers
    if not hasattr(timm.models.layers, 'drop'):
        timm.models.layers.drop = timm.layers.drop
    registry = _Registry()
    base = type('StubBase', (nn.Module,), {'__init__': lambda self, *a, **k: nn.Module.__init__(
        self)})
    stub_module('mmcv.cnn', ConvModule=base)
    stub_module('mmseg.core', add_prefix=_unused)
    stub_module('mmseg.ops', resize=_unused, Upsample=base)
    stub_module('mmseg.models', builder=None)
    stub_module('mmseg.models.builder', BACKBONES=registry, SEGMENTORS=registry, HEADS=registry,
                 build_backbone=_unused, build_head=_unused, build_neck=_unused)
    sys.modules['mmseg.models'].builder = sys.modules['mmseg.models.builder']
    stub_module('mmseg.models.backbones', ResNet=base, VisionTransformer=base)
    stub_module('mmseg.models.segmentors.base', BaseSegmentor=base)
    stub_module('mmseg.models.decode_heads.decode_head', BaseDecodeHead=base)
    stub_module('mmdet.core', bbox2result=_unused)
    stub_module('mmdet.models.builder', BACKBONES=registry, DETECTORS=registry,
                 build_backbone=_unused, build_head=_unused, build_neck=_unused)
    stub_module('mmdet.models.detectors.single_stage', SingleStageDetector=base)
    stub_module('mmdet.models.detectors.two_stage', TwoStageDetector=base)
    stub_module('mmdet.utils', get_root_logger=_unused)


def import_reference(ref_root: Path) -> dict[str, types.ModuleType]:
    """The reference files as modules of two packages, without running their ``__init__``."""
    install_stubs()
    modules = {}
    for key, folder in FOLDERS.items():
        package = f'denseclip_reference_{key}'
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(ref_root / folder)]
        sys.modules[package] = pkg
        for name in ('untils', 'models', 'denseclip'):
            module = importlib.import_module(f'{package}.{name}')
            assert module.__file__.startswith(str(ref_root)), module.__file__
            modules[f'{key}.{name}'] = module
    return modules


# ----------------------------------------------------------------------------- seeded weights

def _value(name: str, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Seeded values of CLIP-like magnitudes for one parameter or buffer."""
    if t.dtype == torch.long:                   # BatchNorm's num_batches_tracked
        return t.clone()
    randn = torch.randn(t.shape, generator=gen)
    leaf = name.rsplit('.', 1)[-1]
    if leaf == 'running_mean':
        return 0.1 * randn
    if leaf == 'running_var':
        return 0.5 + torch.rand(t.shape, generator=gen)
    if t.ndim == 1 and ('ln' in name or 'norm' in name or 'bn' in name or 'fpn' in name
                        or '_proj.0' in name or '_proj.2' in name or 'downsample.1' in name):
        return 1.0 + 0.1 * randn if leaf == 'weight' else 0.05 * randn
    if 'positional_embedding' in name:
        return 0.5 * randn
    if leaf == 'class_embedding':
        return randn                            # large, so that doubling it is visible
    if leaf == 'bias' or name.endswith('in_proj_bias'):
        return 0.02 * randn
    if leaf in ('proj', 'text_projection'):     # (in, out) matrices
        return randn * t.shape[0] ** -0.5
    if 'fpn' in name and t.ndim == 4:           # ConvTranspose2d: (in, out, k, k)
        return randn * (t.shape[0] * t.shape[2] * t.shape[3] // 4) ** -0.5
    return randn * math.prod(t.shape[1:]) ** -0.5


def seed_module(module: nn.Module, gen: torch.Generator, skip: tuple[str, ...] = ()) -> None:
    state = {k: fp16_round(_value(k, v, gen)) if v.dtype != torch.long else v
             for k, v in module.state_dict().items() if k not in skip}
    module.load_state_dict(state, strict=not skip)


def _state(module: nn.Module, skip: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v.clone())
            for k, v in module.state_dict().items() if k not in skip}


# ----------------------------------------------------------------------------- reference runs

def build_golden(ref_root: Path, verified: bool) -> dict:
    ref = import_reference(ref_root)
    seg_models, det_models = ref['seg.models'], ref['det.models']
    seg_cls, det_cls = ref['seg.denseclip'].DenseCLIP, ref['det.denseclip'].DenseCLIP_RetinaNet
    tokenize = ref['seg.untils'].tokenize
    gen = torch.Generator().manual_seed(SEED)

    rn_seg = seg_models.CLIPResNetWithAttention(**RN).eval()
    heads = rn_seg.attnpool.embed_dim // 64
    rn_seg.attnpool.num_heads = heads
    seed_module(rn_seg, gen)
    rn_det = det_models.CLIPResNetWithAttention(**RN).eval()
    rn_det.attnpool.num_heads = heads
    rn_det.load_state_dict(rn_seg.state_dict(), strict=True)

    vit = seg_models.CLIPVisionTransformer(**VIT).eval()
    seed_module(vit, gen)

    texts = torch.cat([tokenize(c, context_length=NAME_LENGTH) for c in CLASS_NAMES])
    try:
        tokenize('a photo of the giant panda bear', context_length=NAME_LENGTH)
        long_name_error = ''
    except RuntimeError as err:
        long_name_error = str(err)
    text_encoder = seg_models.CLIPTextContextEncoder(**TEXT).eval()
    used_rows = torch.unique(texts)
    with torch.no_grad():
        text_encoder.token_embedding.weight.zero_()
    seed_module(text_encoder, gen, skip=('token_embedding.weight',))
    with torch.no_grad():
        rows = fp16_round(0.5 * torch.randn(len(used_rows), TEXT['transformer_width'],
                                            generator=gen))
        text_encoder.token_embedding.weight[used_rows] = rows
    contexts = fp16_round(torch.randn(1, TEXT_CONTEXT - NAME_LENGTH, TEXT['transformer_width'],
                                      generator=gen).clamp(-2, 2))
    decoder = seg_models.ContextDecoder(**DECODER).eval()
    seed_module(decoder, gen)
    gamma = fp16_round(0.5 + 0.1 * torch.randn(RN['output_dim'], generator=gen))

    inputs = {k: fp16_round(torch.randn(s, generator=gen)) for k, s in INPUT_SHAPES.items()}
    boxes = [torch.tensor(b) for b, _ in BOXES]
    labels = [torch.tensor(lab) for _, lab in BOXES]

    def namespace(**kw) -> SimpleNamespace:
        return SimpleNamespace(text_encoder=text_encoder, context_decoder=decoder,
                               contexts=nn.Parameter(contexts), gamma=nn.Parameter(gamma),
                               texts=texts, class_names=list(CLASS_NAMES), tau=TAU, **kw)

    out: dict[str, torch.Tensor | list] = {}
    with torch.no_grad():
        # segmentation, ResNet (the score map fused into res5)
        feats = rn_seg(inputs['rn'])
        global_feat, dense = feats[4]
        out['rn_pool_global'], out['rn_pool_dense'] = global_feat, dense
        out['text_eot'] = text_encoder(texts, contexts)
        b, c, h, w = dense.shape
        memory = torch.cat([global_feat[:, :, None], dense.reshape(b, c, h * w)], 2)
        memory = memory.permute(0, 2, 1)
        out['rn_decoder_delta'] = decoder(out['text_eot'].expand(b, -1, -1), memory)
        ns = namespace(context_feature='attention', score_concat_index=3)
        text, fused, score_map = seg_cls.after_extract_feat(ns, feats)
        out['rn_text'], out['rn_score_map'], out['rn_fused'] = text, score_map, list(fused)

        # segmentation, ViT (the score map fused into the stride-16 level)
        feats = vit(inputs['vit'])
        out['vit_global'], out['vit_dense'] = feats[4]
        ns = namespace(context_feature='attention', score_concat_index=2)
        text, fused, score_map = seg_cls.after_extract_feat(ns, feats)
        out['vit_text'], out['vit_score_map'], out['vit_fused'] = text, score_map, list(fused)

        # detection, ResNet: cropped pool positions, score / tau into res5, auxiliary loss
        det = namespace(backbone=rn_det, with_neck=False)
        det.compute_text_features = lambda x, dummy=False: det_cls.compute_text_features(
            det, x, dummy)
        det.compute_score_maps = lambda x, t: det_cls.compute_score_maps(det, x, t)
        det.build_seg_target = lambda *a: det_cls.build_seg_target(det, *a)
        feats = rn_det(inputs['rn'])
        out['det_pool_global'], out['det_pool_dense'] = feats[4]
        text = det_cls.compute_text_features(det, feats)
        score_maps = det_cls.compute_score_maps(det, feats, text)
        out['det_text'], out['det_score_map'] = text, score_maps[3]
        out['det_score_map_stride4'] = score_maps[0]
        fused, aux_score = det_cls.extract_feat(det, inputs['rn'], use_seg_loss=True)
        assert torch.equal(aux_score, score_maps[0])
        # levels 0-2 are the backbone's stages, the same as the segmentation ResNet's
        for level, seg_level in zip(fused[:3], out['rn_fused'][:3]):
            assert torch.equal(level, seg_level)
        out['det_fused_res5'] = fused[3]
        target, mask = det_cls.build_seg_target(det, inputs['rn'], None, boxes, labels)
        out['det_target'], out['det_inside'] = target.bool(), mask[:, :1].bool()
        out['det_loss'] = det_cls.compute_seg_loss(det, inputs['rn'], score_maps[0], None,
                                                   boxes, labels)

    visible = {
        'gamma * delta in the refined text': max_abs(out['rn_text'] - out['text_eot']),
        'cropped vs resized pool positions': max_abs(out['det_pool_dense'] -
                                                     out['rn_pool_dense']),
        'score-map channels': max_abs(out['rn_score_map']),
        'box targets drawn': float(out['det_target'].sum()),
    }
    for what, value in visible.items():
        if value < MIN_VISIBLE:
            raise RuntimeError(f'{what} is too small to be tested: {value:.3g}')

    text_state = _state(text_encoder, skip=('token_embedding.weight',))
    return {
        'format_version': 1,
        'reference': REFERENCE.record(verified),
        'seed': SEED,
        'config': {'rn': RN, 'rn_pool_heads': heads, 'vit': VIT, 'text': TEXT,
                   'decoder': DECODER, 'class_names': CLASS_NAMES, 'name_length': NAME_LENGTH,
                   'tau': TAU},
        'weights': {
            'rn': _state(rn_seg), 'vit': _state(vit), 'text': text_state,
            'token_rows': used_rows, 'token_embedding_rows': rows.half(),
            'decoder': _state(decoder), 'contexts': contexts.half(), 'gamma': gamma.half(),
        },
        'inputs': {k: v.half() for k, v in inputs.items()},
        'boxes': boxes, 'labels': labels,
        'tokens': texts,
        'long_name_error': long_name_error,
        'outputs': {k: (v.float() if v.is_floating_point() else v) if torch.is_tensor(v)
                    else [t.float() for t in v] for k, v in out.items()},
        'visible': visible,
        'torch_version': str(torch.__version__),
    }


def main() -> None:
    args = golden_parser(
        __doc__,
        ref_root_help='the reference source goes to (or is read from) REF_ROOT/denseclip',
        mirror_root_help='bare mirrors (<owner>+<name>/repo) to extract the pinned commit from',
        default_out='tests/golden/denseclip.pt').parse_args()
    torch.set_num_threads(1)
    ref_root = (args.ref_root / 'denseclip').resolve()
    verified = REFERENCE.prepare(ref_root, args.mirror_root)
    record = build_golden(ref_root, verified)
    write_record(record, args.out)


if __name__ == '__main__':
    main()
