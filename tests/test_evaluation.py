import numpy as np
import pytest
import torch

from densevl.evaluation import class_iou, mean_iou, presence_auc, uniform_chance_iou


def test_presence_auc():
    present = np.array([1, 1, 0, 0, 0])
    assert presence_auc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), present) == 1.0
    assert presence_auc(np.array([0.1, 0.2, 0.9, 0.8, 0.7]), present) == 0.0
    assert presence_auc(np.ones(5), present) == 0.5
    # one positive above one of three negatives: (1 + 0.5 * 0) / 3 for the tie-free case
    assert presence_auc(np.array([0.5, 0.5, 0.4, 0.6, 0.7]), present) == pytest.approx(1 / 3)
    assert np.isnan(presence_auc(np.ones(3), np.ones(3)))


def test_uniform_chance_matches_simulation():
    rng = np.random.default_rng(0)
    labels = rng.choice(4, size=200_000, p=[0.5, 0.3, 0.2, 0.0])
    preds = rng.integers(0, 4, size=labels.size)
    simulated = [((labels == c) & (preds == c)).sum() / ((labels == c) | (preds == c)).sum()
                 for c in range(3)]
    expected = uniform_chance_iou(np.bincount(labels, minlength=4))
    assert np.allclose(expected[:3], simulated, atol=0.005)
    assert np.isnan(expected[3])


def test_class_and_mean_iou():
    areas = [(torch.tensor([2, 0, 1]), torch.tensor([4, 0, 2]), None, None),
             (torch.tensor([2, 0, 0]), torch.tensor([4, 0, 2]), None, None)]
    iou = class_iou(areas)
    assert iou[0] == 0.5 and np.isnan(iou[1]) and iou[2] == 0.25
    assert mean_iou(iou) == pytest.approx(37.5)
    assert mean_iou(iou, [2]) == pytest.approx(25.0)
