"""ADE20K-full (ADE-847): ADE20K 2021's 847 most frequent classes, as ov-seg prepares them."""
from mmseg.registry import DATASETS

from .packaged_names import read_dataset_names
from .uint16_seg_dataset import Uint16SegDataset


@DATASETS.register_module()
class ADE20K847Dataset(Uint16SegDataset):
    """ADE20K-full validation (2,000 images), 847 classes.

    The layout ov-seg's ``datasets/prepare_ade20k_full_sem_seg.py`` writes from
    ``ADE20K_2021_17_01`` (images and labels shrunk to a short side of at most 512; labels are
    the classes' ``trainId`` in ``uint16`` TIFF, 65535 for everything else)::

        data/ADE20K_2021_17_01/
            images_detectron2/validation/ADE_val_00000001.jpg
            annotations_detectron2/validation/ADE_val_00000001.tif

    The class names (``METAINFO['classes']``, ``densevl/datasets/names/ade847.txt``) are the
    reference's, in label order, each one entry (its WordNet synonyms joined by commas, as the
    reference prompts them).
    """

    METAINFO = dict(classes=read_dataset_names('ade847.txt'))
