// Host-side tiling of coseg_max_affinity over image pairs i <= j, shared by both paths: the
// similarities come from the device's GEMM (BLAS on the CPU, cuBLAS on CUDA), the reductions
// from each path's own loop over coseg_affinity.h's arithmetic.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>

namespace densevl {

// Row blocks of at least this many patches keep the GEMMs efficient for small P; below three
// such blocks of patches in all, one GEMM of everything beats skipping the lower triangle.
constexpr int64_t kCosegRowTarget = 768;

struct CosegTiling {
  int64_t rows;  // images per row block (r)
  int64_t cols;  // images per column block (g)
};

// Row and column block sizes: r images (about kCosegRowTarget patches) by g images, so that one
// (r*P, g*P) tile of similarities fits in tile_bytes (or one row block by one image, if larger).
inline CosegTiling coseg_tiling(int64_t num_images, int64_t num_patches, int64_t element_size,
                                int64_t tile_bytes) {
  const int64_t p = std::max<int64_t>(num_patches, 1);
  const int64_t rows = num_images * p <= 3 * kCosegRowTarget
                           ? num_images
                           : std::min(num_images, (kCosegRowTarget + p - 1) / p);
  const int64_t per_image = std::max<int64_t>(rows * p * p * element_size, 1);
  return {std::max<int64_t>(rows, 1),
          std::max<int64_t>(1, std::min(num_images, tile_bytes / per_image))};
}

// Calls reduce(tile, i0, r, j0, g) for tiles S = [f_i0 .. f_i0+r-1] [f_j0 .. f_j0+g-1]^T of shape
// (r*P, g*P) with j0 >= i0, which together hold every image pair i <= j. The reduction uses the
// pairs i <= j of a tile (rows) and i < j (columns); the pairs j < i inside a diagonal tile are
// computed and ignored (a fraction (r-1)/N of the work). The tile lives in one reused buffer of
// at most tile_bytes (or one row block by one image), so memory stays O(tile) whatever N is.
template <typename Reduce>
void for_each_coseg_tile(const at::Tensor& feats, int64_t tile_bytes, Reduce&& reduce) {
  const int64_t n = feats.size(0), p = feats.size(1), c = feats.size(2);
  const CosegTiling tiling = coseg_tiling(n, p, feats.element_size(), tile_bytes);
  at::Tensor buffer = at::empty({tiling.rows * p * tiling.cols * p}, feats.options());
  for (int64_t i0 = 0; i0 < n; i0 += tiling.rows) {
    const int64_t r = std::min(tiling.rows, n - i0);
    const at::Tensor rows = feats.narrow(0, i0, r).reshape({r * p, c});
    for (int64_t j0 = i0; j0 < n; j0 += tiling.cols) {
      const int64_t g = std::min(tiling.cols, n - j0);
      at::Tensor tile = buffer.narrow(0, 0, r * p * g * p).view({r * p, g * p});
      at::mm_out(tile, rows, feats.narrow(0, j0, g).reshape({g * p, c}).t());
      reduce(tile, i0, r, j0, g);
    }
  }
}

}  // namespace densevl
