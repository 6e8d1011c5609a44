"""Quality of every available method on the synthetic proving ground, with baselines.

Evaluates on the held-out ``test`` split and the ``novel`` split (pink and purple, never in any
segmentation training split) through mmseg's ``IoUMetric``, and prints one row per method with
its mIoU over all 14 classes, over the 8 object (thing) classes and over the 6 stuff classes,
beside three baselines: uniform chance, the majority class of the train split, and *global fill*
(each image filled with the model's whole-image zero-shot class — what a model that localises
nothing scores). Also: caption->image retrieval top-1 within groups of 64 test images, and
whole-image presence AUC per attribute (stuff, colour, pattern, shape).

Trained methods (DenseCLIP segmentation; the vocabulary-agnostic variant with its frozen-CLIP
ensemble and its head alone; RetinaNet and Mask R-CNN detection) get their rows when their
proving-ground checkpoints exist (``--work-dirs``, as ``tools/train.py`` writes them; see the
README for the commands): segmentation through the same IoUMetric path, detection through
mmdet's CocoMetric (box AP; mask AP for Mask R-CNN).

Usage:
    python tools/benchmark_quality.py [--model clip-synthetic-tiny] [--weights PATH]
        [--data data/synthetic] [--limit N] [--work-dirs work_dirs]
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
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


# key: (config name, model overrides, row label)
TRAINED_SEG = dict(
    clip_fpn_seg=('clip-fpn', {}, 'clip-fpn'),
    denseclip_seg=('denseclip', {}, 'denseclip'),
    denseclip_agnostic_head=('denseclip-agnostic', dict(clip_ensemble=None),
                             'denseclip-agnostic, head alone'),
    denseclip_agnostic=('denseclip-agnostic', {},
                        'denseclip-agnostic + frozen-CLIP ensemble (maskclip, 0.2 / 0.4)'))
SEG_RUN = '{}_clip-synthetic-tiny_400it_synthetic-64'
# key: (run, metrics)
DET_RUNS = dict(
    denseclip_retinanet=('retinanet_denseclip_clip-synthetic-tiny_800it_synthetic-128',
                         ('bbox',)),
    denseclip_maskrcnn=('mask-rcnn_denseclip_clip-synthetic-tiny_800it_synthetic-128',
                        ('bbox', 'segm')),
    denseclip_maskrcnn_rn=('mask-rcnn_denseclip_clip-synthetic-tiny-rn_800it_synthetic-128',
                           ('bbox', 'segm')))


def trained_segmentor(work_dirs: Path, name: str, overrides: dict):
    """The proving-ground DenseCLIP segmentor ``name`` with its last checkpoint (config entries
    of ``model`` replaced by ``overrides``), or None."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    import densevl.engine  # noqa: F401 - mmengine checkpoints under weights_only loading
    import densevl.models.mm_adapters  # noqa: F401
    from densevl.registry import SEG_MODELS
    run = SEG_RUN.format(name)
    checkpoint = work_dirs / run / 'iter_400.pth'
    if not checkpoint.is_file():
        return None
    cfg = Config.fromfile(f'configs/denseclip/{run}.py')
    cfg.model.update(overrides)
    model = SEG_MODELS.build(cfg.model)
    load_checkpoint(model, str(checkpoint), map_location='cpu')
    return model.eval()


OVSEG_RUN = 'ovseg_clip-synthetic-tiny_400it_synthetic-64'
# the tiny CLIP mask-adapted on the region-noun pairs that OVSEG_RUN mined (see configs/ovseg)
CLIP_RUNS = dict(ft='clip-finetune_clip-synthetic-tiny_5ep_region-nouns',
                 mpt='clip-mpt_clip-synthetic-tiny_5ep_region-nouns',
                 ft_mpt='clip-finetune-mpt_clip-synthetic-tiny_5ep_region-nouns')
