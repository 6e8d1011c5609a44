"""Quality of every available method on the synthetic proving ground, with baselines.

Evaluates on the held-out ``test`` split and the ``novel`` split (pink and purple, never in any
segmentation training split) through mmseg's ``IoUMetric``, and prints one row per method with
its mIoU over all 14 classes, over the 8 object (thing) classes and over the 6 stuff classes,
beside three baselines: uniform chance, the majority class of the train split, and *global fill*
(each image filled with the model's whole-image zero-shot class — what a model that localises
nothing scores). Also: caption->image retrieval top-1 within groups of 64 test images, and
whole-image presence AUC per attribute (stuff, colour, pattern, shape).

Trained methods (DenseCLIP segmentation, the vocabulary-agnostic variant with its frozen-CLIP
ensemble and its head alone; OVSeg and its mask-adapted CLIPs; ReCo+; DenseCLIP RetinaNet and
Mask R-CNN; the open-vocabulary Faster R-CNN and GroundVLP with it in its detector slot) get
their rows from the runs of ``tools/quality_runs.py`` (the one list of their commands) for each
seed present under ``--work-dirs``, as the mean over the seeds ± half their range: segmentation
through the same IoUMetric path, detection through mmdet's CocoMetric (box AP; mask AP for Mask
R-CNN), grounding as ``tools/benchmark_grounding.py``. ``--train-missing`` (``make quality``)
first runs every missing step, two at a time, resuming an interrupted training; without it the
rows whose runs are missing are listed as skipped, with the commands that fill them.

Usage:
    python tools/benchmark_quality.py [--train-missing] [--seeds 0 1] [--work-dirs work_dirs]
        [--model clip-synthetic-tiny] [--weights PATH] [--data data/synthetic] [--limit N]
    python tools/benchmark_quality.py --commands      # the trained rows' commands
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import quality_runs as runs  # tools/, beside this script
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import densevl.datasets.mm_datasets  # noqa: F401 - registers SyntheticSceneDataset
from densevl.datasets.synthetic import (
    CLASSES,
    DEFAULT_SPEC,
    PATTERN_WORDS,
    SHAPES,
    STUFF_CLASSES,
    THING_CLASSES,
    write_dataset,
)
from densevl.evaluation import evaluate_segmentation, mean_iou, presence_auc, uniform_chance_iou
from densevl.models.clip.model_zoo import MODEL_ZOO
from densevl.models.inference_protocol import OPENAI_MEAN, OPENAI_STD, default_protocol
from densevl.models.segmentors.training_free import TrainingFreeSegmentor
from densevl.registry import SEG_DATASETS

MODES = ('plain', 'maskclip', 'sclip', 'clearclip', 'naclip')
RESNET_MODEL = 'clip-synthetic-tiny-rn'  # evaluated too when its weights are there
COUNTS = dict(train=2000, val=200, test=500, novel=300)
STUFF = list(range(len(STUFF_CLASSES)))
THINGS = list(range(len(STUFF_CLASSES), len(CLASSES)))
NOVEL = [CLASSES.index(c) for c in DEFAULT_SPEC.novel_classes]
SEEN_THINGS = [c for c in THINGS if c not in NOVEL]
SEEN = [c for c in range(len(CLASSES)) if c not in NOVEL]
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]


def dataset(root: Path, split: str, limit: int | None, short_side: int = 64):
    # a larger input is resized before the labels are read: metrics stay at the scenes' size
    resize = [dict(type='Resize', scale=(2048, short_side), keep_ratio=True)] \
        if short_side != 64 else []
    ds = SEG_DATASETS.build(dict(
        type='SyntheticSceneDataset', data_root=str(root),
        pipeline=[PIPELINE[0], *resize, *PIPELINE[1:]],
        data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
        indices=limit))
    return ds


def label_counts(ds) -> np.ndarray:
    counts = np.zeros(len(CLASSES), np.int64)
    for i in range(len(ds)):
        gt = ds[i]['data_samples'].gt_sem_seg.data.numpy().ravel()
        counts += np.bincount(gt[gt != 255], minlength=len(CLASSES))[:len(CLASSES)]
    return counts


def build(model: str, weights: str | None, mode: str) -> TrainingFreeSegmentor:
    protocol = default_protocol(model)
    return TrainingFreeSegmentor(
        clip=dict(model_name=model, pretrained=weights), mode=mode, class_names=list(CLASSES),
        templates=list(protocol.templates), logit_scale=protocol.logit_scale, slide=None,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=list(OPENAI_MEAN),
                               std=list(OPENAI_STD), bgr_to_rgb=True)).eval()


@torch.no_grad()
def global_fill_predictor(segmentor: TrainingFreeSegmentor):
    """Each image filled with its whole-image zero-shot class."""
    from mmengine.structures import PixelData
    core = segmentor.core
    text = F.normalize(core.vocabulary(list(CLASSES)).embeddings, dim=-1)

    def predict(batch):
        data = segmentor.data_preprocessor(batch, False)
        images, samples = data['inputs'], data['data_samples']
        emb = F.normalize(core.encoder.forward_dense(images).global_embedding, dim=-1)
        best = (emb @ text.T).argmax(1)
        for cls, sample in zip(best.tolist(), samples):
            h, w = sample.metainfo['ori_shape'][:2]
            sample.pred_sem_seg = PixelData(data=torch.full((1, h, w), cls))
        return samples
    return predict


def majority_iou(train_counts: np.ndarray, eval_counts: np.ndarray) -> np.ndarray:
    """Per-class IoU of filling every pixel with the train split's most frequent class."""
    majority = int(train_counts.argmax())
    iou = np.where(eval_counts > 0, 0.0, np.nan)
    iou[majority] = eval_counts[majority] / eval_counts.sum()
    return iou


