"""ReCo's retrieval index and co-segmentation against their baselines, measured in the same run.

(a) Retrieval: the top 50 images of 171 concepts (COCO-Stuff's count) among ``--collection``
    random L2-normalised embeddings of 768 dimensions (ViT-L/14's), through
    ``RetrievalIndex.search`` on an exact FAISS inner-product index, against brute force over the
    same floats (FAISS's own storage, no copy): ``torch.topk(queries @ embeddings.T, 50)``.
    Calls alternate (load elsewhere on the machine hits both), median of ``--repeats``; both
    results are checked to agree. ``reco_retrieval_speedup = brute force / FAISS``. (Approximate
    indexes are not timed: random embeddings have no neighbourhoods to find, so their recall
    here would say nothing of CLIP embeddings.)
(b) Co-segmentation of one reference: k = 50 retrieved images, 14x14 and 28x28 patch grids,
    768-dimensional features: ``densevl.ops.coseg_max_affinity`` against the naive
    ``(N*P)^2`` affinity matrix, with tools/benchmark_ops.py's workers: peak memory of one call
    in a fresh process each (VmHWM - VmRSS), time alternating. ``reco_coseg_mem_ratio``: naive /
    densevl at 28x28; ``reco_coseg_time_ratio``: the geometric mean over both grids.
(c) Index building: ``RetrievalIndexBuilder`` (DataLoader with ``--build-workers`` decoding
    processes, batches of ``--build-batch``, shards, the FAISS index and manifest written) over
    ``--build-images`` generated 500x375 JPEGs (ImageNet's usual size) with ``--build-model``
    (random weights), against the bare image-tower forward (+ L2 normalisation) over the same
    images decoded and preprocessed beforehand, in the same batches; alternating, median.
    ``index_build_efficiency = bare / build`` (target >= 0.9: decoding overlaps the model).

Usage: python tools/benchmark_reco.py [--collection 1000000] [--repeats 3] [--threads N]
           [--cases retrieval,coseg,build] [--build-images 48] [--build-model ViT-B-16]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from benchmark_inference import interleaved  # noqa: E402
from benchmark_ops import measure  # noqa: E402
from PIL import Image  # noqa: E402

from densevl.models.clip import create_clip  # noqa: E402
from densevl.models.reco.index_builder import (  # noqa: E402
    RetrievalIndexBuilder,
    preprocessing_transform,
)
from densevl.models.reco.retrieval_index import RetrievalIndex, import_faiss  # noqa: E402

NUM_CONCEPTS, TOP_K, DIM = 171, 50, 768
COSEG_GRIDS = (14, 28)


def random_index(count: int, dim: int, chunk: int = 100_000) -> RetrievalIndex:
    """An exact inner-product index of ``count`` random unit vectors, filled a chunk at a time."""
    faiss = import_faiss()
    index = faiss.IndexFlatIP(dim)
    generator = torch.Generator().manual_seed(0)
    for start in range(0, count, chunk):
        rows = min(chunk, count - start)
        index.add(F.normalize(torch.randn(rows, dim, generator=generator), dim=-1).numpy())
    manifest = dict(count=count, dim=dim, model_id='random', index=dict(factory='Flat'))
    return RetrievalIndex(index, manifest)


def retrieval(count: int, repeats: int) -> dict:
    index = random_index(count, DIM)
    faiss = import_faiss()
    embeddings = torch.from_numpy(
        faiss.rev_swig_ptr(index.index.get_xb(), count * DIM).reshape(count, DIM))
    queries = F.normalize(torch.randn(NUM_CONCEPTS, DIM,
                                      generator=torch.Generator().manual_seed(1)), dim=-1)
    out = {}

    def with_faiss():
        out['faiss'] = index.search(queries, TOP_K)

    def brute_force():
        out['brute'] = torch.topk(queries @ embeddings.T, TOP_K, dim=1)

    t_faiss, t_brute = interleaved([with_faiss, brute_force], repeats)
    (scores, ids), (brute_scores, brute_ids) = out['faiss'], out['brute']
    torch.testing.assert_close(scores, brute_scores, atol=1e-5, rtol=0)
    same = (ids == brute_ids).float().mean().item()   # ties aside, the same images
    return dict(faiss=t_faiss, brute=t_brute, same_ids=same)


def coseg(repeats: int, threads: int | None, max_naive_gb: float) -> list[dict]:
    ops_args = argparse.Namespace(device='cpu', repeats=repeats, threads=threads)
    rows = []
    for grid in COSEG_GRIDS:
        params = dict(n=TOP_K, p=grid * grid, c=DIM)
        predicted = (TOP_K * grid * grid) ** 2 * 4
        naive, fused = measure('coseg', params, predicted <= max_naive_gb * 2**30, ops_args)
        rows.append(dict(grid=grid, naive=naive, fused=fused, predicted=predicted))
    return rows


def make_images(folder: Path, count: int, size: tuple[int, int] = (500, 375)) -> None:
    """JPEGs with smooth structure and grain, about the size and weight of ImageNet photos."""
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize(size, Image.BICUBIC), dtype=np.int16)
        grain = rng.integers(-16, 17, smooth.shape, dtype=np.int16)
        Image.fromarray((smooth + grain).clip(0, 255).astype(np.uint8)).save(
            folder / f'{i:06d}.jpg', quality=90)


def build(model_name: str, num_images: int, batch: int, workers: int, repeats: int) -> dict:
    clip = create_clip(model_name)
    builder = RetrievalIndexBuilder(clip, batch_size=batch, num_workers=workers,
                                    shard_size=max(batch, num_images // 4), progress=False,
                                    device='cpu')
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / 'images'
        folder.mkdir()
        make_images(folder, num_images)
        transform = preprocessing_transform(builder.preprocessing)
        paths = sorted(folder.iterdir())
        batches = [torch.stack([transform(Image.open(p)) for p in paths[i:i + batch]])
                   for i in range(0, len(paths), batch)]

        @torch.inference_mode()
        def bare():
            for images in batches:
                F.normalize(clip.model.encode_image(images).float(), dim=-1).numpy()

        def whole_build():
            builder.build(folder, Path(tmp) / 'index', overwrite=True)

        t_bare, t_build = interleaved([bare, whole_build], repeats)
    return dict(bare=t_bare, build=t_build, size=builder.preprocessing['center_crop'])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--collection', type=int, default=1_000_000,
                        help='embeddings in the retrieval case')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cases', default='retrieval,coseg,build')
    parser.add_argument('--max-naive-gb', type=float, default=8.0,
                        help='co-segmentation: skip a naive case predicted to need more')
    parser.add_argument('--build-images', type=int, default=48)
    parser.add_argument('--build-model', default='ViT-B-16')
    parser.add_argument('--build-batch', type=int, default=16)
    parser.add_argument('--build-workers', type=int, default=2)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = set(args.cases.split(','))
    faiss = import_faiss()
    print(f'torch {torch.__version__}, faiss {faiss.__version__}, {torch.get_num_threads()} '
          f'torch threads, {faiss.omp_get_max_threads()} FAISS threads, CPU')
    headline, details = [], []

    if 'retrieval' in cases:
        start = time.perf_counter()
        r = retrieval(args.collection, args.repeats)
        speedup = r['brute'] / r['faiss']
        print(f'\n| (a) top-{TOP_K} of {NUM_CONCEPTS} concepts over {args.collection:,} x {DIM} '
              'embeddings | seconds |')
        print('|---|---|')
        print(f'| brute force: torch matmul + topk | {r["brute"]:.3f} |')
        print(f'| FAISS exact inner product (RetrievalIndex.search) | {r["faiss"]:.3f} |')
        print(f'| speed-up | {speedup:.2f}x |')
        print(f'(same ids in {100 * r["same_ids"]:.2f}% of places, scores equal within 1e-5; '
              f'{time.perf_counter() - start:.0f} s with set-up)')
        headline.append(f'reco_retrieval_speedup={speedup:.2f}')
        details += [f'retrieval_faiss_s={r["faiss"]:.3f}', f'retrieval_brute_s={r["brute"]:.3f}']

    if 'coseg' in cases:
        rows = coseg(args.repeats, args.threads, args.max_naive_gb)
        print(f'\n| (b) one reference, k = {TOP_K}, C = {DIM} | naive peak | naive s | densevl '
              'peak | densevl s | memory | time |')
        print('|---|---|---|---|---|---|---|')
        for row in rows:
            naive, fused = row['naive'], row['fused']
            naive_peak = naive['peak'] if naive else row['predicted']
            row['mem'] = naive_peak / max(fused['peak'], 1)
            row['time'] = naive['time'] / fused['time'] if naive else float('nan')
            naive_time = f'{naive["time"]:.3f}' if naive else 'not run'
            print(f'| {row["grid"]}x{row["grid"]} grid | {naive_peak / 2**20:,.0f} MB'
                  f'{"" if naive else " (predicted)"} | {naive_time} | '
                  f'{fused["peak"] / 2**20:,.0f} MB | {fused["time"]:.3f} | {row["mem"]:.1f}x | '
                  f'{row["time"]:.2f}x |')
        timed = [r['time'] for r in rows if r['naive']]
        time_ratio = math.exp(statistics.mean(map(math.log, timed))) if timed else float('nan')
        headline += [f'reco_coseg_mem_ratio={rows[-1]["mem"]:.1f}',
                     f'reco_coseg_time_ratio={time_ratio:.2f}']

    if 'build' in cases:
        b = build(args.build_model, args.build_images, args.build_batch, args.build_workers,
                  args.repeats)
        efficiency = b['bare'] / b['build']
        n = args.build_images
        print(f'\n| (c) {n} JPEGs 500x375, {args.build_model} at {b["size"][0]}, batches of '
              f'{args.build_batch}, {args.build_workers} workers | seconds | images/s |')
        print('|---|---|---|')
        print(f'| bare image-tower forward, images decoded beforehand | {b["bare"]:.2f} | '
              f'{n / b["bare"]:.1f} |')
        print(f'| RetrievalIndexBuilder.build (decode, forward, shards, index, manifest) | '
              f'{b["build"]:.2f} | {n / b["build"]:.1f} |')
        print(f'| efficiency (bare / build; target >= 0.9) | {efficiency:.3f} | |')
        headline.append(f'index_build_efficiency={efficiency:.3f}')
        details += [f'build_s={b["build"]:.2f}', f'bare_s={b["bare"]:.2f}']
    print('RESULT ' + ' '.join(headline + details))


if __name__ == '__main__':
    main()
