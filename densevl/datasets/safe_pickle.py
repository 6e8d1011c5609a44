"""Loading pickles of plain data without running code: the RefCOCO ``refs(*).p`` files.

A pickle can name any importable callable and call it while loading (``os.system`` included).
:func:`load_plain_pickle` reads with an unpickler that resolves no name at all, so only what
pickle builds by itself gets through — dicts, lists, tuples, sets, strings, bytes, numbers,
booleans and ``None`` — and anything else is refused, before it is called, with a clear error.
"""
from __future__ import annotations

import io
import os
import pickle

__all__ = ['UnsafePickleError', 'load_plain_pickle']


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something other than plain containers and numbers."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise UnsafePickleError(
            f'the pickle asks for {module}.{name}; only plain containers (dict, list, tuple; '
            'set from protocol 4), strings, bytes and numbers are accepted, so it was refused '
            'without running anything (a RefCOCO refs file holds nothing else: check where it '
            'came from)')

    def persistent_load(self, pid):
        raise UnsafePickleError('the pickle uses persistent ids; only plain data is accepted')


def load_plain_pickle(path: str | os.PathLike, *, encoding: str = 'utf-8'):
    """Load a pickle that holds only plain data.

    Args:
        path: the file.
        encoding: how Python 2 ``str`` objects are decoded (the original RefCOCO files were
            written by Python 2).

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the pickle names a class or function (e.g. ``os.system``).
        ValueError: the file is not a readable pickle.
    """
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return _PlainUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f'{os.fspath(path)}: {err}') from None
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError, ValueError, TypeError,
            IndexError, KeyError, AttributeError) as err:
        raise ValueError(f'{os.fspath(path)} is not a readable pickle of plain data: '
                         f'{type(err).__name__}: {err}') from None