@torch.no_grad()
def retrieval_and_auc(segmentor: TrainingFreeSegmentor, root: Path, limit: int | None) -> dict:
    """Caption->image top-1 within groups of 64, and presence AUC per attribute (test split)."""
    coco = json.loads((root / 'coco/instances_test.json').read_text())
    captions = json.loads((root / 'coco/captions_test.json').read_text())
    images = sorted(coco['images'], key=lambda im: im['id'])[:limit]
    caption_of = {}
    for ann in captions['annotations']:
        caption_of.setdefault(ann['image_id'], ann['caption'])
    present: dict[int, set[str]] = {im['id']: set(im.get('stuff', [])) for im in images}
    categories = {c['id']: c['name'] for c in coco['categories']}
    for ann in coco['annotations']:
        if ann['image_id'] in present:
            attrs = ann.get('attributes', {})
            present[ann['image_id']].update({categories[ann['category_id']],
                                             PATTERN_WORDS.get(attrs.get('pattern'), ''),
                                             attrs.get('shape', '')})
    core = segmentor.core
    from PIL import Image
    pixels = np.stack([np.asarray(Image.open(root / 'images/test' / im['file_name']).convert('RGB'))
                       for im in images])
    tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2).float()
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    emb = F.normalize(core.encoder.forward_dense((tensor - mean) / std).global_embedding, dim=-1)
    hits, total = 0, 0
    for start in range(0, len(images) - 63, 64):
        group = images[start:start + 64]
        texts = core.text.encode_texts([caption_of[im['id']] for im in group])
        sims = texts @ emb[start:start + 64].T
        hits += int((sims.argmax(1) == torch.arange(len(group))).sum())
        total += len(group)

    def auc(words: list[str]) -> float:
        vocab = core.vocabulary(words)
        scores = (emb @ F.normalize(vocab.embeddings, dim=-1).T).numpy()
        values = [presence_auc(scores[:, j], np.array([w in present[im['id']] for im in images]))
                  for j, w in enumerate(words)]
        return float(np.nanmean(values))

    return dict(retrieval_top1=100.0 * hits / max(total, 1),
                stuff_auc=auc(list(STUFF_CLASSES)),
                object_auc=auc([c for c in THING_CLASSES if c not in DEFAULT_SPEC.novel_classes]),
                pattern_auc=auc([PATTERN_WORDS[p] for p in PATTERN_WORDS]),
                shape_auc=auc(list(SHAPES)))


