// CUDA path of upsample_argmax: one thread per output pixel, channels looped in registers.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <tuple>

#include "ops.h"
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
    const scalar_t* top = base + ty.i0 * in_w;
    const scalar_t* bottom = base + ty.i1 * in_w;
    upsample_argmax_pixel<acc_t>(top + tx.i0, top + tx.i1, bottom + tx.i0, bottom + tx.i1, plane,
                                 channels, ty, tx, scale, out, labels, max_prob, best);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> upsample_argmax_cuda(
    const at::Tensor& logits, int64_t out_h, int64_t out_w, bool align_corners, double scale) {
  TORCH_CHECK(logits.is_cuda(), "upsample_argmax_cuda: logits must be a CUDA tensor");
  check_upsample_argmax_args(logits, out_h, out_w);
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor x = logits.contiguous();
  const int64_t batch = x.size(0);
  const auto acc = accumulate_type(x);
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
