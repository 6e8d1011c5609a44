// densevl.ops._cuda: the CUDA path of densevl's kernels.
#include <torch/extension.h>

#include <tuple>

namespace densevl {
std::tuple<at::Tensor, at::Tensor, at::Tensor> upsample_argmax_cuda(
    const at::Tensor& logits, int64_t out_h, int64_t out_w, bool align_corners, double scale);
at::Tensor coseg_max_affinity_cuda(const at::Tensor& feats, const at::Tensor& weights,
                                   int64_t tile_bytes);
}  // namespace densevl

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  m.def("upsample_argmax", &densevl::upsample_argmax_cuda,
        "Fused bilinear upsampling + argmax + softmax max-probability (CUDA); "
        "returns (labels, max_prob, best)",
        py::arg("logits"), py::arg("out_h"), py::arg("out_w"), py::arg("align_corners"),
        py::arg("scale"), py::call_guard<py::gil_scoped_release>());
  m.def("coseg_max_affinity", &densevl::coseg_max_affinity_cuda,
        "Per-patch maximum weighted similarity to every image (CUDA)", py::arg("feats"),
        py::arg("weights"), py::arg("tile_bytes"), py::call_guard<py::gil_scoped_release>());
}
