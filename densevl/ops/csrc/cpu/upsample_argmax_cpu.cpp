// C++ CPU path of upsample_argmax: one output pixel at a time, channels innermost.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <tuple>
#include <vector>

#include "ops.h"
#include "upsample_argmax.h"

namespace densevl {
namespace {

template <typename T>
void upsample_argmax_rows(const T* x, int64_t batch, int64_t channels, int64_t in_h,
                          int64_t in_w, int64_t out_h, int64_t out_w, bool align_corners,
                          T scale, int64_t* labels, T* max_prob, T* best) {
  std::vector<LinearTap<T>> row_taps(out_h), col_taps(out_w);
  for (int64_t y = 0; y < out_h; ++y) row_taps[y] = linear_tap<T>(y, in_h, out_h, align_corners);
  for (int64_t c = 0; c < out_w; ++c) col_taps[c] = linear_tap<T>(c, in_w, out_w, align_corners);
  // One task per output row; each pixel reads four contiguous runs of `channels` values.
  at::parallel_for(0, batch * out_h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / out_h;
      const LinearTap<T>& ty = row_taps[row % out_h];
      const T* top = x + (b * in_h + ty.i0) * in_w * channels;
      const T* bottom = x + (b * in_h + ty.i1) * in_w * channels;
      for (int64_t col = 0; col < out_w; ++col) {
        const LinearTap<T>& tx = col_taps[col];
        upsample_argmax_pixel<T>(top + tx.i0 * channels, top + tx.i1 * channels,
                                 bottom + tx.i0 * channels, bottom + tx.i1 * channels, 1,
                                 channels, ty, tx, scale, row * out_w + col, labels, max_prob,
                                 best);
      }
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> upsample_argmax_cpu(
    const at::Tensor& logits, int64_t out_h, int64_t out_w, bool align_corners, double scale) {
  TORCH_CHECK(logits.device().is_cpu(), "upsample_argmax_cpu: logits must be a CPU tensor");
  check_upsample_argmax_args(logits, out_h, out_w);
  const int64_t batch = logits.size(0), channels = logits.size(1);
  const int64_t in_h = logits.size(2), in_w = logits.size(3);
  // Reduced precision is computed in float, as if upcast first; channels go innermost.
  const auto acc = accumulate_type(logits);
  at::Tensor x = at::empty({batch, in_h, in_w, channels}, logits.options().dtype(acc));
  x.copy_(logits.permute({0, 2, 3, 1}));
  at::Tensor labels = at::empty({batch, out_h, out_w}, logits.options().dtype(at::kLong));
  at::Tensor max_prob = at::empty({batch, out_h, out_w}, x.options());
  at::Tensor best = at::empty({batch, out_h, out_w}, x.options());
  AT_DISPATCH_FLOATING_TYPES(acc, "upsample_argmax_cpu", [&] {
    upsample_argmax_rows<scalar_t>(x.data_ptr<scalar_t>(), batch, channels, in_h, in_w, out_h,
                                   out_w, align_corners, static_cast<scalar_t>(scale),
                                   labels.data_ptr<int64_t>(), max_prob.data_ptr<scalar_t>(),
                                   best.data_ptr<scalar_t>());
  });
  return {labels, max_prob, best};
}

}  // namespace densevl
