"""Peak memory and time of densevl.ops against the naive PyTorch formulas, in the same run.

1. upsample_argmax: logits of K names on a 1/16 grid (ViT-B/16) upsampled to the image for
   K in {150, 847} at 512x512 and 2048x1024, softmax at logit scale 40. Naive: ``F.interpolate``
   then ``max`` and ``logsumexp`` (scaling in place), i.e. ``B*K*H*W`` floats and a temporary of
   the same size inside logsumexp.
2. coseg_max_affinity: N in {10, 50} images of P in {196, 784} patches, C = 512 L2-normalised
   features (``params['c']`` changes C: tools/benchmark_reco.py), random weights. Naive: the
   ``(N*P)^2`` similarity matrix, weighted in place, max.

Peak memory on the CPU: every case runs in a fresh subprocess that builds its inputs, warms
the op up on a tiny input (extension loaded, thread pool started), resets the kernel's peak
resident set (``echo 5 > /proc/self/clear_refs``) and runs the op once: peak = VmHWM after -
VmRSS before, i.e. every page the call touched (torch's allocator, BLAS and OpenMP buffers,
outputs), inputs excluded. On CUDA: ``torch.cuda.max_memory_allocated`` over the call. A naive
case whose predicted peak exceeds ``--max-naive-gb`` is not run; its predicted size is reported
and used for the ratio. Time: another subprocess per case calls naive and densevl alternately
(so that load from elsewhere on the machine hits both), median of ``--repeats`` calls each.

Last line: ``RESULT upsample_mem_ratio=... upsample_time_ratio=... coseg_mem_ratio=...
coseg_time_ratio=...`` (naive / densevl): memory at K=847, 2048x1024 and at N=50, P=784; time
as the geometric mean over the cases where the naive version ran.

Usage: python tools/benchmark_ops.py [--device cpu|cuda] [--repeats 3] [--max-naive-gb 8]
           [--quick]  (RESULT keys end in ``_cuda`` on GPU)
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from _device_timing import median_times, peak_bytes

UPSAMPLE_CASES = [(k, size) for size in ((512, 512), (2048, 1024)) for k in (150, 847)]
COSEG_CASES = [(n, p) for p in (196, 784) for n in (10, 50)]
LOGIT_SCALE = 40.0
FEATURE_DIM = 512
TIME_BUDGET_S = 40.0  # stop repeating a case once its calls have taken this long


# ---- the measured functions ---------------------------------------------------------------

def naive_upsample_argmax(logits, size):
    up = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
    best, labels = up.max(dim=1)
    lse = torch.logsumexp(up.mul_(LOGIT_SCALE), dim=1)
    return labels, torch.exp(best * LOGIT_SCALE - lse)


def naive_coseg(feats, weights):
    n, p, c = feats.shape
    sim = feats.reshape(n * p, c) @ feats.reshape(n * p, c).T
    sim.mul_(weights.reshape(1, n * p))
    return sim.view(n * p, n, p).amax(dim=-1).view(n, p, n)


def predicted_naive_bytes(op: str, params: dict) -> int:
    """The naive version's peak, from its tensors (checked against the measured cases)."""
    if op == 'upsample':
        height, width = params['size']
        return 2 * params['k'] * height * width * 4   # upsampled logits + logsumexp's temporary
    n, p = params['n'], params['p']
    return (n * p) ** 2 * 4 + n * p * n * 4           # similarity matrix + result


