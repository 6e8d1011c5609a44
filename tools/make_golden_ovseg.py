"""Golden OVSeg tensors from the reference implementation (facebookresearch/ov-seg).

The reference's ``open_vocab_seg`` and ``third_party/CLIP`` folders are extracted from a bare
mirror at a pinned commit, with ``detectron2/structures`` of detectron2 (whose ``BitMasks`` gives
the reference its mask boxes), and imported where they lie. detectron2's other names that the
reference imports (config decorator, registries, logger, distributed helpers, MaskFormer's base
class) are stubs in ``sys.modules`` for this process only; the reference's CLIP loader, which
downloads OpenAI weights, is replaced by a tiny reference ``CLIP`` built from its own
``clip/model.py``. Nothing of the reference is copied.

Every weight is drawn from one seeded generator and rounded to fp16 (stored so; the reference
loads OpenAI's fp16 weights, ``float()``-ed on the CPU), and the reference runs in fp32, eval:

* the CLIP image tower: a reference ``VisionTransformer`` with mask prompts, 224 px, patch 16,
  width 64 (one 64-wide head), 3 blocks, joint dim 64, ``mask_prompt_depth=3``, its
  ``mask_embedding`` drawn non-zero (the reference starts it at zero and learns it);
* ``MaskFormerClipAdapter``: mean fill, expand ratio 1, ``mask_thr`` 0.5 (the ViT-B/16 config),
  mask prompts in the forward, the text features of 5 class names given as seeded unit vectors
  (its text-feature buffer), a seeded no-object embedding;
* the class head: the reference's ``MLP(32 -> 64 -> 64)`` (two layers, OVSeg's shape at width 32);
* two 32x40 RGB images with 6 mask proposals each: blobs, a single pixel, masks touching the
  border, two separate blobs, a one-pixel-thin row and column, the whole image, and three empty
  ones (one at exactly the threshold: ``sigmoid(0) = 0.5`` is not ``> 0.5``).

Saved (what ``tests/test_ovseg_core.py`` needs): the fp16 weights under the reference's key names,
the inputs, and the reference's outputs in fp32: valid flags; masked crops (full crops are 600 KB
each, so their per-channel means and 512 seeded pixel positions of each) and region masks (packed
bits); the mask-prompted and the plain tower's embeddings of its crops; the adapter's CLIP logits
(no-object last); the head's logits; the semantic maps of ``semantic_inference`` with ensemble
weight 0.7, with weight 0 (the CLIP alone) and without the ensemble (the head alone); and the
errors of two reference failures (an image with no valid mask, one valid mask with mask prompts).

Usage::

    python tools/make_golden_ovseg.py --mirror-root /work/.mirror --ref-root /tmp/refs \\
        --out tests/golden/ovseg.pt
"""
from __future__ import annotations

import importlib
import math
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from _golden import (
    Reference,
    fp16_round,
    golden_parser,
    max_abs,
    reference_package,
    stub_module,
    write_record,
)
from torch import nn

OVSEG = Reference('facebookresearch/ov-seg', 'facebookresearch+ov-seg',
                  '36f49d496714998058d115ffb6172d9d84c59065',
                  ('open_vocab_seg', 'third_party/CLIP'))
DETECTRON2 = Reference('facebookresearch/detectron2', 'facebookresearch+detectron2',
                       '02b5c4e295e990042a714712c21dc79b731e8833', ('detectron2/structures',))
SEED = 2023
CLASS_NAMES = ('wall', 'sky', 'traffic light', 'chest of drawers', 'person')
VISION = dict(image_resolution=224, vision_patch_size=16, vision_width=64, vision_layers=3,
              embed_dim=64, mask_prompt_depth=3)
HEAD = dict(input_dim=32, hidden_dim=64, output_dim=64, num_layers=2)
MASK_THR = 0.5
WEIGHTS = (0.7, 0.0)
IMAGE_HW = (32, 40)
NUM_QUERIES = 6
NUM_PIXEL_SAMPLES = 512
MIN_VISIBLE = 1e-2


