// densevl.ops._cpu: the C++ CPU path of densevl's kernels.
#include "bindings.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  densevl::define_ops(m, "CPU", &densevl::upsample_argmax_cpu, &densevl::coseg_max_affinity_cpu);
}
