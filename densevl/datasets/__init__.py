"""Datasets. The synthetic scene world (:mod:`.synthetic`) needs only numpy and Pillow; where
mmsegmentation is installed, importing this package also registers the dataset classes mmseg
lacks into its ``DATASETS``."""
from importlib.util import find_spec

if find_spec('mmseg') is not None:
    from .coco_object import COCOObjectDataset  # noqa: F401
    from .pascal_voc20 import PascalVOC20Dataset  # noqa: F401
    from .synthetic_seg import SyntheticSceneDataset  # noqa: F401
