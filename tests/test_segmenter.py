import pytest
import torch
import torch.nn.functional as F

from densevl.models.inference_protocol import SlideWindows
from densevl.models.segmentors import (
    DensePredictor,
    SlideScores,
    ZeroShotSegmenter,
    dense_predictor,
    score_slide,
    score_window,
)
from densevl.models.text import Vocabulary


def patch_mean(images, patch=16):
    """A stand-in dense scorer: per-patch channel means as a 3-query score map."""
    return F.avg_pool2d(images, patch)


def window_score_map(score_fn, images, patch_size):
    return score_window(score_fn, images, patch_size).expand()


def slide_windows(score_fn, images, *, crop, stride, patch_size):
    return score_slide(score_fn, images, SlideWindows(crop, stride), pad_to=patch_size)


def slide_score_map(score_fn, images, **kwargs):
    return slide_windows(score_fn, images, **kwargs).average()


def vocabulary_of(query_to_class):
    classes = int(query_to_class.max()) + 1
    return Vocabulary([f'class {k}' for k in range(classes)],
                      [f'query {q}' for q in range(len(query_to_class))], query_to_class)


def predicted(predictor, images, score_fn, query_to_class, **kwargs):
    """The predictor's labels ``(B, H, W)`` and class probabilities ``(B, K, H, W)`` or None."""
    results = predictor.predict(images, score_fn, vocabulary_of(query_to_class), **kwargs)
    labels = torch.stack([r.labels for r in results])
    probs = None if results[0].class_probs is None \
        else torch.stack([r.class_probs for r in results])
    return labels, probs


def assign_labels(scores, query_to_class, *, logit_scale, out_size=None, return_probs=True,
                  **kwargs):
    """The dense predictor's labels (and probabilities) of a precomputed low-resolution map."""
    predictor = DensePredictor(None, logit_scale=logit_scale)
    return predicted(predictor, torch.zeros(scores.shape[0], 3, 1, 1), lambda images: scores,
                     query_to_class, out_size=out_size or tuple(scores.shape[-2:]),
                     return_probs=return_probs, **kwargs)


def test_window_pads_to_whole_patches_and_crops_back():
    images = torch.randn(1, 3, 40, 50)
    scores = window_score_map(patch_mean, images, patch_size=16)
    assert scores.shape == (1, 3, 40, 50)
    padded = F.pad(images, (7, 7, 4, 4))    # 50 -> 64 (7 | 7), 40 -> 48 (4 | 4)
    expected = F.interpolate(patch_mean(padded), size=(48, 64), mode='bilinear')[..., 4:44, 7:57]
    assert torch.allclose(scores, expected)


def test_slide_averages_windows_covering_every_pixel():
    images = torch.randn(2, 3, 70, 100)
    got = slide_score_map(patch_mean, images, crop=48, stride=32, patch_size=16)
    total = torch.zeros(2, 3, 70, 100)
    count = torch.zeros(1, 1, 70, 100)
    for y1 in (0, 22):               # rows: 0..48, then shifted in to 22..70
        for x1 in (0, 32, 52):       # cols: 0, 32, then 52..100
            window = images[..., y1:y1 + 48, x1:x1 + 48]
            total[..., y1:y1 + 48, x1:x1 + 48] += window_score_map(patch_mean, window, 16)
            count[..., y1:y1 + 48, x1:x1 + 48] += 1
    assert torch.allclose(got, total / count)


def test_small_image_is_one_window():
    images = torch.randn(1, 3, 20, 30)
    got = slide_score_map(patch_mean, images, crop=48, stride=32, patch_size=16)
    assert torch.allclose(got, window_score_map(patch_mean, images, 16))


def test_assign_labels_pools_synonyms_after_the_softmax():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]).T.reshape(1, 3, 1, 2)
    labels, probs = assign_labels(scores, torch.tensor([0, 1, 1]), logit_scale=10.0)
    full = torch.softmax(scores * 10.0, dim=1)
    assert torch.allclose(probs[:, 0], full[:, 0])
    assert torch.allclose(probs[:, 1], full[:, 1:].amax(dim=1))
    assert labels.tolist() == [[[0, 1]]]