# ----- ReCo (configs/reco; issue 12) -------------------------------------------------------------
# Training-free ReCo on the proving ground (its index: the unlabeled split embedded by the tiny
# CLIP, the step reco_index of tools/quality_runs.py) and its component ablation; ReCo+ is a
# trained row below.
# key: (row label, model overrides)
RECO_VARIANTS = dict(
    reco=('ReCo (index + ViT patch tokens: tiny CLIP; guidance: its ResNet twin; k = 50, CRF)',
          {}),
    reco_no_lgc=('ReCo without language-guided co-segmentation', dict(coseg_guidance=False)),
    reco_no_ce=('ReCo without context elimination', dict(context=())),
    reco_no_crf=('ReCo without DenseCRF', dict(crf=None)),
    reco_vit_guidance=("ReCo, guidance from the ViT tiny CLIP's MaskCLIP path",
                       dict(guidance=dict(model_name='clip-synthetic-tiny'))),
    reco_no_inference_guidance=('ReCo without guidance at inference (references alone)',
                                dict(inference_guidance=False)))


def reco_segmentor(overrides: dict):
    """The proving-ground ReCo with ``overrides`` of its model (its index: a recorded step)."""
    from mmengine.config import Config

    import densevl.models.mm_adapters  # noqa: F401
    from densevl.registry import SEG_MODELS
    cfg = Config.fromfile(runs.RECO_CONFIG)
    cfg.model.update(overrides)
    return SEG_MODELS.build(cfg.model).eval()


# ----- trained rows (tools/quality_runs.py holds their commands) ---------------------------------
# Every trained row is evaluated for each seed whose runs exist and reported as the mean over the
# seeds ± half their range; a row or seed whose runs are missing is listed with its commands.
def _load_segmentor(config: str, checkpoint: Path, model_overrides: dict):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    import densevl.engine  # noqa: F401 - mmengine checkpoints under weights_only loading
    import densevl.models.mm_adapters  # noqa: F401
    from densevl.registry import SEG_MODELS
    cfg = Config.fromfile(config)
    for key, value in model_overrides.items():
        if isinstance(value, dict) and isinstance(cfg.model.get(key), dict):
            cfg.model[key].update(value)
        else:
            cfg.model[key] = value
    model = SEG_MODELS.build(cfg.model)
    load_checkpoint(model, str(checkpoint), map_location='cpu', logger='silent')
    return model.eval()


def denseclip_row(method: str, overrides: dict | None = None):
    run = runs.SEG_RUN.format(method)

    def build(work_dirs: Path, seed: int):
        return _load_segmentor(f'configs/denseclip/{run}.py',
                               runs.checkpoint(work_dirs, run, seed), overrides or {})
    return (run,), build


def ovseg_row(classifier: str, ensemble_weight: float | None, clip: str | None):
    """OVSeg with its classifier and ensemble weight set and its CLIP replaced by a mask-adapted
    one (``runs.CLIP_RUNS[clip]``)."""
    def build(work_dirs: Path, seed: int):
        overrides = dict(classifier=classifier, ensemble_weight=ensemble_weight)
        if clip:
            tuned = runs.checkpoint(work_dirs, runs.CLIP_RUNS[clip], seed)
            masks = tuned.with_name('clip.mask_embedding.pth')
            overrides['clip'] = dict(pretrained=str(tuned),
                                     mask_embedding=str(masks) if masks.is_file() else None)
        return _load_segmentor(f'configs/ovseg/{runs.OVSEG_RUN}.py',
                               runs.checkpoint(work_dirs, runs.OVSEG_RUN, seed), overrides)
    return (runs.OVSEG_RUN, *((runs.CLIP_RUNS[clip],) if clip else ())), build


def reco_plus_row():
    def build(work_dirs: Path, seed: int):
        return _load_segmentor(f'configs/reco/{runs.RECO_PLUS_RUN}.py',
                               runs.checkpoint(work_dirs, runs.RECO_PLUS_RUN, seed), {})
    return (runs.RECO_PLUS_RUN,), build


