"""Registers the dataset classes mmseg lacks (COCO-Object, VOC20, ADE-847, PC-459, the synthetic
world, the region-text pairs of mask-adapted CLIP) in its ``DATASETS``, and
``LoadUint16Annotations`` in its ``TRANSFORMS``. Configs import this module through
``custom_imports``; the synthetic-world generator (:mod:`.synthetic`) needs only numpy and
Pillow and never does."""
from .ade20k_full import ADE20K847Dataset
from .coco_object import COCOObjectDataset
from .loading import LoadUint16Annotations
from .pascal_context459 import PascalContext459Dataset
from .pascal_voc20 import PascalVOC20Dataset
from .region_text import RegionTextDataset
from .synthetic_seg import SyntheticSceneDataset

__all__ = ['ADE20K847Dataset', 'COCOObjectDataset', 'LoadUint16Annotations',
           'PascalContext459Dataset', 'PascalVOC20Dataset', 'RegionTextDataset',
           'SyntheticSceneDataset']
