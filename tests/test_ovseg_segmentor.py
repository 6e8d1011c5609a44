"""OVSegSegmentor (mmseg adapter): the proving-ground config on a tiny random CLIP, its losses,
prediction for new texts with both classifiers, the ensemble's limits, the single-name rule, no
valid proposal, SAM proposals, and two iterations of tools/train.py."""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from _tools import load_tool
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_denseclip_segmentor import batch
from test_ovseg_proposals import OPTIONS, _tiny_sam

import densevl.datasets.mm_datasets  # noqa: F401
import densevl.models.mm_adapters  # noqa: F401
from densevl.apis import OpenVocabSegInferencer
from densevl.models import ovseg
from densevl.models.clip.model_zoo import MODEL_ZOO, ZooEntry
from densevl.models.segmentors import OpenVocabSegmenter
from densevl.registry import SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs' / 'ovseg' / 'ovseg_clip-synthetic-tiny_400it_synthetic-64.py'
SEEN = ['grass', 'sky', 'water', 'sand', 'brick', 'wood', 'red', 'orange', 'yellow', 'green',
        'blue', 'white']
TEXTS = ['pink', 'purple; violet', 'a photo of grass']
TINY = 'test-ovseg-vit8'   # the proving ground's CLIP architecture at toy size: 32-px crops


@pytest.fixture(scope='module', autouse=True)
def tiny_zoo():
    mp = pytest.MonkeyPatch()
    mp.setitem(MODEL_ZOO, TINY, ZooEntry(config=dict(
        embed_dim=32, text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=1,
                                    layers=1),
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=64))))
    init_default_scope('mmseg')
    yield
    mp.undo()


def build(seed: int = 0, **model):
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.clip.model_name = TINY
    for key, value in model.items():
        if isinstance(value, dict) and isinstance(cfg.model.get(key), dict):
            cfg.merge_from_dict({f'model.{key}': value})
        else:
            cfg.model[key] = value
    torch.manual_seed(seed)
    built = SEG_MODELS.build(cfg.model)
    built.init_weights()
    return built.eval()


@pytest.fixture(scope='module')
def model():
    return build()