def make_case(op: str, impl: str, params: dict, device: str, tiny: bool = False):
    """The inputs and the call of one case (``tiny``: a small one of the same kind, to warm up)."""
    from densevl.ops import coseg_max_affinity, upsample_argmax

    generator = torch.Generator().manual_seed(0)
    if op == 'upsample':
        height, width = (32, 32) if tiny else params['size']
        k = 3 if tiny else params['k']
        logits = torch.randn(1, k, height // 16, width // 16, generator=generator).to(device)
        if impl == 'naive':
            return lambda: naive_upsample_argmax(logits, (height, width))
        return lambda: upsample_argmax(logits, (height, width), scale=LOGIT_SCALE)
    n, p = (2, 4) if tiny else (params['n'], params['p'])
    feats = F.normalize(torch.randn(n, p, params.get('c', FEATURE_DIM), generator=generator),
                        dim=-1).to(device)
    weights = torch.rand(n, p, generator=generator).to(device)
    if impl == 'naive':
        return lambda: naive_coseg(feats, weights)
    return lambda: coseg_max_affinity(feats, weights)


# ---- one case, in its own process ---------------------------------------------------------

def memory_worker(spec: dict) -> dict:
    """Peak memory of one call of one implementation, in this fresh process."""
    device = spec['device']
    make_case(spec['op'], spec['impl'], spec['params'], device, tiny=True)()
    fn = make_case(spec['op'], spec['impl'], spec['params'], device)
    return dict(peak=peak_bytes(fn, device))


def time_worker(spec: dict) -> dict:
    """Median time of each implementation, their calls alternating (CUDA events on GPU, after
    one full-size warm-up call each; on the CPU a tiny one, as the figures above were taken)."""
    device = spec['device']
    fns = {}
    for impl in spec['impls']:
        make_case(spec['op'], impl, spec['params'], device, tiny=True)()
        fns[impl] = make_case(spec['op'], impl, spec['params'], device)
    medians = median_times(list(fns.values()), device, repeats=spec['repeats'],
                           warmup=int(device == 'cuda'), budget_s=TIME_BUDGET_S)
    return dict(zip(fns, medians))


def run_worker(spec: dict, args) -> dict:
    command = [sys.executable, __file__, '--worker', json.dumps(spec)]
    if args.threads:
        command += ['--threads', str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'{spec} failed:\n{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(op: str, params: dict, run_naive: bool, args) -> tuple[dict | None, dict]:
    """``(naive, densevl)`` measurements ``dict(peak=bytes, time=seconds)`` of one case."""
    common = dict(op=op, params=params, device=args.device)
    impls = ['naive', 'densevl'] if run_naive else ['densevl']
    times = run_worker(dict(common, mode='time', impls=impls, repeats=args.repeats), args)
    results = {impl: dict(run_worker(dict(common, mode='memory', impl=impl), args),
                          time=times[impl]) for impl in impls}
    return results.get('naive'), results['densevl']


# ---- the table ----------------------------------------------------------------------------

def _mb(num_bytes: float) -> str:
    return f'{num_bytes / 2**20:,.0f} MB' if num_bytes < 2**30 else f'{num_bytes / 2**30:.2f} GB'


def run_cases(op: str, cases: list[dict], args) -> tuple[list[dict], float]:
    limit = args.max_naive_gb * 2**30
    if args.device == 'cuda':
        limit = min(limit, torch.cuda.mem_get_info()[0] * 0.8)
    rows = []
    for params in cases:
        predicted = predicted_naive_bytes(op, params)
        naive, fused = measure(op, params, predicted <= limit, args)
        rows.append(dict(params=params, predicted=predicted, naive=naive, fused=fused))
        naive_peak = naive['peak'] if naive else predicted
        naive_time = f'{naive["time"]:.3f} s' if naive else 'not run'
        time_ratio = f'{naive["time"] / fused["time"]:.2f}x' if naive else '-'
        label = (f'K={params["k"]:<4d} {params["size"][0]}x{params["size"][1]}' if op == 'upsample'
                 else f'N={params["n"]:<3d} P={params["p"]}')
        print(f'{op:9s} {label:20s} naive {_mb(naive_peak):>9s}'
              f'{"" if naive else " (predicted, too large to run)"}'
              f' {naive_time:>9s} | densevl {_mb(fused["peak"]):>9s} {fused["time"]:.3f} s | '
              f'memory {naive_peak / max(fused["peak"], 1):,.0f}x  time {time_ratio}'
              f'  [naive predicted {_mb(predicted)}]', flush=True)
    ran = [r for r in rows if r['naive']]
    time_ratio = (math.exp(statistics.mean(math.log(r['naive']['time'] / r['fused']['time'])
                                           for r in ran)) if ran else float('nan'))
    return rows, time_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--max-naive-gb', type=float, default=8.0)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--quick', action='store_true',
                        help='the small cases only (512x512; P=196): a check that it runs')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        spec = json.loads(args.worker)
        worker = memory_worker if spec['mode'] == 'memory' else time_worker
        print(json.dumps(worker(spec)))
        return

    from densevl.ops import available_backends
    print(f'device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'densevl backends {available_backends()}; peak = '
          + ('torch.cuda.max_memory_allocated over the call' if args.device == 'cuda' else
             'VmHWM - VmRSS over the call, in a fresh process per case'))
    upsample_cases = [c for c in UPSAMPLE_CASES if not args.quick or c[1] == (512, 512)]
    coseg_cases = [c for c in COSEG_CASES if not args.quick or c[1] == 196]
    upsample_rows, upsample_time = run_cases(
        'upsample', [dict(k=k, size=size) for k, size in upsample_cases], args)
    coseg_rows, coseg_time = run_cases('coseg', [dict(n=n, p=p) for n, p in coseg_cases], args)

    def memory_ratio(rows):  # at the largest case: K=847 2048x1024, N=50 P=784 (--quick: less)
        naive = rows[-1]['naive']['peak'] if rows[-1]['naive'] else rows[-1]['predicted']
        return naive / max(rows[-1]['fused']['peak'], 1)

    checks = [r for r in upsample_rows + coseg_rows if r['naive']]
    print('naive peak measured / predicted: ' + ', '.join(
        f'{r["naive"]["peak"] / r["predicted"]:.2f}' for r in checks))
    suffix = '_cuda' if args.device == 'cuda' else ''
    print(f'RESULT upsample_mem_ratio{suffix}={memory_ratio(upsample_rows):.1f} '
          f'upsample_time_ratio{suffix}={upsample_time:.2f} '
          f'coseg_mem_ratio{suffix}={memory_ratio(coseg_rows):.1f} '
          f'coseg_time_ratio{suffix}={coseg_time:.2f}')


if __name__ == '__main__':
    main()
