"""Inference overhead and text-cache speed-up, measured against baselines in the same run.

1. Overhead: the bare open_clip image tower (ViT-B/16, random weights, 448x448, CPU) against a
   full ``OpenVocabSegInferencer`` call on a 448x448 image for 150 names (NACLIP, whole-image
   mode, text already cached): ``overhead_ratio = inferencer / bare`` (target <= 1.10).
2. Text cache: encoding ``--names`` names x 80 ImageNet templates with an empty cache, against the
   same call served from the on-disk cache by a fresh embedder (what a second run sees):
   ``text_cache_speedup = first / cached`` (target >= 100).

Usage: python tools/benchmark_inference.py [--names 847] [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import open_clip
import torch
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from densevl.apis import OpenVocabSegInferencer
from densevl.models.clip import create_clip
from densevl.models.text import TextEmbedder


def interleaved(fns, repeats: int) -> list[float]:
    """Median time of each function, calls alternating so that load on the machine hits all."""
    for fn in fns:
        fn()  # warm-up (and, for the inferencer, the text cache)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--names', type=int, default=847)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, CPU')

    t_bare, t_full = overhead(args.repeats)
    print('\n| measurement (ViT-B/16, 448x448, random weights) | seconds |')
    print('|---|---|')
    print(f'| bare open_clip image tower forward | {t_bare:.3f} |')
    print(f'| OpenVocabSegInferencer call, 150 names, text cached | {t_full:.3f} |')
    print(f'| overhead ratio | {t_full / t_bare:.3f} |')

    t_first, t_memory, t_disk = text_cache(args.names)
    print(f'\n| text encoding, {args.names} names x 80 templates | seconds |')
    print('|---|---|')
    print(f'| first call (empty cache) | {t_first:.2f} |')
    print(f'| same embedder again (memory cache) | {t_memory:.4f} |')
    print(f'| new embedder, on-disk cache | {t_disk:.4f} |')
    print(f'| speed-up (first / on-disk cached) | {t_first / t_disk:.0f} |')
    print(f'RESULT overhead_ratio={t_full / t_bare:.3f} text_cache_speedup={t_first / t_disk:.0f} '
          f'bare_s={t_bare:.3f} inferencer_s={t_full:.3f} text_first_s={t_first:.1f} '
          f'text_cached_s={t_disk:.4f}')


if __name__ == '__main__':
    main()
