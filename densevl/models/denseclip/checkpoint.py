"""DenseCLIP's released segmentation checkpoints and CLIP weights, in this library's module names.

Plain PyTorch: the key mapping, the positional-grid resizes DenseCLIP applies when it loads CLIP
weights, and a comparison of a state dict with a model's, so that a converter can say exactly
which keys do not fit.

Key layout of a released DenseCLIP segmentor (``the DenseCLIP reference code``, its ``DenseCLIP``
module) and where each part lives in :class:`~densevl.models.segmentors.DenseCLIPSegmentor`:

=====================================  ===================================================
released                               densevl
=====================================  ===================================================
``backbone.*`` (ModifiedResNet)        ``core.image_encoder.visual.*``
``backbone.fpn{1-4}.*`` (ViT)          ``core.image_encoder.fpn{1-4}.*``
``backbone.*`` (ViT, other)            ``core.image_encoder.encoder.visual.*``
``text_encoder.*``                     ``core.text_encoder.*`` (positional table: first rows)
``contexts``                           ``core.text_encoder.contexts``
``gamma``, ``context_decoder.*``       ``core.gamma``, ``core.context_decoder.*``
``neck.*``, ``decode_head.*``,         unchanged
``auxiliary_head.*``
``identity_head.*``                    none (DenseCLIP's identity head has no parameters)
=====================================  ===================================================

A checkpoint without ``contexts`` is a CLIP-FPN baseline (the same backbone under ``backbone.``,
no text side); its backbone maps to ``backbone.visual.*`` / ``backbone.encoder.visual.*`` /
``backbone.fpn*``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..clip.pos_embed import resize_attnpool_pos_embed

__all__ = ['StateDictReport', 'compare_state_dicts', 'convert_denseclip_state_dict',
           'copy_clip_weights', 'fit_state_dict', 'resize_position_grid', 'set_position_grid']

_MAX_LISTED = 12


def resize_position_grid(positions: Tensor, side: int) -> Tensor:
    """A positional table (leading class/mean token, square grid) resized bilinearly to
    ``side x side``, as DenseCLIP resizes CLIP's grids when it loads them (7 -> 16 for a ResNet at
    512 px, 14 -> 40 for ViT-B/16 at 640 px).

    Shapes:
        positions: ``(1 + S * S, D)``; returns ``(1 + side * side, D)``.
    """
    grid = math.isqrt(positions.shape[0] - 1)
    if grid * grid != positions.shape[0] - 1:
        raise ValueError(f'positional table of {positions.shape[0]} rows is not one token plus a '
                         'square grid')
    return resize_attnpool_pos_embed(positions, (side, side))


def set_position_grid(image_encoder: nn.Module, side: int) -> None:
    """Resize an image encoder's stored positional grid in place to ``side x side``.

    DenseCLIP builds its backbones at ``input_resolution`` (grid ``input_resolution / stride``)
    and resizes CLIP's grid into them once, when the weights are loaded; every forward then
    resizes (segmentation) or crops (detection) that stored grid to the feature map. Doing the
    same here keeps both steps, so the positions match DenseCLIP's and its checkpoints load shape
    for shape.

    Args:
        image_encoder: a :class:`~densevl.models.clip.CLIPDenseResNet` or
            :class:`~densevl.models.denseclip.CLIPViTFeaturePyramid` (its
            ``position_grid_owner`` holds the grid).
    """
    owner = image_encoder.position_grid_owner
    current = owner.positional_embedding
    if math.isqrt(current.shape[0] - 1) == side:
        return
    with torch.no_grad():
        resized = resize_position_grid(current.detach(), side)
    owner.positional_embedding = nn.Parameter(resized, requires_grad=current.requires_grad)


@torch.no_grad()
def copy_clip_weights(clip_model: nn.Module, image_encoder: nn.Module,
                      text_encoder: nn.Module | None = None) -> None:
    """Load a (pretrained) open_clip ``CLIP`` into DenseCLIP's image and text encoders.

    The one loader of CLIP weights of DenseCLIP's segmentors and detectors. The image tower's
    positional grid is resized bilinearly to the grid the encoder was built with (parts the
    tower lacks, such as the attention pool the CLIP-FPN baseline removes, are skipped; every
    part it has must be in the source). The text tower is copied part by part; its positional
    table's first rows (all of them, or DenseCLIP detection's 13) come from CLIP's.

    Args:
        clip_model: the source ``CLIP``, same architecture.
        image_encoder: a :class:`~densevl.models.clip.CLIPDenseResNet` or
            :class:`~densevl.models.denseclip.CLIPViTFeaturePyramid`.
        text_encoder: a :class:`ContextPromptTextEncoder` (its ``contexts`` are kept), or None.
    """
    visual = image_encoder.visual
    wanted = visual.state_dict()
    state = {k: v for k, v in clip_model.visual.state_dict().items() if k in wanted}
    for key in ('attnpool.positional_embedding', 'positional_embedding'):
        if key in state:
            state[key] = resize_position_grid(state[key], math.isqrt(wanted[key].shape[0] - 1))
    visual.load_state_dict(state, strict=True)
    if text_encoder is None:
        return
    for part in ('token_embedding', 'transformer', 'ln_final', 'text_projection'):
        source, target = getattr(clip_model, part), getattr(text_encoder, part)
        if isinstance(target, nn.Module):
            target.load_state_dict(source.state_dict(), strict=True)
        else:
            target.copy_(source)
    rows = text_encoder.positional_embedding.shape[0]
    text_encoder.load_truncated_positions(clip_model.positional_embedding[:rows])


def convert_denseclip_state_dict(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor],
                                                                     list[str]]:
    """Rename a released DenseCLIP segmentation state dict into this library's module names.

    Only names change here; shapes are fitted to a model by :func:`fit_state_dict`.

    Args:
        state: the checkpoint's ``state_dict`` (a DDP ``module.`` prefix is removed).

    Returns:
        the renamed state dict, and the keys that were dropped (parameter-free identity head) or
        not recognised (reported, not converted).
    """
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    vit = 'backbone.class_embedding' in state
    denseclip = 'contexts' in state
    encoder = 'core.image_encoder.' if denseclip else 'backbone.'
    out, skipped = {}, []
    for key, value in state.items():
        head, _, rest = key.partition('.')
        if head == 'backbone':
            if vit and rest.startswith('fpn'):
                new = encoder + rest
            else:
                new = encoder + ('encoder.visual.' if vit else 'visual.') + rest
        elif head in ('text_encoder', 'context_decoder', 'gamma') and denseclip:
            new = 'core.' + key
        elif key == 'contexts':
            new = 'core.text_encoder.contexts'
        elif head in ('neck', 'decode_head', 'auxiliary_head'):
            new = key
        else:
            skipped.append(key)
            continue
        out[new] = value
    return out, skipped


def fit_state_dict(state: Mapping[str, Tensor], target: Mapping[str, Tensor]
                   ) -> tuple[dict[str, Tensor], list[str]]:
    """Fit converted tensors to a model's shapes where DenseCLIP's own loading would.

    * An image tower's positional grid of another size (a checkpoint trained at another
      ``input_resolution``) is resized bilinearly, as DenseCLIP resizes CLIP's.
    * The text positional table: DenseCLIP keeps its first ``num_context + name_length`` rows
      (13); they replace the model's first rows and the model's other rows (CLIP's) stay, so
      longer names still fit (see ``ContextPromptTextEncoder.load_truncated_positions``).

    Returns:
        the fitted state dict and one note per change.
    """
    out, notes = dict(state), []
    for key, value in state.items():
        if key not in target or target[key].shape == value.shape:
            continue
        wanted = target[key]
        if key.endswith('text_encoder.positional_embedding'):
            if value.shape[0] > wanted.shape[0] or value.shape[1:] != wanted.shape[1:]:
                continue
            table = wanted.detach().clone()
            table[:value.shape[0]] = value
            out[key] = table
            notes.append(f'{key}: first {value.shape[0]} of {wanted.shape[0]} rows from the '
                         'checkpoint, the rest from the model\'s CLIP')
        elif key.endswith('positional_embedding') and value.ndim == 2 \
                and value.shape[1] == wanted.shape[1]:
            side = math.isqrt(wanted.shape[0] - 1)
            out[key] = resize_position_grid(value, side)
            notes.append(f'{key}: grid {math.isqrt(value.shape[0] - 1)}x'
                         f'{math.isqrt(value.shape[0] - 1)} resized bilinearly to {side}x{side}')
    return out, notes


@dataclass
class StateDictReport:
    """How a state dict differs from a model's."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        if self.ok:
            return 'every key of the model is present with its shape, and no other key'
        lines = []
        for title, items in (('missing from the checkpoint', self.missing),
                             ('in the checkpoint but not in the model', self.unexpected),
                             ('shape differs (checkpoint vs model)', [
                                 f'{k}: {tuple(a)} vs {tuple(b)}'
                                 for k, a, b in self.mismatched])):
            if items:
                lines.append(f'{len(items)} {title}:')
                lines += [f'    {item}' for item in items[:_MAX_LISTED]]
                if len(items) > _MAX_LISTED:
                    lines.append(f'    ... and {len(items) - _MAX_LISTED} more')
        return '\n'.join(lines)


def compare_state_dicts(state: Mapping[str, Tensor],
                        target: Mapping[str, Tensor]) -> StateDictReport:
    """Missing, unexpected and shape-mismatched keys of ``state`` against ``target``."""
    return StateDictReport(
        missing=sorted(set(target) - set(state)),
        unexpected=sorted(set(state) - set(target)),
        mismatched=[(k, tuple(state[k].shape), tuple(target[k].shape))
                    for k in sorted(set(state) & set(target))
                    if state[k].shape != target[k].shape])
