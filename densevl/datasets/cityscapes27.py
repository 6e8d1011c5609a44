"""Cityscapes-27: Cityscapes scored over all 27 labelIds that are not void (PiCIE, STEGO, ReCo)."""
from typing import Any

from mmseg.registry import DATASETS

from .fixed_label_map_dataset import FixedLabelMapSegDataset
from .packaged_names import read_dataset_names

# labelIds 0..6 are Cityscapes' void classes (unlabeled, ego vehicle, rectification border, out of
# roi, static, dynamic, ground); 7..33 (road .. bicycle) are the 27 classes.
_FIRST_CLASS_ID = 7
_NUM_LABEL_IDS = 34
#: labelId (0..33) -> Cityscapes-27 label: ``labelId - 7``, the void ids ignored (255).
LABEL_ID_TO_27: dict[int, int] = {
    label_id: label_id - _FIRST_CLASS_ID if label_id >= _FIRST_CLASS_ID else 255
    for label_id in range(_NUM_LABEL_IDS)}


@DATASETS.register_module()
class Cityscapes27Dataset(FixedLabelMapSegDataset):
    """Cityscapes val (500 images) over 27 classes: the 19 of the trainIds and the 8 they drop
    (parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer).

    Reads the ``*_gtFine_labelIds.png`` maps of the official layout (not mmseg's
    ``*_labelTrainIds.png``, which have already lost those 8 classes)::

        data/cityscapes/
            leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png
            gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png

    Labels are ``labelId - 7`` (:data:`LABEL_ID_TO_27`, the dataset's ``label_map``); the void
    labelIds 0..6 become the ignore label 255. The class names (``METAINFO['classes']``,
    ``densevl/datasets/names/cityscapes27.txt``) are the ones ReCo prompts with ('parking lot'
    for parking).

    Args:
        data_prefix: The image and label folders, relative to ``data_root``; the val split of
            the layout above by default.
        img_suffix: Suffix of the images.
        seg_map_suffix: Suffix of the label maps.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset`; ``reduce_zero_label``
            must stay False.
    """

    METAINFO = dict(classes=read_dataset_names('cityscapes27.txt'))
    LABEL_MAP = LABEL_ID_TO_27

    def __init__(self, *, data_prefix: dict | None = None, img_suffix: str = '_leftImg8bit.png',
                 seg_map_suffix: str = '_gtFine_labelIds.png', **kwargs: Any) -> None:
        super().__init__(data_prefix=data_prefix or dict(img_path='leftImg8bit/val',
                                                         seg_map_path='gtFine/val'),
                         img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
