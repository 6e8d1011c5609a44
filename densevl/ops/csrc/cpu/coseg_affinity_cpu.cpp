// C++ CPU path of coseg_max_affinity: BLAS tiles over image pairs i <= j, reduced in place.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "coseg_affinity.h"
#include "coseg_tiling.h"
#include "ops.h"

namespace densevl {
namespace {

// max_q weighted_similarity(s[q], w[q]) on SIMD registers (GCC/Clang vector types: two
// independent 16-byte accumulators, whatever the target's ISA), NaN propagating.
template <typename T>
T weighted_row_max(const T* s, const T* w, int64_t p) {
  typedef T Vec __attribute__((vector_size(16)));
  constexpr int kLanes = sizeof(Vec) / sizeof(T);
  const T lowest = -std::numeric_limits<T>::infinity();
  Vec max0, max1, nan0 = {}, nan1 = {};
  for (int l = 0; l < kLanes; ++l) max0[l] = max1[l] = lowest;
  int64_t q = 0;
  for (; q + 2 * kLanes <= p; q += 2 * kLanes) {
    Vec s0, s1, w0, w1;
    std::memcpy(&s0, s + q, sizeof(Vec));
    std::memcpy(&s1, s + q + kLanes, sizeof(Vec));
    std::memcpy(&w0, w + q, sizeof(Vec));
    std::memcpy(&w1, w + q + kLanes, sizeof(Vec));
    const Vec v0 = weighted_similarity(s0, w0), v1 = weighted_similarity(s1, w1);
    max0 = max_step(max0, v0);
    nan0 = nan_step(nan0, v0);
    max1 = max_step(max1, v1);
    nan1 = nan_step(nan1, v1);
  }
  T m = lowest, seen = T(0);
  for (int l = 0; l < kLanes; ++l) {
    m = max_step(max_step(m, max0[l]), max1[l]);
    seen = nan_step(nan_step(seen, nan0[l]), nan1[l]);
  }
  for (; q < p; ++q) {
    const T v = weighted_similarity(s[q], w[q]);
    m = max_step(m, v);
    seen = nan_step(seen, v);
  }
  return max_or_nan(m, seen);
}

// Reduces one (r*P, g*P) tile of similarities between images i0.. (rows) and j0.. (columns).
// Each image pair (i, j), i <= j, is one task reading its P x P block once: its rows give
// affinity[i, :, j] (weights of j), its columns affinity[j, :, i] (weights of i) when j > i.
template <typename T>
void reduce_tile(const at::Tensor& tile, const T* weights, T* out, int64_t n, int64_t p,
                 int64_t i0, int64_t r, int64_t j0, int64_t g) {
  const T* s = tile.data_ptr<T>();
  const int64_t cols = g * p;
  const T lowest = -std::numeric_limits<T>::infinity();
  at::parallel_for(0, r * g, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> maxima(p), nans(p);
    T* m = maxima.data();
    T* seen = nans.data();
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t ii = pair / g, jj = pair % g;
      const int64_t i = i0 + ii, j = j0 + jj;
      if (j < i) continue;  // inside a diagonal tile: the pair (j, i) covers it
      const T* wi = weights + i * p;
      const T* wj = weights + j * p;
      const bool columns = j > i;
      std::fill(maxima.begin(), maxima.end(), lowest);
      std::fill(nans.begin(), nans.end(), T(0));
      for (int64_t u = 0; u < p; ++u) {
        const T* srow = s + (ii * p + u) * cols + jj * p;
        out[(i * p + u) * n + j] = weighted_row_max(srow, wj, p);
        if (!columns) continue;
        const T wu = wi[u];
        for (int64_t q = 0; q < p; ++q) {  // element-wise across q: vectorises
          const T v = weighted_similarity(srow[q], wu);
          m[q] = max_step(m[q], v);
          seen[q] = nan_step(seen[q], v);
        }
      }
      if (!columns) continue;
      for (int64_t q = 0; q < p; ++q) out[(j * p + q) * n + i] = max_or_nan(m[q], seen[q]);
    }
  });
}

}  // namespace

at::Tensor coseg_max_affinity_cpu(const at::Tensor& feats, const at::Tensor& weights,
                                  int64_t tile_bytes) {
  TORCH_CHECK(feats.device().is_cpu() && weights.device().is_cpu(),
              "coseg_max_affinity_cpu: feats and weights must be CPU tensors");
  check_coseg_max_affinity_args(feats, weights);
  const auto acc = accumulate_type(feats);
  const at::Tensor f = feats.to(acc).contiguous();
  const at::Tensor w = weights.to(acc).contiguous();
  const int64_t n = f.size(0), p = f.size(1);
  at::Tensor out = at::empty({n, p, n}, f.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(acc, "coseg_max_affinity_cpu", [&] {
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    for_each_coseg_tile(f, tile_bytes, [&](const at::Tensor& tile, int64_t i0, int64_t r,
                                           int64_t j0, int64_t g) {
      reduce_tile<scalar_t>(tile, wp, op, n, p, i0, r, j0, g);
    });
  });
  return out;
}

}  // namespace densevl
