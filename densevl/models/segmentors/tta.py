"""Test-time augmentation for mmseg segmentors: the softmax averaged over the augmentations."""
from __future__ import annotations

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

from ...registry import SEG_MODELS


@SEG_MODELS.register_module()
class MeanSoftmaxTTAModel(SegTTAModel):
    """mmseg's :class:`SegTTAModel` (the softmax of each augmented prediction, averaged, then the
    argmax), keeping what it averaged.

    mmseg's keeps the *last* augmentation's logits as ``seg_logits`` and a ``(H, W)`` label map;
    here ``seg_logits`` is the log of the averaged probabilities (its softmax is the average) and
    ``pred_sem_seg`` is ``(1, H, W)``, as a segmentor's own ``predict`` gives.
    """

    def merge_preds(self, data_samples_list: list[SampleList]) -> SampleList:
        merged = []
        for samples in data_samples_list:
            probs = torch.stack([s.seg_logits.data.softmax(dim=0) for s in samples]).mean(dim=0)
            sample = SegDataSample(metainfo=samples[0].metainfo)
            sample.seg_logits = PixelData(data=probs.log())
            sample.pred_sem_seg = PixelData(data=probs.argmax(dim=0, keepdim=True))
            if 'gt_sem_seg' in samples[0]:
                sample.gt_sem_seg = samples[0].gt_sem_seg
            merged.append(sample)
        return merged
