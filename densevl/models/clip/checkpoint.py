"""Read CLIP checkpoints (OpenAI TorchScript archives, open_clip / DDP / mmengine-wrapped state
dicts) into one plain fp32 open_clip state dict, and check a state dict against a model."""
from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ['read_clip_state_dict', 'check_state_dict', 'is_torchscript_archive']

# Entries OpenAI's TorchScript archives keep beside the weights (open_clip pops them too).
_OPENAI_EXTRA_KEYS = frozenset({'input_resolution', 'context_length', 'vocab_size'})
_WRAPPER_KEYS = ('state_dict', 'model')
_MAX_LISTED = 10


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive (as OpenAI ships CLIP) rather than a torch.save
    file: both are zip files, only TorchScript archives hold ``constants.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.rsplit('/', 1)[-1] == 'constants.pkl' for name in zf.namelist())


def _unwrap(obj: object, path: str | os.PathLike) -> Mapping:
    # {'state_dict': ...} from open_clip training or mmengine; {'model': ...} from other trainers.
    while isinstance(obj, Mapping) and not any(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f'{os.fspath(path)}: expected a state dict (name -> tensor), possibly '
                         f"under 'state_dict' or 'model', got {type(obj).__name__}")
    return obj


def _strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    if all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def read_clip_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a CLIP checkpoint into a plain fp32 open_clip state dict.

    Accepts an OpenAI TorchScript archive (read with ``torch.jit.load``, never executed), or a
    ``torch.save`` file (read with ``weights_only=True``) holding a state dict, possibly wrapped
    in ``{'state_dict': ...}`` / ``{'model': ...}`` and with DDP ``module.`` prefixes.
    Floating-point tensors become contiguous fp32 copies; OpenAI's non-weight entries
    (``input_resolution``, ``context_length``, ``vocab_size``) and derived ``attn_mask`` buffers
    are dropped.

    Args:
        path: checkpoint file.

    Returns:
        ``dict`` parameter name -> tensor, keys as in ``open_clip.CLIP.state_dict()``.

    Raises:
        ValueError: if the file holds no state dict or a non-tensor entry.
    """
    if is_torchscript_archive(path):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)  # torch.jit.load is deprecated
            raw: Mapping = torch.jit.load(os.fspath(path), map_location='cpu').state_dict()
    else:
        raw = _unwrap(torch.load(path, map_location='cpu', weights_only=True), path)
    state_dict = _strip_prefix(raw, 'module.')

    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key in _OPENAI_EXTRA_KEYS or key.rsplit('.', 1)[-1] == 'attn_mask':
            continue
        if not isinstance(value, Tensor):
            raise ValueError(f'{os.fspath(path)}: entry {key!r} is a {type(value).__name__}, '
                             'not a tensor; is this a CLIP state dict?')
        value = value.detach()
        out[key] = (value.float() if value.is_floating_point() else value).contiguous().clone()
    return out


def _listing(title: str, items: list[str]) -> str:
    shown = ''.join(f'\n    {item}' for item in items[:_MAX_LISTED])
    more = f'\n    ... and {len(items) - _MAX_LISTED} more' if len(items) > _MAX_LISTED else ''
    return f'  {title} ({len(items)}):{shown}{more}'


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Check that ``state_dict`` matches ``model.state_dict()`` key for key and shape for shape.

    Raises:
        ValueError: listing the missing, unexpected and shape-mismatched keys (at most 10 of
            each, with their counts).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(v.shape)}'
        for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = [f'state dict does not match {type(model).__name__}:']
    for title, items in (('missing keys', missing), ('unexpected keys', unexpected),
                         ('shape mismatches', mismatched)):
        if items:
            parts.append(_listing(title, items))
    raise ValueError('\n'.join(parts))