def test_assign_labels_threshold_and_upsampling():
    scores = torch.zeros(1, 4, 2, 2)
    scores[0, 2, 0, 0] = 1.0
    labels, probs = assign_labels(scores, torch.arange(4), logit_scale=10.0, out_size=(4, 4),
                                  prob_threshold=0.5, background_index=-1)
    assert labels.shape == (1, 4, 4) and probs.shape == (1, 4, 4, 4)
    assert labels[0, 0, 0] == 2            # a confident pixel keeps its class
    assert labels[0, 3, 3] == -1           # a uniform pixel (p = 0.25) is rejected


@pytest.fixture(scope='module')
def segmenter():
    return ZeroShotSegmenter(model_name='clip-tiny-random', mode='sclip',
                             templates=['a photo of a {}.'], slide=dict(crop=64, stride=32))


def test_vocabulary_at_call_time(segmenter):
    images = torch.randn(1, 3, 80, 96)
    three = segmenter.segment(images, ['cat', 'dog; puppy', 'grass'])[0]
    assert three.labels.shape == (80, 96) and three.class_probs.shape == (3, 80, 96)
    assert int(three.labels.max()) < 3
    five = segmenter.segment(images, ['a', 'b', 'c', 'd', 'e'], out_size=(40, 48))[0]
    assert five.class_probs.shape == (5, 40, 48)
    assert torch.allclose(five.class_probs.sum(0), torch.ones(40, 48), atol=1e-5)


def test_bad_vocabulary_is_refused(segmenter):
    with pytest.raises(ValueError, match='empty'):
        segmenter.segment(torch.randn(1, 3, 64, 64), [])
    with pytest.raises(ValueError, match='duplicate'):
        segmenter.segment(torch.randn(1, 3, 64, 64), ['cat', 'Cat'])


@pytest.mark.parametrize('threshold', [0.0, 0.3])
def test_labels_without_probabilities_are_the_same(threshold):
    torch.manual_seed(0)
    scores = torch.randn(2, 7, 5, 6) * 0.1
    query_to_class = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    kwargs = dict(logit_scale=40.0, out_size=(11, 13), prob_threshold=threshold,
                  background_index=-1)
    with_probs, probs = assign_labels(scores, query_to_class, **kwargs)
    lean, none = assign_labels(scores, query_to_class, return_probs=False, **kwargs)
    assert none is None and probs.shape == (2, 4, 11, 13)
    assert torch.equal(with_probs, lean)
    if threshold:
        assert (lean == -1).any() and (lean >= 0).any()


# ---- memory-bounded prediction: the same labels as the materialising path -------------------

def test_slide_windows_average_any_query_range_like_the_whole_map():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 70, 100)
    whole = slide_score_map(patch_mean, images, crop=48, stride=32, patch_size=16)
    windows = slide_windows(patch_mean, images, crop=48, stride=32, patch_size=16)
    assert windows.num_queries == 3 and windows.size == (70, 100)
    assert torch.equal(windows.average(), whole)
    assert torch.equal(windows.average(1, 3), whole[:, 1:3])


def materialised_labels(dense, query_to_class, logit_scale, out_size, threshold, background):
    """The lean path as it was: upsample every query, argmax, threshold on max probability."""
    up = F.interpolate(dense, size=out_size, mode='bilinear', align_corners=False)
    best, best_query = up.max(dim=1)
    labels = query_to_class[best_query]
    max_prob = torch.exp(best * logit_scale - torch.logsumexp(up * logit_scale, dim=1))
    labels[max_prob < threshold] = background
    return labels, up