# key: (row label, (steps needed, builder of the segmentor for a seed))
TRAINED_SEG = dict(
    clip_fpn_seg=('clip-fpn (trained on seen classes, 400 iterations)',
                  denseclip_row('clip-fpn')),
    denseclip_seg=('denseclip (trained on seen classes, 400 iterations)',
                   denseclip_row('denseclip')),
    denseclip_agnostic_head=('denseclip-agnostic, head alone',
                             denseclip_row('denseclip-agnostic', dict(clip_ensemble=None))),
    denseclip_agnostic=('denseclip-agnostic + frozen-CLIP ensemble (maskclip, 0.2 / 0.4)',
                        denseclip_row('denseclip-agnostic')),
    ovseg=('OVSeg: masked crops + head, ensemble 0.7', ovseg_row('masked_crops', 0.7, None)),
    ovseg_head=('OVSeg: head alone', ovseg_row('masked_crops', None, None)),
    ovseg_crops=('OVSeg: masked crops alone', ovseg_row('masked_crops', 0.0, None)),
    ovseg_mpt=('OVSeg, MPT CLIP: masked crops + head', ovseg_row('masked_crops', 0.7, 'mpt')),
    ovseg_mpt_crops=('OVSeg, MPT CLIP: masked crops alone',
                     ovseg_row('masked_crops', 0.0, 'mpt')),
    ovseg_ft_crops=('OVSeg, fine-tuned CLIP: masked crops alone',
                    ovseg_row('masked_crops', 0.0, 'ft')),
    ovseg_ft_mpt=('OVSeg, fine-tuned + MPT CLIP: masked crops + head',
                  ovseg_row('masked_crops', 0.7, 'ft_mpt')),
    ovseg_ft_mpt_crops=('OVSeg, fine-tuned + MPT CLIP: masked crops alone',
                        ovseg_row('masked_crops', 0.0, 'ft_mpt')),
    ovseg_pooling=('OVSeg: mask pooling + head, ensemble 0.7',
                   ovseg_row('mask_pooling', 0.7, None)),
    ovseg_pooling_crops=('OVSeg: mask pooling alone', ovseg_row('mask_pooling', 0.0, None)),
    ovseg_ft_pooling=('OVSeg, fine-tuned CLIP: mask pooling + head',
                      ovseg_row('mask_pooling', 0.7, 'ft')),
    reco_plus=(f'ReCo+ (DeepLabv3+ R18 on ReCo pseudo-labels, {runs.RECO_PLUS_ITERS} it)',
               reco_plus_row()),
)


