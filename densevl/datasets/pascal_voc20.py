"""PASCAL VOC 2012 without its background class (VOC20)."""
from typing import Any

from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class PascalVOC20Dataset(BaseSegDataset):
    """PASCAL VOC 2012 scored over its 20 object classes only.

    Reads the ordinary VOC ``SegmentationClass`` PNGs (0 = background, 1..20 = objects,
    255 = object boundary) with ``reduce_zero_label=True``: background and boundaries
    become the ignore label 255 and the objects 0..19, so background pixels are not scored::

        data/VOCdevkit/VOC2012/
            JPEGImages/2007_000033.jpg
            SegmentationClass/2007_000033.png
            ImageSets/Segmentation/val.txt

    Args:
        ann_file: Split file with one image stem a line (for instance
            ``'ImageSets/Segmentation/val.txt'``); empty lists every image in
            ``data_prefix['img_path']``.
        img_suffix: Suffix of the images.
        seg_map_suffix: Suffix of the label maps.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = dict(classes=PascalVOCDataset.METAINFO['classes'][1:],
                    palette=PascalVOCDataset.METAINFO['palette'][1:])

    def __init__(self, *, ann_file: str = '', img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png', **kwargs: Any) -> None:
        # VOC20 *is* VOC with label 0 dropped; allowing False here would silently score
        # background as "aeroplane".
        if not kwargs.pop('reduce_zero_label', True):
            raise ValueError('PascalVOC20Dataset needs reduce_zero_label=True.')
        super().__init__(ann_file=ann_file, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, reduce_zero_label=True, **kwargs)
