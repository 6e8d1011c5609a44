"""Inference overhead and text-cache speed-up, measured against baselines in the same run.

1. Overhead: the bare open_clip image tower (ViT-B/16, random weights, 448x448, CPU) against a
   full ``OpenVocabSegInferencer`` call on a 448x448 image for 150 names (NACLIP, whole-image
   mode, text already cached): ``overhead_ratio = inferencer / bare`` (target <= 1.10).
2. Text cache: encoding ``--names`` names x 80 ImageNet templates with an empty cache, against the
   same call served from the on-disk cache by a fresh embedder (what a second run sees):
   ``text_cache_speedup = first / cached`` (target >= 100).
3. OVSeg (``OVSegSegmentor``, random weights, CPU): the R101c recipe's MaskFormer proposal
   network (ResNetV1c-101, 256-wide pixel decoder, 6 decoder layers, 100 queries) and a CLIP
   ViT-B/16 classifying 224x224 masked crops, on ``--ovseg-images`` images of
   ``--ovseg-size`` pixels for 150 names (text cached). Random weights make every mask valid, so
   all but the first ``--ovseg-valid`` queries of each image get mask logits of -1e4 (the same
   in every measured call): exactly that many crops per image. The full ``segment`` call
   (labels only) against its floor, the proposal network's forward (masks at the image size)
   plus one CLIP image-tower forward over the same valid crops, cut beforehand:
   ``ovseg_overhead_ratio = full / floor`` (target <= 1.15); and the full call with
   ``classifier='mask_pooling'``: ``ovseg_pooling_speedup = masked crops / mask pooling``.
   Peak memory of each full call in a fresh process: it warms up on small images with one
   valid proposal each, returns freed heap to the system (``malloc_trim``), resets the peak
   resident set (``echo 5 > /proc/self/clear_refs``) and makes the call once; peak = VmHWM
   after - VmRSS before, every page the call touched (model and inputs excluded).
4. Grounding (``GroundingInferencer``, random weights, CPU): a call for 4 expressions on a
   ``--grounding-size`` image, heat maps from CLIP ViT-B/16 (short side 336, its protocol), the
   proving-ground DenseCLIP Mask R-CNN config as the detector, against its floor: the same
   detector forward plus one batched forward/backward of the 4 expressions' heat maps, texts
   encoded beforehand: ``grounding_overhead_ratio = call / floor`` (target <= 1.2).
5. Dense (``--cases dense``, not in the default set; ``--device cuda``, ``--dtype fp16``):
   sliding-window NACLIP segmentation against the bare image tower and the references' naive
   pipeline, time and peak memory at K = 150 and 847 (tools/_dense_benchmark.py). It and this
   file's imports need no OpenMMLab (the OVSeg case imports it when it runs).

Usage: python tools/benchmark_inference.py [--names 847] [--repeats 5] [--threads N]
           [--cases overhead,text_cache,ovseg,grounding] [--ovseg-repeats 3] [--ovseg-size 512]
           [--ovseg-images 2] [--ovseg-valid 20] [--grounding-size 256]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import open_clip
import torch
from _dense_benchmark import report_dense
from _device_timing import median_times, peak_bytes
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from densevl.apis import GroundingInferencer, OpenVocabSegInferencer
from densevl.models.clip import create_clip
from densevl.models.ovseg import crop_proposals, find_proposals
from densevl.models.text import TextEmbedder

OVSEG_BASE = (Path(__file__).resolve().parents[1]
              / 'configs' / '_base_' / 'models' / 'ovseg_clip-synthetic-tiny.py')
# The published R101c + ViT-B/16 recipe's sizes over the proving ground's OVSeg design.
OVSEG_R101C = {
    'clip': dict(model_name='ViT-B-16', pretrained=None),
    'class_names': None, 'templates': 'single', 'dense_mode': 'maskclip',
    'backbone': dict(depth=101, stem_channels=64, base_channels=64),
    'decode_head': dict(
        num_classes=150, in_channels=[256, 512, 1024, 2048], feat_channels=256,
        out_channels=256, num_queries=100, class_hidden_dims=1024,
        positional_encoding=dict(num_feats=128),
        transformer_decoder=dict(num_layers=6, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8),
            cross_attn_cfg=dict(embed_dims=256, num_heads=8),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048)))),
}


def interleaved(fns, repeats: int) -> list[float]:
    """Median time of each function on the CPU after one warm-up call each (for the inferencer,
    the text cache), calls alternating so that load on the machine hits all."""
    return median_times(fns, 'cpu', repeats=repeats)


def overhead(repeats: int, size: int = 448, num_names: int = 150) -> tuple[float, float]:
    bare = open_clip.create_model('ViT-B-16', pretrained=None, force_image_size=size).eval()
    images = torch.randn(1, 3, size, size)
    seg = OpenVocabSegInferencer('ViT-B-16', device='cpu', mode='naclip', templates='single',
                                 short_side=None, slide=None)
    photo = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    names = list(IMAGENET_CLASSNAMES[:num_names])

    def bare_forward():
        with torch.no_grad():
            bare.visual(images)

    t_bare, t_full = interleaved(
        [bare_forward, lambda: seg(photo, texts=names, visualize=False)], repeats)
    return t_bare, t_full


def text_cache(num_names: int) -> tuple[float, float, float]:
    bundle = create_clip('ViT-B-16')
    unique = {n.strip().lower(): n for n in reversed(IMAGENET_CLASSNAMES)}  # ImageNet repeats a few
    names = list(reversed(unique.values()))[:num_names]
    assert len(names) == num_names, f'only {len(names)} distinct names available'
    with tempfile.TemporaryDirectory() as cache_dir:
        first = TextEmbedder(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                             cache_dir=cache_dir)
        fresh = TextEmbedder(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                             cache_dir=cache_dir)
        _ = fresh.fingerprint  # fingerprinting the weights is a one-off per model load
        start = time.perf_counter()
        cold = first(names)
        t_first = time.perf_counter() - start
        start = time.perf_counter()
        warm = first(names)
        t_memory = time.perf_counter() - start
        start = time.perf_counter()
        disk = fresh(names)
        t_disk = time.perf_counter() - start
    assert torch.equal(cold.embeddings, warm.embeddings)
    assert torch.equal(cold.embeddings, disk.embeddings)
    return t_first, t_memory, t_disk


class FirstQueriesValid:
    """The head's ``predict_proposals`` with only the first ``count`` masks of each image valid:
    the others get logits of -1e4, no pixel above any threshold."""

    def __init__(self, predict, count: int) -> None:
        self.predict, self.count = predict, count

    def __call__(self, features, vocabulary, image_size):
        class_logits, mask_logits = self.predict(features, vocabulary, image_size)
        mask_logits[:, self.count:] = -1e4
        return class_logits, mask_logits


def build_ovseg(valid: int, cache_dir: str) -> torch.nn.Module:
    """OVSeg of the R101c recipe, random weights, ``valid`` proposals an image."""
    # OpenMMLab only here: the dense case runs on a GPU machine without it.
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import densevl.models.mm_adapters  # noqa: F401  (registers OVSegSegmentor)
    from densevl.registry import SEG_MODELS

    init_default_scope('mmseg')
    cfg = Config.fromfile(str(OVSEG_BASE))
    cfg.merge_from_dict({f'model.{key}': value for key, value in OVSEG_R101C.items()})
    cfg.model.text_cache_dir = cache_dir
    torch.manual_seed(0)
    seg = SEG_MODELS.build(cfg.model).eval()
    head = seg.decode_head
    head.predict_proposals = FirstQueriesValid(head.predict_proposals, valid)
    return seg


def ovseg_inputs(seg, num_images: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """Normalised random images and 150 names, their text embeddings cached."""
    rgb = torch.rand(num_images, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    names = list(IMAGENET_CLASSNAMES[:150])
    seg.frozen_clip.vocabulary(names)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (seg.protocol.mean, seg.protocol.std))
    return (rgb - mean) / std, names


def ovseg_call(seg, images, names, classifier: str):
    seg.classifier = classifier
    return seg.segment(images, names, return_probs=False)


def ovseg(repeats: int, size: int, num_images: int, valid: int, cache_dir: str) -> dict:
    """Median times of the floor and of the full call with each classifier (see the module)."""
    seg = build_ovseg(valid, cache_dir)
    images, names = ovseg_inputs(seg, num_images, size)
    clip = seg.frozen_clip
    vocabulary = clip.vocabulary(names)
    rgb = seg.unnormalise(images)
    with torch.no_grad():
        _, mask_logits = seg.proposals(images, rgb, vocabulary)
    proposals = find_proposals(mask_logits, seg.mask_threshold)
    assert proposals.num_crops == num_images * valid, proposals.valid.sum(dim=1)
    crops, _ = crop_proposals(rgb, proposals, size=clip.crop_size)

    def floor():
        with torch.no_grad():
            seg.proposals(images, rgb, vocabulary)
            clip.model.visual(crops)

    t_floor, t_crops, t_pooling = interleaved(
        [floor] + [lambda c=c: ovseg_call(seg, images, names, c)
                   for c in ('masked_crops', 'mask_pooling')], repeats)
    return dict(floor=t_floor, masked_crops=t_crops, mask_pooling=t_pooling,
                crops=proposals.num_crops, chunk_size=seg.crop_chunk_size)


def ovseg_peak_worker(spec: dict) -> dict:
    """Peak memory of one full call (``spec['classifier']``), in this fresh process."""
    seg = build_ovseg(1, spec['cache_dir'])
    small, names = ovseg_inputs(seg, spec['images'], 64)
    ovseg_call(seg, small, names, spec['classifier'])          # warm-up, one crop an image
    images, _ = ovseg_inputs(seg, spec['images'], spec['size'])
    seg.decode_head.predict_proposals.count = spec['valid']
    return dict(peak=peak_bytes(lambda: ovseg_call(seg, images, names, spec['classifier']),
                                'cpu'))


def ovseg_peak(spec: dict, threads: int | None) -> int:
    command = [sys.executable, __file__, '--ovseg-peak-worker', json.dumps(spec)]
    if threads:
        command += ['--threads', str(threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'{spec} failed:\n{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])['peak']


def print_table(header: str, rows: Iterable[tuple[str, ...]]) -> None:
    """A markdown table for people: ``header`` is its column names joined by ``' | '``."""
    print(f'\n| {header} |')
    print('|' + '---|' * (header.count(' | ') + 1))
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')


def report_overhead(args) -> dict[str, str]:
    t_bare, t_full = overhead(args.repeats)
    print_table('measurement (ViT-B/16, 448x448, random weights) | seconds', [
        ('bare open_clip image tower forward', f'{t_bare:.3f}'),
        ('OpenVocabSegInferencer call, 150 names, text cached', f'{t_full:.3f}'),
        ('overhead ratio', f'{t_full / t_bare:.3f}')])
    return dict(overhead_ratio=f'{t_full / t_bare:.3f}', bare_s=f'{t_bare:.3f}',
                inferencer_s=f'{t_full:.3f}')


def report_text_cache(args) -> dict[str, str]:
    t_first, t_memory, t_disk = text_cache(args.names)
    speedup = f'{t_first / t_disk:.0f}'
    rows = {'first call (empty cache)': f'{t_first:.2f}',
            'same embedder again (memory cache)': f'{t_memory:.4f}',
            'new embedder, on-disk cache': f'{t_disk:.4f}',
            'speed-up (first / on-disk cached)': speedup}
    print_table(f'text encoding, {args.names} names x 80 templates | seconds', rows.items())
    return dict(text_cache_speedup=speedup, text_first_s=f'{t_first:.1f}',
                text_cached_s=f'{t_disk:.4f}')


def report_ovseg(args) -> dict[str, str]:
    spec = dict(size=args.ovseg_size, images=args.ovseg_images, valid=args.ovseg_valid)
    with tempfile.TemporaryDirectory() as cache_dir:
        t = ovseg(args.ovseg_repeats, spec['size'], spec['images'], spec['valid'], cache_dir)
        mb = {c: ovseg_peak(dict(spec, classifier=c, cache_dir=cache_dir), args.threads) / 2**20
              for c in ('masked_crops', 'mask_pooling')}
    ratio, speedup = t['masked_crops'] / t['floor'], t['masked_crops'] / t['mask_pooling']
    print_table(
        f"OVSeg, R101c MaskFormer (100 queries) + CLIP ViT-B/16, {spec['images']} images "
        f"{spec['size']}x{spec['size']}, {t['crops']} valid crops, 150 names, random weights "
        '| seconds | peak memory', [
            (f"floor: proposal network + one CLIP forward over the {t['crops']} crops",
             f"{t['floor']:.3f}", ''),
            (f"full segment call, masked crops ({t['chunk_size']} a chunk)",
             f"{t['masked_crops']:.3f}", f"{mb['masked_crops']:.0f} MB"),
            ('full segment call, mask pooling', f"{t['mask_pooling']:.3f}",
             f"{mb['mask_pooling']:.0f} MB"),
            ('overhead ratio (masked crops / floor; target <= 1.15)', f'{ratio:.3f}', ''),
            ('mask pooling speed-up over masked crops', f'{speedup:.2f}', '')])
    return dict(ovseg_overhead_ratio=f'{ratio:.3f}', ovseg_pooling_speedup=f'{speedup:.2f}',
                ovseg_floor_s=f"{t['floor']:.3f}", ovseg_crops_s=f"{t['masked_crops']:.3f}",
                ovseg_pooling_s=f"{t['mask_pooling']:.3f}",
                ovseg_crops_peak_mb=f"{mb['masked_crops']:.0f}",
                ovseg_pooling_peak_mb=f"{mb['mask_pooling']:.0f}")


GROUNDING_DETECTOR = (Path(__file__).resolve().parents[1] / 'configs' / 'denseclip'
                      / 'mask-rcnn_denseclip_clip-synthetic-tiny_400it_synthetic-128.py')
GROUNDING_EXPRESSIONS = ('the man in red shirt on the left', 'second banana from right',
                         'a white dog lying on the sofa', 'the large blue car behind the bus')


def grounding(repeats: int, size: int = 256) -> dict[str, float]:
    """Seconds of a GroundingInferencer call for 4 expressions and of its floor (module doc)."""
    ground = GroundingInferencer('ViT-B-16', detector=str(GROUNDING_DETECTOR), device='cpu')
    photo = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    expressions = list(GROUNDING_EXPRESSIONS)
    texts = ground.heat.encode_texts(expressions)

    def floor():
        ground.detector.run(photo)
        ground.heat.low_res(ground.preprocess(photo), texts)

    t_floor, t_call = interleaved([floor, lambda: ground(photo, expressions)], repeats)
    return dict(floor=t_floor, call=t_call)


def report_grounding(args) -> dict[str, str]:
    t = grounding(args.repeats, args.grounding_size)
    ratio = t['call'] / t['floor']
    print_table(f'grounding, 4 expressions, {args.grounding_size}x{args.grounding_size} image, '
                'CLIP ViT-B/16 heat maps + DenseCLIP Mask R-CNN (synthetic config), random '
                'weights | seconds', [
                    ('floor: detector forward + one batched heat-map forward/backward',
                     f"{t['floor']:.3f}"),
                    ('GroundingInferencer call', f"{t['call']:.3f}"),
                    ('overhead ratio (target <= 1.2)', f'{ratio:.3f}')])
    return dict(grounding_overhead_ratio=f'{ratio:.3f}', grounding_floor_s=f"{t['floor']:.3f}",
                grounding_call_s=f"{t['call']:.3f}")


CASES = dict(overhead=report_overhead, text_cache=report_text_cache, ovseg=report_ovseg,
             grounding=report_grounding, dense=report_dense)
HEADLINE = ('overhead_ratio', 'text_cache_speedup')  # first on the RESULT line, as they were


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--names', type=int, default=847)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cases', default=','.join(c for c in CASES if c != 'dense'),
                        help=f'which of {", ".join(CASES)} to run (comma-separated)')
    parser.add_argument('--ovseg-repeats', type=int, default=3)
    parser.add_argument('--ovseg-size', type=int, default=512)
    parser.add_argument('--ovseg-images', type=int, default=2)
    parser.add_argument('--ovseg-valid', type=int, default=20,
                        help='valid proposals (masked crops) per image, of 100 queries')
    parser.add_argument('--grounding-size', type=int, default=256,
                        help='side of the (square) image of the grounding case')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='where the dense case runs')
    parser.add_argument('--dtype', default='fp32', choices=['fp32', 'fp16', 'bf16'],
                        help='dense case: autocast dtype (fp16/bf16 also compare with fp32)')
    parser.add_argument('--dense-size', type=int, default=448, help='dense case: image side')
    parser.add_argument('--dense-names', default='150,847', help='dense case: vocabulary sizes')
    parser.add_argument('--ovseg-peak-worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ovseg_peak_worker:
        print(json.dumps(ovseg_peak_worker(json.loads(args.ovseg_peak_worker))))
        return
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          + (torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'))
    result = {}
    for case in args.cases.split(','):
        result.update(CASES[case](args))
    keys = sorted(result, key=lambda key: key not in HEADLINE)   # stable: the rest in order
    print('RESULT ' + ' '.join(f'{key}={result[key]}' for key in keys))


if __name__ == '__main__':
    main()
