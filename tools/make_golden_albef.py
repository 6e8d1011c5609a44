"""Golden ALBEF/TCL heat maps from GroundVLP's reference forward/backward on a seeded tiny model.

om-ai-lab/GroundVLP ``models/albef/engine.py``'s ``ALBEF.get_results_for_rec`` is run as
released: its ``VL_Transformer_ITM.forward`` over ALBEF's ``models/vit.py`` ViT and
``models/xbert.py`` BERT (cross-attention hooks ``save_attention`` / ``get_attn_gradients``),
its ``tokenization_bert.BertTokenizer`` ([CLS] + tokens, no [SEP], padded to 50), the backward
of the summed ITM positive logits, and the visual-word aggregation of ``utils/stanza_utils.py``'s
``find_main_words``. Stubbed for this process only: ``stanza`` (a fixed parse per caption:
words and UPOS tags, which the test gives densevl's aggregation too), Detic (no boxes) and the
engine's ``transform`` (returns the seeded prepared tensor); ``cal_score`` records the heat map
it is given. The tiny model is assembled from the reference classes with the dimensions below
(``VL_Transformer_ITM.__init__`` hard-codes ViT-B and reads a BERT from disk). Nothing of the
reference is copied.

Needs an old ``transformers`` for ``xbert.py`` (4.30.2 was used) and timm 0.4.12 (ALBEF's), in
a throwaway venv that sees the repository's venv for torch::

    python -m venv /tmp/refvenv
    .venv/bin/python -c "import site; print(site.getsitepackages()[0])" \\
        > /tmp/refvenv/lib/python3.11/site-packages/mainvenv.pth
    /tmp/refvenv/bin/pip install --no-deps transformers==4.30.2 tokenizers==0.13.3 \\
        huggingface-hub==0.16.4 timm==0.4.12
    OMP_NUM_THREADS=1 /tmp/refvenv/bin/python tools/make_golden_albef.py \\
        --mirror-root /work/.mirror --ref-root /tmp/refs --out tests/golden/albef.pt

Weights are drawn from one seeded generator and rounded to fp16 (stored so, in the released
checkpoint's layout: ``visual_encoder.*``, ``text_encoder.bert.*``, ``itm_head.*``); fp32, eval:

* ViT: 64 px, patch 16 (a 4x4 grid), width 64, one 64-wide head, 2 blocks;
* BERT: 6 layers, fusion from layer 2 (cross-attention in 2..5), hidden 96, 12 heads (the
  reference's post-processing hard-codes 12), intermediate 192, 64 positions, a 31-token vocab;
  the heat map from layer 4, the third cross-attention layer (ALBEF: layer 8 of fusion 6..11);
* one 50x70 image (the maps are upsampled to it); five captions that cover multi-piece words,
  a possessive, an unknown word and a caption without visual words.

Saved: the weights, dims, vocab, captions with their parse, the prepared image, the reference
tokenizer's ids and mask, the ITM logits, the per-token maps ``H_t`` (from the hooked attention
and gradient), the token rows ``find_main_words`` chose, the aggregated upsampled map each
caption's ``cal_score`` received, and a sample of ALBEF's image transform on a seeded image.
"""
from __future__ import annotations

import importlib
import tempfile
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from _golden import (
    Reference,
    fp16_round,
    golden_parser,
    max_abs,
    reference_package,
    stub_module,
    write_record,
)
from PIL import Image
from torch import nn

GROUNDVLP = Reference('om-ai-lab/GroundVLP', 'om-ai-lab+GroundVLP',
                      'f13e9d24947008842c042a2702fbda52c491c0af', ('models', 'utils'))
SEED = 2025
IMAGE_HW = (50, 70)
TEMPLATE = 'there is a {}'
LAYER = 4
VOCAB = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'there', 'is', 'a', 'skate', '##board',
         '##er', 'in', 'red', 'shirt', 'man', "'", 's', 'left', 'hand', 'it', 'over', 'two',
         'zebra', '##s', 'blue', 'on', 'the', 'of', 'one', '-', 'right')
