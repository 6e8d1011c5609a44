"""ReCo's predictions of a benchmark split as label files: the pseudo-labels ReCo+ trains on.

Runs a ReCo config (any open-vocabulary segmentation config) over the images of ``--split`` with
the config's test pipeline, and writes each prediction where the dataset would look for that
image's label map under ``--out``, in the dataset's own convention (``reduce_zero_label``, raw
ids, KITTI-STEP's panoptic PNG; predictions over COCO-Stuff's 171 fine names folded to its 27
classes), so the dataset class reads them back with ``data_prefix.seg_map_path=OUT``. The labels
are at the size the config scores (the 320 x 320 centre crop of COCO-Stuff-27 and Cityscapes-27,
as ReCo writes them; full resolution for KITTI-STEP). Interrupted? Run it again: finished files
are kept (each written atomically).

Examples (``RECO=configs/reco/reco_vit-l14-deit-s-rn50x16_training-free``):
    python tools/reco_pseudo_labels.py \\
        configs/reco/reco_clip-synthetic-tiny_training-free_synthetic-64.py \\
        --split images/train --out data/synthetic/reco_pseudo_labels/train
    python tools/reco_pseudo_labels.py ${RECO}_cityscapes27-320.py --split leftImg8bit/train \\
        --out data/cityscapes/reco_pseudo_labels/train
    python tools/reco_pseudo_labels.py ${RECO}_coco-stuff27-320.py --split images/train2017 \\
        --ann-file curated/train2017/Coco164kFull_Stuff_Coarse.txt \\
        --out data/cocostuff/reco_pseudo_labels/train2017
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
from pathlib import Path

import _cli  # noqa: F401  (densevl importable from a checkout)
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

import densevl.datasets.mm_datasets  # noqa: F401 - registers the datasets
import densevl.models.mm_adapters  # noqa: F401 - registers the segmentors
from densevl.datasets.label_files import encode_labels, write_label_file
from densevl.registry import SEG_DATASETS, SEG_MODELS

OPTIONS = {
    '--split': dict(required=True, help="the split's image folder, relative to the dataset's "
                    'data_root (images/train, leftImg8bit/train, train, images/train2017)'),
    '--ann-file': dict(help="the split's image list, relative to data_root, for datasets that "
                       'read one (COCO-Stuff: curated/train2017/Coco164kFull_Stuff_Coarse.txt)'),
    '--out': dict(required=True, help='folder of the label files to write'),
    '--texts': dict(help="vocabulary (default: the config's class_names, else the dataset's "
                    "classes): comma-separated, synonyms joined by ';'"),
    '--limit': dict(type=int, help='only the first N images'),
    '--batch-size': dict(type=int, help="default: the config's test batch"),
    '--device': dict(default='cuda' if torch.cuda.is_available() else 'cpu'),
    '--cfg-options': dict(nargs='+', action=DictAction, default={},
                          help='config entries to change, key=value'),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a ReCo config (configs/reco/reco_*.py)')
    for flag, options in OPTIONS.items():
        parser.add_argument(flag, **options)
    return parser.parse_args(argv)


def split_dataset(cfg: Config, split: str, ann_file: str | None, out: Path, limit: int | None):
    """The config's test dataset on ``split``, its label paths under ``out``, no labels read."""
    dataset = cfg.test_dataloader.dataset.copy()
    dataset.data_prefix = dict(img_path=split, seg_map_path=str(out.resolve()))
    if ann_file is not None:
        dataset.ann_file = ann_file
    elif 'ann_file' in dataset:
        raise SystemExit(f'{dataset.type} reads an image list ({dataset.ann_file}); give the '
                         "split's with --ann-file")
    dataset.pipeline = [step for step in dataset.pipeline
                        if not step['type'].startswith('Load') or
                        not step['type'].endswith('Annotations')]
    dataset.indices = limit
    return SEG_DATASETS.build(dataset)


def fold_to_dataset_classes(labels: np.ndarray, names: list[str], metainfo: dict) -> np.ndarray:
    """Predictions over a dataset's fine names (COCO-Stuff-27's 171) as its scored classes."""
    fine, fine_to_coarse = metainfo.get('fine_classes'), metainfo.get('fine_to_coarse')
    if fine is None or fine_to_coarse is None or len(names) != len(fine):
        return labels
    lookup = np.full(256, 255, np.int64)
    lookup[:len(fine_to_coarse)] = fine_to_coarse
    return lookup[labels]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    out = Path(args.out)
    dataset = split_dataset(cfg, args.split, args.ann_file, out, args.limit)
    if len(dataset) == 0:
        raise SystemExit(f'no images in {osp.join(dataset.data_root or "", args.split)}')
    model = SEG_MODELS.build(cfg.model).to(args.device).eval()
    if args.texts:
        model.class_names = [n.strip() for n in args.texts.split(',') if n.strip()]
    elif getattr(model, 'class_names', None) is None:
        model.class_names = list(dataset.metainfo['classes'])
    names = list(model.class_names)
    batch_size = args.batch_size or cfg.test_dataloader.get('batch_size', 1)
    todo = [i for i in range(len(dataset))
            if not osp.isfile(dataset.get_data_info(i)['seg_map_path'])]
    print(f'{len(dataset)} images of {args.split}, {len(dataset) - len(todo)} already labelled; '
          f'{len(names)} names; writing to {out}')
    progress = ProgressBar(len(todo))
    with torch.no_grad():
        for start in range(0, len(todo), batch_size):
            batch = pseudo_collate([dataset[i] for i in todo[start:start + batch_size]])
            for sample in model.test_step(batch):
                labels = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
                labels[labels < 0] = 255            # background (a threshold) is ignored
                labels = fold_to_dataset_classes(labels, names, dataset.metainfo)
                write_label_file(sample.seg_map_path, encode_labels(dataset, labels))
                progress.update()
    record = dict(config=args.config, split=args.split, ann_file=args.ann_file, count=len(dataset),
                  names=names, cfg_options=args.cfg_options)
    (out / 'pseudo_labels.json').write_text(json.dumps(record, indent=2))
    print(f'\n{len(dataset)} label files in {out}')


if __name__ == '__main__':
    main()
