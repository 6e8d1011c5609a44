"""Region–text pairs for mask-adapting CLIP: saved masked crops and their titles (OVSeg).

Reads the tab-separated file of ``tools/mine_region_nouns.py`` (columns ``filepath`` and
``title``, as ov-seg's CLIP training reads its ``coco_proposal_1cap.csv``): each row is a
lossless crop whose pixels outside the region have the fill colour
(:data:`~densevl.models.ovseg.region_nouns.FILL_RGB`), and the noun it was paired with.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import (
    CenterCrop,
    Compose,
    InterpolationMode,
    RandomResizedCrop,
    Resize,
)

from ..models.ovseg.region_nouns import region_mask_of
from ..registry import SEG_DATASETS

__all__ = ['RegionTextDataset', 'read_region_text_table']

COLUMNS = ('filepath', 'title')


def read_region_text_table(path: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(crop file, title)`` rows of a region–text file; relative crop paths are taken from
    the file's folder.

    Raises:
        FileNotFoundError: no such file, or a listed crop is missing.
        ValueError: the columns are not ``filepath`` and ``title``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'region-text file {path} does not exist; write it with '
                                'tools/mine_region_nouns.py CONFIG CHECKPOINT --out DIR')
    with path.open(newline='') as f:
        reader = csv.DictReader(f, delimiter='\t')
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f'{path}: expected the tab-separated columns {COLUMNS}, found '
                             f'{reader.fieldnames}')
        rows = [(path.parent / row['filepath'], row['title']) for row in reader]
    missing = [str(p) for p, _ in rows if not p.is_file()]
    if missing:
        raise FileNotFoundError(f'{path}: {len(missing)} listed crops are missing, e.g. '
                                f'{missing[0]}; mine the pairs again')
    return rows


@SEG_DATASETS.register_module()
class RegionTextDataset(Dataset):
    """Masked crops with their region masks and titles, for
    :class:`~densevl.models.ovseg.region_text_tuning.RegionTextTuner`.

    A crop is resized to the CLIP input as the reference's CLIP training does: in training a
    random resized crop of 90-100 % of its area (bicubic), at test the short side resized
    (bicubic) and the centre cut; the region mask is read after resizing (the pixels still
    exactly the fill colour are outside), then the crop is normalised with CLIP's mean and std.

    Args:
        ann_file: the region–text file.
        size: the CLIP input size.
        train: random resized crops (True) or resize and centre crop.
        scale: the random crops' area range.

    Items: ``dict(inputs=(3, S, S) float32, region_masks=(1, S, S) float32, titles=str)``.
    """

    def __init__(self, ann_file: str, size: int, train: bool = True,
                 scale: tuple[float, float] = (0.9, 1.0)) -> None:
        self.rows = read_region_text_table(ann_file)
        bicubic = InterpolationMode.BICUBIC
        self.resize = RandomResizedCrop(size, scale=scale, interpolation=bicubic) if train \
            else Compose([Resize(size, interpolation=bicubic), CenterCrop(size)])
        self.mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        path, title = self.rows[index]
        pixels = np.asarray(self.resize(Image.open(path).convert('RGB')))
        mask = torch.from_numpy(region_mask_of(pixels)).float()[None]
        crop = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0
        return dict(inputs=(crop - self.mean) / self.std, region_masks=mask, titles=title)
