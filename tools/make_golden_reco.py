"""Golden ReCo tensors from the reference implementation (NoelShin/reco).

The reference's ``networks``, ``utils`` and ``datasets`` folders are extracted from a bare mirror at
a pinned commit and imported where they lie. What they import and this machine lacks is a stub in
``sys.modules`` for this process only: OpenAI's ``clip`` package (``tokenize`` is open_clip's
tokenizer; ``clip.load`` is never called) and mmcv 1.x's ``mmcv.runner``, ``parrots_wrapper``
and ``mmcv.cnn`` (the reference's ResNet, which is not run). ``pydensecrf`` is the real package
(``pydensecrf2`` from PyPI builds the same module). Nothing of the reference is copied.

The reference's classes are used without their constructors (which load weights and datasets):
a ``ReCo`` made with ``__new__`` gets stand-ins for its two networks that look each image up in
seeded banks of features by the image's id (stored in pixel ``[0, 0, 0]``), and its own methods do
the rest: ``_get_text_attention``, ``_get_context_weights``, ``_get_reference_image_feature``,
``_cosegment`` (progressive context categories, as its ``__init__`` builds them, then target
concepts) and ``__call__`` (the inference map before the CRF). ``DenseCLIP.forward`` (MaskCLIP's
value path as 1x1 convolutions) makes the dense-embedding bank from seeded res5 maps.
``utils.crf.dense_crf`` runs the CRF on ``log_softmax`` of the map, as ``eval.py`` does. The
co-segmentation encoder's forward (``DistilledVisionTransformer``, final-LN patch tokens) runs on
seeded tiny weights (width 32, 2 blocks, 2 heads, no classifier, 64 px, a 48x80 input).

The paper's per-image maximum is the reference's own ``_get_reference_image_feature`` with its
column slice ``[start_col: start_col + end_col]`` replaced by ``[start_col: end_col]`` (the text
is patched in memory and the method re-made from it); the unpatched method is the code's slicing.

Seeded inputs (seed 2039, chosen so that every seed wins by at least 5e-5): a collection of 12
archive images with co-segmentation features ``(24, 4, 5)`` and res5 maps ``(64, 2, 3)``; MaskCLIP
projections ``64 -> 64 -> 16``; k = 6 retrieved ids per concept; unit text embeddings ``(16,)`` per
concept; contexts tree, sky, building, road, person; targets cat, vegetation (-> tree), sky (a
context, returned as is); two inference images of 32x40 (their uint8 pixels at bin centres, so any
unnormalisation recovers them). The 85-template text query is the reference's
``extract_text_embeddings`` with densevl's seeded ``clip-tiny-random`` CLIP.

Usage::

    python tools/make_golden_reco.py --mirror-root /work/.mirror --ref-root /tmp/refs \\
        --out tests/golden/reco.pt
"""
from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
import types
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _golden import Reference, golden_parser, max_abs, stub_module, write_record
from torch import nn

RECO = Reference('NoelShin/reco', 'NoelShin+reco', '5c5e1bcd52a1739423f2829191b303be0123dc76',
                 ('networks', 'utils', 'datasets'))
SEED = 2039
NUM_ARCHIVE = 12
K = 6
FEAT = dict(dim=24, grid=(4, 5))
RES5 = dict(dim=64, grid=(2, 3))
EMBED_DIM = 16
CONTEXT = ('tree', 'sky', 'building', 'road', 'person')
TARGETS = ('cat', 'vegetation', 'sky')
TEXT_CONCEPTS = ('cat', 'traffic light', 'tree')
IMAGE_HW = (32, 40)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TEXT_MODEL = 'clip-tiny-random'
ENCODER = dict(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4,
               num_classes=0)


# ----------------------------------------------------------------------------- reference import

