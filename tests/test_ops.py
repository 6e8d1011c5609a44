"""densevl.ops: PyTorch references against the naive formulas, compiled paths against them."""
import importlib

import pytest
import torch
import torch.nn.functional as F
from conftest import requires_cuda

from densevl.ops import (
    OpsNotCompiledError,
    _extension,
    available_backends,
    coseg_max_affinity,
    coseg_max_affinity_reference,
    merge_upsample_argmax,
    upsample_argmax,
    upsample_argmax_reference,
)

# The package exports the function under the module's name; this is the module.
upsample_module = importlib.import_module('densevl.ops.upsample_argmax')

requires_cpp = pytest.mark.skipif('cpp' not in available_backends(),
                                  reason='densevl.ops._cpu is not built')
# The compiled path of each device, run where it exists.
COMPILED = [pytest.param('cpu', 'cpp', marks=requires_cpp),
            pytest.param('cuda', 'cuda', marks=requires_cuda)]

SHAPES = [  # (B, K, h, w), (H, W)
    ((1, 1, 4, 5), (9, 11)),       # K = 1
    ((2, 7, 5, 6), (11, 13)),      # odd sizes
    ((1, 19, 14, 14), (224, 224)),  # a ViT-B/16 grid at 224
    ((2, 5, 3, 8), (3, 8)),        # same size: no interpolation
    ((1, 6, 9, 7), (4, 5)),        # downsampling
    ((1, 4, 1, 1), (5, 3)),        # one source pixel
    ((1, 3, 6, 5), (1, 1)),        # one output pixel
    ((1, 847, 5, 7), (19, 23)),    # K = 847 (ADE-847), odd sizes
]
# Every path: the reference and each compiled path where it exists (on its device).
ALL_PATHS = [pytest.param('cpu', 'reference')] + COMPILED


def naive_upsample_argmax(logits, size, align_corners=False, scale=1.0):
    """The formula the op replaces: materialise, argmax, softmax max-probability."""
    up = F.interpolate(logits, size=size, mode='bilinear', align_corners=align_corners)
    best, labels = up.max(dim=1)
    return labels, torch.exp(best * scale - torch.logsumexp(up * scale, dim=1)), up


def assert_same_labels(labels, expected_labels, up, gap=1e-4):
    """Labels equal wherever the upsampled top two values are more than ``gap`` apart (below it,
    float rounding of the interpolation may legitimately swap them)."""
    if up.shape[1] > 1:
        top2 = up.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1]) > gap
    else:
        clear = torch.ones_like(expected_labels, dtype=torch.bool)
    assert clear.float().mean() > 0.9
    assert torch.equal(labels[clear], expected_labels[clear])


@pytest.mark.parametrize('shape,size', SHAPES)
@pytest.mark.parametrize('align_corners', [False, True])
def test_reference_matches_the_naive_formula(shape, size, align_corners):
    torch.manual_seed(0)
    logits = torch.randn(shape)
    labels, max_prob = upsample_argmax_reference(logits, size, align_corners, scale=3.0)
    expected, expected_prob, up = naive_upsample_argmax(logits, size, align_corners, scale=3.0)
    assert labels.shape == max_prob.shape == (shape[0], *size) and labels.dtype == torch.int64
    assert torch.equal(labels, expected)  # the reference upsamples with F.interpolate itself
    torch.testing.assert_close(max_prob, expected_prob, atol=1e-5, rtol=0)


def test_reference_is_exact_in_float64():
    torch.manual_seed(1)
    logits = torch.randn(2, 9, 6, 7, dtype=torch.float64)
    labels, max_prob, best = upsample_argmax_reference(logits, (17, 15), scale=10.0,
                                                       return_best=True)
    expected, expected_prob, up = naive_upsample_argmax(logits, (17, 15), scale=10.0)
    assert max_prob.dtype == best.dtype == torch.float64
    assert torch.equal(labels, expected) and torch.equal(best, up.amax(1))
    torch.testing.assert_close(max_prob, expected_prob, atol=1e-12, rtol=0)


