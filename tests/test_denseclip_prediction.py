"""DenseCLIPSegmentor's prediction path and the frozen-CLIP ensemble of the agnostic variant.

The lean prediction (labels from the head's low-resolution logits, a chunk of queries at a time)
is compared with mmseg's own inference and postprocessing on the same model, padding, flips and
sliding windows included; the ensemble against its formula and its two limits.
"""
from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.structures import SegDataSample
from test_denseclip_segmentor import SEEN, SYNTHETIC, _tool, build, tiny_zoo  # noqa: F401

from densevl.datasets.synthetic import write_dataset
from densevl.models.clip.model_zoo import MODEL_ZOO
from densevl.models.inference_protocol import SlideWindows
from densevl.models.segmentors.clip_ensemble import FrozenCLIPEnsemble, geometric_ensemble
from densevl.models.segmentors.windows import SlideScores, score_slide, score_window
from densevl.models.segmentors.zero_shot_segmenter import ZeroShotSegmenter

ENSEMBLE = dict(mode='maskclip', templates=('{}',), logit_scale=40.0)
TEXTS = {'denseclip': None, 'clip-fpn': None,
         # no synonyms: mmseg's path pools them before its last resize, the lean one after
         'denseclip-agnostic': ['pink', 'grass', 'sky', 'blue thing', 'water', 'rose']}


def samples_with_padding_and_flips() -> list[SegDataSample]:
    """Two images of a (2, 3, 64, 72) batch: the first padded on three sides and flipped
    horizontally, the second unpadded, flipped vertically and resized back to another size."""
    return [SegDataSample(metainfo=dict(ori_shape=(50, 47), img_shape=(56, 60),
                                        pad_shape=(64, 72), padding_size=[4, 8, 0, 8],
                                        flip=True, flip_direction='horizontal')),
            SegDataSample(metainfo=dict(ori_shape=(80, 90), img_shape=(64, 72),
                                        pad_shape=(64, 72), padding_size=[0, 0, 0, 0],
                                        flip=True, flip_direction='vertical'))]


@pytest.mark.parametrize('mode', ['whole', 'slide'])
@pytest.mark.parametrize('method', sorted(SYNTHETIC))
def test_lean_prediction_matches_mmseg_inference(method, mode):
    model = build(SYNTHETIC[method]).eval()
    if mode == 'slide':
        model.test_cfg = ConfigDict(mode='slide', crop_size=(32, 40), stride=(24, 16))
    inputs = torch.randn(2, 3, 64, 72, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        lean = model.predict(inputs, samples_with_padding_and_flips(), texts=TEXTS[method])
        model.with_seg_logits = True
        full = model.predict(inputs, samples_with_padding_and_flips(), texts=TEXTS[method])
    for ours, mmseg in zip(lean, full):
        assert 'seg_logits' not in ours and 'seg_logits' in mmseg
        assert ours.pred_sem_seg.data.shape == mmseg.pred_sem_seg.data.shape
        assert torch.equal(ours.pred_sem_seg.data, mmseg.pred_sem_seg.data)
    # the flips were undone: an unflipped call differs
    unflipped = samples_with_padding_and_flips()
    unflipped[0].set_metainfo(dict(flip=False))
    model.with_seg_logits = False
    with torch.no_grad():
        plain = model.predict(inputs, unflipped, texts=TEXTS[method])
    assert torch.equal(plain[0].pred_sem_seg.data.flip(-1), lean[0].pred_sem_seg.data)


def test_segment_labels_do_not_depend_on_return_probs():
    model = build(SYNTHETIC['denseclip-agnostic']).eval()
    model.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(20, 20))
    images = torch.randn(2, 3, 48, 56)
    texts = ['pink', 'purple; violet', 'grass', 'sky']
    with_probs = model.segment(images, texts, out_size=(30, 40))
    lean = model.segment(images, texts, out_size=(30, 40), return_probs=False)
    for a, b in zip(with_probs, lean):
        assert b.class_probs is None and torch.equal(a.labels, b.labels)
        assert torch.equal(a.labels, a.class_probs.argmax(0))


def test_slide_region_is_a_crop_of_the_average():
    images = torch.randn(1, 3, 40, 52)
    fn = lambda x: F.avg_pool2d(x, 4)   # noqa: E731
    full = score_slide(fn, images, SlideWindows((24, 32), (12, 20)), pad_to=4)
    region = (3, 5, 30, 41)
    cropped = SlideScores(full.windows, full.image_size, region=region)
    assert cropped.size == (30, 41)
    assert torch.equal(cropped.average(1, 3), full.average(1, 3)[..., 3:33, 5:46])
    with pytest.raises(ValueError, match='not inside'):
        SlideScores(full.windows, full.image_size, region=(0, 0, 41, 52))
    with pytest.raises(ValueError, match=r'\(h, w\) pair'):
        SlideWindows((24, 0), 8)


