"""Read OVSeg's mask-prompt-tuned CLIP: an open_clip CLIP state dict plus the mask embedding.

facebookresearch/ov-seg keeps its mask-adapted CLIP in OpenAI's key layout (which is open_clip's
``CLIP`` layout too), with one more entry, ``visual.mask_embedding`` of shape
``(depth, grid ** 2, width)``, the learned tokens of blank patches (see :class:`MaskPromptCLIP`).
It comes in two wrappings, both read here:

* the CLIP alone, as ov-seg's ``open_clip_training`` saves it: ``{'state_dict': {'module.' +
  key: ...}, 'epoch': ..., 'optimizer': ...}`` (or a bare state dict);
* inside a whole OVSeg (detectron2) checkpoint, ``{'model': {...}}``, where the CLIP's keys carry
  the prefix ``clip_adapter.clip_model.`` beside the segmentation model's (backbone, pixel
  decoder, predictor), which are left out here.

:func:`read_ovseg_clip_checkpoint` splits such a file into the CLIP state dict, which
``create_clip(<its QuickGELU ViT name>, pretrained=<file>)`` loads once saved alone, and the mask
embedding, which :func:`build_mask_prompt_clip` puts into a :class:`MaskPromptCLIP` over that
CLIP; ``tools/convert_ovseg_clip_checkpoint.py`` writes the two files.
"""
from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..clip import image_tower
from ..clip.checkpoint import read_clip_state_dict
from .mask_prompt_vit import MaskPromptCLIP

__all__ = ['MASK_EMBEDDING_KEY', 'OVSEG_CLIP_PREFIX', 'OVSegCLIPWeights', 'TowerGeometry',
           'build_mask_prompt_clip', 'check_mask_embedding', 'read_mask_embedding',
           'read_ovseg_clip_checkpoint', 'split_ovseg_clip_state_dict']

#: Where a whole OVSeg (detectron2) checkpoint keeps its CLIP.
OVSEG_CLIP_PREFIX = 'clip_adapter.clip_model.'
#: The mask embedding's key in the CLIP state dict.
MASK_EMBEDDING_KEY = 'visual.mask_embedding'

_SOURCES = ("ov-seg's mask prompt tuning (open_clip_training, main_mask_prompt_tuning: "
            "checkpoints/epoch_N.pt) or a whole OVSeg checkpoint such as "
            'ovseg_swinbase_vitL14_ft_mpt.pth (ViT-L/14) or ovseg_R101c_vitB16_ft_mpt.pth '
            "(ViT-B/16), linked from ov-seg's GETTING_STARTED.md")


class TowerGeometry(NamedTuple):
    """What a mask embedding must fit: the ViT's width, patch grid, patch size and depth."""

    width: int
    grid_size: int
    patch_size: int
    blocks: int

    @classmethod
    def of_tower(cls, visual: nn.Module) -> TowerGeometry:
        """The geometry of an open_clip ViT (``clip.visual``, or a whole CLIP)."""
        visual = image_tower(visual)
        if not hasattr(visual, 'class_embedding'):
            raise ValueError(f'{type(visual).__name__} is not a CLIP ViT image tower; mask '
                             'prompts are defined for ViTs')
        return cls(int(visual.conv1.out_channels),
                   math.isqrt(visual.positional_embedding.shape[0] - 1),
                   int(visual.conv1.kernel_size[0]), len(visual.transformer.resblocks))

    @classmethod
    def of_state_dict(cls, state_dict: Mapping[str, Tensor], where: str) -> TowerGeometry:
        """The geometry of the ViT in an OpenAI / open_clip CLIP state dict."""
        needed = ('visual.class_embedding', 'visual.conv1.weight', 'visual.positional_embedding')
        missing = [k for k in needed if k not in state_dict]
        if missing:
            found = ', '.join(list(state_dict)[:5]) or 'no keys'
            raise ValueError(f'{where} holds no CLIP ViT image tower (no {", ".join(missing)}; '
                             f'it has {found} ...). Mask prompts are '
                             f'defined for CLIP ViTs; pass {_SOURCES}')
        conv1 = state_dict['visual.conv1.weight']
        blocks = {k.split('.')[3] for k in state_dict
                  if k.startswith('visual.transformer.resblocks.')}
        return cls(int(conv1.shape[0]),
                   math.isqrt(state_dict['visual.positional_embedding'].shape[0] - 1),
                   int(conv1.shape[-1]), len(blocks))


