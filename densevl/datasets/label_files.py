"""Label maps written in a dataset's own on-disk convention, so that its dataset class and loader
read them back as they were (ReCo+'s pseudo-labels beside the real annotations)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .kitti_step import KittiStepDataset

IGNORE = 255


def encode_labels(dataset, labels: np.ndarray) -> np.ndarray:
    """The values to store for ``labels`` in ``dataset``'s label files.

    Inverts what loading does: ``reduce_zero_label`` (stored ``label + 1``, 0 for ignored), a
    fixed raw-id ``label_map`` (each label stored as the smallest raw id that maps to it), and
    KITTI-STEP's panoptic maps (red = label, no instances).

    Shapes:
        labels: ``(H, W)`` integers in ``[0, K)`` or 255 (ignored); returns ``(H, W)`` uint8, or
        ``(H, W, 3)`` for KITTI-STEP.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f'labels must be (H, W), got shape {labels.shape}')
    out = labels.astype(np.int64)
    if getattr(dataset, 'reduce_zero_label', False):
        out = np.where(out == IGNORE, 0, out + 1)
    label_map = dataset.metainfo.get('label_map') or {}
    if label_map:
        stored = {}
        for raw, label in sorted(label_map.items(), reverse=True):
            stored[label] = raw                # the smallest raw id wins
        stored.setdefault(IGNORE, IGNORE)
        lookup = np.arange(256)
        for label, raw in stored.items():
            lookup[label] = raw
        out = lookup[out]
    if out.min() < 0 or out.max() > 255:
        raise ValueError(f'labels {out.min()}..{out.max()} do not fit an 8-bit label file')
    out = out.astype(np.uint8)
    if isinstance(dataset, KittiStepDataset):
        out = np.stack([out, np.zeros_like(out), np.zeros_like(out)], axis=-1)
    return out


def write_label_file(path: str | os.PathLike, values: np.ndarray) -> None:
    """Write a PNG atomically (a temporary file renamed into place: never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    Image.fromarray(values).save(tmp, format='PNG')
    os.replace(tmp, path)