class _Tokens:
    """What the stubbed ``clip.tokenize`` returns: ``.cuda()`` stays on the CPU."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def cuda(self) -> torch.Tensor:
        return self.tokens


def _unused(*args, **kwargs):
    raise NotImplementedError('stubbed mmcv helper; the golden forwards do not call it')


def import_reference(root: Path, tokenizer) -> dict[str, types.ModuleType]:
    stub_module('clip', tokenize=lambda texts: _Tokens(tokenizer(texts)), load=None)
    stub_module('mmcv.cnn', build_conv_layer=_unused, build_norm_layer=_unused,
                build_plugin_layer=_unused)
    stub_module('mmcv.runner', BaseModule=nn.Module, Sequential=nn.Sequential)
    stub_module('mmcv.utils.parrots_wrapper', _BatchNorm=nn.BatchNorm2d)
    sys.path.insert(0, str(root))
    modules = {name: importlib.import_module(name) for name in
               ('networks.reco', 'networks.dense_clip', 'networks.vit.distilled_vision_transformer',
                'utils.extract_text_embeddings', 'utils.crf')}
    for name, module in modules.items():
        assert module.__file__.startswith(str(root)), (name, module.__file__)
    return modules


def paper_slicing_method(reco_module: types.ModuleType):
    """The reference's ``_get_reference_image_feature`` with the per-image column slice."""
    source = textwrap.dedent(inspect.getsource(reco_module.ReCo._get_reference_image_feature))
    bug = 'adj_mat[:, start_col: start_col + end_col]'
    assert source.count(bug) == 1, 'the reference slicing changed; update the patch'
    namespace: dict = {}
    exec(compile(source.replace(bug, 'adj_mat[:, start_col: end_col]'), '<paper slicing>',
                 'exec'), vars(reco_module), namespace)
    return namespace['_get_reference_image_feature']


# ----------------------------------------------------------------------------- seeded inputs

def _unit(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=gen), dim=-1)


def _ids_image(ids: torch.Tensor, hw: tuple[int, int] = (1, 1)) -> torch.Tensor:
    """Images whose pixel ``[0, 0, 0]`` is their id in the banks."""
    images = torch.zeros(len(ids), 3, *hw)
    images[:, 0, 0, 0] = ids.float()
    return images


def _bank_lookup(bank: torch.Tensor):
    return lambda images: bank[images[:, 0, 0, 0].round().long()]


