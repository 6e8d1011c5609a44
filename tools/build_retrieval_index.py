"""Build a ReCo retrieval index: CLIP image embeddings of an image collection in a FAISS index.

Embeds every image of a folder (recursively) or of a list file (one path a line) with the
model's own preprocessing (short side resized to its input size, bicubic, centre crop), L2-
normalised float32, in shards of ``--shard-size`` images; then writes ``OUT_DIR/index.faiss``
and ``OUT_DIR/manifest.json``. Interrupted? Run the same command again: finished shards are
kept, a half-written one is discarded. ``--restart`` discards them all.

Examples:
    python tools/build_retrieval_index.py data/imagenet/train data/reco/in1k-train_vit-l14-336 \\
        --model ViT-L-14-336 --weights /path/to/ViT-L-14-336px.pt
    bash tools/dist_build_retrieval_index.sh data/imagenet/train OUT_DIR 8 --model ... # torchrun
    python tools/build_retrieval_index.py images.txt OUT_DIR --model ViT-B-16 --weights openai \\
        --index IVF4096,PQ64 --search-params nprobe=64                  # for huge collections
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.distributed as torch_dist  # noqa: E402
from mmengine.dist import get_dist_info, init_dist  # noqa: E402

from densevl.models.clip import create_clip  # noqa: E402
from densevl.models.reco.index_builder import RetrievalIndexBuilder  # noqa: E402

# a rank that finishes its shards early waits at a barrier for the slowest one
DIST_TIMEOUT = datetime.timedelta(hours=24)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='a folder of images (searched recursively) or a text file '
                        'of image paths, one a line (relative to the file)')
    parser.add_argument('out_dir', help='the index folder to write (or to resume)')
    parser.add_argument('--model', required=True,
                        help="CLIP model: an open_clip name ('ViT-L-14-336') or a densevl one")
    parser.add_argument('--weights', default=None,
                        help='pretrained tag or local weights file (default: the model\'s own; '
                        'random for open_clip names)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                        help='DataLoader processes decoding images (per rank)')
    parser.add_argument('--prefetch', type=int, default=4, help='batches prefetched per worker')
    parser.add_argument('--shard-size', type=int, default=10_000,
                        help='images per shard (the unit of resumption and of work per rank)')
    parser.add_argument('--index', default='Flat',
                        help="FAISS factory string: 'Flat' (exact inner product), "
                        "'IVF4096,Flat', 'IVF4096,PQ64', 'HNSW32,Flat', ...")
    parser.add_argument('--search-params', default='',
                        help="FAISS search parameters kept with the index ('nprobe=64', "
                        "'efSearch=128')")
    parser.add_argument('--train-size', type=int, default=262_144,
                        help='embeddings sampled to train an IVF/PQ index')
    parser.add_argument('--keep-shards', action='store_true',
                        help='keep the per-shard embeddings (OUT_DIR/shards) once indexed')
    parser.add_argument('--restart', action='store_true',
                        help='discard the shards of an unfinished build instead of resuming it')
    parser.add_argument('--overwrite', action='store_true', help='replace a finished index')
    parser.add_argument('--device', default=None, help='default: CUDA when available')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='pytorch: one rank per process of torchrun (gloo on CPU)')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def init_distributed(launcher: str) -> None:
    if launcher == 'none':
        return
    if torch.cuda.is_available():
        init_dist(launcher, backend='nccl', timeout=DIST_TIMEOUT)
    else:  # mmengine's launcher selects a CUDA device; torchrun's env:// is all gloo needs
        torch_dist.init_process_group('gloo', timeout=DIST_TIMEOUT)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    init_distributed(args.launcher)
    device = args.device
    if device is None and torch.cuda.is_available():
        device = f'cuda:{torch.cuda.current_device()}'
    rank, world = get_dist_info()
    clip = create_clip(args.model, args.weights)
    builder = RetrievalIndexBuilder(
        clip, batch_size=args.batch_size, num_workers=args.workers,
        prefetch_factor=args.prefetch, shard_size=args.shard_size, index_factory=args.index,
        search_params=args.search_params, train_size=args.train_size,
        keep_shards=args.keep_shards, device=device, progress=not args.no_progress)
    try:
        index = builder.build(args.source, args.out_dir, restart=args.restart,
                              overwrite=args.overwrite)
    finally:
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    if rank == 0:
        print(f'{index} (fingerprint {index.fingerprint[:12]}; {world} rank(s))')


if __name__ == '__main__':
    main()