def coco_ap(config: str, checkpoint: Path, work_dir: Path, split: str = 'test',
            limit: int | None = None) -> dict:
    """mmdet's CocoMetric (classwise) of a detector checkpoint on a proving-ground split."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    import densevl.engine  # noqa: F401
    cfg = Config.fromfile(config)
    cfg.work_dir = str(work_dir / f'quality_{split}')
    cfg.load_from = str(checkpoint)
    cfg.test_dataloader.dataset.update(ann_file=f'coco/instances_{split}.json',
                                       data_prefix=dict(img=f'images/{split}/'), indices=limit)
    cfg.test_evaluator.update(ann_file=f'{cfg.data_root}coco/instances_{split}.json',
                              classwise=True)
    cfg.log_level = 'WARNING'
    metrics = Runner.from_cfg(cfg).test()
    init_default_scope('mmseg')
    return metrics


def denseclip_detector_ap(run: str, kinds: tuple[str, ...]):
    def measure(work_dirs: Path, seed: int, limit: int | None) -> dict:
        ckpt = runs.checkpoint(work_dirs, run, seed)
        metrics = coco_ap(f'configs/denseclip/{run}.py', ckpt, ckpt.parent, limit=limit)
        return {kind: 100.0 * metrics[f'coco/{kind}_mAP'] for kind in kinds}
    return (run,), measure


UNSEEN_DET = ('pink', 'purple')


def ovdet_row(config: str):
    """Seen AP (test split, all 8 names) and unseen AP (novel split, all 8 names; the mean of the
    per-class AP of pink and purple) in % of the open-vocabulary detector tested with
    ``config``."""
    def measure(work_dirs: Path, seed: int, limit: int | None) -> dict:
        ckpt = runs.checkpoint(work_dirs, runs.OVDET_RUN, seed)
        novel = coco_ap(config, ckpt, ckpt.parent, 'novel', limit)
        seen = coco_ap(config, ckpt, ckpt.parent, 'test', limit)['coco/bbox_mAP']
        return dict(seen=100.0 * seen, novel_all=100.0 * novel['coco/bbox_mAP'],
                    unseen=100.0 * float(np.mean([novel[f'coco/{c}_precision']
                                                  for c in UNSEEN_DET])))
    return (runs.OVDET_RUN,), measure


def grounding_acc(work_dirs: Path, seed: int, limit: int | None) -> dict:
    """GroundVLP on the synthetic RefCOCO-format test split with the open-vocabulary detector of
    ``seed`` in its slot, and its baselines (tools/benchmark_grounding.py), Acc@0.5 in %."""
    import benchmark_grounding
    args = benchmark_grounding.parse_args([
        '--detector-config', f'configs/ovdet/{runs.OVDET_RUN}.py',
        '--detector-weights', str(runs.checkpoint(work_dirs, runs.OVDET_RUN, seed)),
        *(['--limit', str(limit)] if limit else [])])
    return benchmark_grounding.evaluate(args)


DET_RUN = list(runs.DET_RUNS)  # RetinaNet, Mask R-CNN, Mask R-CNN on the ResNet tiny CLIP
# key: (label, (steps needed, measure(work_dirs, seed) -> {metric: value}), {metric: RESULT key})
TRAINED_DET = dict(
    denseclip_retinanet=('DenseCLIP RetinaNet (ViT tiny CLIP, 800 iterations), test box AP',
                         denseclip_detector_ap(DET_RUN[0], ('bbox',)),
                         dict(bbox='denseclip_retinanet_ap')),
    denseclip_maskrcnn=('DenseCLIP Mask R-CNN (ViT tiny CLIP, 400 iterations), test box / mask AP',
                        denseclip_detector_ap(DET_RUN[1], ('bbox', 'segm')),
                        dict(bbox='denseclip_maskrcnn_box_ap', segm='denseclip_maskrcnn_mask_ap')),
    denseclip_maskrcnn_rn=('DenseCLIP Mask R-CNN (ResNet tiny CLIP, 400 iterations), test box / '
                           'mask AP',
                           denseclip_detector_ap(DET_RUN[2], ('bbox', 'segm')),
                           dict(bbox='denseclip_maskrcnn_rn_box_ap',
                                segm='denseclip_maskrcnn_rn_mask_ap')),
    ovdet=('open-vocabulary Faster R-CNN: seen box AP (test) / unseen pink, purple (novel)',
           ovdet_row(f'configs/ovdet/{runs.OVDET_RUN}.py'),
           dict(seen='ovdet_ap', unseen='ovdet_unseen_ap', novel_all='ovdet_novel_ap')),
    ovdet_vild=('the same + ViLD-image ensemble (CLIP on 1x, 1.5x proposal crops, 2/3)',
                ovdet_row('configs/ovdet/'
                          'ovdet-faster-rcnn-vild-image_clip-synthetic-tiny_800it_synthetic-128.py'),
                dict(seen='ovdet_vild_ap', unseen='ovdet_vild_unseen_ap',
                     novel_all='ovdet_vild_novel_ap')),
    grounding=('GroundVLP (CLIP heat map x that detector), synthetic RefCOCO test Acc@0.5',
               ((runs.OVDET_RUN,), grounding_acc),
               dict(groundvlp_acc='groundvlp_acc', groundvlp_gt_acc='groundvlp_gt_acc',
                    det_top_acc='grounding_det_top_acc',
                    det_top_gt_acc='grounding_det_top_gt_acc',
                    heat_alone_acc='grounding_heat_alone_acc',
                    heat_proposals_acc='grounding_heat_proposals_acc',
                    clip_crop_acc='grounding_clip_crop_acc', random_acc='grounding_random_acc',
                    largest_acc='grounding_largest_acc')),
)


# rows evaluated only when --only names them (their cost; still listed as left out)
OPT_IN = dict(ovdet_vild='its per-proposal CLIP crops take about 14 min a seed on this 2-core '
              'CPU')


def seeds_of(work_dirs: Path, needs: tuple[str, ...], seeds) -> tuple[list[int], list[tuple]]:
    """The seeds whose steps ``needs`` are all done, and the (step, seed) pairs missing."""
    missing = [(runs.STEP[n], s) for s in seeds for n in needs
               if not runs.STEP[n].done(work_dirs, s)]
    return [s for s in seeds if all(step_seed[1] != s for step_seed in missing)], missing


def spread(values) -> tuple[float, float]:
    """Mean and half the range (NaN-aware)."""
    values = np.asarray(values, dtype=float)
    if np.all(np.isnan(values)):
        return math.nan, math.nan
    return float(np.nanmean(values)), float((np.nanmax(values) - np.nanmin(values)) / 2)


def fmt(x: float | tuple) -> str:
    if isinstance(x, tuple):
        mean, half = x
        return fmt(mean) if math.isnan(half) else f'{fmt(mean)} ± {half:.1f}'
    return '—' if x is None or (isinstance(x, float) and math.isnan(x)) else f'{x:.1f}'


class QualityTable:
    """The rows, the RESULT entries and the rows skipped (with the commands that fill them)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, list]] = []
        self.result: dict[str, float] = {}
        self.skipped: dict[str, list[tuple]] = {}

    def add_segmentation(self, label: str, runs_: list[dict[str, np.ndarray]],
                         key: str | None, seeds: list[int] | None = None) -> None:
        """A row of per-split IoU arrays, one dict per seed (one for a training-free row)."""
        def over_seeds(split: str, classes=None):
            return spread([mean_iou(r[split], classes) for r in runs_])
        cells = [over_seeds('test'), over_seeds('test', THINGS), over_seeds('test', STUFF),
                 over_seeds('novel'), over_seeds('novel', SEEN_THINGS),
                 over_seeds('novel', NOVEL)]
        if seeds:
            label += f' (seeds {", ".join(map(str, seeds))})'
        self.rows.append((label, cells if seeds else [mean for mean, _ in cells]))
        if not key:
            return
        for suffix, (mean, _) in zip(('', None, None, '_novel', None, '_unseen'), cells):
            if suffix is not None:
                self.result[f'{key}{suffix}'] = mean
        if seeds:  # trained rows: the novel split's seen classes too, and the spreads
            self.result[f'{key}_seen'] = spread([mean_iou(r['novel'], SEEN) for r in runs_])[0]
            self.result[f'{key}_spread'] = cells[0][1]
            self.result[f'{key}_unseen_spread'] = cells[5][1]

    def skip(self, label: str, missing: list[tuple]) -> None:
        self.skipped[label] = missing


