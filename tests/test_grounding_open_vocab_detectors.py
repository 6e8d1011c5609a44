"""mmdet's GLIP and Grounding DINO in GroundVLP's detector slot, built tiny without a download.

Both are built from mmdet's released configs (``mmdet::``), shrunk, with random weights and a
random BERT written to ``tmp_path`` (hidden 32, one layer, a 14-token ``vocab.txt``) that
``cfg_options={'model.language_model.name': folder}`` points them at.

Where they cannot be tiny, or are not tested:

- Grounding DINO keeps its transformer 256 wide: mmdet's ``GroundingDinoTransformerEncoder``
  hard-codes the text position encoding to 256 features (``get_text_sine_pos_embed(...,
  num_pos_feats=256)``), so ``embed_dims`` must stay 256. The rest is shrunk (Swin 8 wide, one
  block per stage; one encoder and one decoder layer; 20 queries; 32-wide fusion): 2.1 M
  parameters.
- GLIP with early fusion (``early_fuse=True``: GLIP-T (B), GLIP-T (C), GLIP-L) is not built: its
  head makes ``VLFuse()`` with the defaults (256-channel visual features, 768-wide BERT, 2048
  embedding), which no config key changes. GLIP-T (A)'s config
  (``glip_atss_swin-t_a_fpn_dyhead_pretrain_obj365.py``, no early fusion) is tested.
- The released checkpoints and bert-base-uncased are not on this machine: nothing checks what
  the real models detect, only that their configs load and ask for a local BERT.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from densevl.apis import DetectorSlot, GroundingInferencer  # noqa: E402
from densevl.apis.grounding_detector import MIN_SCORE, build_detector_slot  # noqa: E402
from densevl.apis.mmdet_grounding_detectors import (  # noqa: E402
    BERT_KEY,
    TextPromptedDetInferencer,
    _check_local_bert,
    load_det_config,
)

ROOT = Path(__file__).resolve().parents[1]
DET_CONFIG = str(ROOT / 'configs' / 'denseclip'
                 / 'mask-rcnn_denseclip_clip-synthetic-tiny_400it_synthetic-128.py')
NAMES = ['red', 'blue star', 'green ring']
RELEASED = {
    'glip': 'mmdet::glip/glip_atss_swin-t_a_fpn_dyhead_pretrain_obj365.py',
    'grounding_dino': 'mmdet::grounding_dino/grounding_dino_swin-t_pretrain_obj365_goldg_cap4m.py',
}
TINY_SWIN = dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], drop_path_rate=0.0)
TINY_CHANGES = {
    'glip': {
        'model.backbone': TINY_SWIN,
        'model.neck': dict(in_channels=[16, 32, 64], out_channels=32),
        'model.bbox_head': dict(in_channels=32, feat_channels=32, num_dyhead_blocks=1),
        # random weights score about 0.08
        'model.test_cfg': dict(score_thr=0.0, max_per_img=20),
    },
    'grounding_dino': {
        'model.num_queries': 20,
        'model.backbone': TINY_SWIN,
        'model.neck': dict(in_channels=[16, 32, 64], norm_cfg=dict(type='GN', num_groups=8)),
        'model.encoder': dict(
            num_layers=1,
            layer_cfg=dict(ffn_cfg=dict(feedforward_channels=32)),
            text_layer_cfg=dict(ffn_cfg=dict(feedforward_channels=32)),
            fusion_layer_cfg=dict(embed_dim=32, num_heads=2)),
        'model.decoder': dict(num_layers=1, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=32))),
        'model.test_cfg.max_per_img': 20,   # 300 > 20 queries x 1 name
    },
}


def write_tiny_bert(folder: Path) -> str:
    """A random BERT as ``from_pretrained`` reads it: config.json, vocab.txt, weights."""
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    words = ['red', 'blue', 'green', 'star', 'ring', 'the', '##s']
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.', '?'] + words
    (folder / 'vocab.txt').write_text('\n'.join(vocab) + '\n')
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=256)   # GLIP pads the prompt to 256 tokens
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def write_tiny_config(kind: str, path: Path) -> str:
    """mmdet's released config of ``kind``, shrunk, its test images resized to 64 x 96."""
    cfg = load_det_config(RELEASED[kind], TINY_CHANGES[kind])
    resize = [step for step in cfg.test_dataloader.dataset.pipeline
              if step['type'] == 'FixScaleResize']
    resize[0]['scale'] = (64, 96)
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp('bert'))


@pytest.fixture(scope='module', params=['glip', 'grounding_dino'])
def tiny(request, bert, tmp_path_factory):
    """``(kind, config path, cfg_options, slot)``: the slot built from the config's dict."""
    config = write_tiny_config(request.param, tmp_path_factory.mktemp('cfg') / 'tiny.py')
    options = {BERT_KEY: bert}
    torch.manual_seed(0)
    slot = build_detector_slot(dict(config=config, class_names=NAMES, cfg_options=options),
                               device='cpu')
    return request.param, config, options, slot