VIT = dict(img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=1)
BERT = dict(vocab_size=len(VOCAB), hidden_size=96, num_hidden_layers=6, num_attention_heads=12,
            intermediate_size=192, max_position_embeddings=64, type_vocab_size=2,
            fusion_layer=2, encoder_width=64, hidden_act='gelu', layer_norm_eps=1e-12,
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0)
#: caption -> the parse the stanza stub returns (words and UPOS tags)
PARSES = {
    'skateboarder in red shirt': (('skateboarder', 'NOUN'), ('in', 'ADP'), ('red', 'ADJ'),
                                  ('shirt', 'NOUN')),
    "man's left hand": (('man', 'NOUN'), ("'s", 'PART'), ('left', 'ADJ'), ('hand', 'NOUN')),
    'it is over there': (('it', 'PRON'), ('is', 'AUX'), ('over', 'ADP'), ('there', 'ADV')),
    'two zebras on the right-hand': (('two', 'NUM'), ('zebras', 'NOUN'), ('on', 'ADP'),
                                     ('the', 'DET'), ('right-hand', 'ADJ')),
    'blue xylophone': (('blue', 'ADJ'), ('xylophone', 'NOUN')),
}
CAPTIONS = tuple(PARSES)


def import_reference(root: Path) -> SimpleNamespace:
    """GroundVLP's engine, ViT, xbert, tokenizer and stanza utilities, with stubs for stanza,
    Detic and the COCO-label mapping."""
    def pipeline(*args, **kwargs):
        def parse(sentence):
            words = [SimpleNamespace(text=t, pos=p, id=i + 1)
                     for i, (t, p) in enumerate(PARSES[sentence])]
            return SimpleNamespace(sentences=[SimpleNamespace(words=words)])
        return parse

    stub_module('stanza', download=lambda *a, **k: None, Pipeline=pipeline)
    stub_module('Detic.predict', get_bbox_by_detic_rec=None, get_bbox_by_detic_rec_general=None)
    stub_module('Detic.draw_box', draw_boxes_cv2=None)
    reference_package('utils', root / 'utils')
    stub_module('utils.map_to_coco_label', map_to_coco_label=None)
    reference_package('models', root / 'models')
    reference_package('models.albef', root / 'models' / 'albef')
    reference_package('models.albef.models', root / 'models' / 'albef' / 'models')
    ns = SimpleNamespace(
        engine=importlib.import_module('models.albef.engine'),
        itm=importlib.import_module('models.albef.VL_Transformer_ITM'),
        vit=importlib.import_module('models.albef.models.vit'),
        xbert=importlib.import_module('models.albef.models.xbert'),
        tokenization=importlib.import_module('models.albef.models.tokenization_bert'),
        stanza_utils=importlib.import_module('utils.stanza_utils'))
    for name, module in vars(ns).items():
        assert module.__file__.startswith(str(root)), (name, module.__file__)
    return ns


def seeded_value(key: str, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    randn = torch.randn(t.shape, generator=gen)
    leaf = key.rsplit('.', 1)[-1]
    if 'norm' in key.lower() and t.ndim == 1:
        return 1.0 + 0.1 * randn if leaf == 'weight' else 0.05 * randn
    if leaf == 'bias':
        return 0.02 * randn
    if leaf in ('pos_embed', 'cls_token') or 'embeddings' in key:
        return 0.5 * randn
    return randn * t[0].numel() ** -0.5


def build_reference_model(ref: SimpleNamespace, gen: torch.Generator) -> tuple[nn.Module, dict]:
    """The reference ITM model at the tiny dims with seeded weights, loaded through the
    reference's key rewrite; returns it and the weights in the released layout (fp16)."""
    model = ref.itm.VL_Transformer_ITM.__new__(ref.itm.VL_Transformer_ITM)
    nn.Module.__init__(model)
    model.visual_encoder = ref.vit.VisionTransformer(
        **VIT, mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6))
    config = ref.xbert.BertConfig(**BERT)
    model.text_encoder = ref.xbert.BertModel(config, add_pooling_layer=False)
    model.itm_head = nn.Linear(BERT['hidden_size'], 2)
    released = {}
    for key, value in model.state_dict().items():
        name = key.replace('text_encoder.', 'text_encoder.bert.', 1)
        released[name] = value.clone() if key.endswith('position_ids') else fp16_round(
            seeded_value(key, value, gen))
    loaded = {k.replace('.bert', ''): v for k, v in released.items()}   # the engine's rewrite
    msg = model.load_state_dict(loaded, strict=False)
    assert not msg.missing_keys and not msg.unexpected_keys, msg
    return model.eval(), {k: v if k.endswith('position_ids') else v.half()
                          for k, v in released.items()}


