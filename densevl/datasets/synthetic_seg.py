"""The synthetic scene world's semantic segmentation splits, in the ADE20K layout."""
from typing import Any

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .synthetic.world import DEFAULT_SPEC


@DATASETS.register_module()
class SyntheticSceneDataset(BaseSegDataset):
    """Semantic segmentation of the synthetic scene world: 6 stuff textures and 8 colour things.

    Reads what :func:`densevl.datasets.synthetic.write_dataset` (or
    ``tools/make_synthetic_dataset.py``) writes: label maps with 0 = unlabelled and
    1..14 = class index + 1, as ADE20K's, loaded with ``reduce_zero_label=True`` so the classes
    become 0..13 and unlabelled pixels the ignore index 255::

        data/synthetic/
            images/train/train_000000.jpg
            annotations/train/train_000000.png
            ...                                  (splits train, val, test, novel)

    Example config::

        dict(type='SyntheticSceneDataset', data_root='data/synthetic',
             data_prefix=dict(img_path='images/novel', seg_map_path='annotations/novel'),
             pipeline=test_pipeline)

    The ``novel`` split holds the classes (pink, purple) and the (colour, pattern)
    combinations that train/val/test never contain; see :mod:`densevl.datasets.synthetic.world`.

    Args:
        img_suffix: Suffix of the images.
        seg_map_suffix: Suffix of the label maps.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset`. ``reduce_zero_label``
            must stay True.
    """

    METAINFO = dict(classes=DEFAULT_SPEC.classes, palette=DEFAULT_SPEC.palette)

    def __init__(self, *, img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 **kwargs: Any) -> None:
        # Label 0 is "unlabelled"; without the reduction every class would be off by one.
        if not kwargs.pop('reduce_zero_label', True):
            raise ValueError('SyntheticSceneDataset needs reduce_zero_label=True.')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=True, **kwargs)
