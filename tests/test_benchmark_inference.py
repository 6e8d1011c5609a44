"""tools/benchmark_inference.py's OVSeg case at toy size: exactly the asked valid crops, the
three timings, and a peak-memory probe that sees what a call allocates."""
from __future__ import annotations

import torch
from _tools import load_tool

bench = load_tool('benchmark_inference')


def test_first_queries_valid_keeps_exactly_that_many_masks():
    predict = bench.FirstQueriesValid(lambda *a: (torch.zeros(2, 5, 4), torch.ones(2, 5, 8, 8)), 3)
    _, masks = predict(None, None, (8, 8))
    valid = bench.find_proposals(masks, 0.5).valid
    assert valid.sum(dim=1).tolist() == [3, 3] and valid[:, :3].all()


def test_peak_bytes_sees_an_allocation():
    size = 256 * 2**20
    peak = bench.peak_bytes(lambda: torch.ones(size // 4), 'cpu')
    assert 0.9 * size <= peak < 2 * size     # a few pages may be resident already


def test_ovseg_case_times_the_floor_and_both_classifiers(tmp_path):
    t = bench.ovseg(1, size=64, num_images=2, valid=2, cache_dir=str(tmp_path))
    assert t['crops'] == 4 and t['chunk_size'] == 32
    assert all(t[k] > 0 for k in ('floor', 'masked_crops', 'mask_pooling'))
