"""GroundVLP zero-shot grounding on the synthetic proving ground, beside baselines in the same run.

The synthetic world's RefCOCO-format split (``data/synthetic/refcoco``: ``refs(synthetic).p`` and
``instances.json``; its categories are the 8 colours) is grounded with
:class:`~densevl.apis.GroundingInferencer`: the CLIP heat map of ``clip-synthetic-tiny`` (ViT
relevancy) and, by default, the open-vocabulary Faster R-CNN of the proving ground (seed 0 of
``tools/quality_runs.py``; ``make quality`` trains it). Acc@0.5 per sentence
(:func:`~densevl.evaluation.grounding_accuracy.refcoco_iou`), rows:

* ``groundvlp_acc`` — predicted category. The categories here are colours, so the head noun
  (``star``, ``object``) says nothing about the category; the subject's noun phrase
  (``'large red star'``, :func:`~densevl.apis.grounding_inferencer.subject_phrase`) is mapped
  to a colour by CLIP text similarity instead (``category_from='phrase'``); detector threshold 0.3.
* ``groundvlp_noun_acc`` — the same with GroundVLP's own rule (the head noun mapped alone).
* ``groundvlp_gt_acc`` — the ground-truth category (not strictly zero-shot); threshold 0.15.
* baselines, on the same candidates: ``random_acc`` (a random class-agnostic proposal, seed 0),
  ``largest_acc`` (the largest proposal), ``det_top_gt_acc`` / ``det_top_acc`` (the detector's
  best box of the GT / predicted category; none found is a miss), ``heat_alone_acc`` (the box
  of the connected region of the heat map at >= half its maximum that holds the maximum),
  ``heat_proposals_acc`` (the heat map over the proposals, ``d = 1``: GroundVLP without the
  detector's category), ``clip_crop_acc`` (ReCLIP-style: each proposal cropped, resized to the
  CLIP's input and scored by cosine with ``'a photo of {expression}'``).

Usage:
    python tools/benchmark_grounding.py [--detector-config CFG] [--detector-weights PTH]
        [--data data/synthetic/refcoco] [--split test] [--limit N-IMAGES]
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import quality_runs as runs  # noqa: E402  (tools/, beside this script)

from densevl.apis import GroundingInferencer  # noqa: E402
from densevl.apis.grounding_inferencer import GT_SCORE_THRESHOLD, PREDICTED_SCORE_THRESHOLD  # noqa: E402,E501
from densevl.apis.image_io import load_image  # noqa: E402
from densevl.datasets.refcoco_grounding import RefCOCOGroundingDataset  # noqa: E402
from densevl.evaluation.grounding_accuracy import refcoco_iou  # noqa: E402
from densevl.models.grounding import box_heat_scores  # noqa: E402

DETECTOR_CONFIG = f'configs/ovdet/{runs.OVDET_RUN}.py'
DETECTOR_WEIGHTS = str(runs.STEP[runs.OVDET_RUN].output_path(Path('work_dirs'), 0))
ROWS = ('groundvlp_acc', 'groundvlp_noun_acc', 'groundvlp_gt_acc', 'random_acc', 'largest_acc',
        'det_top_acc', 'det_top_gt_acc', 'heat_alone_acc', 'heat_proposals_acc', 'clip_crop_acc')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data/synthetic/refcoco')
    parser.add_argument('--split', default='test')
    parser.add_argument('--model', default='clip-synthetic-tiny', help='heat-map CLIP')
    parser.add_argument('--weights', default=None, help='its weights (default: packaged)')
    parser.add_argument('--detector-config', default=DETECTOR_CONFIG)
    parser.add_argument('--detector-weights', default=DETECTOR_WEIGHTS)
    parser.add_argument('--limit', type=int, default=None, help='first N images only')
    return parser.parse_args(argv)


def heat_box(heat: torch.Tensor) -> list[float]:
    """Box of the connected region of ``heat >= max / 2`` holding the maximum (xyxy, exclusive
    ends)."""
    h = heat.numpy()
    regions, _ = ndimage.label(h >= 0.5 * h.max())
    y, x = np.unravel_index(int(h.argmax()), h.shape)
    ys, xs = np.nonzero(regions == regions[y, x])
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


@torch.no_grad()
def crop_scores(ground: GroundingInferencer, image: np.ndarray, boxes: torch.Tensor,
                texts: torch.Tensor) -> torch.Tensor:
    """ReCLIP-style crop scoring: cosine of each cropped proposal with each text.
    Shapes: boxes ``(N, 4)``, texts ``(K, C)``; returns ``(K, N)``."""
    size = ground.short_side or 224
    tensor = ground.preprocess(image)
    scale = tensor.shape[-1] / image.shape[1]
    crops = []
    for x1, y1, x2, y2 in (boxes * scale).round().long().tolist():
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        crop = tensor[..., max(0, y1):y2, max(0, x1):x2]
        crops.append(F.interpolate(crop, size=(size, size), mode='bilinear',
                                   align_corners=False))
    embeddings = F.normalize(ground.clip.model.encode_image(torch.cat(crops)).float(), dim=-1)
    return texts @ embeddings.T


def hit(box, gt) -> bool:
    return box is not None and refcoco_iou([float(v) for v in box], gt) >= 0.5


def evaluate(args: argparse.Namespace) -> dict[str, float]:
    dataset = RefCOCOGroundingDataset(data_root=args.data, split_file='refs(synthetic).p',
                                      split=args.split,
                                      data_prefix=dict(img_path=osp.join('..', 'images')))
    by_image = defaultdict(list)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        by_image[info['img_path']].append(info)
    images = sorted(by_image)[:args.limit]
    detector = (args.detector_config, args.detector_weights)
    predicted = GroundingInferencer(args.model, args.weights, detector=detector, device='cpu',
                                    category_from='phrase')
    if predicted.is_random_weights:
        print('!! WARNING: random weights: the accuracies mean nothing')
    rng = np.random.default_rng(0)
    hits = {row: 0 for row in ROWS}
    total = 0
    for path in images:
        infos = by_image[path]
        image = load_image(path)
        parsed = predicted.parse([s['text'] for s in infos])
        detections = predicted.detector.run(image)
        heat = predicted.heat_maps(predicted.preprocess(image), parsed, image.shape[:2])
        phrase_cats = predicted.categories_of(parsed)
        predicted.category_from = 'subject'
        noun_cats = predicted.categories_of(parsed)
        predicted.category_from = 'phrase'
        gt_cats = predicted.categories_of(parsed, [s['category'] for s in infos])
        proposals = detections.proposals()
        texts = predicted.heat.encode_texts([p.text for p in parsed])
        crops = crop_scores(predicted, image, proposals, texts) if len(proposals) else None
        areas = (proposals[:, 2] - proposals[:, 0]) * (proposals[:, 3] - proposals[:, 1])
        for k, (info, p) in enumerate(zip(infos, parsed)):
            gt = info['gt_bbox']
            total += 1
            rows = {
                'groundvlp_acc': predicted.select(p, heat[k], detections, phrase_cats[k],
                                                  PREDICTED_SCORE_THRESHOLD).box,
                'groundvlp_noun_acc': predicted.select(p, heat[k], detections, noun_cats[k],
                                                       PREDICTED_SCORE_THRESHOLD).box,
                'groundvlp_gt_acc': predicted.select(p, heat[k], detections, gt_cats[k],
                                                     GT_SCORE_THRESHOLD).box,
                'heat_alone_acc': heat_box(heat[k]),
            }
            for row, category, threshold in (
                    ('det_top_acc', phrase_cats[k], PREDICTED_SCORE_THRESHOLD),
                    ('det_top_gt_acc', gt_cats[k], GT_SCORE_THRESHOLD)):
                boxes, _ = (detections.of_category(category, threshold) if category
                            else (proposals[:0], None))
                rows[row] = boxes[0] if len(boxes) else None
            if len(proposals):
                rows['random_acc'] = proposals[int(rng.integers(len(proposals)))]
                rows['largest_acc'] = proposals[int(areas.argmax())]
                rows['heat_proposals_acc'] = proposals[int(box_heat_scores(heat[k], proposals)
                                                           .argmax())]
                rows['clip_crop_acc'] = proposals[int(crops[k].argmax())]
            for row, box in rows.items():
                hits[row] += hit(box, gt)
    print(f'{total} sentences on {len(images)} images ({args.split})')
    return {row: 100.0 * hits[row] / max(total, 1) for row in ROWS}


def main(argv=None) -> int:
    torch.manual_seed(0)
    args = parse_args(argv)
    if not osp.isfile(args.detector_weights):
        print(f'error: no detector checkpoint at {args.detector_weights}; train it with '
              f'tools/train.py {args.detector_config} (the default one: '
              'tools/benchmark_quality.py --train-missing --only ovdet)', file=sys.stderr)
        return 2
    results = evaluate(args)
    width = max(len(r) for r in ROWS)
    for row in ROWS:
        print(f'{row:<{width}}  {results[row]:6.2f}')
    print('RESULT ' + ' '.join(f'{row}={results[row]:.2f}' for row in ROWS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
