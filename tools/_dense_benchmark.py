"""The ``dense`` case of tools/benchmark_inference.py: training-free sliding-window segmentation
on CUDA or the CPU against the bare image tower and the references' naive pipeline.

Needs only torch, open_clip and densevl's plain-PyTorch cores (no OpenMMLab), so it runs on a
bare GPU machine. ViT-B/16 with random weights, NACLIP, a ``size`` x ``size`` image (the short
side), windows of 224 with stride 112, text embeddings computed before timing. Per vocabulary size
K, in the same run, calls alternating:

(a) bare: ``open_clip``'s image tower over the same windows in one batch (the floor);
(b) densevl: ``ZeroShotSegmenter.segment`` (labels only: window scores averaged a chunk of
    queries at a time at full resolution, labelled by the fused upsample-argmax);
(c) naive: what mmseg's ``slide_inference`` does in the references: each window's logits
    upsampled to the window, padded to the image (``F.pad``) and accumulated in a
    ``(B, K, H, W)`` buffer, divided by the counts, resized to the output and ``argmax``-ed.

Time per image: median of repeats after a warm-up (CUDA events on GPU). Peak memory:
``torch.cuda.max_memory_allocated`` over one call on GPU; on the CPU the resident-set peak in
this process (rough: pages freed by earlier calls are reused). ``dtype`` fp16/bf16 runs all
three under ``torch.autocast`` and also reports how many pixels of (b) keep their fp32 label.
"""
from __future__ import annotations

import open_clip
import torch
import torch.nn.functional as F
from _device_timing import median_times, peak_bytes
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from densevl.models.clip import dense_score_map
from densevl.models.inference_protocol import SlideWindows
from densevl.models.segmentors import ZeroShotSegmenter
from densevl.models.segmentors.windows import window_boxes

CROP, STRIDE = 224, 112
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def distinct_names(count: int) -> list[str]:
    unique = {n.strip().lower(): n for n in reversed(IMAGENET_CLASSNAMES)}  # a few repeat
    names = list(reversed(unique.values()))[:count]
    assert len(names) == count, f'only {len(names)} distinct names available'
    return names


def windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """``(y1, y2, x1, x2)`` of mmseg's slide windows (edge windows shifted inwards)."""
    return window_boxes(height, width, SlideWindows(CROP, STRIDE))


