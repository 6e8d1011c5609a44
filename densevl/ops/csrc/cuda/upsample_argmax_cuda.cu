// CUDA path of upsample_argmax: one thread per output pixel, channels looped in registers.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <tuple>

#include "upsample_argmax.h"

namespace densevl {
namespace {

template <typename scalar_t, typename acc_t>
__global__ void upsample_argmax_kernel(const scalar_t* __restrict__ x, int64_t batch,
                                       int64_t channels, int64_t in_h, int64_t in_w,
                                       int64_t out_h, int64_t out_w, bool align_corners,
                                       acc_t scale, int64_t* __restrict__ labels,
                                       acc_t* __restrict__ max_prob, acc_t* __restrict__ best) {
  const int64_t total = batch * out_h * out_w;
  const int64_t plane = in_h * in_w;
  for (int64_t out = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; out < total;
       out += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = out % out_w;
    const int64_t row = (out / out_w) % out_h;
    const int64_t b = out / (out_w * out_h);
    const LinearTap<acc_t> ty = linear_tap<acc_t>(row, in_h, out_h, align_corners);
    const LinearTap<acc_t> tx = linear_tap<acc_t>(col, in_w, out_w, align_corners);
    // Adjacent threads are adjacent output pixels: their loads of one channel hit the same or
    // neighbouring addresses.
    const scalar_t* base = x + b * channels * plane;
    const int64_t o00 = ty.i0 * in_w + tx.i0, o01 = ty.i0 * in_w + tx.i1;
    const int64_t o10 = ty.i1 * in_w + tx.i0, o11 = ty.i1 * in_w + tx.i1;
    ArgmaxSoftmax<acc_t> state;
    state.start(bilinear<acc_t>(base[o00], base[o01], base[o10], base[o11], ty, tx));
    for (int64_t k = 1; k < channels; ++k) {
      base += plane;
      state.update(bilinear<acc_t>(base[o00], base[o01], base[o10], base[o11], ty, tx), k,
                   scale);
    }
    labels[out] = state.index;
    max_prob[out] = state.max_prob();
    best[out] = state.best;
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> upsample_argmax_cuda(
    const at::Tensor& logits, int64_t out_h, int64_t out_w, bool align_corners, double scale) {
  TORCH_CHECK(logits.is_cuda(), "upsample_argmax_cuda: logits must be a CUDA tensor");
  TORCH_CHECK(logits.dim() == 4, "upsample_argmax: logits must be (B, K, h, w), got ",
              logits.sizes());
  TORCH_CHECK(at::isFloatingType(logits.scalar_type()),
              "upsample_argmax: logits must be floating point, got ", logits.scalar_type());
  TORCH_CHECK(logits.size(1) > 0 && logits.size(2) > 0 && logits.size(3) > 0,
              "upsample_argmax: logits must have K, h, w > 0, got ", logits.sizes());
  TORCH_CHECK(out_h > 0 && out_w > 0, "upsample_argmax: size must be positive, got (", out_h,
              ", ", out_w, ")");
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor x = logits.contiguous();
  const int64_t batch = x.size(0);
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor labels = at::empty({batch, out_h, out_w}, x.options().dtype(at::kLong));
  at::Tensor max_prob = at::empty({batch, out_h, out_w}, x.options().dtype(acc));
  at::Tensor best = at::empty({batch, out_h, out_w}, x.options().dtype(acc));
  const int64_t total = labels.numel();
  if (total == 0) return {labels, max_prob, best};
  constexpr int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 1 << 20);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "upsample_argmax_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    upsample_argmax_kernel<scalar_t, acc_t><<<blocks, threads, 0, stream>>>(
        x.data_ptr<scalar_t>(), batch, x.size(1), x.size(2), x.size(3), out_h, out_w,
        align_corners, static_cast<acc_t>(scale), labels.data_ptr<int64_t>(),
        max_prob.data_ptr<acc_t>(), best.data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {labels, max_prob, best};
}

}  // namespace densevl