def test_window_sample_reads_the_upsampled_map():
    images = torch.randn(2, 3, 50, 37)
    window = score_window(lambda x: F.avg_pool2d(x, 8), images, 8)   # padded to 56 x 40
    assert torch.allclose(window.sample((50, 37)), window.expand(), atol=1e-6)
    # a 5x coarser grid's cell centres are the pixels 2, 7, 12, ... of the window
    assert torch.allclose(window.sample((10, 37)), window.expand()[:, :, 2::5], atol=1e-6)


# ----- the ensemble ----------------------------------------------------------------------------

def test_geometric_ensemble_formula():
    head, clip = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    weight = torch.tensor([0.0, 1.0, 0.25])
    out = geometric_ensemble(head, clip, weight)
    log_head, log_clip = head.log_softmax(1), clip.log_softmax(1)
    assert torch.allclose(out[:, 0], log_head[:, 0])
    assert torch.allclose(out[:, 1], log_clip[:, 1])
    assert torch.allclose(out[:, 2], 0.75 * log_head[:, 2] + 0.25 * log_clip[:, 2])


def agnostic(**ensemble):
    return build(SYNTHETIC['denseclip-agnostic'], clip_ensemble=dict(ENSEMBLE, **ensemble)).eval()


def test_ensemble_limits_are_the_head_and_the_frozen_clip():
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    texts = ['pink', 'purple', 'grass', 'sky', 'red']
    head_only = build(SYNTHETIC['denseclip-agnostic'], clip_ensemble=None).eval()
    no_clip = agnostic(seen_weight=0.0, unseen_weight=0.0)
    expected = head_only.segment(images, texts, return_probs=False)[0].labels
    assert torch.equal(no_clip.segment(images, texts, return_probs=False)[0].labels, expected)

    only_clip = agnostic(seen_weight=1.0, unseen_weight=1.0)
    frozen = ZeroShotSegmenter(model_name='test-denseclip-vit8', mode='maskclip',
                               templates=('{}',), logit_scale=40.0, slide=None)
    frozen.clip.load_state_dict(only_clip.clip_ensemble.scorer.clip.state_dict())
    with torch.no_grad():
        scores = frozen.score_maps(images, frozen.vocabulary(texts))   # stride 8
    on_head_grid = F.interpolate(scores, size=(16, 16), mode='bilinear', align_corners=False)
    expected = F.interpolate(on_head_grid.log_softmax(1), size=(64, 64), mode='bilinear',
                             align_corners=False).argmax(1)[0]
    got = only_clip.segment(images, texts, return_probs=False)[0].labels
    assert torch.equal(got, expected)


def test_ensemble_weighs_clip_by_whether_the_head_trained_on_the_name():
    model = agnostic(seen_weight=0.0, unseen_weight=1.0)
    texts = ['pink', 'grass', 'purple', 'red']     # pink, purple: not in the training vocabulary
    images = torch.randn(1, 3, 64, 64)
    vocab = model.vocabulary(texts)
    with torch.no_grad():
        head = model.decode_head.forward(model._decode(images, vocab)[2])
        logits = model.window_logits(images, vocab)
    log_head = head.log_softmax(1)
    assert torch.allclose(logits[:, [1, 3]], log_head[:, [1, 3]], atol=1e-6)
    assert not torch.allclose(logits[:, [0, 2]], log_head[:, [0, 2]], atol=1e-3)
    assert set(SEEN) >= {'grass', 'red'} and not {'pink', 'purple'} & set(SEEN)


def test_ensemble_needs_the_agnostic_variant_and_weights_in_range():
    with pytest.raises(ValueError, match='vocabulary-agnostic'):
        build(SYNTHETIC['denseclip'], clip_ensemble=ENSEMBLE)
    with pytest.raises(ValueError, match=r'unseen_weight.*\[0, 1\]'):
        agnostic(unseen_weight=1.5)


def test_ensemble_copies_clip_weights_and_keeps_them_out_of_checkpoints():
    model = agnostic()
    frozen = model.clip_ensemble.scorer.clip
    # a copy of CLIP as it was before fine-tuning: the text tower the context encoder froze
    assert torch.equal(frozen.token_embedding.weight,
                       model.core.text_encoder.token_embedding.weight)
    assert frozen.visual is not model.image_encoder.visual
    # not part of the model: no state-dict keys, no parameters for the optimiser
    assert not any('clip_ensemble' in k for k in model.state_dict())
    assert not any('clip_ensemble' in n for n, _ in model.named_parameters())
    # a checkpoint of the model restores it, the frozen CLIP coming from the build
    restored = agnostic()
    restored.load_state_dict(model.state_dict())
    assert restored.clip_ensemble.weights_loaded
    # it follows the inputs to their dtype and device
    images = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        out = model.double().segment(images, ['pink', 'grass'], return_probs=False)
    assert out[0].labels.shape == (64, 64)


