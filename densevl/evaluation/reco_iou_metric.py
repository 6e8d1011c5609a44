"""mIoU and pixel accuracy as ReCo (after PiCIE and STEGO) scores COCO-Stuff-27, Cityscapes-27
and KITTI-STEP."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from ..registry import SEG_METRICS


def confusion_scores(confusion: np.ndarray) -> dict[str, np.ndarray | float]:
    """Per-class IoU and accuracy, pixel accuracy and their means (fractions, not %) from a
    confusion matrix of scored pixels.

    IoU is ``TP / (TP + FP + FN)``: NaN for a class neither labelled nor predicted (left out of
    ``mIoU``), 0 for a class predicted but never labelled (counted). Accuracy is ``TP / labelled``
    (NaN for a class never labelled, left out of ``mAcc``).

    Shapes:
        confusion: ``(K, K)``, rows the labels, columns the predictions; returns ``iou`` and
        ``acc`` of shape ``(K,)`` and the floats ``aAcc``, ``mIoU``, ``mAcc``.
    """
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    labelled, predicted = confusion.sum(1), confusion.sum(0)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / (labelled + predicted - tp)
        acc = tp / labelled
        a_acc = tp.sum() / confusion.sum()
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float('nan')  # noqa: E731
    return dict(iou=iou, acc=acc, aAcc=float(a_acc), mIoU=mean(iou), mAcc=mean(acc))


@SEG_METRICS.register_module()
class ReCoIoUMetric(BaseMetric):
    """Pixel accuracy (``aAcc``), ``mIoU`` and ``mAcc`` in %, with ReCo's conventions.

    One confusion matrix over the split (rows labels, columns predictions) in which a pixel
    counts if and only if its label is in ``[0, K)``: ReCo's ignore label -1 is stored as
    ``ignore_index`` (255) in the label maps here, and any other label outside the classes is
    ignored as well. Scores follow :func:`confusion_scores`: a class absent from both the
    labels and the predictions is left out of the mean, a class predicted but absent counts 0.
    With ``fine_to_coarse`` the predictions, indices into a finer vocabulary (ReCo's 171
    COCO-Stuff names), are folded to the dataset's classes before they are counted.

    Where it differs from mmseg's ``IoUMetric`` (``tests/test_reco_metric.py`` shows each case;
    on labels in ``[0, K)`` or equal to ``ignore_index`` and predictions in ``[0, K)`` the two
    give the same aAcc, mIoU and mAcc):

    - a label outside ``[0, K)`` other than ``ignore_index`` (e.g. a raw id a label map was not
      folded from) is ignored here; ``IoUMetric`` leaves it out of the label areas but counts its
      *prediction* in the predicted class's area, so that class's union grows and its IoU drops;
    - a prediction outside ``[0, K)`` raises here (a model scored against the wrong vocabulary);
      ``IoUMetric`` silently counts the pixel as labelled and missed;
    - ``fine_to_coarse`` has no counterpart in ``IoUMetric``;
    - the results are not rounded (``IoUMetric`` rounds to 2 decimals).

    Args:
        ignore_index: the label of unscored pixels in the label maps.
        fine_to_coarse: None (predictions are the dataset's classes); a sequence mapping each
            predicted index to a class; or ``'dataset'``: the dataset's
            ``metainfo['fine_to_coarse']`` (COCO-Stuff-27's 171 -> 27).
        collect_device: where results are gathered in distributed runs.
        prefix: prefix of the metric names.
    """

    def __init__(self, *, ignore_index: int = 255,
                 fine_to_coarse: Sequence[int] | str | None = None,
                 collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(fine_to_coarse, str) and fine_to_coarse != 'dataset':
            raise ValueError(f"fine_to_coarse={fine_to_coarse!r}: pass a sequence of class "
                             "indices, 'dataset', or None")
        self.ignore_index = ignore_index
        self.fine_to_coarse = fine_to_coarse

    def _fold(self, num_classes: int) -> torch.Tensor | None:
        fold = self.fine_to_coarse
        if fold == 'dataset':
            fold = self.dataset_meta.get('fine_to_coarse')
            if fold is None:
                raise ValueError("fine_to_coarse='dataset' but the dataset's metainfo has no "
                                 "'fine_to_coarse' (only COCO-Stuff-27 provides one)")
        if fold is None:
            return None
        fold = torch.as_tensor(list(fold), dtype=torch.long)
        if fold.numel() and (int(fold.min()) < 0 or int(fold.max()) >= num_classes):
            raise ValueError(f'fine_to_coarse maps to classes outside 0..{num_classes - 1}')
        return fold

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Add each sample's confusion matrix (``pred_sem_seg`` against ``gt_sem_seg``)."""
        num_classes = len(self.dataset_meta['classes'])
        fold = self._fold(num_classes)
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze().long()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred.device).long()
            if pred.shape != label.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and label map '
                                 f'{tuple(label.shape)} differ in size; a pipeline that resizes '
                                 'the label maps needs SetOriShapeToImgShape after its crop')
            if fold is not None:
                if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= len(fold)):
                    raise ValueError(f'predictions hold index {int(pred.max())} but '
                                     f'fine_to_coarse maps {len(fold)} fine classes')
                pred = fold.to(pred.device)[pred]
            if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
                raise ValueError(
                    f'predictions hold class {int(pred.max())} but the dataset has '
                    f'{num_classes} classes; a model predicting over finer names needs '
                    'fine_to_coarse')
            scored = (label >= 0) & (label < num_classes) & (label != self.ignore_index)
            pairs = label[scored] * num_classes + pred[scored]
            confusion = torch.bincount(pairs, minlength=num_classes ** 2)
            self.results.append(confusion.reshape(num_classes, num_classes).cpu().numpy())

    def compute_metrics(self, results: list) -> dict[str, float]:
        """aAcc, mIoU and mAcc in % over all processed samples; logs the per-class table."""
        scores = confusion_scores(np.sum(results, axis=0))
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        table.add_column('IoU', np.round(scores['iou'] * 100, 2).tolist())
        table.add_column('Acc', np.round(scores['acc'] * 100, 2).tolist())
        logger = MMLogger.get_current_instance()
        print_log('per class results:\n' + table.get_string(), logger=logger)
        return OrderedDict((key, scores[key] * 100) for key in ('aAcc', 'mIoU', 'mAcc'))