@dataclass
class OVSegCLIPWeights:
    """OVSeg's mask-prompt-tuned CLIP, split for densevl.

    Shapes:
        mask_embedding: ``(depth, grid ** 2, width)`` (or ``(depth, 1, width)``: one embedding
        for every position), float32.

    Attributes:
        clip: the open_clip ``CLIP`` state dict (fp32), without the mask embedding.
        mask_embedding: what :class:`MaskPromptCLIP` loads as its ``mask_embedding``.
        ignored: how many keys of a whole OVSeg checkpoint lay outside its CLIP.
    """

    clip: dict[str, Tensor]
    mask_embedding: Tensor
    ignored: int = field(default=0)

    @property
    def depth(self) -> int:
        return int(self.mask_embedding.shape[0])


def check_mask_embedding(mask_embedding: Tensor, tower: TowerGeometry, where: str) -> None:
    """Refuse a mask embedding that does not fit a ViT (depth, grid, width), with the fix.

    Args:
        mask_embedding: the embedding to check.
        tower: the ViT it is for (:meth:`TowerGeometry.of_tower` / ``of_state_dict``).
        where: how the error names the source.

    Shapes:
        mask_embedding: ``(depth, grid ** 2, width)`` or ``(depth, 1, width)`` passes, with
        ``1 <= depth <= blocks``.

    Raises:
        ValueError: naming what does not fit and what to do.
    """
    shape = tuple(mask_embedding.shape)
    g, p = tower.grid_size, tower.patch_size
    tower_text = (f'{tower.blocks} blocks, a {g}x{g} grid of patch {p} ({g * p}-px input), '
                  f'width {tower.width}')
    if len(shape) != 3:
        raise ValueError(f'{where}: {MASK_EMBEDDING_KEY} has shape {shape}; it must be '
                         '(depth, grid ** 2, width)')
    depth, positions, width = shape
    if width != tower.width:
        raise ValueError(f'{where}: {MASK_EMBEDDING_KEY} {shape} has width {width} but the ViT '
                         f'has width {tower.width} ({tower_text}): it belongs to another CLIP; '
                         'use the architecture it was trained with (ViT-L/14: 1024, ViT-B/16: '
                         '768)')
    if positions not in (1, g * g):
        grid = math.isqrt(positions)
        trained = (f'a {grid}x{grid} grid, {grid * p}-px crops: build the tower at '
                   f'image_size={grid * p}' if grid * grid == positions
                   else 'not a square grid')
        raise ValueError(f'{where}: {MASK_EMBEDDING_KEY} {shape} has {positions} patch '
                         f'positions ({trained}) but the ViT has {g * g} ({tower_text}). Mask '
                         'embeddings are not resized; use the input size they were trained at')
    if not 1 <= depth <= tower.blocks:
        fix = ('it has no mask prompts (mask prompt depth 0, MASK_PROMPT_FWD False in OVSeg): '
               'use the CLIP without them (tools/convert_clip_checkpoint.py converts a CLIP '
               'file)' if depth == 0 else 'use the architecture it was trained with')
        raise ValueError(f'{where}: {MASK_EMBEDDING_KEY} {shape} has depth {depth} but the ViT '
                         f'has {tower.blocks} blocks; {fix}')


