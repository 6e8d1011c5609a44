"""Kernels for dense open-vocabulary inference that would otherwise run out of memory.

Each op has a C++ CPU path and a CUDA path sharing one per-element arithmetic
(``csrc/*.h``), and a pure-PyTorch reference with the same arguments. ``backend='auto'`` picks the
CUDA kernel for CUDA tensors, the C++ path for CPU tensors (each when compiled), else the
reference; asking for a compiled path that is not built raises :class:`OpsNotCompiledError`.
"""
from ._extension import OpsNotCompiledError, available_backends
from .coseg_affinity import coseg_max_affinity, coseg_max_affinity_reference
from .upsample_argmax import merge_upsample_argmax, upsample_argmax, upsample_argmax_reference

__all__ = ['OpsNotCompiledError', 'available_backends', 'coseg_max_affinity',
           'coseg_max_affinity_reference', 'merge_upsample_argmax', 'upsample_argmax',
           'upsample_argmax_reference']
