"""Write the synthetic scene world (ADE20K / COCO / RefCOCO layouts) to disk.

Usage::

    python tools/make_synthetic_dataset.py --out data/synthetic --train 2000 --val 200 \\
        --test 500 --novel 300 --unlabeled 2000 --size 64 --seed 0

The same arguments give byte-identical files; a split's images do not depend on the other
splits' counts. See ``<out>/README.md`` for the layout and the novel-split rules.
"""
from __future__ import annotations

import argparse
import time

from densevl.datasets.synthetic import write_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/synthetic', help='output folder')
    for split, n in (('train', 2000), ('val', 200), ('test', 500), ('novel', 300)):
        parser.add_argument(f'--{split}', type=int, default=n, help=f'{split} images')
    parser.add_argument('--unlabeled', type=int, default=2000, help='retrieval gallery images')
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--captions-per-image', type=int, default=3)
    parser.add_argument('--refs-per-object', type=int, default=3)
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    counts = dict(train=args.train, val=args.val, test=args.test, novel=args.novel)
    start = time.perf_counter()
    root = write_dataset(args.out, counts=counts, size=args.size, seed=args.seed,
                         unlabeled=args.unlabeled, captions_per_image=args.captions_per_image,
                         refs_per_object=args.refs_per_object, progress=not args.quiet)
    total = sum(counts.values()) + args.unlabeled
    elapsed = time.perf_counter() - start
    print(f'wrote {total} images to {root} in {elapsed:.1f} s')
    print(f'RESULT images={total} seconds={elapsed:.2f} out={root}')


if __name__ == '__main__':
    main()
