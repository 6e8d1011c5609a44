"""Let mmengine checkpoints load under ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine (0.10.x) calls
``torch.load`` without the argument, and the checkpoints it writes hold a few non-tensor objects
beside the weights, so ``Runner(resume=True)`` and ``load_from`` fail with
``UnpicklingError: Weights only load failed``. A checkpoint written by an mmengine ``Runner``
(``meta`` and ``message_hub``) needs exactly these globals:

* numpy arrays and scalars (logged values, ``best_score``, ...): ``numpy.ndarray``,
  ``numpy.dtype``, ``numpy._core.multiarray._reconstruct`` and ``numpy._core.multiarray.scalar``
  (the set torch documents for numpy), plus the numeric ``numpy.dtypes.*DType`` classes, which
  the unpickler must be allowed to ``BUILD``;
* ``mmengine.logging.HistoryBuffer`` (the message hub's log buffers);
* ``builtins.getattr``: a ``HistoryBuffer`` pickles its statistics methods as
  ``getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr`` would let a file reach any
  attribute of any allowed object, so the name is bound to :func:`_history_buffer_method`, which
  resolves only ``HistoryBuffer.{min,max,current,mean}`` and refuses everything else.

Weights-only loading stays on: a file holding any other object (a custom class, ``os.system``
...) is still refused.
"""
from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ['allow_mmengine_checkpoints']

_HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'current', 'mean'})
_NUMPY_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                       np.uint32, np.uint64, np.float16, np.float32, np.float64)
_allowed = False


def _history_buffer_method(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during weights-only unpickling.

    Raises:
        pickle.UnpicklingError: unless ``obj`` is ``HistoryBuffer`` and ``name`` one of its
            default statistics methods.
    """
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights-only load refused getattr({obj!r}, {name!r}): only '
        f'HistoryBuffer.{{{",".join(sorted(_HISTORY_BUFFER_METHODS))}}} is allowed '
        '(densevl.engine.checkpoint_compat)')


def _numpy_globals() -> list[Any]:
    # numpy 2 moved ``numpy.core`` to ``numpy._core``; checkpoints written under numpy 1 name the
    # old path, so each function is registered under both names.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 1.26
        from numpy.core import multiarray
    entries: list[Any] = [np.ndarray, np.dtype]
    for fn in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((fn, f'{module}.{fn.__name__}'))
    entries.extend(type(np.dtype(t)) for t in _NUMPY_SCALAR_TYPES)
    return entries


def allow_mmengine_checkpoints() -> None:
    """Allow-list the few safe globals mmengine checkpoints need; idempotent.

    A no-op on torch < 2.6, whose ``torch.load`` is not weights-only by default, and without
    mmengine, whose checkpoints could not be unpickled then anyway.
    """
    global _allowed
    if _allowed or torch.__version__ < '2.6.0a0':
        return
    try:
        from mmengine.logging import HistoryBuffer
    except ImportError:
        return

    torch.serialization.add_safe_globals(
        [*_numpy_globals(), HistoryBuffer, (_history_buffer_method, 'builtins.getattr')])
    _allowed = True