def images(count: int = 2, h: int = 64, w: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.randn(count, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ----- build -----------------------------------------------------------------------------------

def test_config_builds_the_published_design_at_toy_size(model):
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.model.clip.model_name == 'clip-synthetic-tiny' and cfg.default_scope == 'mmseg'
    head = model.decode_head
    clip = model.frozen_clip
    assert type(model).__name__ == 'OVSegSegmentor' and type(head).__name__ == \
        'OVSegMaskFormerHead'
    assert head.num_classes == len(SEEN) and head.num_queries == 16
    assert head.class_weight == [1.0] * len(SEEN) + [0.1]
    assert head.loss_mask.loss_weight == 20.0 and head.loss_dice.loss_weight == 1.0
    assert head.loss_cls.loss_weight == 1.0 and head.transformer_decoder.num_layers == 2
    assert head.cls_embed.embed_dim == clip.embed_dim == 32
    assert head.cls_embed.temperature == 100.0
    assert len(model.class_names) == 14 and model.classifier == 'masked_crops'
    assert model.ensemble_weight == 0.7 and model.mask_threshold == 0.5
    # the frozen CLIP is not a sub-module: not trained, not in checkpoints
    assert not any(k.startswith(('clip', 'frozen')) for k in model.state_dict())
    clip_params = {id(p) for p in clip.parameters()}
    assert clip_params and not clip_params & {id(p) for p in model.parameters()}
    assert not any(p.requires_grad for p in clip.parameters())
    assert isinstance(model, OpenVocabSegmenter)
    assert inspect.signature(type(model).segment) == \
        inspect.signature(OpenVocabSegmenter.segment)
    protocol = model.protocol
    assert protocol.templates == ('{}',) and protocol.logit_scale == 100.0
    assert protocol.mean == pytest.approx((122.771, 116.746, 104.094))
    assert model.random_weights        # the tiny CLIP of the test has no weights


def test_build_errors_name_the_fix():
    with pytest.raises(ValueError, match='decode_head.num_classes=5 but the training'):
        build(decode_head=dict(num_classes=5))
    with pytest.raises(ValueError, match='no_object_weight'):
        build(decode_head=dict(loss_cls=dict(type='mmdet.CrossEntropyLoss',
                                             class_weight=[1.0] * 13)))
    with pytest.raises(ValueError, match="'masked_crops'"):
        build(classifier='crops')
    with pytest.raises(ValueError, match='CLIP alone'):
        build(ensemble_weight=1.5)
    with pytest.raises(ValueError, match='set ensemble_weight=0.0'):
        build(proposals=lambda rgb: [])
    with pytest.raises(FileNotFoundError, match='sam_vit_h'):
        build(ensemble_weight=0.0, proposals=dict(type='SAM', checkpoint='no_such_sam.pth'))


# ----- training --------------------------------------------------------------------------------

def test_loss_step_trains_the_proposal_network_not_the_clip():
    model = build().train()
    data = model.data_preprocessor(batch(len(SEEN)), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    parts = ('loss_cls', 'loss_mask', 'loss_dice')
    assert set(losses) == {f'decode.{p}' for p in parts} | {f'decode.d0.{p}' for p in parts}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum()}
    for part in ('backbone.', 'decode_head.pixel_decoder.', 'decode_head.transformer_decoder.',
                 'decode_head.query_embed.', 'decode_head.mask_embed.',
                 'decode_head.cls_embed.layers.'):
        assert any(n.startswith(part) for n in grads), part
    assert 'decode_head.cls_embed.non_object_embedding' in grads
    assert all(p.grad is None for p in model.frozen_clip.parameters())
    # the training vocabulary must be the head's training classes
    model._train_names = SEEN[:5]
    with pytest.raises(ValueError, match='one name per class for the 12 training labels'):
        model.loss(data['inputs'], data['data_samples'])


# ----- prediction --------------------------------------------------------------------------------

@pytest.mark.parametrize('classifier', ['masked_crops', 'mask_pooling'])
def test_segment_and_predict_new_texts(model, classifier):
    model.classifier = classifier
    try:
        results = model.segment(images(), TEXTS, out_size=(32, 24))
        assert len(results) == 2
        for result in results:
            assert result.labels.shape == (32, 24) and result.labels.dtype == torch.int64
            assert int(result.labels.min()) >= -1 and int(result.labels.max()) < len(TEXTS)
            assert result.class_probs.shape == (len(TEXTS), 32, 24)
            labelled = result.labels >= 0
            torch.testing.assert_close(result.class_probs.sum(0)[labelled],
                                       torch.ones(int(labelled.sum())))
            assert torch.equal(result.class_probs.argmax(0)[labelled], result.labels[labelled])
        lean = model.segment(images(), TEXTS, out_size=(32, 24), return_probs=False)
        assert lean[0].class_probs is None and torch.equal(lean[0].labels, results[0].labels)
        with torch.no_grad():
            out = model.test_step(batch(14, count=1))
        assert out[0].pred_sem_seg.data.shape == (1, 64, 64) and 'seg_logits' not in out[0]
        model.with_seg_logits = True
        with torch.no_grad():
            out = model.test_step(batch(14, count=1))
        assert out[0].seg_logits.data.shape == (14, 64, 64)
    finally:
        model.classifier, model.with_seg_logits = 'masked_crops', False


def test_the_classifiers_embed_the_same_proposals_differently(model):
    x = images(1)
    vocab = model.frozen_clip.vocabulary(TEXTS)
    rgb = model.unnormalise(x)
    with torch.no_grad():
        _, masks = model.proposals(x, rgb, vocab)
        crops, found = model.frozen_clip.proposal_logits(rgb, masks, 0.5, vocab)
        pooled, pooled_found = model.frozen_clip.proposal_logits(
            rgb, masks, 0.5, vocab, classifier='mask_pooling')
    assert torch.equal(found.valid, pooled_found.valid) and found.num_crops > 0
    assert crops.shape == pooled.shape == (found.num_crops, 4)
    assert not torch.allclose(crops, pooled)


def test_mask_pooling_is_the_coverage_weighted_mean():
    dense = torch.randn(1, 5, 2, 2)
    logits = torch.full((1, 3, 4, 4), -9.0)
    logits[0, 0, :2, :2] = 9.0                   # exactly the top-left cell
    logits[0, 1, :2, :] = 9.0                    # the top row of cells
    logits[0, 1, 2, 0] = 9.0                     # and a quarter of the bottom-left cell
    proposals = ovseg.find_proposals(logits, 0.5)   # proposal 2 is empty: no embedding
    pooled = ovseg.mask_pool(dense, proposals)
    assert pooled.shape == (2, 5)
    torch.testing.assert_close(pooled[0], dense[0, :, 0, 0])
    expected = (dense[0, :, 0, 0] + dense[0, :, 0, 1] + 0.25 * dense[0, :, 1, 0]) / 2.25
    torch.testing.assert_close(pooled[1], expected)


def test_mask_prompts_load_on_first_use(tmp_path, model):
    missing = build(clip=dict(mask_embedding=str(tmp_path / 'missing.pth')))   # builds
    with pytest.raises(FileNotFoundError, match='convert_ovseg_clip_checkpoint'):
        missing.segment(images(1), TEXTS)
    embedding = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(3))  # 4x4 grid
    torch.save({'mask_embedding': embedding}, tmp_path / 'mask.pth')
    prompted = build(clip=dict(mask_embedding=str(tmp_path / 'mask.pth')))
    clip = prompted.frozen_clip
    assert clip.mask_prompt.depth == 2 and torch.equal(clip.mask_prompt.mask_embedding,
                                                       embedding)
    assert not any('mask_embedding' in k for k in prompted.state_dict())
    vocab = clip.vocabulary(TEXTS)
    rgb = prompted.unnormalise(images(1))
    masks = torch.full((1, 2, 64, 48), -9.0)    # L shapes: their crops have blank patches
    masks[0, 0, :8], masks[0, 0, :, :8] = 9.0, 9.0
    masks[0, 1, 40:, 20:24], masks[0, 1, 60:, 20:] = 9.0, 9.0
    with torch.no_grad():
        with_prompts, found = clip.proposal_logits(rgb, masks, 0.5, vocab)
        plain, _ = model.frozen_clip.proposal_logits(rgb, masks, 0.5, vocab)
        crops = ovseg.masked_crops(rgb, masks, 0.5, size=32)
        expected = clip.mask_prompt(crops.crops, crops.region_masks)
    torch.testing.assert_close(
        with_prompts, ovseg.cosine_logits(expected, ovseg.text_matrix(vocab, expected)))
    assert found.num_crops == 2 and not torch.allclose(with_prompts, plain)


def _head_alone(class_logits, masks):
    return torch.einsum('bqk,bqhw->bkhw', class_logits.softmax(-1)[..., :-1], masks.sigmoid())


def test_ensemble_limits_are_clip_alone_and_head_alone(model):
    x, texts = images(1), ['pink', 'grass', 'sky', 'red']
    vocab = model.frozen_clip.vocabulary(texts)
    rgb = model.unnormalise(x)
    with torch.no_grad():
        class_logits, masks = model.proposals(x, rgb, vocab)
        crop_logits, found = model.frozen_clip.proposal_logits(rgb, masks, 0.5, vocab)
    valid = found.valid
    clip = torch.zeros(*valid.shape, len(texts))
    clip[valid] = crop_logits.softmax(-1)
    clip_alone = torch.einsum('bqk,bqhw->bkhw', clip, masks.sigmoid())
    head_alone = _head_alone(class_logits, masks)
    by_hand = {0.0: clip_alone, None: head_alone}
    ones = torch.ones_like(clip)
    ones[valid] = crop_logits.softmax(-1)
    mixed = class_logits.softmax(-1)[..., :-1] ** 0.55 * ones ** 0.45
    by_hand[0.45] = torch.einsum('bqk,bqhw->bkhw', mixed, masks.sigmoid())
    for weight, expected in by_hand.items():
        through_core = ovseg.semantic_inference(
            class_logits, masks, None if weight is None else crop_logits,
            None if weight is None else valid, clip_ensemble_weight=weight or 0.0)
        torch.testing.assert_close(through_core, expected)
        model.ensemble_weight = weight
        try:
            result = model.segment(x, texts)[0]
        finally:
            model.ensemble_weight = 0.7
        torch.testing.assert_close(result.class_probs, (expected / expected.sum(1))[0])
        assert torch.equal(result.labels, expected[0].argmax(0))
    assert not torch.equal(clip_alone.argmax(1), head_alone.argmax(1))


# ----- the single-name rule, no valid proposal, SAM ---------------------------------------------

def test_a_single_name_is_contrasted_with_others(model):
    x = images(1)
    single = model.segment(x, ['pink'])[0]
    pair = model.segment(x, ['pink', 'others'])[0]
    assert single.class_probs.shape == (1, 64, 48)
    torch.testing.assert_close(single.class_probs[0], pair.class_probs[0])
    assert torch.equal(single.labels, torch.where(pair.labels == 1, -1, pair.labels))
    assert set(single.labels.unique().tolist()) <= {-1, 0}
    assert set(model.segment(x, ['pink'], background_index=255)[0].labels.unique().tolist()) \
        <= {0, 255}
    with pytest.raises(ValueError, match="catch-all 'others'"):
        model.segment(x, ['others'])
    samples = model.predict(model.data_preprocessor(batch(14, count=1))['inputs'],
                            texts=['sky; cloud'])
    assert set(samples[0].pred_sem_seg.data.unique().tolist()) <= {-1, 0}


@pytest.mark.parametrize('weight', [0.7, 0.0, None])
def test_no_valid_proposal_labels_every_pixel_background(weight):
    model = build(ensemble_weight=weight)
    with torch.no_grad():       # every mask logit 0: sigmoid 0.5 is not above the threshold 0.5
        model.decode_head.pixel_decoder.mask_feature.weight.zero_()
        model.decode_head.pixel_decoder.mask_feature.bias.zero_()
    with pytest.warns(UserWarning, match='no valid mask proposal'):
        results = model.segment(images(), TEXTS, background_index=255)
    for result in results:
        assert torch.equal(result.labels, torch.full((64, 48), 255))
        assert not result.class_probs.any()


def test_sam_proposals_are_classified_by_clip_alone():
    model = build(ensemble_weight=0.0)
    model.proposal_generator = ovseg.SAMProposalGenerator.from_sam_model(
        _tiny_sam(), max_proposals=5, **OPTIONS)
    x = images(1, 64, 64)
    texts = ['pink', 'grass', 'sky']
    vocab = model.frozen_clip.vocabulary(texts)
    rgb = model.unnormalise(x)
    sets = model.proposal_generator(rgb)
    masks = ovseg.stack_proposals(sets)
    assert masks.shape[1] == sets[0].num_proposals > 0
    crop_logits, found = model.frozen_clip.proposal_logits(rgb, masks, 0.5, vocab)
    expected = torch.einsum('qk,qhw->khw', crop_logits.softmax(-1),
                            (masks[0][found.valid[0]] > 0).float())
    result = model.segment(x, texts)[0]
    covered = expected.sum(0) > 0
    assert torch.equal(result.labels[~covered], torch.full((int((~covered).sum()),), -1))
    assert torch.equal(result.labels[covered], expected.argmax(0)[covered])
    torch.testing.assert_close(result.class_probs[:, covered],
                               (expected / expected.sum(0).clamp_min(1e-12))[:, covered])
    with pytest.raises(ValueError, match='set ensemble_weight=0.0'):
        build().proposal_generator = model.proposal_generator
    empty = build(ensemble_weight=0.0)
    empty.proposal_generator = lambda rgb: [ovseg.ProposalSet(torch.zeros(0, *rgb.shape[-2:]))
                                            for _ in rgb]
    with pytest.warns(UserWarning, match='no valid mask proposal'):
        assert torch.equal(empty.segment(x, texts)[0].labels, torch.full((64, 64), -1))


# ----- tools, inferencer ----------------------------------------------------------------------

@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    from densevl.datasets.synthetic import write_dataset
    return write_dataset(tmp_path_factory.mktemp('synthetic'), counts=dict(train=8, test=4),
                         progress=False)


def test_train_tool_runs_two_iterations_and_the_inferencer_loads_them(synthetic_root, tmp_path):
    options = []    # the config as it is: the packaged clip-synthetic-tiny
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={synthetic_root}', f'{loader}.batch_size=2',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    work = tmp_path / 'work'
    load_tool('train').main([str(CONFIG), '--work-dir', str(work), '--cfg-options', *options,
                             'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                             'default_hooks.checkpoint.interval=2',
                             'default_hooks.logger.interval=1'])
    checkpoint = work / 'iter_2.pth'
    assert checkpoint.is_file()
    log = next(work.glob('*/*.log')).read_text()
    assert 'decode.loss_cls' in log and 'decode.d0.loss_dice' in log and 'mIoU' in log
    seg = OpenVocabSegInferencer(str(CONFIG), weights=str(checkpoint), device='cpu')
    assert not seg.is_random_weights and seg.protocol.short_side is None
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    texts = ['pink', 'purple', 'grass', 'sky']
    out = seg(image, texts=texts, return_scores=True, visualize=False)
    prediction = out['predictions'][0]
    assert prediction.pred_sem_seg.shape == (64, 80) and prediction.scores.shape == (4, 64, 80)
    expected = seg.segmenter.segment(seg.preprocess(image), texts)[0]
    assert torch.equal(prediction.pred_sem_seg, expected.labels)
    trained = torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']
    loaded = seg.segmenter.state_dict()
    assert set(trained) == set(loaded)
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)
