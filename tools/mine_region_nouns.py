"""Mine region–noun pairs from captioned images with a trained OVSeg, for mask-adapting CLIP.

Each image's caption (the first of its COCO-format captions, as ov-seg's "1cap" data) is split
into noun phrases; the OVSeg's class-agnostic proposals are matched to them by its frozen CLIP
(``densevl.models.ovseg.region_nouns``). Every pair is saved losslessly as ``crops/*.png`` (the
region's tight crop, the outside filled with CLIP's mean colour) and listed in
``OUT/region_nouns.csv``, tab-separated with the columns ``filepath`` (relative to OUT) and
``title``: what ``RegionTextDataset`` and ``configs/ovseg/*region-nouns*.py`` read. The file is
written last, atomically: an interrupted run leaves no table.

Example (the proving ground; the OVSeg trained on the seen classes):
    python tools/mine_region_nouns.py \
        configs/ovseg/ovseg_clip-synthetic-tiny_400it_synthetic-64.py \
        work_dirs/seed0/ovseg_clip-synthetic-tiny_400it_synthetic-64/iter_400.pth \
        --captions data/synthetic/coco/captions_train.json \
        --images data/synthetic/images/train --out data/synthetic/region_nouns
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from densevl.apis import OpenVocabSegInferencer  # noqa: E402
from densevl.apis.image_io import load_image  # noqa: E402
from densevl.datasets.region_text import COLUMNS  # noqa: E402
from densevl.models.ovseg.region_nouns import mine_regions  # noqa: E402

TABLE = 'region_nouns.csv'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the OVSeg config')
    parser.add_argument('checkpoint', help='its trained weights (tools/train.py)')
    parser.add_argument('--captions', required=True,
                        help="COCO-format captions: 'images' (id, file_name) and 'annotations' "
                             '(image_id, caption)')
    parser.add_argument('--images', required=True, help='the folder of the file names')
    parser.add_argument('--out', required=True, help='output folder (crops/ and the table)')
    parser.add_argument('--caption-index', type=int, default=0,
                        help="which of an image's captions (default 0: the first, ov-seg's 1cap)")
    parser.add_argument('--limit', type=int, default=None, help='mine the first N images only')
    parser.add_argument('--batch-size', type=int, default=16,
                        help='images a forward (consecutive images of one size)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def captioned_images(captions_file: str, image_dir: str, index: int) -> list[tuple[Path, str]]:
    """``(image path, caption)`` of every image with more than ``index`` captions."""
    data = json.loads(Path(captions_file).read_text())
    captions: dict[int, list[str]] = {}
    for ann in data['annotations']:
        captions.setdefault(ann['image_id'], []).append(ann['caption'])
    return [(Path(image_dir) / image['file_name'], captions[image['id']][index])
            for image in data['images'] if len(captions.get(image['id'], ())) > index]


def same_size_runs(batch: list) -> list[list]:
    """Consecutive items whose image tensors (the last element) have one size."""
    runs: list[list] = []
    for item in batch:
        if runs and runs[-1][-1][-1].shape == item[-1].shape:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def main(argv: list[str] | None = None) -> Counter:
    args = parse_args(argv)
    for path, what in ((args.checkpoint, 'checkpoint'), (args.captions, 'captions file')):
        if not os.path.isfile(path):
            sys.exit(f'error: {what} {path} does not exist')
    images = captioned_images(args.captions, args.images, args.caption_index)[:args.limit]
    if not images:
        sys.exit(f'error: no image of {args.captions} has caption {args.caption_index}')
    inferencer = OpenVocabSegInferencer(args.config, weights=args.checkpoint, device=args.device,
                                        demo_preset=False)   # the config's mask threshold
    out = Path(args.out)
    (out / 'crops').mkdir(parents=True, exist_ok=True)
    rows, titles = [], Counter()
    for start in range(0, len(images), args.batch_size):
        batch = [(path, caption, inferencer.preprocess(load_image(str(path))))
                 for path, caption in images[start:start + args.batch_size]]
        for group in same_size_runs(batch):
            found = mine_regions(inferencer.segmenter, torch.cat([t for _, _, t in group]),
                                 [caption for _, caption, _ in group])
            for (path, _, _), pairs in zip(group, found):
                for k, (noun, crop) in enumerate(pairs):
                    name = f'crops/{path.stem}_{k}.png'
                    Image.fromarray(crop).save(out / name)
                    rows.append((name, noun))
                    titles[noun] += 1
        print(f'{min(start + args.batch_size, len(images))}/{len(images)} images, '
              f'{len(rows)} pairs', flush=True)
    partial = out / (TABLE + '.partial')
    with partial.open('w', newline='') as f:
        writer = csv.writer(f, delimiter='\t')
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    partial.replace(out / TABLE)
    print(f'{len(rows)} region-noun pairs from {len(images)} images, {len(titles)} distinct '
          f'nouns, in {out / TABLE}; most frequent: {titles.most_common(5)}')
    return titles


if __name__ == '__main__':
    main()