def split_ovseg_clip_state_dict(state_dict: Mapping[str, Tensor],
                                where: str = 'the state dict') -> OVSegCLIPWeights:
    """Split an OVSeg CLIP state dict into the open_clip CLIP and the mask embedding.

    Args:
        state_dict: a CLIP state dict with ``visual.mask_embedding`` (``module.`` prefixes and
            wrappers removed, as :func:`read_clip_state_dict` returns), or a whole OVSeg model's,
            whose CLIP keys start with ``clip_adapter.clip_model.``.
        where: how errors name the source.

    Raises:
        ValueError: no CLIP ViT, no mask embedding, or one that does not fit the ViT.
    """
    clip = {k[len(OVSEG_CLIP_PREFIX):]: v for k, v in state_dict.items()
            if k.startswith(OVSEG_CLIP_PREFIX)}
    ignored = len(state_dict) - len(clip) if clip else 0
    if not clip:
        clip = dict(state_dict)
    tower = TowerGeometry.of_state_dict(clip, where)
    mask_embedding = clip.pop(MASK_EMBEDDING_KEY, None)
    if mask_embedding is None:
        raise ValueError(f'{where} has no {MASK_EMBEDDING_KEY}: it is a CLIP without mask prompt '
                         'tuning. Convert the mask-prompt-tuned CLIP, from '
                         f'{_SOURCES}; a plain CLIP file converts with '
                         'tools/convert_clip_checkpoint.py')
    check_mask_embedding(mask_embedding, tower, where)
    clip = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in clip.items()}
    return OVSegCLIPWeights(clip, mask_embedding.float().contiguous(), ignored)


def read_ovseg_clip_checkpoint(path: str | os.PathLike) -> OVSegCLIPWeights:
    """Read OVSeg's mask-prompt-tuned CLIP from a file (see the module for the layouts).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no state dict, no CLIP ViT or no fitting mask embedding.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'OVSeg CLIP checkpoint {path!r} does not exist; pass the '
                                f'mask-prompt-tuned CLIP: {_SOURCES}')
    try:
        state_dict = read_clip_state_dict(path)
    except pickle.UnpicklingError as err:
        raise ValueError(f'{path} holds Python objects besides tensors, which densevl does not '
                         'unpickle. If you trust the file, keep only its weights: '
                         "torch.save(torch.load(src, weights_only=False)['model'], dst) (or "
                         "['state_dict']) and convert dst") from err
    return split_ovseg_clip_state_dict(state_dict, path)


def read_mask_embedding(path: str | os.PathLike) -> Tensor:
    """The mask embedding saved by ``tools/convert_ovseg_clip_checkpoint.py``.

    The file holds ``{'mask_embedding': tensor}`` (a :class:`MaskPromptCLIP` state dict is read
    too).

    Shapes:
        returns ``(depth, grid ** 2, width)`` float32.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'mask embedding file {path!r} does not exist; write it with '
                                'tools/convert_ovseg_clip_checkpoint.py SRC CLIP_DST '
                                '--model-name NAME (it goes beside CLIP_DST)')
    data = torch.load(path, map_location='cpu', weights_only=True)
    embedding = data.get('mask_embedding') if isinstance(data, Mapping) else None
    if not isinstance(embedding, Tensor):
        raise ValueError(f"{path} holds no 'mask_embedding' tensor; for an OVSeg checkpoint, use "
                         'read_ovseg_clip_checkpoint or tools/convert_ovseg_clip_checkpoint.py')
    return embedding.float().contiguous()


def build_mask_prompt_clip(clip: nn.Module, mask_embedding: Tensor) -> MaskPromptCLIP:
    """A :class:`MaskPromptCLIP` over ``clip``'s ViT with OVSeg's mask embedding, strictly loaded.

    Args:
        clip: an open_clip CLIP (e.g. ``create_clip(name, pretrained=converted).model``) or its
            ``visual`` tower; used as it is, not copied.
        mask_embedding: from :func:`read_ovseg_clip_checkpoint` or :func:`read_mask_embedding`.

    Returns:
        The wrapper with ``depth = mask_embedding.shape[0]``, in the tower's train/eval mode.

    Shapes:
        mask_embedding: ``(depth, grid ** 2, width)`` or ``(depth, 1, width)``.
    """
    visual = image_tower(clip)
    check_mask_embedding(mask_embedding, TowerGeometry.of_tower(visual), 'the mask embedding')
    model = MaskPromptCLIP(visual, depth=int(mask_embedding.shape[0]))
    tower = {f'visual.{k}': v for k, v in visual.state_dict().items()}
    model.load_state_dict({**tower, 'mask_embedding': mask_embedding}, strict=True)
    return model.train(visual.training)
