// CUDA path of coseg_max_affinity: cuBLAS tiles over image pairs i <= j, reduced by two kernels.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "coseg_affinity.h"
#include "coseg_tiling.h"
#include "ops.h"

namespace densevl {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

template <typename T>
__device__ __forceinline__ T lowest() {
  return -INFINITY;
}

// One warp per (tile row, column image jj), pairs i <= j:
// affinity[i, u, j] = max_q s[row of (i, u), column of (j, q)] * w[j, q].
template <typename T>
__global__ void row_max_kernel(const T* __restrict__ s, const T* __restrict__ weights,
                               T* __restrict__ out, int64_t n, int64_t p, int64_t i0, int64_t r,
                               int64_t j0, int64_t g) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (warp >= r * p * g) return;
  const int64_t row = warp / g, jj = warp % g;
  const int64_t i = i0 + row / p, j = j0 + jj;
  if (j < i) return;
  const T* srow = s + row * g * p + jj * p;
  const T* w = weights + j * p;
  T m = lowest<T>(), seen = T(0);
  for (int64_t q = lane; q < p; q += kWarp) {
    const T v = weighted_similarity(srow[q], w[q]);
    m = max_step(m, v);
    seen = nan_step(seen, v);
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    m = max_step(m, __shfl_down_sync(0xffffffffu, m, offset));
    seen = nan_step(seen, __shfl_down_sync(0xffffffffu, seen, offset));
  }
  if (lane == 0) out[(i * p + row % p) * n + j] = max_or_nan(m, seen);
}

// One thread per (row image ii, tile column c), pairs i < j:
// affinity[j, q, i] = max_u s[row of (i, u), column of (j, q)] * w[i, u].
template <typename T>
__global__ void col_max_kernel(const T* __restrict__ s, const T* __restrict__ weights,
                               T* __restrict__ out, int64_t n, int64_t p, int64_t i0, int64_t r,
                               int64_t j0, int64_t g) {
  const int64_t cols = g * p;
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= r * cols) return;
  const int64_t ii = index / cols, c = index % cols;
  const int64_t i = i0 + ii, j = j0 + c / p;
  if (j <= i) return;
  const T* column = s + ii * p * cols + c;
  const T* wi = weights + i * p;
  T m = lowest<T>(), seen = T(0);
  for (int64_t u = 0; u < p; ++u) {
    const T v = weighted_similarity(column[u * cols], wi[u]);
    m = max_step(m, v);
    seen = nan_step(seen, v);
  }
  out[(j * p + c % p) * n + i] = max_or_nan(m, seen);
}

}  // namespace

at::Tensor coseg_max_affinity_cuda(const at::Tensor& feats, const at::Tensor& weights,
                                   int64_t tile_bytes) {
  TORCH_CHECK(feats.is_cuda() && weights.is_cuda(),
              "coseg_max_affinity_cuda: feats and weights must be CUDA tensors");
  check_coseg_max_affinity_args(feats, weights);
  const c10::cuda::CUDAGuard guard(feats.device());
  const auto acc = accumulate_type(feats);
  const at::Tensor f = feats.to(acc).contiguous();
  const at::Tensor w = weights.to(f.device(), acc).contiguous();
  const int64_t n = f.size(0), p = f.size(1);
  at::Tensor out = at::empty({n, p, n}, f.options());
  if (out.numel() == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(acc, "coseg_max_affinity_cuda", [&] {
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    for_each_coseg_tile(f, tile_bytes, [&](const at::Tensor& tile, int64_t i0, int64_t r,
                                           int64_t j0, int64_t g) {
      const scalar_t* s = tile.data_ptr<scalar_t>();
      const int64_t row_blocks = (r * p * g * kWarp + kThreads - 1) / kThreads;
      row_max_kernel<scalar_t><<<row_blocks, kThreads, 0, stream>>>(s, wp, op, n, p, i0, r, j0,
                                                                    g);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const int64_t col_blocks = (r * g * p + kThreads - 1) / kThreads;
      col_max_kernel<scalar_t><<<col_blocks, kThreads, 0, stream>>>(s, wp, op, n, p, i0, r, j0,
                                                                    g);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

}  // namespace densevl