def test_frozen_clip_loads_its_weights_when_first_needed(tmp_path):
    head = torch.randn(1, 2, 16, 16)
    images = torch.randn(1, 3, 64, 64)
    without = FrozenCLIPEnsemble(model_name='test-denseclip-vit8', **ENSEMBLE)
    assert not without.weights_loaded    # a random zoo model, no weights given
    with pytest.raises(RuntimeError, match='has no weights: set model.clip.pretrained'):
        without(images, head, ['pink', 'grass'], seen={'grass'})

    torch.manual_seed(1)
    source = open_clip.CLIP(**MODEL_ZOO['test-denseclip-vit8'].config)
    weights = tmp_path / 'clip.pt'
    torch.save(source.state_dict(), weights)
    ensemble = FrozenCLIPEnsemble(model_name='test-denseclip-vit8', pretrained=str(weights),
                                  **ENSEMBLE)
    assert not ensemble.weights_loaded
    assert ensemble(images, head, ['pink', 'grass'], seen={'grass'}).shape == (1, 2, 16, 16)
    assert ensemble.weights_loaded
    assert torch.equal(ensemble.scorer.clip.visual.conv1.weight, source.visual.conv1.weight)
    # load_from replaces them, text embeddings included
    before = ensemble.scorer.vocabulary(['pink']).embeddings.clone()
    torch.manual_seed(2)
    ensemble.load_from(open_clip.CLIP(**MODEL_ZOO['test-denseclip-vit8'].config))
    assert not torch.allclose(ensemble.scorer.vocabulary(['pink']).embeddings, before)


def test_text_embeddings_follow_new_clip_weights():
    segmenter = ZeroShotSegmenter(model_name='test-denseclip-vit8', templates=('{}',))
    before = segmenter.vocabulary(['pink']).embeddings.clone()
    torch.manual_seed(3)
    source = open_clip.CLIP(**MODEL_ZOO['test-denseclip-vit8'].config).eval()
    segmenter.load_state_dict({f'clip.{k}': v for k, v in source.state_dict().items()},
                              strict=False)
    assert not segmenter.random_weights
    with torch.no_grad():
        expected = F.normalize(source.encode_text(segmenter.text.tokenizer(['pink'])), dim=-1)
    after = segmenter.vocabulary(['pink']).embeddings
    assert not torch.allclose(after, before)
    assert torch.allclose(after, expected, atol=1e-5)


def test_pending_clip_weights_reach_the_ensemble(tmp_path):
    model = agnostic()
    torch.manual_seed(2)
    source = open_clip.CLIP(**MODEL_ZOO['test-denseclip-vit8'].config)
    weights = tmp_path / 'clip.pt'
    torch.save(source.state_dict(), weights)
    model._pending_clip = dict(model_name='test-denseclip-vit8', pretrained=str(weights))
    model.load_clip_weights()
    frozen = model.clip_ensemble.scorer.clip
    assert torch.equal(frozen.visual.conv1.weight, source.visual.conv1.weight)
    assert frozen.visual.positional_embedding.shape == source.visual.positional_embedding.shape


def test_tune_tool_picks_the_best_held_in_pair(tmp_path, capsys):
    root = write_dataset(tmp_path / 'data', counts=dict(train=2, test=4, novel=4), progress=False)
    model = agnostic()
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    _tool('tune_clip_ensemble').main([
        str(SYNTHETIC['denseclip-agnostic']), str(checkpoint),
        '--split', 'images/test:annotations/test', '--split', 'images/novel:annotations/novel',
        '--seen-weights', '0.0', '--unseen-weights', '0.0', '1.0',
        '--cfg-options', 'model.clip.model_name=test-denseclip-vit8',
        f'test_dataloader.dataset.data_root={root}'])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line for line in lines if line.startswith('seen ')]
    assert len(rows) == 2 and lines[-1].startswith('RESULT seen_weight=0.0 unseen_weight=')
    held_in = [float(row.split('held-in mean ')[1].split(':')[0]) for row in rows]
    best = ('0.0', '1.0')[int(held_in[1] > held_in[0])]
    assert f'unseen_weight={best} ' in lines[-1]
    assert all('test ' in row and 'novel ' in row and 'others' in row for row in rows)