@pytest.mark.parametrize('out_size', [(70, 100), (33, 41), (140, 200)])
@pytest.mark.parametrize('threshold', [0.0, 0.2])
def test_slide_labels_in_query_chunks_equal_the_materialised_ones(monkeypatch, out_size,
                                                                  threshold):
    torch.manual_seed(1)
    images = torch.randn(2, 3, 70, 100)
    weights = torch.randn(11, 3)
    score_fn = lambda x: torch.einsum('bchw,qc->bqhw', patch_mean(x), weights)
    query_to_class = torch.tensor([0, 0, 1, 2, 2, 3, 4, 5, 5, 5, 6])
    windows = slide_windows(score_fn, images, crop=48, stride=32, patch_size=16)
    expected, up = materialised_labels(windows.average(), query_to_class, 10.0, out_size,
                                       threshold, -1)
    kwargs = dict(out_size=out_size, prob_threshold=threshold, background_index=-1,
                  return_probs=False)
    # 2 x 70 x 100 float32 = 56 kB per query: chunks of 4 queries (4, 4, 3).
    monkeypatch.setattr(dense_predictor, 'SLIDE_CHUNK_BYTES', 4 * 2 * 70 * 100 * 4)
    monkeypatch.setattr(SlideScores, 'average', _refuse_all_queries(SlideScores.average))
    sliding = DensePredictor(SlideWindows(48, 32), pad_to=16, logit_scale=10.0)
    chunked, _ = predicted(sliding, images, score_fn, query_to_class, **kwargs)
    monkeypatch.undo()
    whole, _ = assign_labels(windows.average(), query_to_class, logit_scale=10.0, **kwargs)
    if out_size == (70, 100):   # no upsampling: only the argmax, exactly
        assert torch.equal(chunked, expected) and torch.equal(whole, expected)
    else:                       # equal up to the rounding of the interpolation
        top2 = up.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1]) > 1e-5
        assert clear.float().mean() > 0.95
        assert torch.equal(chunked[clear], expected[clear])
        assert torch.equal(whole[clear], expected[clear])
    if threshold:
        assert (chunked == -1).any() and (chunked >= 0).any()


def test_best_query_whole_image_uses_the_fused_op():
    torch.manual_seed(2)
    scores = torch.randn(1, 5, 4, 6)
    query, max_prob = DensePredictor(None, logit_scale=20.0).best_query(scores, (16, 24))
    up = F.interpolate(scores, size=(16, 24), mode='bilinear', align_corners=False)
    assert query.shape == (1, 16, 24)
    torch.testing.assert_close(max_prob, torch.softmax(up * 20.0, dim=1).amax(1), atol=1e-5,
                               rtol=0)


def test_segment_without_probabilities_never_materialises_them(segmenter, monkeypatch):
    torch.manual_seed(3)
    images = torch.randn(1, 3, 80, 96)
    names = ['cat', 'dog; puppy', 'grass', 'sky']
    with_probs = segmenter.segment(images, names, prob_threshold=0.3, background_index=-1)[0]
    # Sliding windows are then only averaged a chunk of queries at a time.
    monkeypatch.setattr(dense_predictor, 'SLIDE_CHUNK_BYTES', 2 * 80 * 96 * 4)
    monkeypatch.setattr(SlideScores, 'average', _refuse_all_queries(SlideScores.average))
    lean = segmenter.segment(images, names, prob_threshold=0.3, background_index=-1,
                             return_probs=False)[0]
    assert lean.class_probs is None
    assert torch.equal(lean.labels, with_probs.labels)


def _refuse_all_queries(average):
    def guarded(self, start=0, stop=None):
        assert (stop or self.num_queries) - start < self.num_queries, 'materialised every query'
        return average(self, start, stop)
    return guarded


@pytest.mark.openmmlab
def test_mmseg_adapter_predicts_without_seg_logits():
    from densevl.models.segmentors.training_free import TrainingFreeSegmentor

    kwargs = dict(clip=dict(model_name='clip-tiny-random'), mode='sclip',
                  class_names=['cat', 'dog', 'sky'], templates=['a photo of a {}.'],
                  slide=dict(crop=64, stride=32))
    images = torch.randn(1, 3, 80, 96)
    lean = TrainingFreeSegmentor(**kwargs).predict(images)[0]
    full = TrainingFreeSegmentor(with_seg_logits=True, **kwargs).predict(images)[0]
    assert 'seg_logits' not in lean and full.seg_logits.data.shape == (3, 80, 96)
    assert torch.equal(lean.pred_sem_seg.data, full.pred_sem_seg.data)
