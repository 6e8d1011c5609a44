"""COCO-Stuff-27: the curated COCO-Stuff 164k val images scored over 27 coarse classes (IIC,
PiCIE, STEGO, ReCo)."""
from typing import Any

from mmseg.registry import DATASETS

from .fixed_label_map_dataset import FixedLabelMapSegDataset
from .packaged_names import read_dataset_names

#: The 27 coarse classes in label order: COCO's 12 thing supercategories, then 15 stuff ones.
COARSE_CLASSES = read_dataset_names('coco_stuff27.txt')
#: The 171 fine COCO-Stuff classes as ReCo prompts them (things in COCO id order, then stuff).
FINE_CLASSES = read_dataset_names('coco_stuff171_reco.txt')

# The raw label maps (COCO-Stuff's stuffthingmaps) hold 0-based ids 0..181: COCO category id - 1,
# 255 unlabelled. The 11 thing ids COCO defined but never annotated leave gaps in them.
_UNANNOTATED_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
# Each thing supercategory is a run of raw ids (the never-annotated ids fall inside the runs).
_THING_RUNS = {'electronic': (71, 76), 'appliance': (77, 82), 'food things': (51, 60),
               'furniture things': (61, 70), 'indoor': (83, 90), 'kitchen': (43, 50),
               'accessory': (25, 32), 'animal': (15, 24), 'outdoor': (9, 14), 'person': (0, 0),
               'sports': (33, 42), 'vehicle': (1, 8)}
# The fine stuff classes (raw ids 91..181) of each stuff supercategory, as in COCO-Stuff's
# label hierarchy.
_STUFF_GROUPS = {
    'ceiling': ('ceiling other', 'ceiling tile'),
    'floor': ('carpet', 'floor marble', 'floor other', 'floor stone', 'floor tile', 'floor wood'),
    'food stuff': ('food other', 'fruit', 'salad', 'vegetable'),
    'furniture stuff': ('cabinet', 'counter', 'cupboard', 'desk stuff', 'door stuff',
                        'furniture other', 'light', 'mirror stuff', 'shelf', 'stairs', 'table'),
    'raw material': ('cardboard', 'metal', 'paper', 'plastic'),
    'textile': ('banner', 'blanket', 'cloth', 'clothes', 'curtain', 'mat', 'napkin', 'pillow',
                'rug', 'textile other', 'towel'),
    'wall': ('wall brick', 'wall concrete', 'wall other', 'wall panel', 'wall stone', 'wall tile',
             'wall wood'),
    'window': ('window blind', 'window other'),
    'building': ('bridge', 'building other', 'house', 'roof', 'skyscraper', 'tent'),
    'ground': ('dirt', 'gravel', 'ground other', 'mud', 'pavement', 'platform', 'playingfield',
               'railroad', 'road', 'sand', 'snow'),
    'plant': ('branch', 'bush', 'flower', 'grass', 'leaves', 'moss', 'plant other', 'straw',
              'tree'),
    'sky': ('clouds', 'sky other'),
    'solid': ('hill', 'mountain', 'rock', 'solid other', 'stone', 'wood'),
    'structural': ('cage', 'fence', 'net', 'railing', 'structural other'),
    'water': ('fog', 'river', 'sea', 'water other', 'waterdrops'),
}
_FIRST_STUFF_ID = 91


def _raw_to_coarse() -> dict[int, int]:
    coarse_of = {name: k for k, name in enumerate(COARSE_CLASSES)}
    mapping = {raw: coarse_of[group] for group, (first, last) in _THING_RUNS.items()
               for raw in range(first, last + 1)}
    stuff_of = {fine: coarse_of[group] for group, fines in _STUFF_GROUPS.items() for fine in fines}
    num_things = len(FINE_CLASSES) - len(stuff_of)
    for offset, fine in enumerate(FINE_CLASSES[num_things:]):
        mapping[_FIRST_STUFF_ID + offset] = stuff_of[fine]
    return mapping


#: Raw COCO-Stuff id (0..181) -> coarse label (0..26); the ground truth's ``label_map``.
RAW_TO_COARSE: dict[int, int] = _raw_to_coarse()
#: Fine class index (0..170, into :data:`FINE_CLASSES`) -> coarse label: how a prediction over
#: the 171 fine names is scored on COCO-Stuff-27 (``ReCoIoUMetric(fine_to_coarse='dataset')``).
FINE_TO_COARSE: tuple[int, ...] = tuple(
    RAW_TO_COARSE[raw] for raw in range(len(RAW_TO_COARSE)) if raw not in _UNANNOTATED_IDS)


@DATASETS.register_module()
class COCOStuff27Dataset(FixedLabelMapSegDataset):
    """COCO-Stuff-27: the curated val2017 list (2,175 images), raw labels folded to 27 classes.

    The layout STEGO's download writes and ReCo reads (the raw COCO-Stuff 164k label maps,
    ``stuffthingmaps_trainval2017``, and IIC's curated image lists)::

        data/cocostuff/
            images/val2017/000000000139.jpg
            annotations/val2017/000000000139.png     # raw ids 0..181, 255 unlabelled
            curated/val2017/Coco164kFull_Stuff_Coarse.txt   # one image id a line

    Each raw id is folded to its coarse class (:data:`RAW_TO_COARSE`, the dataset's
    ``label_map``; 255 stays the ignore label). ReCo predicts over the 171 fine names
    (``METAINFO['fine_classes']``, ``densevl/datasets/names/coco_stuff171_reco.txt``) and folds
    its predictions with ``METAINFO['fine_to_coarse']`` before scoring; the 27 classes
    (``METAINFO['classes']``) are the ones scored.

    Args:
        ann_file: The curated image list, relative to ``data_root``.
        data_prefix: The image and label folders, relative to ``data_root``; the layout above
            by default.
        img_suffix: Suffix of the images.
        seg_map_suffix: Suffix of the raw label maps.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset` (``data_root``,
            ``pipeline``, ...); ``reduce_zero_label`` must stay False.
    """

    METAINFO = dict(classes=COARSE_CLASSES, fine_classes=FINE_CLASSES,
                    fine_to_coarse=FINE_TO_COARSE)
    LABEL_MAP = RAW_TO_COARSE

    def __init__(self, *, ann_file: str = 'curated/val2017/Coco164kFull_Stuff_Coarse.txt',
                 data_prefix: dict | None = None, img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png', **kwargs: Any) -> None:
        super().__init__(ann_file=ann_file, data_prefix=data_prefix or dict(
            img_path='images/val2017', seg_map_path='annotations/val2017'),
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