def naive_slide_labels(encoder, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """mmseg's ``slide_inference`` + ``argmax`` (the references' pipeline).

    Shapes:
        images: ``(B, 3, H, W)``; text: ``(K, C)``; returns ``(B, H, W)`` labels.
    """
    batch, _, height, width = images.shape
    preds = images.new_zeros((batch, text.shape[0], height, width))
    count = images.new_zeros((batch, 1, height, width))
    for y1, y2, x1, x2 in windows(height, width):
        logits = dense_score_map(encoder, images[..., y1:y2, x1:x2], text=text)
        logits = F.interpolate(logits, size=(y2 - y1, x2 - x1), mode='bilinear',
                               align_corners=False)
        preds += F.pad(logits, (x1, width - x2, y1, height - y2))
        count[..., y1:y2, x1:x2] += 1
    preds = F.interpolate(preds / count, size=(height, width), mode='bilinear',
                          align_corners=False)
    return preds.argmax(dim=1)


def dense_case(device: str, dtype: str = 'fp32', size: int = 448,
               name_counts: tuple[int, ...] = (150, 847), repeats: int = 5) -> list[dict]:
    """One row per K: seconds and peak bytes of (a) bare, (b) densevl, (c) naive (module doc)."""
    torch.manual_seed(0)
    seg = ZeroShotSegmenter(model_name='ViT-B-16', mode='naclip', templates='single',
                            slide=dict(crop=CROP, stride=STRIDE), text_cache_dir=False,
                            device=device)
    bare = open_clip.create_model('ViT-B-16', pretrained=None).visual.eval().to(device)
    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    crops = torch.cat([images[..., y1:y2, x1:x2] for y1, y2, x1, x2 in windows(size, size)])
    autocast = torch.autocast(torch.device(device).type, dtype=DTYPES[dtype],
                              enabled=dtype != 'fp32')

    def under_autocast(fn):
        def call():
            with torch.no_grad(), autocast:
                return fn()
        return call

    rows = []
    for count in name_counts:
        names = distinct_names(count)
        text = seg.vocabulary(names).embeddings.to(device)  # cached from here on
        fns = [under_autocast(lambda: bare(crops)),
               under_autocast(lambda names=names: seg.segment(images, names, return_probs=False)),
               under_autocast(lambda text=text: naive_slide_labels(seg.encoder, images, text))]
        times = median_times(fns, device, repeats=repeats)
        peaks = [peak_bytes(fn, device) for fn in fns]
        labels = fns[1]()[0].labels
        naive_labels = fns[2]()[0]
        row = dict(k=count, windows=len(crops), times=times, peaks=peaks,
                   naive_agreement=(labels == naive_labels).float().mean().item())
        if dtype != 'fp32':
            with torch.no_grad():
                fp32 = seg.segment(images, names, return_probs=False)[0].labels
            row['fp32_agreement'] = (labels == fp32).float().mean().item()
        rows.append(row)
    return rows


def report_dense(args) -> dict[str, str]:
    """Runs :func:`dense_case` for ``args`` and prints its table; the RESULT entries."""
    counts = tuple(int(k) for k in args.dense_names.split(','))
    rows = dense_case(args.device, args.dtype, args.dense_size, counts, args.repeats)
    suffix = ('' if args.dtype == 'fp32' else f'_{args.dtype}') + (
        '_cuda' if args.device == 'cuda' else '')
    print(f'\n| dense, ViT-B/16 NACLIP, {args.dense_size}x{args.dense_size}, windows {CROP}/'
          f'{STRIDE} ({rows[0]["windows"]}), {args.dtype}, {args.device} | (a) bare tower | '
          '(b) densevl | (c) naive | (b)/(a) | (c)/(b) | labels (b) = (c) |')
    print('|---|---|---|---|---|---|---|')
    result = {}
    for row in rows:
        (ta, tb, tc), (pa, pb, pc) = row['times'], row['peaks']
        mb = [p / 2**20 for p in row['peaks']]
        print(f'| K={row["k"]} time | {ta * 1e3:.2f} ms | {tb * 1e3:.2f} ms | {tc * 1e3:.2f} ms | '
              f'{tb / ta:.3f} | {tc / tb:.2f} | {row["naive_agreement"]:.4f} |')
        print(f'| K={row["k"]} peak memory | {mb[0]:.0f} MB | {mb[1]:.0f} MB | {mb[2]:.0f} MB | '
              f'{pb / max(pa, 1):.2f} | {pc / max(pb, 1):.1f} | |')
        key = f'k{row["k"]}{suffix}'
        result.update({f'dense_overhead_ratio_{key}': f'{tb / ta:.3f}',
                       f'naive_time_ratio_{key}': f'{tc / tb:.2f}',
                       f'naive_mem_ratio_{key}': f'{pc / max(pb, 1):.1f}',
                       f'dense_s_{key}': f'{tb:.5f}', f'bare_s_{key}': f'{ta:.5f}',
                       f'naive_s_{key}': f'{tc:.5f}', f'dense_peak_mb_{key}': f'{mb[1]:.0f}',
                       f'naive_peak_mb_{key}': f'{mb[2]:.0f}'})
        if 'fp32_agreement' in row:
            print(f'| K={row["k"]} {args.dtype} labels equal to fp32 labels (target >= 0.995) | '
                  f'{row["fp32_agreement"]:.4f} | | | | | |')
            result[f'fp32_label_agreement_{key}'] = f'{row["fp32_agreement"]:.4f}'
    return result
