"""Registers the dataset classes mmseg lacks (COCO-Object, VOC20, ADE-847, PC-459, the ReCo
benchmarks COCO-Stuff-27, Cityscapes-27 and KITTI-STEP, the synthetic world, the region-text pairs
of mask-adapted CLIP) in its ``DATASETS``, their loading transforms (``LoadUint16Annotations``,
``LoadKittiStepAnnotations``, ``SetOriShapeToImgShape``) and ReCo+'s augmentations
(``PadToSizeWithMean``, ``RandomColorJitter``, ``RandomGaussianBlur``) in its ``TRANSFORMS``, and
the ReCo benchmarks' metric (``ReCoIoUMetric``) in its ``METRICS``. Configs import this module
through ``custom_imports``; the synthetic-world generator (:mod:`.synthetic`) needs only numpy
and Pillow and never does. With mmdet present, GroundVLP's RefCOCO/+/g sentences
(``RefCOCOGroundingDataset``) and their Acc@0.5 (``GroundingAccuracyMetric``) join mmdet's
``DATASETS`` and ``METRICS``."""
from importlib.util import find_spec

from ..evaluation.reco_iou_metric import ReCoIoUMetric
from .ade20k_full import ADE20K847Dataset
from .cityscapes27 import Cityscapes27Dataset
from .coco_object import COCOObjectDataset
from .coco_stuff27 import COCOStuff27Dataset
from .kitti_step import KittiStepDataset
from .loading import LoadKittiStepAnnotations, LoadUint16Annotations
from .ori_shape import SetOriShapeToImgShape
from .pascal_context459 import PascalContext459Dataset
from .pascal_voc20 import PascalVOC20Dataset
from .reco_plus_transforms import PadToSizeWithMean, RandomColorJitter, RandomGaussianBlur
from .region_text import RegionTextDataset
from .synthetic_seg import SyntheticSceneDataset

__all__ = ['ADE20K847Dataset', 'COCOObjectDataset', 'COCOStuff27Dataset', 'Cityscapes27Dataset',
           'KittiStepDataset', 'LoadKittiStepAnnotations', 'LoadUint16Annotations',
           'PadToSizeWithMean', 'PascalContext459Dataset', 'PascalVOC20Dataset',
           'RandomColorJitter', 'RandomGaussianBlur', 'ReCoIoUMetric', 'RegionTextDataset',
           'SetOriShapeToImgShape', 'SyntheticSceneDataset']

if find_spec('mmdet') is not None:   # grounding: RefCOCO/+/g and Acc@0.5 in mmdet's registries
    from ..evaluation.grounding_accuracy import GroundingAccuracyMetric
    from .refcoco_grounding import RefCOCOGroundingDataset

    __all__ += ['GroundingAccuracyMetric', 'RefCOCOGroundingDataset']
