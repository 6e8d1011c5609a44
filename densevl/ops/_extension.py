"""Loading the compiled paths of the ops, and the error raised when one is asked for but absent."""
from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS = ('auto', 'reference', 'cpp', 'cuda')
_MODULES = {'cpp': 'densevl.ops._cpu', 'cuda': 'densevl.ops._cuda'}
_loaded: dict[str, ModuleType | None] = {}
_errors: dict[str, str] = {}


class OpsNotCompiledError(RuntimeError):
    """A compiled path of :mod:`densevl.ops` was asked for, but this install does not have it."""


def load_extension(kind: str) -> ModuleType | None:
    """The compiled module of ``kind`` (``'cpp'`` or ``'cuda'``), or None when it is not built.

    The import is attempted once and its failure remembered, so asking again costs nothing.
    """
    if kind not in _loaded:
        try:
            _loaded[kind] = importlib.import_module(_MODULES[kind])
        except ImportError as error:  # not built, or built against another torch
            _loaded[kind] = None
            _errors[kind] = f'{type(error).__name__}: {error}'
    return _loaded[kind]


def require_extension(kind: str) -> ModuleType:
    """The compiled module of ``kind``, or :class:`OpsNotCompiledError` saying how to build it."""
    module = load_extension(kind)
    if module is None:
        how = ('with nvcc on PATH (or CUDA_HOME set) and DENSEVL_WITH_CUDA=1' if kind == 'cuda'
               else 'with a C++ compiler')
        raise OpsNotCompiledError(
            f'densevl.ops was installed without its {"CUDA" if kind == "cuda" else "C++"} path '
            f'({_MODULES[kind]}: {_errors.get(kind, "not importable")}). Rebuild it {how}: '
            '`pip install --no-deps --no-build-isolation -e .` in an environment where torch is '
            "importable; or call the op with backend='reference' (pure PyTorch, same result).")
    return module


def available_backends() -> list[str]:
    """``'reference'``, plus the compiled paths this install has (``'cuda'`` also needs a GPU)."""
    return ['reference'] + [kind for kind in ('cpp', 'cuda') if load_extension(kind) is not None]


def select_backend(backend: str, is_cuda: bool) -> str:
    """The backend to run for a tensor on CUDA (``is_cuda``) or on the CPU.

    ``'auto'``: the CUDA kernel for CUDA tensors, the C++ path for CPU tensors, each when built,
    else the PyTorch reference. A compiled backend asked for by name must exist and match the
    tensor's device.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'auto':
        kind = 'cuda' if is_cuda else 'cpp'
        return kind if load_extension(kind) is not None else 'reference'
    if backend == 'cuda' and not is_cuda:
        raise ValueError("backend='cuda' needs CUDA tensors; these are on the CPU")
    if backend == 'cpp' and is_cuda:
        raise ValueError("backend='cpp' needs CPU tensors; these are on CUDA")
    if backend != 'reference':
        require_extension(backend)
    return backend