# key: (label, classifier, ensemble weight, CLIP run or None for the packaged tiny CLIP)
OVSEG_VARIANTS = dict(
    ovseg=('OVSeg: masked crops + head, ensemble 0.7', 'masked_crops', 0.7, None),
    ovseg_head=('OVSeg: head alone', 'masked_crops', None, None),
    ovseg_crops=('OVSeg: masked crops alone', 'masked_crops', 0.0, None),
    ovseg_mpt=('OVSeg, MPT CLIP: masked crops + head', 'masked_crops', 0.7, 'mpt'),
    ovseg_mpt_crops=('OVSeg, MPT CLIP: masked crops alone', 'masked_crops', 0.0, 'mpt'),
    ovseg_ft_crops=('OVSeg, fine-tuned CLIP: masked crops alone', 'masked_crops', 0.0, 'ft'),
    ovseg_ft_mpt=('OVSeg, fine-tuned + MPT CLIP: masked crops + head', 'masked_crops', 0.7,
                  'ft_mpt'),
    ovseg_ft_mpt_crops=('OVSeg, fine-tuned + MPT CLIP: masked crops alone', 'masked_crops', 0.0,
                        'ft_mpt'),
    ovseg_pooling=('OVSeg: mask pooling + head, ensemble 0.7', 'mask_pooling', 0.7, None),
    ovseg_pooling_crops=('OVSeg: mask pooling alone', 'mask_pooling', 0.0, None),
    ovseg_ft_pooling=('OVSeg, fine-tuned CLIP: mask pooling + head', 'mask_pooling', 0.7, 'ft'))


def trained_ovseg(work_dirs: Path, classifier: str, ensemble_weight: float | None,
                  clip_run: str | None):
    """The proving-ground OVSeg with its checkpoint, its classifier and ensemble weight set and
    its CLIP replaced by a mask-adapted one (``CLIP_RUNS``), or None when a run is missing."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    import densevl.engine  # noqa: F401
    import densevl.models.mm_adapters  # noqa: F401
    from densevl.registry import SEG_MODELS
    checkpoint = work_dirs / OVSEG_RUN / 'iter_400.pth'
    clip_dir = work_dirs / CLIP_RUNS[clip_run] if clip_run else None
    if not checkpoint.is_file() or (clip_dir and not (clip_dir / 'clip.pth').is_file()):
        return None
    cfg = Config.fromfile(f'configs/ovseg/{OVSEG_RUN}.py')
    cfg.model.update(classifier=classifier, ensemble_weight=ensemble_weight)
    if clip_dir:
        masks = clip_dir / 'clip.mask_embedding.pth'
        cfg.model.clip.update(pretrained=str(clip_dir / 'clip.pth'),
                              mask_embedding=str(masks) if masks.is_file() else None)
    model = SEG_MODELS.build(cfg.model)
    load_checkpoint(model, str(checkpoint), map_location='cpu')
    return model.eval()


def trained_detector_ap(work_dirs: Path, run: str, kinds: tuple[str, ...]) -> dict | None:
    """COCO AP (%) per kind (``bbox``, ``segm``) of a proving-ground detector on the test split,
    or None when the run has no checkpoint."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    import densevl.engine  # noqa: F401
    checkpoint = work_dirs / run / 'iter_800.pth'
    if not checkpoint.is_file():
        return None
    cfg = Config.fromfile(f'configs/denseclip/{run}.py')
    cfg.work_dir = str(work_dirs / run / 'quality')
    cfg.load_from = str(checkpoint)
    metrics = Runner.from_cfg(cfg).test()
    init_default_scope('mmseg')
    return {kind: 100.0 * metrics[f'coco/{kind}_mAP'] for kind in kinds}