# ----------------------------------------------------------------------------- reference import

def _unused(*args, **kwargs):
    raise NotImplementedError('stubbed detectron2 helper; the golden forwards do not call it')


class _Registry:
    def register(self, *args, **kwargs):
        return lambda cls: cls


def import_reference(ovseg_root: Path, d2_root: Path) -> dict[str, types.ModuleType]:
    """The reference modules, with detectron2's real ``BitMasks`` and stubs for the rest."""
    base = type('StubBase', (nn.Module,), {'__init__': lambda self, *a, **k: nn.Module.__init__(
        self)})
    stub_module('fvcore.nn.weight_init', c2_xavier_fill=_unused)
    stub_module('detectron2.config', configurable=lambda init: init)
    stub_module('detectron2.data', MetadataCatalog=None)
    stub_module('detectron2.modeling', META_ARCH_REGISTRY=_Registry(), build_backbone=_unused,
                 build_sem_seg_head=_unused)
    stub_module('detectron2.modeling.backbone', Backbone=base)
    stub_module('detectron2.modeling.postprocessing', sem_seg_postprocess=_unused)
    stub_module('detectron2.layers', Conv2d=base)
    stub_module('detectron2.layers.roi_align', ROIAlign=base)
    stub_module('detectron2.utils.memory', retry_if_cuda_oom=lambda f: f)
    stub_module('detectron2.utils.logger', log_first_n=_unused)
    stub_module('detectron2.utils.comm', get_local_rank=lambda: 0, synchronize=lambda: None)
    reference_package('detectron2.structures', d2_root / 'detectron2' / 'structures')
    masks = importlib.import_module('detectron2.structures.masks')
    stub_module('detectron2.structures', BitMasks=masks.BitMasks, ImageList=None)

    sys.path.insert(0, str(ovseg_root / 'third_party' / 'CLIP'))
    clip = importlib.import_module('clip')
    clip_model = importlib.import_module('clip.model')
    reference_package('open_vocab_seg', ovseg_root / 'open_vocab_seg')
    stub_module('open_vocab_seg.mask_former_model', MaskFormer=base)
    reference_package('open_vocab_seg.utils', ovseg_root / 'open_vocab_seg' / 'utils')
    reference_package('open_vocab_seg.modeling', ovseg_root / 'open_vocab_seg' / 'modeling')
    reference_package('open_vocab_seg.modeling.transformer',
             ovseg_root / 'open_vocab_seg' / 'modeling' / 'transformer')
    modules = {'clip': clip, 'clip.model': clip_model, 'd2.masks': masks}
    for name in ('modeling.clip_adapter', 'modeling.clip_adapter.adapter',
                 'modeling.clip_adapter.text_template',
                 'modeling.transformer.transformer_predictor', 'ovseg_model'):
        modules[name] = importlib.import_module(f'open_vocab_seg.{name}')
    for key, module in modules.items():
        root = d2_root if key.startswith('d2') else ovseg_root
        assert module.__file__.startswith(str(root)), (key, module.__file__)
    return modules


# ----------------------------------------------------------------------------- seeded inputs

