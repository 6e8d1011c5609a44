// densevl.ops._cuda: the CUDA path of densevl's kernels.
#include "bindings.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  densevl::define_ops(m, "CUDA", &densevl::upsample_argmax_cuda,
                      &densevl::coseg_max_affinity_cuda);
}