# ----- ReCo (configs/reco; issue 12) -------------------------------------------------------------
# Training-free ReCo on the proving ground (its index: the unlabeled split embedded by the tiny
# CLIP, built here when missing), its component ablation, and ReCo+ (a small DeepLabv3+ trained on
# ReCo's pseudo-labels of the train split) over the seeds whose runs exist:
#   python tools/reco_pseudo_labels.py RECO_CONFIG --split images/train \
#       --out data/synthetic/reco_pseudo_labels/train
#   python tools/train.py configs/reco/RECO_PLUS_RUN.py --work-dir work_dirs/RECO_PLUS_RUN_seed0 \
#       --cfg-options randomness.seed=0                                      # and seed 1
RECO_CONFIG = 'configs/reco/reco_clip-synthetic-tiny_training-free_synthetic-64.py'
RECO_PLUS_RUN = 'reco-plus_deeplabv3plus-r18-w16_4k_synthetic-64'
RECO_PLUS_ITERS = 4000
RECO_SEEDS = (0, 1)
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
    """The proving-ground ReCo with ``overrides`` of its model, its index built when missing."""
    from mmengine.config import Config

    import densevl.models.mm_adapters  # noqa: F401
    from densevl.registry import SEG_MODELS
    cfg = Config.fromfile(RECO_CONFIG)
    index = Path(cfg.model.index)
    if not (index / 'manifest.json').is_file():
        from densevl.models.clip import create_clip
        from densevl.models.reco.index_builder import RetrievalIndexBuilder
        RetrievalIndexBuilder(create_clip(cfg.model.retrieval.model_name), num_workers=0,
                              device='cpu').build('data/synthetic/unlabeled/images', index)
    cfg.model.update(overrides)
    return SEG_MODELS.build(cfg.model).eval()


def reco_plus_segmentor(work_dirs: Path, seed: int):
    """The proving-ground ReCo+ trained with ``seed``, or None when its run is missing."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    import densevl.engine  # noqa: F401
    import densevl.models.mm_adapters  # noqa: F401
    from densevl.registry import SEG_MODELS
    checkpoint = work_dirs / f'{RECO_PLUS_RUN}_seed{seed}' / f'iter_{RECO_PLUS_ITERS}.pth'
    if not checkpoint.is_file():
        return None
    model = SEG_MODELS.build(Config.fromfile(f'configs/reco/{RECO_PLUS_RUN}.py').model)
    load_checkpoint(model, str(checkpoint), map_location='cpu')
    return model.eval()


def reco_rows(splits: dict, work_dirs: Path, add) -> dict:
    """ReCo's rows (through ``add``) and its RESULT entries beyond ``add``'s."""
    def evaluate(model) -> dict:
        return {s: evaluate_segmentation(model.test_step, ds, len(CLASSES))
                for s, ds in splits.items()}

    for key, (label, overrides) in RECO_VARIANTS.items():
        add(label, evaluate(reco_segmentor(overrides)), key)
    seeds = {seed: model for seed in RECO_SEEDS
             if (model := reco_plus_segmentor(work_dirs, seed)) is not None}
    if not seeds:
        return {}
    runs = {seed: evaluate(model) for seed, model in seeds.items()}
    for seed, per_split in runs.items():
        add(f'ReCo+ (DeepLabv3+ R18 on ReCo pseudo-labels, {RECO_PLUS_ITERS} it), seed {seed}',
            per_split, f'reco_plus_seed{seed}')
    add(f'ReCo+ mean of seeds {", ".join(map(str, runs))}',
        {s: np.nanmean([r[s] for r in runs.values()], axis=0) for s in splits}, 'reco_plus')
    test = [mean_iou(r['test']) for r in runs.values()]
    unseen = [mean_iou(r['novel'], NOVEL) for r in runs.values()]
    return dict(reco_plus_min=min(test), reco_plus_max=max(test),
                reco_plus_unseen_min=min(unseen), reco_plus_unseen_max=max(unseen))


def fmt(x: float) -> str:
    return '—' if x is None or (isinstance(x, float) and math.isnan(x)) else f'{x:.1f}'


# ----- Open-vocabulary detector (configs/ovdet; issue 13) ----------------------------------------
# OpenVocabFasterRCNN trained on the 6 seen colours, per seed:
#   python tools/train.py configs/ovdet/OVDET_RUN.py --work-dir work_dirs/OVDET_RUN_seed0 \
#       --cfg-options randomness.seed=0                                         # and seed 1
# Seen AP: CocoMetric box AP on the test split with all 8 thing names. Unseen AP: the novel split
# tested with all 8 names; COCO AP restricted to pink and purple, i.e. the mean of CocoMetric's
# per-class (classwise) AP of those two categories. Mean, min and max over the seeds present.
OVDET_RUN = 'ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128'
OVDET_SEEDS = (0, 1)
OVDET_UNSEEN = ('pink', 'purple')


def ovdet_ap(work_dirs: Path, seed: int) -> dict | None:
    """Seen (test split) and unseen (pink / purple on the novel split) box AP in % of one seed's
    open-vocabulary detector, or None when its run has no checkpoint."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    import densevl.engine  # noqa: F401
    run_dir = work_dirs / f'{OVDET_RUN}_seed{seed}'
    checkpoint = run_dir / 'iter_800.pth'
    if not checkpoint.is_file():
        return None
    result = {}
    for split in ('test', 'novel'):
        cfg = Config.fromfile(f'configs/ovdet/{OVDET_RUN}.py')
        cfg.work_dir = str(run_dir / f'quality_{split}')
        cfg.load_from = str(checkpoint)
        cfg.test_dataloader.dataset.update(ann_file=f'coco/instances_{split}.json',
                                           data_prefix=dict(img=f'images/{split}/'))
        cfg.test_evaluator.update(ann_file=f'{cfg.data_root}coco/instances_{split}.json',
                                  classwise=True)
        metrics = Runner.from_cfg(cfg).test()
        if split == 'test':
            result['seen'] = 100.0 * metrics['coco/bbox_mAP']
        else:
            result['unseen'] = 100.0 * float(np.mean([metrics[f'coco/{name}_precision']
                                                      for name in OVDET_UNSEEN]))
            result['novel_all'] = 100.0 * metrics['coco/bbox_mAP']
    init_default_scope('mmseg')
    return result


