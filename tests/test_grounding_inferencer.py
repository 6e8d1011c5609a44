"""GroundingInferencer end to end on tiny models: the detector slot, the fallback to proposals,
bad input, the demo figure."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from densevl.apis import Detections, GroundingInferencer, GroundingPrediction
from densevl.apis.grounding_inferencer import subject_phrase
from densevl.models.grounding import OfflineExpressionParser

ROOT = Path(__file__).resolve().parents[1]
DET_CONFIG = str(ROOT / 'configs' / 'denseclip'
                 / 'mask-rcnn_denseclip_clip-synthetic-tiny_400it_synthetic-128.py')
NAMES = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white']


class FixedDetector:
    """A detector slot returning given detections."""

    def __init__(self, boxes, labels, scores) -> None:
        self.detections = Detections(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                     torch.tensor(labels, dtype=torch.long),
                                     torch.tensor(scores, dtype=torch.float32), list(NAMES))
        self.calls = 0

    @property
    def class_names(self) -> list[str]:
        return list(NAMES)

    def run(self, image):
        self.calls += 1
        return self.detections


@pytest.fixture(scope='module')
def image():
    return np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def real_detector():
    return GroundingInferencer('clip-tiny-random', detector=DET_CONFIG, device='cpu')


def test_end_to_end_with_a_densevl_detector_config(real_detector, image, tmp_path):
    out = real_detector(image, ['the red star', 'the small blue ring on the left'],
                        out_dir=tmp_path)
    assert real_detector.is_random_weights
    assert len(out['predictions']) == 2 and len(out['visualization']) == 2
    for pred in out['predictions']:
        assert isinstance(pred, GroundingPrediction)
        assert pred.heat_map.shape == (64, 80) and pred.box.shape == (4,)
        n = len(pred.candidates)
        assert n >= 1 and pred.candidate_scores.shape == (n,) == pred.detector_scores.shape
        assert pred.category in NAMES
        assert pred.score == pytest.approx(float(pred.candidate_scores.max()), rel=1e-5)
    assert (tmp_path / 'image_0_ground0.png').is_file()


def test_detector_boxes_of_the_category_and_one_detector_forward(image):
    det = FixedDetector([[0, 0, 20, 20], [40, 30, 70, 60], [10, 10, 30, 30]], [0, 0, 4],
                        [0.9, 0.5, 0.8])
    ground = GroundingInferencer('clip-tiny-random', detector=det, device='cpu')
    out = ground(image, ['the object', 'the thing', 'the shape'],
                 gt_categories=['red', 0, 'blue'])
    assert det.calls == 1
    red, _, blue = out['predictions']
    assert not red.fallback and len(red.candidates) == 2
    assert red.detector_scores.tolist() == pytest.approx([0.9, 0.5])
    assert not blue.fallback and blue.box.tolist() == [10, 10, 30, 30]
    # g_i = d_i * sum(H in box) / sqrt(area)
    heat = red.heat_map
    expected = 0.9 * heat[0:20, 0:20].sum() / 20.0
    assert float(red.candidate_scores[0]) == pytest.approx(float(expected), rel=1e-4)


def test_fallback_to_proposals_when_nothing_is_found(image):
    det = FixedDetector([[0, 0, 20, 20], [40, 30, 70, 60]], [0, 1], [0.2, 0.1])
    ground = GroundingInferencer('clip-tiny-random', detector=det, device='cpu')
    pred = ground(image, ['the green circle'], gt_categories=['green'])['predictions'][0]
    assert pred.fallback and len(pred.candidates) == 2
    assert pred.detector_scores.tolist() == [1.0, 1.0]
    # below the threshold: fallback too; no noun: unknown category, fallback
    assert ground(image, ['the red circle'], gt_categories=['red'],
                  score_threshold=0.5)['predictions'][0].fallback
    pred = ground(image, ['very small'])['predictions'][0]
    assert pred.subject is None and pred.category is None and pred.fallback
    # nothing at all: the whole image
    empty = GroundingInferencer('clip-tiny-random', detector=FixedDetector([], [], []),
                                device='cpu')
    pred = empty(image, ['the red star'])['predictions'][0]
    assert pred.fallback and pred.box.tolist() == [0, 0, 80, 64]


def test_bad_input(image):
    ground = GroundingInferencer('clip-tiny-random', detector=FixedDetector([], [], []),
                                 device='cpu')
    with pytest.raises(ValueError, match='empty'):
        ground(image, ['  '])
    with pytest.raises(ValueError, match='no expressions'):
        ground(image, [])
    with pytest.raises(ValueError, match='not in the vocabulary'):
        ground(image, ['the cat'], gt_categories=['cat'])
    with pytest.raises(ValueError, match='ground-truth categories'):
        ground(image, ['the cat', 'the dog'], gt_categories=['red'])
    with pytest.raises(TypeError, match='cannot use'):
        GroundingInferencer('clip-tiny-random', detector=42, device='cpu')
    with pytest.raises(ValueError, match='category_from'):
        GroundingInferencer('clip-tiny-random', detector=FixedDetector([], [], []),
                            category_from='word')


def test_subject_phrase():
    parse = OfflineExpressionParser().parse
    assert subject_phrase(parse('the large red star left of the blue ring')) == 'large red star'
    assert subject_phrase(parse('man in red shirt on the left')) == 'man'
    assert subject_phrase(parse('very small')) is None


def test_demo_writes_the_grounding_figure(tmp_path, image):
    spec = importlib.util.spec_from_file_location('image_demo', ROOT / 'demo' / 'image_demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    path = tmp_path / 'scene.png'
    Image.fromarray(image).save(path)
    out_file = tmp_path / 'scene_ground.png'
    assert demo.main([str(path), '--task', 'ground', '--query', 'the red star',
                      '--model', 'clip-tiny-random', '--detector', DET_CONFIG,
                      '--out-file', str(out_file)]) == 0
    figure = np.asarray(Image.open(out_file))
    assert figure.shape[0] > 256 and figure.shape[1] > 2 * 256
    assert demo.main([str(path), '--task', 'ground', '--detector', DET_CONFIG]) == 2
    assert demo.main([str(path), '--task', 'ground', '--query', 'the red star']) == 2
    assert demo.run([str(path), '--task', 'ground', '--query', 'the red star',
                     '--model', 'clip-tiny-random', '--detector', DET_CONFIG,
                     '--category', 'cat', '--out-file', str(out_file)]) == 2
