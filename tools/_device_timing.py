"""Time and peak memory of calls on CUDA or the CPU, for the benchmark tools.

On CUDA: CUDA events around each call (read after a synchronise), peak memory from
``torch.cuda.max_memory_allocated``. On the CPU the same code runs with ``time.perf_counter``
and the peak resident set (Linux: ``VmHWM`` reset through ``/proc/self/clear_refs``), so a CPU
run proves the GPU path before a GPU is spent on it. Needs only torch.
"""
from __future__ import annotations

import ctypes
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def synchronize(device: str) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str) -> float:
    """Seconds of one call of ``fn``, its GPU work included."""
    if torch.device(device).type == 'cuda':
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    start_s = time.perf_counter()
    fn()
    return time.perf_counter() - start_s


def median_times(fns: Sequence[Callable[[], object]], device: str, *, repeats: int,
                 warmup: int = 1, budget_s: float | None = None) -> list[float]:
    """Median seconds of each function over ``repeats`` calls, the calls alternating (load from
    elsewhere hits all alike), after ``warmup`` calls of each. ``budget_s``: stop repeating once
    the timed calls have taken this long (at least one call of each is timed)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    synchronize(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            bucket.append(time_call(fn, device))
        if budget_s is not None and sum(map(sum, times)) > budget_s:
            break
    return [statistics.median(t) for t in times]


def _status_bytes(field: str) -> int:
    status = Path('/proc/self/status').read_text()
    return int(re.search(rf'^{field}:\s+(\d+) kB', status, re.M).group(1)) * 1024


def peak_bytes(fn: Callable[[], object], device: str) -> int:
    """Memory one call of ``fn`` adds at its peak on top of what is allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated`` over the call (tensors of torch's allocator).
    CPU: resident pages the call touched (``VmHWM`` after - ``VmRSS`` before); in a process that
    already ran larger calls freed pages may be reused, so compare calls in fresh processes where
    the figure matters (tools/benchmark_ops.py does).
    """
    synchronize(device)
    if torch.device(device).type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated() - before
    try:    # return freed heap pages first, so that pages the call reuses count (glibc)
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass
    before = _status_bytes('VmRSS')
    Path('/proc/self/clear_refs').write_text('5')  # VmHWM := VmRSS
    fn()
    return _status_bytes('VmHWM') - before
