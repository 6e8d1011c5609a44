// The Python module of one compiled path (cpu/bindings.cpp: densevl.ops._cpu, cuda/bindings.cpp:
// densevl.ops._cuda): the same functions, arguments and docstrings, the path's name in each.
#pragma once

#include <torch/extension.h>

#include <string>

#include "ops.h"

namespace densevl {

// Defines upsample_argmax and coseg_max_affinity on `m` (`path`: "CPU" or "CUDA", named in the
// docstrings); both release the GIL while they run. pybind11 copies the docstrings.
inline void define_ops(pybind11::module_& m, const std::string& path,
                       UpsampleArgmaxFn* upsample_argmax, CosegMaxAffinityFn* coseg_max_affinity) {
  namespace py = pybind11;
  const std::string upsample_doc =
      "Fused bilinear upsampling + argmax + softmax max-probability (" + path +
      "); returns (labels, max_prob, best)";
  const std::string coseg_doc =
      "Per-patch maximum weighted similarity to every image (" + path + ")";
  m.def("upsample_argmax", upsample_argmax, upsample_doc.c_str(), py::arg("logits"),
        py::arg("out_h"), py::arg("out_w"), py::arg("align_corners"), py::arg("scale"),
        py::call_guard<py::gil_scoped_release>());
  m.def("coseg_max_affinity", coseg_max_affinity, coseg_doc.c_str(), py::arg("feats"),
        py::arg("weights"), py::arg("tile_bytes"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace densevl
