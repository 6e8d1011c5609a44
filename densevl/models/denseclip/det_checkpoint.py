"""DenseCLIP's released detection checkpoints in this library's key layout.

The published RetinaNet / Mask R-CNN ``.pth`` files (mmdet 2.x, DenseCLIP reference) hold
``backbone.*`` (the CLIP ModifiedResNet with its attention pool), ``text_encoder.*`` (the CLIP
text tower, positional table truncated to 13 rows), ``context_decoder.*``, ``contexts``,
``gamma`` and the mmdet parts ``neck.*``, ``bbox_head.*``, ``rpn_head.*``, ``roi_head.*``. In
:class:`~densevl.models.detectors.DenseCLIPRetinaNet` / ``DenseCLIPMaskRCNN`` the DenseCLIP parts
live in ``backbone`` (a :class:`DenseCLIPCore`): the image tower under
``backbone.image_encoder.visual``, the text tower and its contexts under ``backbone.text_encoder``.
The sub-module names below those prefixes are the reference's own, and the mmdet heads' key
names did not change from mmdet 2.x to 3.x, so the mapping is a renaming of prefixes.

Plain PyTorch: reading, mapping and checking need no mm package.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

# (published prefix, densevl prefix), most specific first
PREFIXES = (
    ('backbone.', 'backbone.image_encoder.visual.'),
    ('text_encoder.', 'backbone.text_encoder.'),
    ('context_decoder.', 'backbone.context_decoder.'),
)
RENAMED = {'contexts': 'backbone.text_encoder.contexts', 'gamma': 'backbone.gamma'}
HEAD_PREFIXES = ('neck.', 'bbox_head.', 'rpn_head.', 'roi_head.')


def _rename(items: Iterable[tuple[str, Tensor]], renamed: Mapping[str, str],
            prefixes: Iterable[tuple[str, str]]) -> tuple[dict[str, Tensor], list[str]]:
    """``(key, value)`` pairs with their keys renamed, and the keys that have no new name.

    A key is renamed by ``renamed``, else kept if it is an mmdet head's, else by its first
    matching ``(old prefix, new prefix)``.
    """
    out, unknown = {}, []
    for key, value in items:
        if key in renamed:
            out[renamed[key]] = value
        elif key.startswith(HEAD_PREFIXES):
            out[key] = value
        else:
            for old, new in prefixes:
                if key.startswith(old):
                    out[new + key[len(old):]] = value
                    break
            else:
                unknown.append(key)
    return out, unknown


def convert_det_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A published DenseCLIP detection state dict with densevl's keys.

    A ``module.`` prefix (a checkpoint saved from DDP) is dropped.

    Raises:
        ValueError: keys the published layout does not have (listed), or no DenseCLIP backbone.
    """
    converted, unknown = _rename(((k.removeprefix('module.'), v) for k, v in state_dict.items()),
                                 RENAMED, PREFIXES)
    if unknown:
        raise ValueError(f'{len(unknown)} keys are not in the DenseCLIP detection layout '
                         f'(backbone.*, text_encoder.*, context_decoder.*, contexts, gamma, '
                         f'neck.*, bbox_head.*, rpn_head.*, roi_head.*): '
                         f'{", ".join(sorted(unknown)[:10])}{" ..." if len(unknown) > 10 else ""}')
    if 'backbone.text_encoder.contexts' not in converted:
        raise ValueError('this state dict has no DenseCLIP learned contexts (key "contexts"); it '
                         'is not a DenseCLIP detection checkpoint')
    return converted


def to_published_layout(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`convert_det_state_dict`: densevl keys back to the published ones.

    Raises:
        ValueError: keys outside the DenseCLIP detection layout (a ViT backbone, say).
    """
    published, unknown = _rename(state_dict.items(), {v: k for k, v in RENAMED.items()},
                                 [(new, old) for old, new in PREFIXES])
    if unknown:
        raise ValueError(f'no published DenseCLIP key for: {", ".join(sorted(unknown)[:10])}')
    return published


@dataclass
class LoadReport:
    """How a state dict fits a model: keys it lacks, keys it has extra, and shape mismatches."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def format(self, limit: int = 20) -> str:
        """A human-readable listing; ``'all keys match'`` when :attr:`ok`."""
        if self.ok:
            return 'all keys match'
        lines = []
        for title, items in (('missing from the checkpoint', self.missing),
                             ('unexpected in the checkpoint', self.unexpected)):
            if items:
                lines.append(f'{len(items)} {title}:')
                lines += [f'  {k}' for k in items[:limit]]
                if len(items) > limit:
                    lines.append(f'  ... and {len(items) - limit} more')
        if self.mismatched:
            lines.append(f'{len(self.mismatched)} with another shape (checkpoint vs model):')
            lines += [f'  {k}: {tuple(a)} vs {tuple(b)}' for k, a, b in self.mismatched[:limit]]
            if len(self.mismatched) > limit:
                lines.append(f'  ... and {len(self.mismatched) - limit} more')
        return '\n'.join(lines)


def compare_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> LoadReport:
    """Compare ``state_dict`` with what ``model.load_state_dict(strict=True)`` needs."""
    expected = model.state_dict()
    report = LoadReport(missing=sorted(set(expected) - set(state_dict)),
                        unexpected=sorted(set(state_dict) - set(expected)))
    for key in sorted(set(expected) & set(state_dict)):
        if tuple(expected[key].shape) != tuple(state_dict[key].shape):
            report.mismatched.append((key, tuple(state_dict[key].shape),
                                      tuple(expected[key].shape)))
    return report


def read_det_checkpoint(path: str | Path, *, trust_pickle: bool = False
                        ) -> tuple[dict[str, Tensor], dict]:
    """The state dict and meta of an mmcv/mmengine checkpoint (or a bare state dict).

    Loaded with ``weights_only=True`` unless ``trust_pickle``: mmcv checkpoints may pickle
    objects that a weights-only load refuses, and unpickling runs code, so only allow it for a
    file from a source you trust.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file needs ``trust_pickle``, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {str(path)!r} does not exist')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=not trust_pickle)
    except pickle.UnpicklingError as err:
        raise ValueError(f'{path} holds pickled objects that a weights-only load refuses '
                         f'({str(err).splitlines()[0]}). If you trust the file, load it with '
                         'trust_pickle=True (CLI: --trust-pickle).') from err
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise ValueError(f'{path} has no state dict of tensors (keys: {list(checkpoint)[:5]})')
    meta = checkpoint.get('meta', {}) if 'state_dict' in checkpoint else {}
    return dict(state_dict), dict(meta or {})


def checkpoint_classes(meta: Mapping) -> list[str] | None:
    """Class names recorded in a checkpoint's meta (mmengine ``dataset_meta`` or mmcv
    ``CLASSES``)."""
    classes = (meta.get('dataset_meta') or {}).get('classes') or meta.get('CLASSES')
    return list(classes) if classes else None