def _value(name: str, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Seeded values of CLIP-like magnitudes for one parameter."""
    randn = torch.randn(t.shape, generator=gen)
    leaf = name.rsplit('.', 1)[-1]
    if t.ndim == 1 and ('ln' in name):
        return 1.0 + 0.1 * randn if leaf == 'weight' else 0.05 * randn
    if leaf in ('positional_embedding', 'mask_embedding'):
        return 0.5 * randn
    if leaf == 'class_embedding':
        return randn
    if leaf == 'bias' or name.endswith('in_proj_bias'):
        return 0.02 * randn
    if leaf == 'proj':
        return randn * t.shape[0] ** -0.5
    return randn * math.prod(t.shape[1:]) ** -0.5


def seed_module(module: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    state = {k: fp16_round(_value(k, v, gen)) for k, v in module.state_dict().items()}
    module.load_state_dict(state, strict=True)
    return {k: v.half() for k, v in state.items()}


def make_mask_logits(gen: torch.Generator) -> torch.Tensor:
    """Mask logits of 2 images x 6 proposals covering the cases listed in the module doc."""
    h, w = IMAGE_HW
    smooth = F.interpolate(4 * torch.randn(2, NUM_QUERIES, 4, 5, generator=gen), size=(h, w),
                           mode='bilinear', align_corners=False)
    logits = smooth.clone()
    outside = -3.0 - torch.rand(h, w, generator=gen)
    inside = 3.0 + torch.rand(h, w, generator=gen)

    def region(rows: slice, cols: slice) -> torch.Tensor:
        mask = torch.zeros(h, w, dtype=torch.bool)
        mask[rows, cols] = True
        return torch.where(mask, inside, outside)

    logits[0, 1] = 0.0                                             # sigmoid 0.5: not > 0.5
    logits[0, 2] = region(slice(5, 6), slice(7, 8))                # one pixel
    logits[0, 3] = region(slice(20, h), slice(25, w))              # bottom-right corner
    two = region(slice(2, 6), slice(1, 4))
    two[24:30, 30:37] = inside[24:30, 30:37]                       # a second blob
    logits[0, 4] = two
    logits[0, 5] = outside                                         # empty
    logits[1, 0] = region(slice(10, 11), slice(3, 31))             # one-pixel-thin row
    logits[1, 1] = inside                                          # the whole image
    logits[1, 3] = region(slice(0, h), slice(0, 1))                # first column
    logits[1, 4] = outside                                         # empty
    return fp16_round(logits)


# ----------------------------------------------------------------------------- reference runs

def _error(fn) -> str:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - any failure of the reference is recorded
        return f'{type(err).__name__}: {err}'
    return ''


def build_golden(ref: dict, gen: torch.Generator) -> tuple[dict, dict]:
    """The reference's tensors, and what densevl needs to rebuild its side."""
    clip_model = ref['clip.model'].CLIP(
        VISION['embed_dim'], VISION['image_resolution'], VISION['vision_layers'],
        VISION['vision_width'], VISION['vision_patch_size'], VISION['mask_prompt_depth'],
        context_length=8, vocab_size=64, transformer_width=64, transformer_heads=1,
        transformer_layers=1).eval()
    visual_state = seed_module(clip_model.visual, gen)
    adapter_module = ref['modeling.clip_adapter.adapter']
    adapter_module.build_clip_model = lambda name, depth: clip_model
    templates = ref['modeling.clip_adapter.text_template']
    adapter = adapter_module.MaskFormerClipAdapter(
        'tiny', templates.VILDPromptExtractor(), mask_fill='mean', mask_expand_ratio=1.0,
        mask_thr=MASK_THR, mask_matting=False, region_resized=True,
        mask_prompt_depth=VISION['mask_prompt_depth'], mask_prompt_fwd=True).eval()
    text = F.normalize(fp16_round(torch.randn(len(CLASS_NAMES), 64, generator=gen)), dim=-1)
    adapter.text_feature_buffer.update(zip(CLASS_NAMES, text))
    non_object = fp16_round(0.125 * torch.randn(1, 64, generator=gen))
    adapter.non_object_embedding.data.copy_(non_object)
    mlp = ref['modeling.transformer.transformer_predictor'].MLP(**HEAD).eval()
    mlp_state = seed_module(mlp, gen)

    images = torch.randint(0, 256, (2, 3, *IMAGE_HW), generator=gen, dtype=torch.uint8)
    mask_logits = make_mask_logits(gen)
    queries = fp16_round(torch.randn(2, NUM_QUERIES, HEAD['input_dim'], generator=gen))
    names = list(CLASS_NAMES)
    ovseg = ref['ovseg_model'].OVSeg

    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        text_features = adapter.get_text_features(names)               # (K + 1, C)
        head_logits = adapter.get_sim_logits(text_features,
                                             adapter.normalize_feature(mlp(queries)))
        crops, region_masks, valid, mpt, plain, clip_logits = [], [], [], [], [], []
        semseg = {w: [] for w in (*WEIGHTS, 'head_only')}
        for b in range(images.shape[0]):
            image, mask_pred = images[b], mask_logits[b].sigmoid()
            (regions, _), masks, flags = adapter._preprocess_image(image, mask_pred,
                                                                    normalize=True)
            crops.append(regions)
            region_masks.append(masks)
            valid.append(flags)
            mpt.append(clip_model.visual(regions, masks))
            plain.append(clip_model.visual(regions))
            logits, _, flags_again = adapter(image, names, mask_pred, normalize=True)
            assert torch.equal(flags, flags_again)
            clip_logits.append(logits)
            for w in semseg:
                ns = SimpleNamespace(clip_adapter=adapter, clip_ensemble=w != 'head_only',
                                     clip_ensemble_weight=0.0 if w == 'head_only' else w,
                                     device=torch.device('cpu'))
                r, _ = ovseg.semantic_inference(ns, head_logits[b], mask_logits[b], image, names)
                semseg[w].append(r)
        out['crops'] = torch.cat(crops)
        out['region_masks'] = torch.cat(region_masks)
        out['valid'] = torch.stack(valid)
        out['mpt_embeddings'] = torch.cat(mpt)
        out['plain_embeddings'] = torch.cat(plain)
        out['clip_logits'] = torch.cat(clip_logits)
        out['head_logits'] = head_logits
        for w, maps in semseg.items():
            out[f'semseg_{w}'] = torch.stack(maps)
        errors = {
            'no_valid_mask': _error(lambda: adapter(images[0], names,
                                                    torch.zeros(2, *IMAGE_HW))),
            'one_crop_mask_prompts': _error(lambda: clip_model.visual(crops[0][:1],
                                                                      region_masks[0][:1])),
        }
    inputs = dict(images=images, mask_logits=mask_logits.half(), queries=queries.half(),
                  text=text, non_object_embedding=non_object.half())
    weights = dict(visual=visual_state, class_embed=mlp_state)
    checks = dict(vild_templates=tuple(templates.VILD_PROMPT), errors=errors)
    return dict(inputs=inputs, weights=weights, outputs=out, **checks), {'text': text}


# ----------------------------------------------------------------------------- densevl's side

def densevl_outputs(golden: dict) -> dict[str, torch.Tensor]:
    """densevl's modules on the same weights and inputs (what the test checks, run once here)."""
    from open_clip.transformer import QuickGELU, VisionTransformer

    from densevl.models import ovseg
    from densevl.models.text import Vocabulary

    w, inputs = golden['weights'], golden['inputs']
    state = {k: v.float() for k, v in w['visual'].items()}
    tower = VisionTransformer(image_size=224, patch_size=16, width=64, layers=3, heads=1,
                              mlp_ratio=4.0, output_dim=64, act_layer=QuickGELU).eval()
    tower.load_state_dict({k: v for k, v in state.items() if k != 'mask_embedding'})
    mpt = ovseg.MaskPromptCLIP(tower, depth=3).eval()
    mpt.mask_embedding.data.copy_(state['mask_embedding'])
    head = ovseg.CLIPSpaceClassHead(32, 64, hidden_dim=64).eval()
    head.load_state_dict({**{k: v.float() for k, v in w['class_embed'].items()},
                          'non_object_embedding': inputs['non_object_embedding'].float()})
    vocab = Vocabulary.parse(list(CLASS_NAMES)).with_embeddings(inputs['text'])
    images, logits = inputs['images'].float(), inputs['mask_logits'].float()
    with torch.no_grad():
        crops = ovseg.masked_crops(images, logits, MASK_THR)
        embeddings, _ = ovseg.encode_masked_crops(mpt, images, logits, MASK_THR, chunk_size=3)
        crop_logits = ovseg.cosine_logits(embeddings, ovseg.text_matrix(vocab, embeddings))
        head_logits = head(inputs['queries'].float(), vocab)
        out = dict(crops=crops.crops, region_masks=crops.region_masks, valid=crops.valid,
                   mpt_embeddings=mpt(crops.crops, crops.region_masks),
                   plain_embeddings=tower(crops.crops), clip_logits=crop_logits,
                   head_logits=head_logits)
        for weight in WEIGHTS:
            out[f'semseg_{weight}'] = ovseg.semantic_inference(
                head_logits, logits, crop_logits, crops.valid, clip_ensemble_weight=weight)
        out['semseg_head_only'] = ovseg.semantic_inference(head_logits, logits, None, None,
                                                           clip_ensemble_weight=0.7)
    return out


def compact(out: dict[str, torch.Tensor], gen: torch.Generator) -> dict:
    """The outputs as stored: crops as means and sampled pixels, region masks as bits."""
    crops = out.pop('crops')
    masks = out.pop('region_masks')
    pixels = torch.randperm(crops.shape[-2] * crops.shape[-1], generator=gen)[
        :NUM_PIXEL_SAMPLES].clone()
    packed = np.packbits(masks.flatten(1).bool().numpy(), axis=1)
    out['crop_means'] = crops.double().mean(dim=(2, 3))
    out['crop_pixel_index'] = pixels
    out['crop_pixels'] = crops.flatten(2)[:, :, pixels]
    out['region_mask_bits'] = torch.from_numpy(packed)
    out['clip_logits'] = out['clip_logits'][:, :-1].clone()  # no-object: dropped by the softmax
    return out


def main() -> None:
    args = golden_parser(
        __doc__,
        ref_root_help='the reference sources go to (or are read from) REF_ROOT/ovseg and '
                      'REF_ROOT/detectron2',
        mirror_root_help='bare mirrors (<owner>+<name>/repo) to extract the pinned commits from',
        default_out='tests/golden/ovseg.pt').parse_args()
    torch.set_num_threads(1)
    ovseg_root = (args.ref_root / 'ovseg').resolve()
    d2_root = (args.ref_root / 'detectron2').resolve()
    verified = all([OVSEG.prepare(ovseg_root, args.mirror_root),
                    DETECTRON2.prepare(d2_root, args.mirror_root)])
    gen = torch.Generator().manual_seed(SEED)
    golden, _ = build_golden(import_reference(ovseg_root, d2_root), gen)
    ours = densevl_outputs(golden)
    ref_full = dict(golden['outputs'])
    ref_full['clip_logits'] = ref_full['clip_logits'][:, :-1]
    print('max |densevl - reference| (full tensors):')
    for key, value in ref_full.items():
        diff = (ours[key].float() - value.float()).abs().max().item() if value.numel() else 0.0
        print(f'  {key:18s} {tuple(value.shape)!s:20s} {diff:.3g}')
    golden['outputs'] = compact(golden['outputs'], gen)
    out = golden['outputs']
    golden['visible'] = {
        'mask prompts change the embeddings': max_abs(out['mpt_embeddings'] -
                                                      out['plain_embeddings']),
        'the ensemble changes the map': max_abs(out['semseg_0.7'] - out['semseg_head_only']),
        'the CLIP alone differs from the ensemble': max_abs(out['semseg_0.0'] -
                                                            out['semseg_0.7']),
    }
    for what, value in golden['visible'].items():
        if value < MIN_VISIBLE:
            raise RuntimeError(f'{what} too little to be tested: {value:.3g}')
    golden.update({
        'format_version': 1, 'seed': SEED, 'torch_version': str(torch.__version__),
        'reference': {'repo': OVSEG.repo, 'commit': OVSEG.commit, 'detectron2': DETECTRON2.repo,
                      'detectron2_commit': DETECTRON2.commit, 'verified': verified},
        'config': {'vision': VISION, 'head': HEAD, 'mask_thr': MASK_THR, 'weights': WEIGHTS,
                   'class_names': CLASS_NAMES},
    })
    write_record(golden, args.out)
    for what, message in golden['errors'].items():
        print(f'reference error, {what}: {message}')


if __name__ == '__main__':
    main()
