"""Golden CLIP heat maps and GroundVLP fusion scores from the reference implementations.

ReCLIP's ``executor.py`` (allenai/reclip) runs its ``ClipGradcamExecutor`` — Grad-CAM on
``layer4`` of a ModifiedResNet, and gradient-weighted last-block attention of a ViT through its
``clip_mm_explain`` — on seeded tiny OpenAI-layout CLIPs; GroundVLP's ``ALBEF.cal_score``
(om-ai-lab/GroundVLP ``models/albef/engine.py``) picks a box from those heat maps. Both are
extracted from bare mirrors at pinned commits and imported where they lie. OpenAI's ``clip``
package is the copy GroundVLP vendors (``Detic/CLIP-main/clip/model.py``); ``clip.load`` and
``clip.tokenize`` are stubs that return the tiny model and fixed token ids, and the references'
other imports (spaCy, transformers, ruamel.yaml, ALBEF, Detic, stanza, OpenCV drawing) are stubs
for this process only. Nothing of the references is copied.

Weights are drawn from one seeded generator and rounded to fp16 (stored so); everything runs in
fp32, eval, with CLIP's trained temperature (``logit_scale = log 100``):

* ``rn``: OpenAI ``ModifiedResNet`` layers (1, 1, 1, 1), width 8 (attention pool of 256 channels,
  four 64-wide heads), 128 px (a 4x4 ``layer4`` grid), joint dim 64;
* ``vit``: ``clip_mm_explain`` ViT, 64 px, patch 16, width 128 (two 64-wide heads), 2 blocks;
* both with a one-block text tower of width 64, context 8, vocabulary 64; three captions, each
  given seeded token ids ending in the EOT (largest) id;
* one 50x70 image (the maps are upsampled to it), its prepared 3xSxS tensor seeded;
* six boxes in ``(x, y, w, h)`` with quarter-pixel coordinates, and detector scores.

Saved: weights, dims, the image tensor, token ids; per tower and caption the executor's heat map
(``return_gradcam=True``) and its box scores with ``gradcam_alpha=0.5`` (``Σ H / sqrt(area)``,
GroundVLP's score before ``d_i``); per caption GroundVLP's chosen box with the detector scores and
without (fallback proposals).

Usage::

    python tools/make_golden_groundvlp.py --mirror-root /work/.mirror --ref-root /tmp/refs \\
        --out tests/golden/groundvlp.pt
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from _golden import (
    Reference,
    fp16_round,
    golden_parser,
    load_module_file,
    max_abs,
    reference_package,
    stub_module,
    write_record,
)
from make_golden_ovseg import _value
from PIL import Image
from torch import nn

RECLIP = Reference('allenai/reclip', 'allenai+reclip', '3ed4f47d37b61f8a68a839c3b86dbd2fbf252af5',
                   ('executor.py', 'interpreter.py', 'pytorch_grad_cam', 'clip_mm_explain'))
GROUNDVLP = Reference('om-ai-lab/GroundVLP', 'om-ai-lab+GroundVLP',
                      'f13e9d24947008842c042a2702fbda52c491c0af',
                      ('models', 'utils', 'Detic/CLIP-main/clip'))
SEED = 2024
CAPTIONS = ('man in red shirt', 'second banana from right', 'dog')
IMAGE_HW = (50, 70)
TEXT = dict(context_length=8, vocab_size=64, transformer_width=64, transformer_heads=1,
            transformer_layers=1)
TOWERS = {
    'rn': dict(embed_dim=64, image_resolution=128, vision_layers=(1, 1, 1, 1), vision_width=8,
               vision_patch_size=None),
    'vit': dict(embed_dim=64, image_resolution=64, vision_layers=2, vision_width=128,
                vision_patch_size=16),
}
BOXES_XYWH = ((0.0, 0.0, 70.0, 50.0), (3.25, 4.5, 20.5, 30.75), (40.0, 10.0, 29.75, 39.5),
              (10.5, 20.25, 0.5, 10.0), (25.0, 0.0, 15.25, 12.5), (55.75, 33.5, 14.0, 16.25))
DETECTOR_SCORES = (0.31, 0.92, 0.55, 0.99, 0.47, 0.8)


# ----------------------------------------------------------------------------- reference import

def _unused(*args, **kwargs):
    raise NotImplementedError('stubbed reference dependency; the golden runs do not call it')


def import_reference(reclip_root: Path, groundvlp_root: Path) -> dict[str, types.ModuleType]:
    """ReCLIP's executor and ``clip_mm_explain.model``, GroundVLP's engine and OpenAI's
    ``clip/model.py``, with stubs for what the golden runs do not use."""
    openai_model = load_module_file('openai_clip_model',
                              groundvlp_root / 'Detic' / 'CLIP-main' / 'clip' / 'model.py')
    stub_module('clip', load=_unused, tokenize=_unused)
    for name in ('spacy', 'ruamel', 'ruamel.yaml', 'albef', 'albef.model', 'albef.utils',
                 'albef.vit'):
        stub_module(name)
    stub_module('transformers', BertTokenizer=None, RobertaTokenizerFast=None)
    stub_module('albef.model', ALBEF=None)
    stub_module('albef.vit', interpolate_pos_embed=_unused)
    reference_package('clip_mm_explain', reclip_root / 'clip_mm_explain')
    if not hasattr(F, '_pad'):  # the private name its attention (torch 1.x) reads; now F.pad
        F._pad = F.pad
    explain = importlib.import_module('clip_mm_explain.model')
    sys.path.insert(0, str(reclip_root))
    executor = importlib.import_module('executor')

    stub_module('Detic.predict', get_bbox_by_detic_rec=_unused,
                get_bbox_by_detic_rec_general=_unused)
    stub_module('Detic.draw_box', draw_boxes_cv2=_unused)
    reference_package('utils', groundvlp_root / 'utils')
    stub_module('utils.stanza_utils', find_main_words=_unused, find_agent_by_stanza=_unused)
    stub_module('utils.map_to_coco_label', map_to_coco_label=_unused)
    reference_package('models', groundvlp_root / 'models')
    reference_package('models.albef', groundvlp_root / 'models' / 'albef')
    stub_module('models.albef.VL_Transformer_ITM', VL_Transformer_ITM=None, transform=None,
                getAttMap=_unused)
    stub_module('models.albef.models.tokenization_bert', BertTokenizer=None)
    engine = importlib.import_module('models.albef.engine')
    modules = {'executor': executor, 'clip_mm_explain.model': explain, 'engine': engine,
               'openai_clip_model': openai_model}
    for key, module in modules.items():
        root = reclip_root if key in ('executor', 'clip_mm_explain.model') else groundvlp_root
        assert module.__file__.startswith(str(root)), (key, module.__file__)
    return modules


# ----------------------------------------------------------------------------- seeded inputs

def seed_clip(model: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Seeded fp16-rounded weights (batch-norm statistics kept positive), loaded into ``model``;
    returns them as fp16."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith('num_batches_tracked'):
            continue
        if key.endswith('running_var'):
            drawn = 1.0 + 0.2 * torch.rand(value.shape, generator=gen)
        elif key.endswith('running_mean'):
            drawn = 0.1 * torch.randn(value.shape, generator=gen)
        elif key == 'logit_scale':
            drawn = torch.tensor(100.0).log()     # trained CLIP's temperature
        elif '.bn' in key or 'attnpool.positional_embedding' in key:
            drawn = _value(key.replace('.bn', '.ln'), value, gen)
        else:
            drawn = _value(key, value, gen)
        state[key] = fp16_round(drawn)
    model.load_state_dict(state, strict=False)
    return {k: v.half() for k, v in state.items()}


def caption_tokens(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Seeded token ids per prompt (``'a photo of ' + caption``): SOT 1, words, EOT (the largest
    id, where CLIP pools), padding 0."""
    tokens = {}
    eot = TEXT['vocab_size'] - 1
    for i, caption in enumerate(CAPTIONS):
        ids = torch.zeros(TEXT['context_length'], dtype=torch.long)
        length = 3 + i
        ids[0] = 1
        ids[1:length] = torch.randint(2, eot, (length - 1,), generator=gen)
        ids[length] = eot
        tokens['a photo of ' + caption] = ids
    return tokens


