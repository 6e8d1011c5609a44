"""What the mmseg segmentor adapters share: mmseg's ``predict`` through an adapter's ``segment``
and the vocabulary it predicts (the training-free segmentor, OVSeg), the names of the training
labels (DenseCLIP, OVSeg)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList
from torch import Tensor

from .dense_predictor import Segmentation


def padding_of(meta: dict) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding of a test image, where mmseg keeps it (the data
    preprocessor's ``img_padding_size``, else the pipeline's ``padding_size``; none: 0)."""
    return tuple(meta.get('img_padding_size', meta.get('padding_size', (0, 0, 0, 0))))


def vocabulary_names(texts: Sequence[str] | None,
                     class_names: Sequence[str] | None) -> list[str]:
    """The names to predict: ``texts``, else the model's default ``class_names``.

    Raises:
        ValueError: neither gives a name.
    """
    names = list(texts) if texts is not None else class_names
    if not names:
        raise ValueError('no vocabulary: pass texts=[...] or set model.class_names in the '
                         'config (a list, a names file or a dataset type)')
    return names


def predict_by_segment(segment: Callable[..., list[Segmentation]], inputs: Tensor,
                       data_samples: SampleList | None, names: Sequence[str], *,
                       with_seg_logits: bool) -> SampleList:
    """mmseg's ``predict`` of a segmentor that segments one image at a time: each image without
    its padding, labelled by ``segment(image, names, out_size=ori_shape, return_probs=...)``;
    the labels become ``pred_sem_seg`` and, when ``with_seg_logits``, the class probabilities
    ``seg_logits``.

    Args:
        segment: :meth:`OpenVocabSegmenter.segment` (or a callable with its signature).
        inputs: ``(B, 3, H, W)`` normalised by the data preprocessor.
        data_samples: the batch's samples (filled in and returned); None: one each, of the
            input's size.
        names: the vocabulary.
        with_seg_logits: also attach the class probabilities ``(K, H, W)``.
    """
    if data_samples is None:
        data_samples = [SegDataSample(metainfo=dict(ori_shape=inputs.shape[-2:],
                                                    img_shape=inputs.shape[-2:]))
                        for _ in range(inputs.shape[0])]
    for image, sample in zip(inputs, data_samples):
        meta = sample.metainfo
        left, right, top, bottom = padding_of(meta)
        h, w = image.shape[-2:]
        image = image[:, top:h - bottom, left:w - right]
        out_size = tuple(meta.get('ori_shape', image.shape[-2:]))[:2]
        result = segment(image[None], names, out_size=out_size,
                         return_probs=with_seg_logits)[0]
        sample.set_data(dict(pred_sem_seg=PixelData(data=result.labels[None])))
        if result.class_probs is not None:
            sample.set_data(dict(seg_logits=PixelData(data=result.class_probs)))
    return data_samples


def training_names(train_names: Sequence[str] | None, class_names: Sequence[str] | None,
                   method: str) -> list[str]:
    """The names of the training labels: ``train_class_names``, else ``class_names``.

    Raises:
        ValueError: neither is set (``method`` names the model in the message).
    """
    names = train_names or class_names
    if names is None:
        raise ValueError(f'{method} needs the names of its training labels: set '
                         'model.train_class_names or model.class_names (a list, a names file '
                         'or a dataset type)')
    return list(names)
