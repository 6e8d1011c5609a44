"""Pascal Context with all 459 classes (PC-459), as ov-seg prepares it."""
from mmseg.registry import DATASETS

from .packaged_names import read_dataset_names
from .uint16_seg_dataset import Uint16SegDataset


@DATASETS.register_module()
class PascalContext459Dataset(Uint16SegDataset):
    """Pascal Context validation (5,105 images), 459 classes.

    The layout ov-seg's ``datasets/prepare_pascal_context.py`` writes from Pascal Context's
    ``trainval/*.mat`` (``LabelMap - 1`` in ``uint16`` TIFF: labels 0..458, unlabelled pixels
    65535) for the images listed in ``pascalcontext_val.txt``; the images are VOC2010's::

        data/VOCdevkit/VOC2010/
            JPEGImages/2008_000002.jpg                       (all of VOC2010)
            annotations_detectron2/pc459_val/2008_000002.tif  (the 5,105 val images)

    The class names (``METAINFO['classes']``, ``densevl/datasets/names/context459.txt``) are the
    reference's, in label order (Pascal Context's ``labels.txt``).
    """

    METAINFO = dict(classes=read_dataset_names('context459.txt'))
