"""KITTI-STEP: the KITTI tracking frames STEP annotates, scored over the 19 Cityscapes classes."""
from typing import Any

from mmseg.datasets import BaseSegDataset, CityscapesDataset
from mmseg.registry import DATASETS

from .packaged_names import read_dataset_names


@DATASETS.register_module()
class KittiStepDataset(BaseSegDataset):
    """KITTI-STEP val (2,981 frames of 9 sequences) at full resolution, 19 classes.

    The layout ReCo reads: the frames of each sequence (KITTI tracking's
    ``training/image_02/<sequence>``) beside the STEP panoptic maps of the same names::

        data/kitti_step/
            val/0002/000000.png                  # RGB frame, 1242 x 375 or so
            panoptic_maps/val/0002/000000.png    # red: trainId (255 void); green, blue: instance

    Read the maps with ``LoadKittiStepAnnotations`` (mmseg's ``LoadAnnotations`` would keep all
    three channels). The class names (``densevl/datasets/names/kitti_step.txt``) are the 19 of
    Cityscapes' trainIds, as ReCo prompts them.

    Args:
        data_prefix: The frame and panoptic-map folders, relative to ``data_root``; the val split
            of the layout above by default.
        img_suffix: Suffix of the frames.
        seg_map_suffix: Suffix of the panoptic maps.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset` (``data_root``,
            ``pipeline``, ...); ``reduce_zero_label`` must stay False.
    """

    METAINFO = dict(classes=read_dataset_names('kitti_step.txt'),
                    palette=CityscapesDataset.METAINFO['palette'])

    def __init__(self, *, data_prefix: dict | None = None, img_suffix: str = '.png',
                 seg_map_suffix: str = '.png', **kwargs: Any) -> None:
        if kwargs.pop('reduce_zero_label', False):
            raise ValueError('KITTI-STEP labels are trainIds 0..18 (255 void); reduce_zero_label '
                             'must be False')
        super().__init__(data_prefix=data_prefix or dict(img_path='val',
                                                         seg_map_path='panoptic_maps/val'),
                         img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