def _evaluate(kind: str, key: str, seed: int | None, work_dirs: Path, root: Path,
              limit: int | None, model: str, weights: str | None):
    """One row (for one seed) in a worker process: per-split IoU arrays of a segmentation row,
    or a detection / grounding row's metrics; and the seconds it took."""
    begun = time.monotonic()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    init_default_scope('mmseg')
    if kind == 'det':
        return TRAINED_DET[key][1][1](work_dirs, seed, limit), time.monotonic() - begun
    short_side = 64
    if kind == 'free':
        segmentor = build(model, weights, key)
    elif kind == 'rn':
        segmentor, short_side = build(RESNET_MODEL, None, key.removeprefix('rn_')), 128
    elif kind == 'reco':
        segmentor = reco_segmentor(RECO_VARIANTS[key][1])
    else:
        segmentor = TRAINED_SEG[key][1][1](work_dirs, seed)
    return ({s: evaluate_segmentation(segmentor.test_step, dataset(root, s, limit, short_side),
                                      len(CLASSES)) for s in ('test', 'novel')},
            time.monotonic() - begun)


def evaluate_rows(table: QualityTable, root: Path, work_dirs: Path, seeds, limit: int | None,
                  workers: int, model: str, weights: str | None,
                  only: list[str] | None = None) -> list[str]:
    """Every row but the baselines, ``workers`` (row, seed) pairs at a time in separate
    processes (one thread each): the training-free rows, ReCo (once its index exists) and
    every trained row over the seeds present. Returns the detection and grounding lines."""
    # (kind, key, label, steps needed, seeded)
    rows = [('free', m, f'{m} ({"last-layer tokens" if m == "plain" else "training-free"})',
             (), False) for m in MODES]
    if MODEL_ZOO[RESNET_MODEL].weights_path.is_file():
        rows += [('rn', f'rn_{m}', f'{m} (ResNet tower'
                  f'{", DenseCLIP attention pool" if m == "plain" else ""})', (), False)
                 for m in ('plain', 'maskclip')]
    rows += [('reco', k, label, ('reco_index',), False) for k, (label, _) in RECO_VARIANTS.items()]
    rows += [('seg', k, label, needs, True) for k, (label, (needs, _)) in TRAINED_SEG.items()]
    rows += [('det', k, label, needs, True) for k, (label, (needs, _), _) in TRAINED_DET.items()]
    rows = [row for row in rows if row[1] in only] if only else \
        [row for row in rows if row[1] not in OPT_IN]
    present = {}
    for _, key, label, needs, seeded in rows:
        present[key], missing = seeds_of(work_dirs, needs, seeds if seeded else [None])
        if missing:
            table.skip(label, missing)
    pairs = [(kind, key, seed) for kind, key, *_ in rows for seed in present[key]]
    print(f'[quality] evaluating {len(pairs)} (row, seed) pairs, {workers} at a time',
          flush=True)
    results = {}
    context = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        futures = {pool.submit(_evaluate, kind, key, seed, work_dirs, root, limit, model,
                               weights): (key, seed) for kind, key, seed in pairs}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]], seconds = future.result()
            key, seed = futures[future]
            print(f'[quality] evaluated {key}{"" if seed is None else f" seed {seed}"} in '
                  f'{seconds / 60:.1f} min ({done}/{len(pairs)})', flush=True)
    lines = []
    for kind, key, label, _, seeded in rows:
        if not present[key]:
            continue
        per_seed = [results[key, seed] for seed in present[key]]
        if kind != 'det':
            table.add_segmentation(label, per_seed, key, present[key] if seeded else None)
            continue
        cells = []
        for metric, result_key in TRAINED_DET[key][2].items():
            mean, half = spread([r[metric] for r in per_seed])
            table.result[result_key] = mean
            table.result[f'{result_key}_spread'] = half
            cells.append(f'{metric} {fmt((mean, half))}')
        lines.append(f'| {label} (seeds {", ".join(map(str, present[key]))}) | '
                     f'{"; ".join(cells)} |')
    return lines