@pytest.fixture(scope='module')
def image():
    return np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)


def test_the_slot_detects_the_names_in_image_pixels(tiny, image):
    _, _, _, slot = tiny
    assert isinstance(slot, DetectorSlot)
    assert isinstance(slot.inferencer, TextPromptedDetInferencer)
    assert slot.class_names == NAMES and slot.is_random_weights
    # random weights are an initialisation, not whatever memory torch.empty handed out
    assert all(p.abs().max() < 100 for p in slot.inferencer.model.parameters())
    found = slot.run(image)
    n = len(found.boxes)
    assert n > 0 and found.boxes.shape == (n, 4) and found.names == NAMES
    assert found.labels.shape == (n,) == found.scores.shape
    assert found.labels.dtype == torch.long and set(found.labels.tolist()) <= {0, 1, 2}
    assert torch.all(found.scores[:-1] >= found.scores[1:]) and found.scores.min() >= MIN_SCORE
    x1, y1, x2, y2 = found.boxes.unbind(1)
    assert x1.min() >= 0 and y1.min() >= 0 and x2.max() <= 80 and y2.max() <= 60
    assert torch.all(x2 >= x1) and torch.all(y2 >= y1)


def test_one_name_asked_for_gives_only_it(tiny, image):
    _, _, _, slot = tiny
    out = slot.inferencer(image, texts=['blue star'], score_threshold=0.0, visualize=False)
    prediction = out['predictions'][0]
    assert len(prediction.labels) > 0 and prediction.labels.eq(0).all()
    assert prediction.texts == ['blue star']
    found = DetectorSlot(slot.inferencer, class_names=['blue star']).run(image)
    assert found.names == ['blue star'] and found.labels.eq(0).all()
    with pytest.raises(ValueError, match='non-empty'):
        slot.inferencer(image, texts=[' '], visualize=False)


def test_grounding_inferencer_with_the_detector_in_its_slot(tiny, image):
    _, _, _, slot = tiny
    ground = GroundingInferencer('clip-tiny-random', detector=slot, device='cpu')
    assert ground.categories == NAMES and ground.is_random_weights
    out = ground(image, ['the red one', 'the green ring'], gt_categories=['red', 'green ring'],
                 score_threshold=MIN_SCORE)
    found = slot.run(image)
    for prediction, category in zip(out['predictions'], ['red', 'green ring']):
        boxes, scores = found.of_category(category, MIN_SCORE)
        assert prediction.category == category and prediction.fallback == (len(boxes) == 0)
        if not prediction.fallback:
            assert torch.equal(prediction.candidates, boxes)
            assert torch.allclose(prediction.detector_scores, scores)
        assert prediction.box.shape == (4,) and prediction.heat_map.shape == (60, 80)


def test_checkpoint_and_its_classes(tiny, image, tmp_path):
    _, config, options, slot = tiny
    detector = slot.inferencer.model.detector
    weights = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=detector.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('red', 'blue star')))), weights)
    loaded = TextPromptedDetInferencer(config, str(weights), device='cpu', cfg_options=options)
    assert loaded.class_names == ['red', 'blue star'] and not loaded.is_random_weights
    a = slot.inferencer(image, texts=NAMES, score_threshold=0.0, visualize=False)
    b = loaded(image, texts=NAMES, score_threshold=0.0, visualize=False)
    pa, pb = a['predictions'][0], b['predictions'][0]
    assert torch.allclose(pa.boxes, pb.boxes, atol=1e-4) and torch.equal(pa.labels, pb.labels)


@pytest.mark.parametrize('kind', sorted(RELEASED))
def test_released_configs_ask_for_a_local_bert(kind):
    with pytest.raises(FileNotFoundError, match=r'download bert-base-uncased.*'
                       r'--cfg-options model\.language_model\.name='):
        TextPromptedDetInferencer(RELEASED[kind], device='cpu')
    with pytest.raises(FileNotFoundError, match='not a local BERT folder'):
        build_detector_slot(dict(config=RELEASED[kind], weights=None), device='cpu')


def test_bad_input(monkeypatch, bert):
    with pytest.raises(ValueError, match='not an mmdet GLIP / Grounding DINO config'):
        TextPromptedDetInferencer(DET_CONFIG)
    with pytest.raises(ValueError, match='cfg_options are for'):
        DetectorSlot.from_config(DET_CONFIG, cfg_options={BERT_KEY: bert})
    with pytest.raises(FileNotFoundError, match='does not exist'):
        TextPromptedDetInferencer('mmdet::glip/no_such_config.py')
    with pytest.raises(ValueError, match="'config'"):
        build_detector_slot(dict(config=DET_CONFIG, texts=NAMES))
    monkeypatch.setitem(sys.modules, 'transformers', None)
    with pytest.raises(ImportError, match='pip install "transformers=='):
        _check_local_bert(bert)
