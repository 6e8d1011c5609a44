"""RefCOCO, RefCOCO+ and RefCOCOg for zero-shot grounding: one sample per sentence.

Reads the original files of each benchmark — ``refs(unc).p`` (RefCOCO, RefCOCO+; splits
``val``/``testA``/``testB``) or ``refs(umd).p`` (RefCOCOg; ``val``/``test``) beside its
``instances.json`` — with :func:`~.safe_pickle.load_plain_pickle`, so a refs file that would run
code is refused. Images are COCO train2014's (``data_prefix=dict(img_path='.../train2014')``).
The synthetic world writes the same layout (``refcoco/refs(synthetic).p``, images under
``images/``).

Each sample: ``img_path``, ``img_id``, ``height``, ``width``, ``text`` (the sentence's ``sent``),
``ref_id``, ``ann_id``, ``sent_id``, ``category_id``, ``category`` (its name), ``gt_bbox``
(``[x, y, x + w, y + h]`` from the annotation's COCO box, as GroundVLP's evaluation builds it)
and mmdet's ``instances`` (that one box, ``bbox_label`` the category's index).
"""
from __future__ import annotations

import json
import os.path as osp

from mmengine.dataset import BaseDataset

from ..registry import DET_DATASETS
from .safe_pickle import load_plain_pickle

__all__ = ['RefCOCOGroundingDataset']

SPLIT_FILE = 'refs(unc).p'
ANN_FILE = 'instances.json'


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@DET_DATASETS.register_module()
class RefCOCOGroundingDataset(BaseDataset):
    """Referring expressions of one split, one sample per sentence.

    Args:
        data_root: the benchmark's folder (``.../refcoco``, ``.../refcoco+``, ``.../refcocog``).
        split_file: the refs pickle, relative to ``data_root`` (``'refs(unc).p'``,
            ``'refs(umd).p'``).
        ann_file: the COCO instances, relative to ``data_root`` (``'instances.json'``).
        split: the refs' split (``'val'``, ``'testA'``, ``'testB'``, ``'test'``).
        data_prefix: ``dict(img_path=...)``, the image folder (COCO train2014).
        pipeline: mmdet transforms.
        **kwargs: the rest of mmengine's ``BaseDataset``.

    Raises:
        ValueError: an unknown split, or refs that do not match the instances.
        UnsafePickleError: a refs file that asks for anything but plain data.
    """

    METAINFO: dict = dict(classes=())
    #: where the files come from (the error of a missing one says it)
    DATA_HINT = ('RefCOCO / RefCOCO+ / RefCOCOg (refs(unc).p, refs(umd).p and instances.json): '
                 'unzip refcoco.zip, refcoco+.zip, refcocog.zip of '
                 'https://github.com/lichengunc/refer (bvisionweb1.cs.unc.edu/licheng/referit/'
                 'data/) into data/; images: COCO train2014 (images.cocodataset.org/zips/'
                 'train2014.zip) in data/coco/train2014; the synthetic split: python '
                 'tools/make_synthetic_dataset.py')

    def __init__(self, *, data_root: str, split: str, split_file: str = SPLIT_FILE,
                 ann_file: str = ANN_FILE, data_prefix: dict | None = None,
                 pipeline=(), **kwargs) -> None:
        self.split = split
        self.split_file = split_file
        super().__init__(data_root=data_root, ann_file=ann_file,
                         data_prefix=data_prefix or dict(img_path=''), pipeline=list(pipeline),
                         **kwargs)

    @classmethod
    def check_files(cls, *, data_root: str = '', split_file: str = SPLIT_FILE,
                    ann_file: str = ANN_FILE, data_prefix: dict | None = None, **_) -> None:
        """Before anything is built from a config: the refs, the instances and the image
        folder exist, else a FileNotFoundError names the missing one and where the data comes
        from. Takes the dataset's config entries."""
        for path in (split_file, ann_file, (data_prefix or {}).get('img_path', '')):
            path = osp.join(data_root or '', path)
            if '://' not in path and not osp.exists(path):
                raise FileNotFoundError(
                    f'{path} does not exist. {cls.DATA_HINT}; set another root with '
                    'test_dataloader.dataset.data_root=DIR (configs/groundvlp/README.md, "Data").')

    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.data_root and not osp.isabs(self.split_file):
            self.split_file = osp.join(self.data_root, self.split_file)

    def load_data_list(self) -> list[dict]:
        refs = load_plain_pickle(self.split_file)
        _require(isinstance(refs, list) and all(isinstance(r, dict) for r in refs),
                 f'{self.split_file}: expected a list of refs (dicts), got {type(refs).__name__}')
        with open(self.ann_file) as f:
            instances = json.load(f)
        images = {im['id']: im for im in instances['images']}
        anns = {a['id']: a for a in instances['annotations']}
        categories = sorted(instances['categories'], key=lambda c: c['id'])
        label_of = {c['id']: i for i, c in enumerate(categories)}
        self._metainfo['classes'] = tuple(c['name'] for c in categories)
        splits = sorted({str(r.get('split')) for r in refs})
        _require(self.split in splits, f'{self.split_file} has no split {self.split!r}; its '
                 f"splits are {', '.join(splits)}")
        img_root = self.data_prefix.get('img_path', '')
        data_list = []
        for ref in refs:
            if ref.get('split') != self.split:
                continue
            ann, image = anns.get(ref['ann_id']), images.get(ref['image_id'])
            _require(ann is not None and image is not None,
                     f"{self.split_file}: ref {ref.get('ref_id')} names annotation "
                     f"{ref['ann_id']} / image {ref['image_id']}, missing from {self.ann_file}")
            x, y, w, h = ann['bbox']
            box = [x, y, x + w, y + h]
            label = label_of[ann['category_id']]
            for sentence in ref['sentences']:
                data_list.append(dict(
                    img_path=osp.join(img_root, image['file_name']), img_id=image['id'],
                    height=image['height'], width=image['width'], text=sentence['sent'],
                    ref_id=ref['ref_id'], ann_id=ref['ann_id'], sent_id=sentence['sent_id'],
                    category_id=ann['category_id'], category=categories[label]['name'],
                    gt_bbox=box, instances=[dict(bbox=box, bbox_label=label, ignore_flag=0)]))
        return data_list