def ovdet_rows(work_dirs: Path) -> None:
    """Print the open-vocabulary detector's table and its RESULT line (seeds present)."""
    per_seed = {s: ovdet_ap(work_dirs, s) for s in OVDET_SEEDS}
    per_seed = {s: r for s, r in per_seed.items() if r is not None}
    if not per_seed:
        print(f'\nopen-vocabulary detector: no {OVDET_RUN}_seed*/iter_800.pth under {work_dirs}')
        return
    print('\nOpen-vocabulary Faster R-CNN (trained on the 6 seen colours, tested with all 8 names),'
          ' COCO box AP in %')
    print('| seed | test split (seen) | novel split, all 8 | novel split, unseen (pink, purple) |')
    print('|---|---|---|---|')
    for s, r in per_seed.items():
        print(f'| {s} | {r["seen"]:.1f} | {r["novel_all"]:.1f} | {r["unseen"]:.1f} |')
    line = []
    for key, name in (('seen', 'ovdet_ap'), ('unseen', 'ovdet_unseen_ap')):
        values = [r[key] for r in per_seed.values()]
        line.append(f'{name}={np.mean(values):.1f} {name}_min={min(values):.1f} '
                    f'{name}_max={max(values):.1f}')
    print(f'RESULT {" ".join(line)} ovdet_seeds={",".join(map(str, per_seed))}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='clip-synthetic-tiny')
    parser.add_argument('--weights', default=None)
    parser.add_argument('--data', default='data/synthetic')
    parser.add_argument('--limit', type=int, default=None, help='images per split (default all)')
    parser.add_argument('--work-dirs', default='work_dirs', help='where trained runs are')
    parser.add_argument('--ovdet-only', action='store_true',
                        help='only the open-vocabulary detector section')
    args = parser.parse_args()
    init_default_scope('mmseg')
    if args.ovdet_only:
        ovdet_rows(Path(args.work_dirs))
        return
    torch.manual_seed(0)
    root = Path(args.data)
    if not (root / 'images/novel').is_dir():
        write_dataset(root, counts=COUNTS, seed=0, unlabeled=2000)
    if args.model not in MODEL_ZOO:
        raise SystemExit(f'{args.model} is not a proving-ground model')

    splits = {s: dataset(root, s, args.limit) for s in ('test', 'novel')}
    counts = {s: label_counts(ds) for s, ds in splits.items()}
    train_counts = label_counts(dataset(root, 'train', args.limit))
    rows, result = [], {}

    def add(name: str, per_split: dict[str, np.ndarray], key: str | None) -> None:
        t, n = per_split['test'], per_split['novel']
        rows.append((name, mean_iou(t), mean_iou(t, THINGS), mean_iou(t, STUFF), mean_iou(n),
                     mean_iou(n, SEEN_THINGS), mean_iou(n, NOVEL)))
        if key:
            result[key] = mean_iou(t)
            result[f'{key}_things'] = mean_iou(t, THINGS)
            result[f'{key}_novel'] = mean_iou(n)
            result[f'{key}_unseen'] = mean_iou(n, NOVEL)
            result[f'{key}_seen'] = mean_iou(n, SEEN)

    add('uniform chance', {s: uniform_chance_iou(c) for s, c in counts.items()}, 'chance')
    add('majority class (train)', {s: majority_iou(train_counts, c) for s, c in counts.items()},
        'majority')
    segmentors = {mode: build(args.model, args.weights, mode) for mode in MODES}
    fill = {s: evaluate_segmentation(global_fill_predictor(segmentors['plain']), ds, len(CLASSES))
            for s, ds in splits.items()}
    add('global fill (whole-image class)', fill, 'global_fill')
    for mode, seg in segmentors.items():
        per_split = {s: evaluate_segmentation(seg.test_step, ds, len(CLASSES))
                     for s, ds in splits.items()}
        add(f'{mode} ({"last-layer tokens" if mode == "plain" else "training-free"})',
            per_split, mode)
    for key, (name, overrides, label) in TRAINED_SEG.items():
        model = trained_segmentor(Path(args.work_dirs), name, overrides)
        if model is not None:
            add(f'{label} (trained on seen classes, 400 iterations)',
                {s: evaluate_segmentation(model.test_step, ds, len(CLASSES))
                 for s, ds in splits.items()}, key)
    for key, (label, *variant) in OVSEG_VARIANTS.items():
        model = trained_ovseg(Path(args.work_dirs), *variant)
        if model is not None:
            add(label, {s: evaluate_segmentation(model.test_step, ds, len(CLASSES))
                        for s, ds in splits.items()}, key)
    reco_extra = reco_rows(splits, Path(args.work_dirs), add)
    extra = retrieval_and_auc(segmentors['plain'], root, args.limit)
    det_ap = {key: trained_detector_ap(Path(args.work_dirs), run, kinds)
              for key, (run, kinds) in DET_RUNS.items()}
    rn = RESNET_MODEL if MODEL_ZOO[RESNET_MODEL].weights_path.is_file() else None
    if rn:
        rn_splits = {s: dataset(root, s, args.limit, short_side=128) for s in splits}
        for mode in ('plain', 'maskclip'):
            seg = build(rn, None, mode)
            add(f'{mode} (ResNet tower{", DenseCLIP attention pool" if mode == "plain" else ""})',
                {s: evaluate_segmentation(seg.test_step, ds, len(CLASSES))
                 for s, ds in rn_splits.items()}, f'rn_{mode}')

    print(f'\nSynthetic proving ground, {args.model}; mIoU in % (test: {len(splits["test"])} '
          f'images, novel: {len(splits["novel"])} images)\n')
    print('| method | test all | test objects | test stuff | novel all | novel seen objects '
          '| novel unseen (pink, purple) |')
    print('|---|---|---|---|---|---|---|')
    # 'novel seen objects' and 'unseen' split the novel split's things: the six colours every
    # training split has, and the two no segmentation training ever labels.
    for name, *values in rows:
        print(f'| {name} | ' + ' | '.join(fmt(v) for v in values) + ' |')
    print(f'\ncaption->image retrieval top-1 within 64: {extra["retrieval_top1"]:.1f}% '
          '(chance 1.6%)')
    print('whole-image presence AUC: ' + ', '.join(
        f'{k.replace("_auc", "")} {extra[k]:.3f}' for k in
        ('stuff_auc', 'object_auc', 'pattern_auc', 'shape_auc')))
    for key, ap in det_ap.items():
        if ap is not None:
            print(f'{DET_RUNS[key][0]} (800 iterations), test split AP: '
                  + ', '.join(f'{kind} {value:.1f}' for kind, value in ap.items()))
    keys = ['maskclip', 'sclip', 'clearclip', 'naclip']
    line = ' '.join(f'{k}={result[k]:.1f}' for k in keys)
    line += (f' maskclip_things={result["maskclip_things"]:.1f} chance_miou={result["chance"]:.1f}'
             f' global_fill_miou={result["global_fill"]:.1f}'
             f' retrieval_top1={extra["retrieval_top1"]:.1f}'
             f' object_auc={extra["object_auc"]:.3f}')
    line += ' ' + ' '.join(f'{k}_novel={result[f"{k}_novel"]:.1f}' for k in keys)
    line += ' ' + ' '.join(f'{k}_unseen={result[f"{k}_unseen"]:.1f}' for k in keys)
    for key in ('denseclip_seg', 'clip_fpn_seg'):
        if key in result:
            line += f' {key}={result[key]:.1f}'
    if det_ap['denseclip_retinanet'] is not None:
        line += f' denseclip_retinanet_ap={det_ap["denseclip_retinanet"]["bbox"]:.1f}'
    for key in ('denseclip_maskrcnn', 'denseclip_maskrcnn_rn'):
        if det_ap[key] is not None:
            line += (f' {key}_box_ap={det_ap[key]["bbox"]:.1f}'
                     f' {key}_mask_ap={det_ap[key]["segm"]:.1f}')
    if rn:
        line += ' ' + ' '.join(f'rn_{m}={result[f"rn_{m}"]:.1f} rn_{m}_things='
                               f'{result[f"rn_{m}_things"]:.1f}' for m in ('plain', 'maskclip'))
    for key in ('denseclip_agnostic', 'denseclip_agnostic_head'):
        if key in result:
            line += (f' {key}_seen={result[f"{key}_seen"]:.1f}'
                     f' {key}_unseen={result[f"{key}_unseen"]:.1f}')
    for key in OVSEG_VARIANTS:
        if key in result:
            line += (f' {key}={result[key]:.1f} {key}_novel_seen={result[f"{key}_seen"]:.1f}'
                     f' {key}_unseen={result[f"{key}_unseen"]:.1f}')
    for key in (*RECO_VARIANTS, 'reco_plus'):      # ReCo (issue 12)
        if key in result:
            line += (f' {key}={result[key]:.1f} {key}_novel={result[f"{key}_novel"]:.1f}'
                     f' {key}_unseen={result[f"{key}_unseen"]:.1f}')
    line += ''.join(f' {key}={value:.1f}' for key, value in reco_extra.items())
    print(f'RESULT {line}')
    ovdet_rows(Path(args.work_dirs))


if __name__ == '__main__':
    main()
