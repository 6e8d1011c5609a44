"""Registers the dataset classes mmseg lacks (COCO-Object, VOC20, the synthetic world) in its
``DATASETS``. Configs import this module through ``custom_imports``; the synthetic-world
generator (:mod:`.synthetic`) needs only numpy and Pillow and never does."""
from .coco_object import COCOObjectDataset
from .pascal_voc20 import PascalVOC20Dataset
from .synthetic_seg import SyntheticSceneDataset

__all__ = ['COCOObjectDataset', 'PascalVOC20Dataset', 'SyntheticSceneDataset']
