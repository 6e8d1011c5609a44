"""ReCoIoUMetric on label maps small enough to score by hand, and where it parts from mmseg's
IoUMetric."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine import Config
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

import densevl.datasets.mm_datasets  # noqa: F401  (registers ReCoIoUMetric)
from densevl.datasets.coco_stuff27 import COARSE_CLASSES, FINE_CLASSES, FINE_TO_COARSE
from densevl.evaluation import ReCoIoUMetric, confusion_scores

X = 255   # the ignore label (ReCo's -1)
DATASET_BASES = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'datasets'


def _score(metric, pairs, num_classes: int, **meta) -> dict:
    """``metric`` over (prediction, label) pairs of 2-D lists, as the evaluator runs it."""
    metric.dataset_meta = dict(classes=[f'c{k}' for k in range(num_classes)], **meta)
    metric.results.clear()
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.tensor(p)[None]),
                             gt_sem_seg=dict(data=torch.tensor(g)[None])) for p, g in pairs])
    return dict(metric.compute_metrics(metric.results))


def _both(pairs, num_classes: int) -> tuple[dict, dict]:
    ours = _score(ReCoIoUMetric(), pairs, num_classes)
    theirs = _score(IoUMetric(iou_metrics=['mIoU']), pairs, num_classes)
    return ours, theirs


def _close(scores: dict, **expected: float) -> None:
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=0.005), key   # mmseg rounds to 0.01


def test_ignored_pixels_and_a_class_absent_from_both():
    label = [[0, 0, 1, X],
             [1, 1, X, X]]
    pred = [[0, 1, 1, 2],
            [1, 0, 2, 0]]
    # scored (label != X): (l0,p0) (l0,p1) (l1,p1) (l1,p1) (l1,p0); the two 2s lie on ignored
    # pixels, so class 2 is neither labelled nor predicted: NaN, out of the mean.
    # IoU0 = 1 / (2 + 2 - 1) = 1/3, IoU1 = 2 / (3 + 3 - 2) = 1/2 -> mIoU = 5/12
    # aAcc = 3/5; Acc0 = 1/2, Acc1 = 2/3 -> mAcc = 7/12
    ours, theirs = _both([(pred, label)], 3)
    _close(ours, aAcc=60.0, mIoU=500 / 12, mAcc=700 / 12)
    _close(theirs, aAcc=60.0, mIoU=500 / 12, mAcc=700 / 12)


def test_predicted_but_absent_counts_zero():
    label = [[0, 0],
             [0, X]]
    pred = [[0, 2],
            [0, 1]]
    # scored: (l0,p0) x2, (l0,p2). Class 1 is predicted only on an ignored pixel: NaN. Class 2
    # is predicted once, never labelled: IoU 0, counted. IoU0 = 2 / (3 + 2 - 2) = 2/3
    # -> mIoU = (2/3 + 0) / 2 = 1/3; aAcc = 2/3; Acc0 = 2/3 only -> mAcc = 2/3
    ours, theirs = _both([(pred, label)], 3)
    _close(ours, aAcc=200 / 3, mIoU=100 / 3, mAcc=200 / 3)
    _close(theirs, aAcc=200 / 3, mIoU=100 / 3, mAcc=200 / 3)
    iou = confusion_scores(np.array([[2, 0, 1], [0, 0, 0], [0, 0, 0]]))['iou']
    assert iou[0] == pytest.approx(2 / 3) and np.isnan(iou[1]) and iou[2] == 0


def test_one_confusion_over_the_split_not_a_mean_of_images():
    # image A: labels 0 0, predicted 0 0; image B: labels 1 1, predicted 0 1.
    # summed: (l0,p0) x2, (l1,p0), (l1,p1): IoU0 = 2 / (2 + 3 - 2) = 2/3, IoU1 = 1 / (2 + 1 - 1)
    # = 1/2 -> mIoU = 7/12 (a mean of per-image mIoUs would give (1 + 1/4) / 2 = 5/8); aAcc 3/4
    pairs = [([[0, 0]], [[0, 0]]), ([[0, 1]], [[1, 1]])]
    ours, theirs = _both(pairs, 2)
    _close(ours, aAcc=75.0, mIoU=700 / 12, mAcc=75.0)
    _close(theirs, aAcc=75.0, mIoU=700 / 12, mAcc=75.0)


def test_label_outside_the_classes_differs_from_mmseg():
    # label 7 in a 2-class map (not the ignore label, e.g. a raw id left unfolded)
    label = [[0, 1, 7]]
    pred = [[0, 1, 1]]
    # ReCo ignores the pixel: a perfect score. IoUMetric keeps it: it is not in class 1's label
    # area but its prediction is in class 1's predicted area, so union1 = 2 + 1 - 1 = 2 and
    # IoU1 = 1/2 -> mIoU 75; aAcc and mAcc, which only count labelled pixels, stay 100.
    ours, theirs = _both([(pred, label)], 2)
    _close(ours, aAcc=100.0, mIoU=100.0, mAcc=100.0)
    _close(theirs, aAcc=100.0, mIoU=75.0, mAcc=100.0)


def test_prediction_outside_the_classes_raises_where_mmseg_counts_a_miss():
    pairs = [([[0, 5]], [[0, 1]])]
    # IoUMetric drops the 5 from the predicted areas and counts the label-1 pixel as missed:
    # IoU1 = 0 / (0 + 1 - 0) = 0 -> mIoU 50, aAcc 50
    _close(_score(IoUMetric(), pairs, 2), aAcc=50.0, mIoU=50.0)
    with pytest.raises(ValueError, match='needs fine_to_coarse'):
        _score(ReCoIoUMetric(), pairs, 2)


def test_fine_predictions_folded_to_coarse():
    # fine 0 -> coarse 0, fine 1 and 2 -> coarse 1
    label = [[0, 1, 1, 0]]
    pred = [[0, 1, 2, 2]]             # folded: 0 1 1 1
    # (l0,p0) (l1,p1) (l1,p1) (l0,p1): IoU0 = 1 / (2 + 1 - 1) = 1/2, IoU1 = 2 / (2 + 3 - 2) =
    # 2/3 -> mIoU = 7/12; aAcc = 3/4; Acc0 = 1/2, Acc1 = 1 -> mAcc = 3/4
    scores = _score(ReCoIoUMetric(fine_to_coarse=[0, 1, 1]), [(pred, label)], 2)
    _close(scores, aAcc=75.0, mIoU=700 / 12, mAcc=75.0)
    with pytest.raises(ValueError, match='fine_to_coarse maps 3 fine classes'):
        _score(ReCoIoUMetric(fine_to_coarse=[0, 1, 1]), [([[3]], [[0]])], 2)


def test_fine_to_coarse_from_the_dataset():
    # ReCo's COCO-Stuff-27: predictions index the 171 fine names
    tree, sky, tv = (FINE_CLASSES.index(n) for n in ('tree', 'sky other', 'tv'))
    plant, sky_coarse = COARSE_CLASSES.index('plant'), COARSE_CLASSES.index('sky')
    label = [[plant, sky_coarse, plant]]
    pred = [[tree, sky, tv]]          # tv folds to 'electronic', labelled nowhere: IoU 0
    metric = ReCoIoUMetric(fine_to_coarse='dataset')
    metric.dataset_meta = dict(classes=COARSE_CLASSES, fine_to_coarse=FINE_TO_COARSE)
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]),
                             gt_sem_seg=dict(data=torch.tensor(label)[None]))])
    scores = metric.compute_metrics(metric.results)
    # IoU plant = 1 / (2 + 1 - 1) = 1/2, sky 1, electronic 0 -> mIoU 1/2; aAcc 2/3
    _close(scores, aAcc=200 / 3, mIoU=50.0)
    with pytest.raises(ValueError, match="no 'fine_to_coarse'"):
        _score(ReCoIoUMetric(fine_to_coarse='dataset'), [([[0]], [[0]])], 2)


def test_agrees_with_mmseg_on_labels_in_range():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(3):
        label = rng.integers(0, 6, (9, 11))
        label[rng.random(label.shape) < 0.2] = X
        pairs.append((rng.integers(0, 6, label.shape).tolist(), label.tolist()))
    ours, theirs = _both(pairs, 6)
    _close(ours, **theirs)


def test_size_mismatch_names_the_fix():
    with pytest.raises(ValueError, match='SetOriShapeToImgShape'):
        _score(ReCoIoUMetric(), [([[0, 0]], [[0, 0, 0], [0, 0, 0]])], 2)


@pytest.mark.parametrize('name, fold', [('coco_stuff27', 'dataset'), ('cityscapes27', None),
                                        ('kitti_step', None)])
def test_dataset_configs_build_the_metric(name, fold):
    cfg = Config.fromfile(str(DATASET_BASES / f'{name}.py'))
    metric = METRICS.build(cfg.reco_evaluator)
    assert isinstance(metric, ReCoIoUMetric) and metric.fine_to_coarse == fold
    # not test_evaluator: default_runtime.py, beside it in a config's bases, has that one
    assert 'test_evaluator' not in cfg and 'val_evaluator' not in cfg
