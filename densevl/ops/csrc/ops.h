// The entry points of each compiled path (densevl::<op>_cpu in cpu/, densevl::<op>_cuda in
// cuda/) and the argument checks they share. Host code only: included by the .cpp files and by
// the host part of the .cu files.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace densevl {

// upsample_argmax(logits (B, K, h, w), out_h, out_w, align_corners, scale)
//   -> (labels (B, H, W) long, max_prob (B, H, W), best (B, H, W)), in the accumulation type.
using UpsampleArgmaxFn = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor& logits, int64_t out_h, int64_t out_w, bool align_corners, double scale);
// coseg_max_affinity(feats (N, P, C), weights (N, P), tile_bytes) -> affinity (N, P, N).
using CosegMaxAffinityFn = at::Tensor(const at::Tensor& feats, const at::Tensor& weights,
                                      int64_t tile_bytes);

UpsampleArgmaxFn upsample_argmax_cpu;
UpsampleArgmaxFn upsample_argmax_cuda;
CosegMaxAffinityFn coseg_max_affinity_cpu;
CosegMaxAffinityFn coseg_max_affinity_cuda;

// The type both paths compute in: double for double input, float for every other floating type
// (reduced precision as if upcast first).
inline at::ScalarType accumulate_type(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// Shape, dtype and size checks of upsample_argmax (each path checks the device first).
inline void check_upsample_argmax_args(const at::Tensor& logits, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(logits.dim() == 4, "upsample_argmax: logits must be (B, K, h, w), got ",
              logits.sizes());
  TORCH_CHECK(at::isFloatingType(logits.scalar_type()),
              "upsample_argmax: logits must be floating point, got ", logits.scalar_type());
  TORCH_CHECK(logits.size(1) > 0 && logits.size(2) > 0 && logits.size(3) > 0,
              "upsample_argmax: logits must have K, h, w > 0, got ", logits.sizes());
  TORCH_CHECK(out_h > 0 && out_w > 0, "upsample_argmax: size must be positive, got (", out_h,
              ", ", out_w, ")");
}

// Shape and dtype checks of coseg_max_affinity (each path checks the devices first).
inline void check_coseg_max_affinity_args(const at::Tensor& feats, const at::Tensor& weights) {
  TORCH_CHECK(feats.dim() == 3, "coseg_max_affinity: feats must be (N, P, C), got ",
              feats.sizes());
  TORCH_CHECK(weights.dim() == 2 && weights.size(0) == feats.size(0) &&
                  weights.size(1) == feats.size(1),
              "coseg_max_affinity: weights must be (N, P) = (", feats.size(0), ", ",
              feats.size(1), "), got ", weights.sizes());
  TORCH_CHECK(at::isFloatingType(feats.scalar_type()),
              "coseg_max_affinity: feats must be floating point, got ", feats.scalar_type());
}

}  // namespace densevl