def run_reference(ref: SimpleNamespace, model: nn.Module, tokenizer, image_t: torch.Tensor,
                  image_path: str) -> dict:
    """``get_results_for_rec`` on the captions, recording what it computes."""
    ref.engine.transform = lambda pil: image_t[0]
    received, logits = [], []
    handle = model.itm_head.register_forward_hook(lambda m, i, o: logits.append(o.detach()))
    main = ref.stanza_utils.find_main_words
    engine_self = SimpleNamespace(
        model_id='tiny', templates=TEMPLATE, device='cpu',
        load_model=lambda model_id: (model, tokenizer),
        get_bbox_for_rec=lambda *a, **k: ([], []),
        find_main_words=main,
        cal_score=lambda gradcam, *a: received.append(gradcam.detach().clone()) or (0, None))
    ref.engine.ALBEF.get_results_for_rec(engine_self, image_path, list(CAPTIONS), None,
                                         block_num=LAYER, category='thing')
    handle.remove()
    attention = model.text_encoder.encoder.layer[LAYER].crossattention.self
    cams, grads = attention.get_attention_map().detach(), attention.get_attn_gradients()
    text = tokenizer([TEMPLATE.format(c) for c in CAPTIONS], return_tensors='pt',
                     padding='max_length', truncation=True, max_length=50)
    mask = text.attention_mask
    token_maps = (cams[..., 1:] * grads[..., 1:].clamp(0)).mean(1) * mask[:, :, None]
    side = VIT['img_size'] // VIT['patch_size']
    start_idx = len(tokenizer(TEMPLATE.format(''), return_tensors='pt').input_ids[0]) - 1
    rows = []
    for caption in CAPTIONS:
        main_ids, id_map = main(caption, start_idx, tokenizer)
        focus = [i for w in main_ids for i in id_map[w]]
        rows.append([0, *focus] if focus else None)
    return {'input_ids': text.input_ids, 'attention_mask': mask, 'itm_logits': logits[0],
            'token_maps': token_maps.reshape(len(CAPTIONS), -1, side, side),
            'focus_rows': rows, 'heat': torch.stack(received)}


def transform_sample(ref: SimpleNamespace, gen: torch.Generator) -> dict:
    """ALBEF's image transform (bicubic 256x256, CLIP normalisation) on a seeded image: every
    8th pixel and the sum (the whole is 0.8 MB)."""
    pixels = torch.randint(0, 256, (*IMAGE_HW, 3), generator=gen, dtype=torch.uint8)
    out = ref.itm.transform(Image.fromarray(pixels.numpy()))
    return {'image': pixels, 'sample': out[:, ::8, ::8].clone(), 'sum': out.double().sum()}


def main() -> None:
    parser = golden_parser(__doc__, 'where the reference is extracted (groundvlp_albef/)',
                           'folder of bare mirrors <owner>+<name>/repo (extracts the pinned '
                           'commit into --ref-root)', 'tests/golden/albef.pt')
    args = parser.parse_args()
    root = args.ref_root / 'groundvlp_albef'
    verified = GROUNDVLP.prepare(root, args.mirror_root)
    ref = import_reference(root)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model, state = build_reference_model(ref, gen)
    image_t = fp16_round(torch.randn(1, 3, VIT['img_size'], VIT['img_size'], generator=gen))
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / 'vocab.txt'
        vocab.write_text('\n'.join(VOCAB) + '\n')
        tokenizer = ref.tokenization.BertTokenizer(str(vocab))
        image_path = str(Path(tmp) / 'image.png')
        Image.fromarray(np.zeros((*IMAGE_HW, 3), np.uint8)).save(image_path)
        out = run_reference(ref, model, tokenizer, image_t, image_path)
    golden = {'vocab': list(VOCAB), 'captions': list(CAPTIONS),
              'parses': {c: [list(w) for w in p] for c, p in PARSES.items()},
              'template': TEMPLATE, 'layer': LAYER, 'vit': VIT, 'bert': BERT,
              'image_hw': list(IMAGE_HW), 'state_dict': state, 'image': image_t.half(), **out,
              'transform': transform_sample(ref, gen),
              'references': {'groundvlp': GROUNDVLP.record(verified)}}
    golden['visible'] = {'heat max': max_abs(out['heat']),
                         'heat difference between captions': max_abs(out['heat'][0]
                                                                     - out['heat'][1]),
                         'itm logit spread': max_abs(out['itm_logits'][:, 1]
                                                     - out['itm_logits'][0, 1])}
    write_record(golden, args.out)


if __name__ == '__main__':
    main()