def test_reference_chunks_merge_to_the_whole(monkeypatch):
    torch.manual_seed(2)
    logits = torch.randn(2, 23, 5, 4)
    whole = upsample_argmax_reference(logits, (10, 9), scale=5.0, return_best=True)
    # 2 x 10 x 9 float32 = 720 bytes per channel: chunks of 3 channels, the last one of 2.
    monkeypatch.setattr(upsample_module, 'REFERENCE_CHUNK_BYTES', 3 * 720)
    chunked = upsample_argmax_reference(logits, (10, 9), scale=5.0, return_best=True)
    # F.interpolate's CPU kernels vectorise over channels, so a channel's rounding may depend on
    # how many there are: equal up to rounding.
    up = F.interpolate(logits, size=(10, 9), mode='bilinear')
    assert_same_labels(chunked[0], whole[0], up, gap=1e-5)
    torch.testing.assert_close(chunked[1], whole[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(chunked[2], whole[2], atol=1e-6, rtol=0)


def test_merge_of_channel_chunks():
    torch.manual_seed(3)
    logits = torch.randn(1, 12, 4, 4)
    whole = upsample_argmax(logits, (8, 8), scale=4.0, return_best=True)
    first = upsample_argmax(logits[:, :5], (8, 8), scale=4.0, return_best=True)
    labels, prob, best = upsample_argmax(logits[:, 5:], (8, 8), scale=4.0, return_best=True)
    merged = merge_upsample_argmax(first, (labels + 5, prob, best), scale=4.0)
    assert_same_labels(merged[0], whole[0], F.interpolate(logits, size=(8, 8), mode='bilinear'),
                       gap=1e-5)
    torch.testing.assert_close(merged[1], whole[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(merged[2], whole[2], atol=1e-6, rtol=0)


@pytest.mark.parametrize('device,backend', ALL_PATHS)
def test_ties_go_to_the_first_channel(device, backend):
    torch.manual_seed(4)
    logits = torch.randn(1, 5, 3, 3)
    logits[:, 3] = logits[:, 1] = logits.amax(1) + 1  # channels 1 and 3 tie everywhere
    labels, max_prob = upsample_argmax(logits.to(device), (7, 7), backend=backend)
    assert (labels == 1).all()
    constant = torch.zeros(2, 4, 3, 3, device=device)
    labels, max_prob = upsample_argmax(constant, (5, 5), scale=40.0, backend=backend)
    assert (labels == 0).all() and torch.allclose(max_prob, torch.full_like(max_prob, 0.25))


@pytest.mark.parametrize('device,backend', ALL_PATHS)
def test_single_class_and_nan(device, backend):
    labels, max_prob = upsample_argmax(torch.randn(2, 1, 3, 4, device=device), (6, 8),
                                       backend=backend)
    assert (labels == 0).all() and (max_prob == 1).all()
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 2, 0, 0] = float('nan')   # torch.max reports the first NaN
    labels, max_prob = upsample_argmax(logits.to(device), (2, 2), backend=backend)
    labels, max_prob = labels.cpu(), max_prob.cpu()
    assert labels[0, 0, 0] == 2 and max_prob[0, 0, 0].isnan()
    assert (labels[0].flatten()[1:] == 0).all() and not max_prob[0].flatten()[1:].isnan().any()


@pytest.mark.parametrize('device,backend', ALL_PATHS)
def test_non_contiguous_and_half_precision(device, backend):
    torch.manual_seed(5)
    base = torch.randn(2, 6, 7, 9)
    views = [base.to(memory_format=torch.channels_last), base.transpose(2, 3),
             base[:, ::2, 1:, ::2], base.permute(1, 0, 2, 3)]
    for logits in views:
        labels, max_prob = upsample_argmax(logits.to(device), (13, 11), backend=backend)
        expected, expected_prob, up = naive_upsample_argmax(logits.contiguous(), (13, 11))
        assert_same_labels(labels.cpu(), expected, up)
        torch.testing.assert_close(max_prob.cpu(), expected_prob, atol=1e-5, rtol=0)
    for dtype in (torch.float16, torch.bfloat16):
        low = base.to(dtype)
        labels, max_prob = upsample_argmax(low.to(device), (13, 11), scale=2.0, backend=backend)
        assert max_prob.dtype == torch.float32  # computed as if upcast to float32 first
        expected, expected_prob, up = naive_upsample_argmax(low.float(), (13, 11), scale=2.0)
        assert_same_labels(labels.cpu(), expected, up)
        torch.testing.assert_close(max_prob.cpu(), expected_prob, atol=1e-5, rtol=0)


@pytest.mark.parametrize('device,backend', COMPILED)
@pytest.mark.parametrize('shape,size', SHAPES)
@pytest.mark.parametrize('align_corners', [False, True])
def test_compiled_path_matches_the_reference(device, backend, shape, size, align_corners):
    torch.manual_seed(6)
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        logits = torch.randn(shape, dtype=dtype)
        ref_labels, ref_prob, ref_best = upsample_argmax_reference(
            logits, size, align_corners, scale=7.0, return_best=True)
        labels, max_prob, best = upsample_argmax(logits.to(device), size, align_corners,
                                                 scale=7.0, return_best=True, backend=backend)
        assert labels.device.type == device and max_prob.dtype == dtype
        up = F.interpolate(logits, size=size, mode='bilinear', align_corners=align_corners)
        assert_same_labels(labels.cpu(), ref_labels, up, gap=1e-9 if dtype == torch.float64
                           else 1e-5)
        torch.testing.assert_close(max_prob.cpu(), ref_prob, atol=atol, rtol=0)
        torch.testing.assert_close(best.cpu(), ref_best, atol=atol * 10, rtol=0)


@requires_cuda
@pytest.mark.skipif('cpp' not in available_backends(), reason='densevl.ops._cpu is not built')
def test_cpu_and_cuda_paths_share_their_arithmetic():
    torch.manual_seed(7)
    logits = torch.randn(2, 37, 9, 13)
    cpu = upsample_argmax(logits, (101, 77), backend='cpp', return_best=True)
    gpu = upsample_argmax(logits.cuda(), (101, 77), backend='cuda', return_best=True)
    assert torch.equal(cpu[0], gpu[0].cpu()) and torch.equal(cpu[2], gpu[2].cpu())
    torch.testing.assert_close(cpu[1], gpu[1].cpu(), atol=1e-6, rtol=0)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r'\(B, K, h, w\)'):
        upsample_argmax(torch.randn(3, 4, 5), (8, 8))
    with pytest.raises(ValueError, match='size'):
        upsample_argmax(torch.randn(1, 3, 4, 5), (0, 8))
    with pytest.raises(ValueError, match='K, h, w'):
        upsample_argmax(torch.randn(1, 0, 4, 5), (8, 8))
    with pytest.raises(ValueError, match='scale'):
        upsample_argmax(torch.randn(1, 3, 4, 5), (8, 8), scale=-1.0)
    with pytest.raises(TypeError, match='floating'):
        upsample_argmax(torch.ones(1, 3, 4, 5, dtype=torch.long), (8, 8))
    with pytest.raises(ValueError, match='backend'):
        upsample_argmax(torch.randn(1, 3, 4, 5), (8, 8), backend='triton')
    with pytest.raises(ValueError, match='CUDA tensors'):
        upsample_argmax(torch.randn(1, 3, 4, 5), (8, 8), backend='cuda')


def test_a_missing_compiled_path_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(_extension._loaded, 'cpp', None)
    monkeypatch.setitem(_extension._errors, 'cpp', 'ImportError: no module named _cpu')
    assert 'cpp' not in available_backends()
    with pytest.raises(OpsNotCompiledError, match='without its C\\+\\+ path.*no-build-isolation'):
        upsample_argmax(torch.randn(1, 3, 4, 5), (8, 8), backend='cpp')
    with pytest.raises(OpsNotCompiledError, match="backend='reference'"):
        coseg_max_affinity(torch.randn(2, 3, 4), backend='cpp')
    # 'auto' falls back to the reference.
    labels, _ = upsample_argmax(torch.randn(1, 3, 4, 5), (8, 8))
    assert labels.shape == (1, 8, 8)


# ---- co-segmentation affinity -------------------------------------------------------------

def naive_coseg(feats, weights):
    """The formula the op replaces: the whole (N*P) x (N*P) similarity matrix."""
    n, p, c = feats.shape
    sim = feats.reshape(n * p, c) @ feats.reshape(n * p, c).T
    return (sim * weights.reshape(1, n * p)).view(n * p, n, p).amax(-1).view(n, p, n)


COSEG_CASES = [(1, 1, 4), (1, 5, 8), (2, 3, 4), (5, 7, 16), (6, 49, 32), (3, 200, 8)]


def _features(n, p, c, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    feats = F.normalize(torch.randn(n, p, c, generator=generator, dtype=dtype), dim=-1)
    return feats, torch.rand(n, p, generator=generator, dtype=dtype)


@pytest.mark.parametrize('n,p,c', COSEG_CASES)
@pytest.mark.parametrize('tile_bytes', [1, 3000, None])
def test_coseg_reference_matches_the_naive_formula(n, p, c, tile_bytes):
    feats, weights = _features(n, p, c)
    expected = naive_coseg(feats, weights)
    got = coseg_max_affinity_reference(feats, weights, tile_bytes=tile_bytes)
    assert got.shape == (n, p, n)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    ones = coseg_max_affinity_reference(feats, tile_bytes=tile_bytes)
    torch.testing.assert_close(ones, naive_coseg(feats, torch.ones(n, p)), atol=1e-6, rtol=0)


def test_coseg_weights_scale_the_matched_patch():
    # Image 0: patches (1, 0) and (0, 1); image 1: patch (1, 0) with weight 0.5.
    feats = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    weights = torch.tensor([[1.0, 1.0], [0.5, 0.25]])
    got = coseg_max_affinity_reference(feats, weights)
    assert got[0, 0, 1] == 0.5       # max(1 * 0.5, 1 * 0.25)
    assert got[0, 1, 1] == 0.0       # orthogonal to both patches of image 1
    assert got[1, 0, 0] == 1.0       # (1, 0) . (1, 0) * w = 1, (1, 0) . (0, 1) = 0
    assert got[0, 0, 0] == 1.0       # an image includes the patch itself


@pytest.mark.parametrize('device,backend', COMPILED)
@pytest.mark.parametrize('n,p,c', COSEG_CASES)
@pytest.mark.parametrize('tile_bytes', [1, 3000, None])
def test_coseg_compiled_path_matches_the_reference(device, backend, n, p, c, tile_bytes):
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        feats, weights = _features(n, p, c, dtype=dtype, seed=n * p)
        expected = coseg_max_affinity_reference(feats, weights, tile_bytes=tile_bytes)
        got = coseg_max_affinity(feats.to(device), weights.to(device), tile_bytes=tile_bytes,
                                 backend=backend)
        assert got.device.type == device and got.dtype == dtype
        torch.testing.assert_close(got.cpu(), expected, atol=atol, rtol=0)


@pytest.mark.parametrize('device,backend', [('cpu', 'reference')] + COMPILED)
def test_coseg_nan_and_half_precision(device, backend):
    feats, weights = _features(4, 21, 8)
    feats[2, 5, 3] = float('nan')
    expected = naive_coseg(feats, weights)
    got = coseg_max_affinity(feats.to(device), weights.to(device), tile_bytes=2000,
                             backend=backend).cpu()
    assert torch.equal(got.isnan(), expected.isnan()) and got.isnan().any()
    torch.testing.assert_close(got.nan_to_num(), expected.nan_to_num(), atol=1e-6, rtol=0)
    half, hw = feats.nan_to_num().half(), weights.half()
    got = coseg_max_affinity(half.to(device), hw.to(device), backend=backend).cpu()
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, naive_coseg(half.float(), hw.float()), atol=1e-6, rtol=0)


def test_coseg_arguments_are_checked():
    with pytest.raises(ValueError, match=r'\(N, P, C\)'):
        coseg_max_affinity(torch.randn(3, 4))
    with pytest.raises(ValueError, match=r'\(N, P\)'):
        coseg_max_affinity(torch.randn(3, 4, 5), torch.ones(3, 5))
    with pytest.raises(ValueError, match='tile_bytes'):
        coseg_max_affinity(torch.randn(3, 4, 5), tile_bytes=0)
    assert coseg_max_affinity(torch.randn(0, 4, 5)).shape == (0, 4, 0)