def make_inputs(gen: torch.Generator) -> dict:
    total = NUM_ARCHIVE + 2                       # the archive, then two inference images
    # A shared direction per image makes co-segmentation meaningful (patches agree within and
    # across images), noise keeps ties away.
    base = torch.randn(total, FEAT['dim'], 1, 1, generator=gen)
    feats = base + 0.8 * torch.randn(total, FEAT['dim'], *FEAT['grid'], generator=gen)
    res5 = torch.randn(total, RES5['dim'], *RES5['grid'], generator=gen)
    pool = {name: 0.2 * torch.randn(shape, generator=gen) for name, shape in (
        ('v_proj.weight', (RES5['dim'], RES5['dim'])), ('v_proj.bias', (RES5['dim'],)),
        ('c_proj.weight', (EMBED_DIM, RES5['dim'])), ('c_proj.bias', (EMBED_DIM,)))}
    concepts = list(dict.fromkeys(CONTEXT + TARGETS))
    retrieved = {c: torch.randperm(NUM_ARCHIVE, generator=gen)[:K] for c in concepts}
    text = {c: _unit(gen, EMBED_DIM) for c in concepts}
    uint8 = torch.randint(0, 256, (2, *IMAGE_HW, 3), generator=gen, dtype=torch.uint8)
    # smooth regions, so the bilateral term has edges to respect
    uint8[:, :, : IMAGE_HW[1] // 2] //= 4
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    images = ((uint8.permute(0, 3, 1, 2).float() + 0.5) / 255 - mean) / std
    return dict(feats=feats, res5=res5, attnpool=pool, retrieved=retrieved, text=text,
                images_uint8=uint8, images=images, inference_ids=torch.tensor([12, 13]))


# ----------------------------------------------------------------------------- reference runs

def dense_bank(modules, res5: torch.Tensor, pool: dict) -> torch.Tensor:
    """The reference ``DenseCLIP.forward`` (v_proj, c_proj as 1x1 convolutions) on res5 maps."""
    dense_clip = modules['networks.dense_clip']
    model = dense_clip.DenseCLIP.__new__(dense_clip.DenseCLIP)
    nn.Module.__init__(model)
    model.visual_encoder = lambda img: (None, None, None, res5[img[:, 0, 0, 0].round().long()])
    model.v_proj = nn.Conv2d(RES5['dim'], RES5['dim'], (1, 1))
    model.c_proj = nn.Conv2d(RES5['dim'], EMBED_DIM, (1, 1))
    for attr in ('v_proj', 'c_proj'):   # as load_visual_projs reshapes OpenAI's linear weights
        getattr(model, attr).load_state_dict({
            'weight': pool[f'{attr}.weight'][:, :, None, None], 'bias': pool[f'{attr}.bias']})
    with torch.no_grad():
        return model(_ids_image(torch.arange(len(res5))))


def make_reco(modules, feats: torch.Tensor, dense: torch.Tensor, paper: bool):
    reco_module = modules['networks.reco']
    cls = reco_module.ReCo
    if paper:
        cls = type('PaperSlicingReCo', (cls,),
                   {'_get_reference_image_feature': paper_slicing_method(reco_module)})
    reco = cls.__new__(cls)
    reco.device = torch.device('cpu')
    reco.encoder = _bank_lookup(feats)
    reco.dense_clip = _bank_lookup(dense)
    reco.text_attention = True
    reco.context_elimination = True
    reco.visualise = False
    return reco


@torch.no_grad()
def build_references(reco, inputs: dict) -> dict:
    """Context categories progressively (as ``ReCo.__init__``), then the targets."""
    context = {}
    for c in CONTEXT:
        context[c] = reco._cosegment(imgs=_ids_image(inputs['retrieved'][c]), category=c,
                                     text_feature=inputs['text'][c],
                                     category_to_context_img_feature=context)
    reco.category_to_context_img_feature = context
    reco.category_to_text_feature = inputs['text']
    reco._retrieve = lambda category: _ids_image(inputs['retrieved'][category])
    targets = {c: reco._get_category_img_feature(category=c) for c in TARGETS}
    return dict(context=context, targets=targets)


@torch.no_grad()
def intermediates(reco, inputs: dict, feats: torch.Tensor, context: dict) -> dict:
    """Guidance, context weights, seeds and reference of the target ``cat``."""
    imgs = _ids_image(inputs['retrieved']['cat'])
    features = reco.encoder(imgs)
    guidance = reco._get_text_attention(imgs=imgs, text_feature=inputs['text']['cat'],
                                        output_size=FEAT['grid'])
    ctx = reco._get_context_weights(features=features,
                                    context_img_features=torch.stack(list(context.values())))
    weights = guidance.clone()
    for m in range(ctx.shape[1]):
        weights *= (1 - ctx[:, m])
    reference, seed_features = reco._get_reference_image_feature(
        features=features, weights=weights, return_seed_features=True)
    return dict(guidance=guidance, context_sigmoids=ctx, weights=weights,
                seed_features=seed_features, reference=reference)


@torch.no_grad()
def inference(reco, inputs: dict, targets: dict) -> torch.Tensor:
    concepts = ('cat', 'tree', 'sky', 'road')
    refs = {**reco.category_to_context_img_feature, **targets}
    reco.category_to_img_feature = {c: refs[c] for c in concepts}
    reco.category_to_text_feature = {c: inputs['text'][c] for c in concepts}
    reco.dense_clip_inference = True
    images = inputs['images'].clone()
    ids = inputs['inference_ids'].float()
    # the id pixel is read by the stand-ins only; the map does not depend on pixel values
    images[:, 0, 0, 0] = ids
    return reco(images, device=torch.device('cpu'))


@torch.no_grad()
def text_query(modules) -> tuple[torch.Tensor, str, list[str]]:
    from densevl.models.clip import create_clip
    from densevl.models.text.text_embedder import weights_fingerprint

    bundle = create_clip(TEXT_MODEL)
    ref = modules['utils.extract_text_embeddings']
    out = ref.extract_text_embeddings(bundle.model, list(TEXT_CONCEPTS), ref.prompt_templates)
    fingerprint = weights_fingerprint(bundle.model.named_parameters())
    return torch.stack([out[c] for c in TEXT_CONCEPTS]), fingerprint, list(ref.prompt_templates)


@torch.no_grad()
def encoder(modules, gen: torch.Generator) -> dict:
    """The reference's ``DistilledVisionTransformer.forward`` (final-LN patch tokens, positions
    resized bicubically) on seeded tiny weights and a non-square input."""
    vit = modules['networks.vit.distilled_vision_transformer']
    model = vit.DistilledVisionTransformer(img_size=[ENCODER['img_size']], qkv_bias=True,
                                           norm_layer=partial(nn.LayerNorm, eps=1e-6),
                                           **{k: v for k, v in ENCODER.items()
                                              if k != 'img_size'}).eval()
    state = {name: (1.0 if name.endswith('norm1.weight') or name.endswith('norm2.weight')
                    or name == 'norm.weight' else 0.0) + 0.2 * torch.randn(t.shape, generator=gen)
             for name, t in model.state_dict().items()}
    model.load_state_dict(state)
    images = torch.randn(1, 3, 48, 80, generator=gen)
    return dict(state=state, images=images, tokens=model(images))


def crf(modules, inputs: dict, scores: torch.Tensor) -> torch.Tensor:
    dense_crf = modules['utils.crf'].dense_crf
    logp = torch.log_softmax(scores, dim=1)          # eval.py: batched_crf(pool, img, log_softmax)
    return torch.stack([torch.from_numpy(dense_crf(img, lp)) for img, lp in
                        zip(inputs['images'], logp)])


def main() -> None:
    parser = golden_parser(__doc__, 'where the reference is extracted (<ref-root>/reco)',
                           'folder of bare mirrors (<owner>+<name>/repo)', 'tests/golden/reco.pt')
    args = parser.parse_args()
    root = args.ref_root / 'reco'
    verified = RECO.prepare(root, args.mirror_root)

    import open_clip
    modules = import_reference(root, open_clip.get_tokenizer('ViT-B-32'))
    gen = torch.Generator().manual_seed(SEED)
    inputs = make_inputs(gen)
    dense = dense_bank(modules, inputs['res5'], inputs['attnpool'])

    outputs = {}
    for slicing in ('paper', 'code'):
        reco = make_reco(modules, inputs['feats'], dense, paper=slicing == 'paper')
        refs = build_references(reco, inputs)
        outputs[slicing] = dict(
            context=torch.stack([refs['context'][c] for c in CONTEXT]),
            targets=torch.stack([refs['targets'][c] for c in TARGETS]),
            cat=intermediates(reco, inputs, inputs['feats'], refs['context']),
            scores=inference(reco, inputs, refs['targets']))
        outputs[slicing]['crf'] = crf(modules, inputs, outputs[slicing]['scores'])
    text, text_fingerprint, templates = text_query(modules)
    encoder_record = encoder(modules, gen)

    paper, code = outputs['paper'], outputs['code']
    record = {
        'reference': RECO.record(verified),
        'config': dict(seed=SEED, k=K, context=CONTEXT, targets=TARGETS,
                       inference_concepts=('cat', 'tree', 'sky', 'road'),
                       feat=FEAT, res5=RES5, embed_dim=EMBED_DIM, image_hw=IMAGE_HW,
                       mean=IMAGENET_MEAN, std=IMAGENET_STD, text_model=TEXT_MODEL,
                       text_concepts=TEXT_CONCEPTS, text_model_fingerprint=text_fingerprint,
                       crf=dict(iterations=10, gaussian_sxy=1, gaussian_compat=3,
                                bilateral_sxy=67, bilateral_srgb=3, bilateral_compat=4)),
        'inputs': {**inputs, 'dense': dense},
        'templates': templates,
        'text_query': text,
        'outputs': outputs,
        'encoder': {'config': ENCODER, **encoder_record},
        'visible': {
            'code vs paper slicing (targets)': max_abs(paper['targets'] - code['targets']),
            'code vs paper slicing (contexts)': max_abs(paper['context'] - code['context']),
            'guidance below 1': max_abs(1 - paper['cat']['guidance']),
            'context weights below 1': max_abs(1 - paper['cat']['context_sigmoids']),
            'crf vs softmax': max_abs(paper['crf'] - torch.softmax(paper['scores'], dim=1)),
        },
    }
    write_record(record, args.out)


if __name__ == '__main__':
    np.set_printoptions(precision=4)
    main()
