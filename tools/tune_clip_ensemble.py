"""Choose the frozen-CLIP ensemble shares of a vocabulary-agnostic DenseCLIP on held-in images.

The ensemble (``model.clip_ensemble``) gives CLIP's scores the share ``seen_weight`` for names of
the training vocabulary and ``unseen_weight`` for other names. This tool scores a grid of the two
on the even-indexed images of each split, picks the pair with the best mean mIoU over the splits,
and reports every pair on the odd-indexed images, which took no part in the choice. Give it at
least one split whose scenes hold classes outside the training vocabulary, or the choice can
only favour the head.

Example (the proving ground; the README's grid):
    python tools/tune_clip_ensemble.py \
        configs/denseclip/denseclip-agnostic_clip-synthetic-tiny_400it_synthetic-64.py \
        work_dirs/seed0/denseclip-agnostic_clip-synthetic-tiny_400it_synthetic-64/iter_400.pth \
        --split images/test:annotations/test --split images/novel:annotations/novel

Each row gives, per split, the mIoU over all classes, the trained classes and the others (no
name of theirs in the training vocabulary). The last line is ``RESULT seen_weight=...
unseen_weight=... heldout_miou=... heldout_unseen=...`` (the chosen pair's held-out means over
the splits).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import densevl.engine  # noqa: E402,F401  (mmengine checkpoints under weights-only loading)

# isort: split
import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402

import densevl.datasets.mm_datasets  # noqa: E402,F401
import densevl.models.mm_adapters  # noqa: E402,F401
from densevl.evaluation.seg_quality import evaluate_segmentation, mean_iou  # noqa: E402
from densevl.models.text import parse_class_names  # noqa: E402
from densevl.registry import SEG_DATASETS, SEG_MODELS  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a vocabulary-agnostic DenseCLIP config')
    parser.add_argument('checkpoint', help='its trained checkpoint')
    parser.add_argument('--split', action='append', metavar='IMG_DIR:ANN_DIR',
                        help="data_prefix of a split of the config's test dataset (repeat; "
                        'default: the test dataset as configured)')
    parser.add_argument('--seen-weights', type=float, nargs='+', default=[0.0, 0.2, 0.4])
    parser.add_argument('--unseen-weights', type=float, nargs='+',
                        default=[0.4, 0.5, 0.6, 0.7, 0.8])
    parser.add_argument('--limit', type=int, help='images per split (default all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE')
    return parser.parse_args(argv)


def split_datasets(cfg: Config, splits: list[str] | None, limit: int | None) -> dict:
    """Each split's (even-indexed, odd-indexed) halves of the config's test dataset."""
    halves = {}
    for split in splits or [None]:
        dataset_cfg = cfg.test_dataloader.dataset.copy()
        if split is not None:
            if split.count(':') != 1:
                raise SystemExit(f'--split {split!r}: expected IMG_DIR:ANN_DIR')
            img_path, seg_map_path = split.split(':')
            dataset_cfg.data_prefix = dict(img_path=img_path, seg_map_path=seg_map_path)
        size = len(SEG_DATASETS.build(dataset_cfg))
        if size < 2:
            raise SystemExit(f'split {split or "test"} has {size} images; it needs two or more')
        size = min(size, limit or size)
        halves[split or 'test'] = tuple(
            SEG_DATASETS.build(dict(dataset_cfg, indices=list(range(start, size, 2))))
            for start in (0, 1))
    return halves


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if not cfg.model.get('clip_ensemble'):
        raise SystemExit(f'{args.config} has no model.clip_ensemble to tune; add one (see '
                         'configs/denseclip/README.md)')
    model = SEG_MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent')
    model.eval()
    halves = split_datasets(cfg, args.split, args.limit)
    first = next(iter(halves.values()))[0]
    classes = list(first.metainfo['classes'])
    if model.class_names is None:
        model.class_names = classes
    trained = set(model.training_vocabulary().queries)
    unseen = [k for k, synonyms in enumerate(parse_class_names(model.class_names))
              if not trained & set(synonyms)]

    seen = [k for k in range(len(classes)) if k not in unseen]

    def scores(half: int) -> dict[str, tuple[float, float, float]]:
        """Per split: mIoU over all, the trained and the untrained classes."""
        result = {}
        for name, pair in halves.items():
            iou = evaluate_segmentation(model.test_step, pair[half], len(classes))
            result[name] = (mean_iou(iou), mean_iou(iou, seen), mean_iou(iou, unseen))
        return result

    def fmt(result: dict) -> str:
        return ', '.join(f'{name} {v[0]:.1f} (trained classes {v[1]:.1f}, others {v[2]:.1f})'
                         for name, v in result.items())

    ensemble = model.clip_ensemble
    rows = []
    for seen_weight, unseen_weight in itertools.product(args.seen_weights, args.unseen_weights):
        ensemble.seen_weight, ensemble.unseen_weight = seen_weight, unseen_weight
        held_in, held_out = scores(0), scores(1)
        choice = float(np.mean([v[0] for v in held_in.values()]))
        rows.append((choice, seen_weight, unseen_weight, held_out))
        print(f'seen {seen_weight:.2f} unseen {unseen_weight:.2f} | held-in mean {choice:.1f}: '
              f'{fmt(held_in)} | held-out: {fmt(held_out)}', flush=True)
    _, seen_weight, unseen_weight, held_out = max(rows, key=lambda row: row[0])
    print(f'RESULT seen_weight={seen_weight} unseen_weight={unseen_weight} '
          f'heldout_miou={np.mean([v[0] for v in held_out.values()]):.1f} '
          f'heldout_unseen={np.nanmean([v[2] for v in held_out.values()]):.1f}')


if __name__ == '__main__':
    main()
