"""COCO-Object: COCO-Stuff 164k reduced to its 80 thing classes plus background."""
from typing import Any

from mmseg.datasets import BaseSegDataset, COCOStuffDataset
from mmseg.registry import DATASETS

# COCO-Stuff lists its 80 thing classes first, in the order of the converted label ids 1..80.
_NUM_THINGS = 80


@DATASETS.register_module()
class COCOObjectDataset(BaseSegDataset):
    """COCO-Object semantic segmentation: background (0) and the 80 COCO things (1..80).

    The label maps are the ones written by the GroupViT/TCL conversion script that SCLIP,
    ClearCLIP and NACLIP ship as ``datasets/cvt_coco_object.py``: it reads the raw
    COCO-Stuff 164k maps, shifts the thing ids to 1..80 and sets every stuff *and* unlabelled
    pixel to 0, so background is a scored class and nothing is ignored. By default the
    script writes next to the COCO-Stuff maps, with its own suffix::

        data/coco_stuff164k/
            images/val2017/000000000139.jpg
            annotations/val2017/000000000139_instanceTrainIds.png   # COCO-Object (this class)
            annotations/val2017/000000000139_labelTrainIds.png      # COCO-Stuff 171 (mmseg)

    Args:
        img_suffix: Suffix of the images.
        seg_map_suffix: Suffix of the converted label maps.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset` (``data_root``,
            ``data_prefix``, ``pipeline``, ...). ``reduce_zero_label`` must stay False.
    """

    METAINFO = dict(
        classes=('background', *COCOStuffDataset.METAINFO['classes'][:_NUM_THINGS]),
        palette=[[0, 0, 0], *COCOStuffDataset.METAINFO['palette'][:_NUM_THINGS]])

    def __init__(self, *, img_suffix: str = '.jpg',
                 seg_map_suffix: str = '_instanceTrainIds.png', **kwargs: Any) -> None:
        if kwargs.get('reduce_zero_label', False):
            raise ValueError('COCO-Object scores label 0 (background); reduce_zero_label must be '
                             'False.')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