def row_keys() -> list[str]:
    return [*MODES, *(f'rn_{m}' for m in ('plain', 'maskclip')), *RECO_VARIANTS, *TRAINED_SEG,
            *TRAINED_DET]


def row_needs(keys: list[str]) -> tuple[str, ...]:
    """The steps the rows ``keys`` are evaluated from."""
    needs = [n for k, (_, (ns, _)) in TRAINED_SEG.items() if k in keys for n in ns]
    needs += [n for k, (_, (ns, _), _) in TRAINED_DET.items() if k in keys for n in ns]
    return (*needs, *(('reco_index',) if set(keys) & set(RECO_VARIANTS) else ()))


def training_times(work_dirs: Path, seeds) -> list[str]:
    """A markdown table of each step's command and recorded time (tools/quality_runs.py)."""
    lines = ['| step | seeds | wall min per seed (CPU min) | command |', '|---|---|---|---|']
    total_wall = total_cpu = 0.0
    for step in runs.STEPS:
        done = [(s, runs.record(work_dirs, step, s)) for s in (seeds if step.per_seed else [None])]
        done = [(s, r) for s, r in done if r]
        if not done:
            continue
        total_wall += sum(r['wall_s'] for _, r in done)
        total_cpu += sum(r['cpu_s'] for _, r in done)
        times = ' / '.join(f'{r["wall_s"] / 60:.1f} ({r["cpu_s"] / 60:.1f})' for _, r in done)
        lines.append(f'| {step.name} | {", ".join("-" if s is None else str(s) for s, _ in done)}'
                     f' | {times} | `{step.shell(seed="$S" if step.per_seed else None)}` |')
    lines.append(f'\nsteps recorded: {total_wall / 60:.1f} min of process wall time, '
                 f'{total_cpu / 60:.1f} min CPU (they run two at a time)')
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='clip-synthetic-tiny')
    parser.add_argument('--weights', default=None)
    parser.add_argument('--data', default='data/synthetic')
    parser.add_argument('--limit', type=int, default=None, help='images per split (default all)')
    parser.add_argument('--work-dirs', default='work_dirs', help='where trained runs are')
    parser.add_argument('--seeds', type=int, nargs='+', default=list(runs.SEEDS))
    parser.add_argument('--train-missing', action='store_true',
                        help='first run every missing step of tools/quality_runs.py (resumes '
                        'an interrupted training)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help='processes at once, one thread each: the steps of '
                        '--train-missing and the evaluation of the trained rows')
    parser.add_argument('--only', nargs='+', metavar='KEY', choices=row_keys(),
                        help='only these rows (their RESULT keys), e.g. denseclip_agnostic; with '
                        '--train-missing only their steps are trained')
    parser.add_argument('--commands', action='store_true',
                        help="print the trained rows' commands (the README's) and exit")
    args = parser.parse_args()
    if args.commands:
        print(runs.readme_commands(args.seeds))
        return
    begun = time.monotonic()
    init_default_scope('mmseg')
    root, work_dirs = Path(args.data), Path(args.work_dirs)
    if not (root / 'images/novel').is_dir():
        write_dataset(root, counts=COUNTS, seed=0, unlabeled=2000)
    if args.model not in MODEL_ZOO:
        raise SystemExit(f'{args.model} is not a proving-ground model')
    if args.train_missing:
        runs.train_missing(work_dirs, args.seeds, workers=args.workers,
                           names=runs.with_needs(row_needs(args.only)) if args.only else None)
    trained_minutes = (time.monotonic() - begun) / 60
    torch.manual_seed(0)

    splits = {s: dataset(root, s, args.limit) for s in ('test', 'novel')}
    counts = {s: label_counts(ds) for s, ds in splits.items()}
    train_counts = label_counts(dataset(root, 'train', args.limit))
    table = QualityTable()

    table.add_segmentation('uniform chance', [{s: uniform_chance_iou(c)
                                               for s, c in counts.items()}], 'chance')
    table.add_segmentation('majority class (train)', [{s: majority_iou(train_counts, c)
                                                       for s, c in counts.items()}], 'majority')
    plain = build(args.model, args.weights, 'plain')
    fill = {s: evaluate_segmentation(global_fill_predictor(plain), ds, len(CLASSES))
            for s, ds in splits.items()}
    table.add_segmentation('global fill (whole-image class)', [fill], 'global_fill')
    extra = retrieval_and_auc(plain, root, args.limit)
    detection_lines = evaluate_rows(table, root, work_dirs, args.seeds, args.limit, args.workers,
                                    args.model, args.weights, args.only)

    print(f'\nSynthetic proving ground, {args.model}; mIoU in % (test: {len(splits["test"])} '
          f'images, novel: {len(splits["novel"])} images); trained rows: mean ± half the range '
          'over the seeds\n')
    print('| method | test all | test objects | test stuff | novel all | novel seen objects '
          '| novel unseen (pink, purple) |')
    print('|---|---|---|---|---|---|---|')
    # 'novel seen objects' and 'unseen' split the novel split's things: the six colours every
    # training split has, and the two no segmentation training ever labels.
    for name, values in table.rows:
        print(f'| {name} | ' + ' | '.join(fmt(v) for v in values) + ' |')
    if detection_lines:
        print('\n| detection and grounding (trained rows) | mean ± half the range |\n|---|---|')
        print('\n'.join(detection_lines))
    print(f'\ncaption->image retrieval top-1 within 64: {extra["retrieval_top1"]:.1f}% '
          '(chance 1.6%)')
    print('whole-image presence AUC: ' + ', '.join(
        f'{k.replace("_auc", "")} {extra[k]:.3f}' for k in
        ('stuff_auc', 'object_auc', 'pattern_auc', 'shape_auc')))
    for key, why in OPT_IN.items():
        if not args.only or key not in args.only:
            print(f'\nLEFT OUT of the default run: {key} ({why}); --only {key} evaluates it')
    if table.skipped:
        print(f'\nSKIPPED ({len(table.skipped)} trained rows, or some of their seeds): their runs '
              f'are missing under {work_dirs}. `python tools/benchmark_quality.py --train-missing` '
              'fills them all; or run:')
        for label, missing in table.skipped.items():
            print(f'  - {label}: needs ' + ', '.join(
                f'{step.name}{"" if s is None else f" seed {s}"}' for step, s in missing))
        every = [pair for missing in table.skipped.values() for pair in missing]
        print('\n'.join(f'    {c}' for c in runs.fill_commands(work_dirs, every)))
    print('\nTraining time of the trained rows (tools/quality_runs.py records):')
    print('\n'.join(training_times(work_dirs, args.seeds)))
    print(f'\nthis run: {trained_minutes:.1f} min training, '
          f'{(time.monotonic() - begun) / 60 - trained_minutes:.1f} min evaluating; '
          f'{len(table.rows) + len(detection_lines)} rows, {len(table.skipped)} skipped')
    if args.limit:
        print(f'!! --limit {args.limit}: a smoke test; detection AP counts the objects of the '
              'images left out as missed')
    result = dict(table.result, retrieval_top1=extra['retrieval_top1'],
                  object_auc=extra['object_auc'])
    print('RESULT ' + ' '.join(
        f'{k}={v:.3f}' if k.endswith('_auc') else f'{k}={v:.1f}' for k, v in result.items()))


if __name__ == '__main__':
    main()
