"""Metadata lives in setup.cfg; this file adds the compiled kernels of :mod:`densevl.ops`.

The kernels are built ahead of time with ``torch.utils.cpp_extension`` when torch is importable
at build time (``pip install --no-build-isolation ...``); without torch, or with
``DENSEVL_WITH_OPS=0``, densevl installs as pure Python and its ops use their PyTorch reference.

* ``densevl.ops._cpu`` (C++, OpenMP): whenever a C++ compiler exists.
* ``densevl.ops._cuda`` (CUDA): when nvcc is found, or forced with ``DENSEVL_WITH_CUDA=1``
  (``DENSEVL_WITH_CUDA=0`` skips it). Without a GPU to detect, ``TORCH_CUDA_ARCH_LIST``
  defaults to ``8.0;9.0`` (A100, H100); set it to build for other GPUs.

``CUDA_HOME`` is found from nvcc itself when unset (a wrapper script in ``/usr/local/bin`` would
otherwise make torch look for the CUDA headers in ``/usr/local``). ``MAX_JOBS`` bounds the
parallel compile jobs. Objects are kept in ``build/`` so that a reinstall recompiles only what
changed (ninja tracks sources, headers and flags).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join('densevl', 'ops', 'csrc')  # sources: relative to this file, as setuptools wants
INCLUDE = os.path.join(HERE, CSRC)  # ninja runs elsewhere
DEFAULT_CUDA_ARCHS = '8.0;9.0'


def _log(message: str) -> None:
    print(f'[densevl setup] {message}', file=sys.stderr)


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, '').strip().lower()
    if value in ('1', 'true', 'yes', 'on'):
        return True
    if value in ('0', 'false', 'no', 'off'):
        return False
    return None


def _cuda_home_from_nvcc() -> str | None:
    """The toolkit root nvcc itself reports (``TOP`` of ``nvcc --dryrun``), or None."""
    nvcc = shutil.which('nvcc')
    if nvcc is None:
        return None
    try:
        lines = subprocess.run([nvcc, '--dryrun', '-x', 'cu', '-c', os.devnull, '-o', os.devnull],
                               capture_output=True, text=True, timeout=60).stderr.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    for line in lines:
        if line.startswith('#$ TOP='):
            return os.path.realpath(line.split('=', 1)[1].strip())
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))


def _find_cuda_home() -> str | None:
    for name in ('CUDA_HOME', 'CUDA_PATH'):
        if os.environ.get(name):
            return os.environ[name]
    home = _cuda_home_from_nvcc()
    if home and os.path.isfile(os.path.join(home, 'include', 'cuda_runtime.h')):
        os.environ['CUDA_HOME'] = home  # read by torch.utils.cpp_extension at import
        return home
    return None


def _sources(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    path = os.path.join(CSRC, folder)
    return sorted(os.path.join(path, name) for name in os.listdir(path) if name.endswith(suffixes))


def extensions() -> tuple[list, dict]:
    """``(ext_modules, cmdclass)`` for the kernels that can be built here."""
    if _env_flag('DENSEVL_WITH_OPS') is False:
        _log('DENSEVL_WITH_OPS=0: no compiled ops')
        return [], {}
    with_cuda = _env_flag('DENSEVL_WITH_CUDA')
    cuda_home = _find_cuda_home() if with_cuda is not False else None
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        _log('torch is not importable at build time: no compiled ops '
             '(install with `pip install --no-build-isolation`)')
        return [], {}
    if shutil.which(os.environ.get('CXX', 'c++')) is None:
        _log('no C++ compiler: no compiled ops')
        return [], {}
    # The same arithmetic on both paths: no fused multiply-add contraction anywhere.
    cxx_flags = ['-O3', '-g0', '-ffp-contract=off']
    modules = [CppExtension('densevl.ops._cpu', _sources('cpu', ('.cpp',)), include_dirs=[INCLUDE],
                            extra_compile_args={'cxx': cxx_flags + ['-fopenmp']},
                            extra_link_args=['-fopenmp'])]
    if with_cuda is None:
        with_cuda = cuda_home is not None
    if with_cuda:
        if cuda_home is None:
            raise RuntimeError('DENSEVL_WITH_CUDA=1 but no CUDA toolkit was found: put nvcc on '
                               'PATH or set CUDA_HOME')
        if not os.environ.get('TORCH_CUDA_ARCH_LIST') and not torch.cuda.is_available():
            os.environ['TORCH_CUDA_ARCH_LIST'] = DEFAULT_CUDA_ARCHS
        _log(f'CUDA ops with {cuda_home}, TORCH_CUDA_ARCH_LIST='
             f'{os.environ.get("TORCH_CUDA_ARCH_LIST", "(this GPU)")}')
        modules.append(CUDAExtension(
            'densevl.ops._cuda', _sources('cuda', ('.cpp', '.cu')), include_dirs=[INCLUDE],
            extra_compile_args={'cxx': cxx_flags, 'nvcc': ['-O3', '--fmad=false']}))
    else:
        _log('no nvcc: C++ ops only (set DENSEVL_WITH_CUDA=1 and CUDA_HOME to add CUDA)')

    class BuildOps(BuildExtension):
        """An editable install compiles in a fresh temporary folder each time; keep the objects."""

        def finalize_options(self) -> None:
            super().finalize_options()
            self.build_temp = os.path.join(HERE, 'build', f'ops-{sys.implementation.cache_tag}')

    return modules, {'build_ext': BuildOps}


ext_modules, cmdclass = extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