# ----------------------------------------------------------------------------- reference runs

def run_executor(ref: dict, tower: str, model: nn.Module, image_t: torch.Tensor,
                 tokens: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """ReCLIP's heat map of each caption on the image, and its box scores with alpha 0.5."""
    clip_stub = sys.modules['clip']
    clip_stub.load = lambda name, device, jit: (model, lambda image: image_t[0])
    clip_stub.tokenize = lambda texts: torch.stack([tokens[t] for t in texts])
    sys.modules['clip_mm_explain'].load = clip_stub.load
    name = 'RN50' if tower == 'rn' else 'ViT-B/32'
    executor = ref['executor'].ClipGradcamExecutor(clip_model=name, gradcam_alpha=[0.5])
    box_cls = importlib.import_module('interpreter').Box
    boxes = [box_cls(*b) for b in BOXES_XYWH]
    image = Image.new('RGB', IMAGE_HW[::-1])
    heat, scores = [], []
    for caption in CAPTIONS:
        heat.append(executor(caption, image, boxes, return_gradcam=True).detach())
        scores.append(executor(caption, image, boxes))
    return torch.stack(heat), torch.stack(scores)


def chosen_boxes(ref: dict, heat: torch.Tensor) -> dict[str, torch.Tensor]:
    """GroundVLP's ``cal_score`` box per caption, with and without detector scores."""
    engine = SimpleNamespace(cal_iou=_unused)
    dets = [[x, y, x + w, y + h] for x, y, w, h in BOXES_XYWH]
    out = {}
    for key, scores in (('detector', list(DETECTOR_SCORES)), ('fallback', None)):
        out[key] = torch.tensor([
            [float(v) for v in ref['engine'].ALBEF.cal_score(engine, h, None, dets, scores)[1]]
            for h in heat])
    return out


def build_golden(ref: dict, gen: torch.Generator) -> dict:
    tokens = caption_tokens(gen)
    golden = {'captions': list(CAPTIONS), 'image_hw': list(IMAGE_HW),
              'tokens': torch.stack([tokens['a photo of ' + c] for c in CAPTIONS]),
              'boxes_xywh': torch.tensor(BOXES_XYWH), 'detector_scores': torch.tensor(
                  DETECTOR_SCORES), 'text': TEXT, 'towers': {}}
    visible = {}
    for tower, dims in TOWERS.items():
        module = ref['openai_clip_model'] if tower == 'rn' else ref['clip_mm_explain.model']
        model = module.CLIP(**dims, **TEXT).float().eval()
        state = seed_clip(model, gen)
        side = dims['image_resolution']
        image_t = fp16_round(torch.randn(1, 3, side, side, generator=gen))
        heat, scores = run_executor(ref, tower, model, image_t, tokens)
        golden['towers'][tower] = {'dims': dims, 'state_dict': state, 'image': image_t.half(),
                                   'heat': heat, 'box_scores': scores,
                                   'chosen': chosen_boxes(ref, heat)}
        visible[f'{tower} heat max'] = max_abs(heat)
        visible[f'{tower} heat difference between captions'] = max_abs(heat[0] - heat[1])
    return golden, visible


def main() -> None:
    parser = golden_parser(__doc__, 'where the references are extracted (reclip/, groundvlp/)',
                           'folder of bare mirrors <owner>+<name>/repo (extracts the pinned '
                           'commits into --ref-root)', 'tests/golden/groundvlp.pt')
    args = parser.parse_args()
    roots = {'reclip': args.ref_root / 'reclip', 'groundvlp': args.ref_root / 'groundvlp'}
    verified = {'reclip': RECLIP.prepare(roots['reclip'], args.mirror_root),
                'groundvlp': GROUNDVLP.prepare(roots['groundvlp'], args.mirror_root)}
    ref = import_reference(roots['reclip'], roots['groundvlp'])
    torch.manual_seed(SEED)
    golden, visible = build_golden(ref, torch.Generator().manual_seed(SEED))
    golden['references'] = {'reclip': RECLIP.record(verified['reclip']),
                            'groundvlp': GROUNDVLP.record(verified['groundvlp'])}
    golden['visible'] = visible
    write_record(golden, args.out)


if __name__ == '__main__':
    main()
