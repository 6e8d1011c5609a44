"""Mask proposals for OVSeg's CLIP: one interface for proposal generators, and SAM's.

A :class:`MaskProposalGenerator` maps a batch of RGB images to one :class:`ProposalSet` per
image: mask logits at the image's size (OVSeg's convention: a pixel belongs to a proposal when
``sigmoid(logit) > threshold``, see :func:`~densevl.models.ovseg.masked_crops.find_proposals`)
and, optionally, one score per proposal. :func:`stack_proposals` pads the sets of a batch into the
``(B, Q, H, W)`` mask logits that :func:`~densevl.models.ovseg.masked_crops.masked_crops` takes.

:class:`SAMProposalGenerator` wraps ``segment_anything.SamAutomaticMaskGenerator``. SAM gives
binary masks; they become logits of ``+MASK_LOGIT`` inside and ``-MASK_LOGIT`` outside. In
float32, ``sigmoid(MASK_LOGIT)`` is exactly 1 and ``sigmoid(-MASK_LOGIT)`` exactly 0
(``exp(-120)`` is below float32's smallest subnormal), so thresholding recovers SAM's mask
bit for bit at every threshold in ``[0, 1)``, and OVSeg's soft mask products
(``mask_logits.sigmoid()``) use the hard masks. The value is finite so that interpolation and
fp16 (max 65504) keep it finite.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ['MASK_LOGIT', 'MaskProposalGenerator', 'ProposalSet', 'SAMProposalGenerator',
           'binary_masks_to_logits', 'build_sam', 'stack_proposals']

#: The logit magnitude of a binary mask: ``sigmoid(±MASK_LOGIT)`` is exactly 1 / 0 in float32.
MASK_LOGIT = 120.0

_SAM_WEIGHTS_HELP = ('SAM\'s weights are published in the segment-anything repository '
                     '(github.com/facebookresearch/segment-anything, "Model Checkpoints"): '
                     'sam_vit_h_4b8939.pth (vit_h), sam_vit_l_0b3195.pth (vit_l), '
                     'sam_vit_b_01ec64.pth (vit_b)')


@dataclass
class ProposalSet:
    """The mask proposals of one image.

    Shapes:
        mask_logits: ``(N, H, W)`` float, at the image's size; scores: ``(N,)`` or None.

    Attributes:
        mask_logits: a pixel belongs to proposal ``n`` when ``sigmoid(mask_logits[n]) > thr``.
        scores: the generator's confidence in each proposal (SAM: its predicted IoU), or None.
    """

    mask_logits: Tensor
    scores: Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask_logits.ndim != 3 or not self.mask_logits.is_floating_point():
            raise ValueError(f'mask_logits must be float logits of shape (N, H, W), got '
                             f'{self.mask_logits.dtype} {tuple(self.mask_logits.shape)}; turn '
                             'binary masks into logits with binary_masks_to_logits')
        if self.scores is not None and self.scores.shape != self.mask_logits.shape[:1]:
            raise ValueError(f'scores {tuple(self.scores.shape)} must have one value per '
                             f'proposal ({self.mask_logits.shape[0]},)')

    @property
    def num_proposals(self) -> int:
        return int(self.mask_logits.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.mask_logits.shape[1]), int(self.mask_logits.shape[2])


@runtime_checkable
class MaskProposalGenerator(Protocol):
    """Anything that proposes masks for a batch of images.

    ``images`` are RGB on the 0-255 scale (not normalised): a ``(B, 3, H, W)`` tensor, or a
    sequence of ``(3, H, W)`` tensors of different sizes. The result has one
    :class:`ProposalSet` per image, its mask logits at that image's size, on its device.

    Shapes:
        images: ``(B, 3, H, W)`` or B tensors ``(3, H_i, W_i)``; result ``i``: mask logits
        ``(N_i, H_i, W_i)``, scores ``(N_i,)`` or None.
    """

    def __call__(self, images: Tensor | Sequence[Tensor]) -> list[ProposalSet]: ...


def binary_masks_to_logits(masks: Tensor | np.ndarray) -> Tensor:
    """Binary masks as logits: ``+MASK_LOGIT`` inside, ``-MASK_LOGIT`` outside.

    Shapes:
        masks: ``(N, H, W)`` bool (or 0/1); returns ``(N, H, W)`` float32.
    """
    masks = torch.as_tensor(masks)
    if masks.ndim != 3:
        raise ValueError(f'expected binary masks of shape (N, H, W), got {tuple(masks.shape)}')
    if masks.dtype != torch.bool:
        if not bool(((masks == 0) | (masks == 1)).all()):
            raise ValueError('masks must be binary (bool or 0/1); soft masks are not binary '
                             'proposals: give their logits to ProposalSet directly')
        masks = masks.bool()
    logit = torch.tensor(MASK_LOGIT, device=masks.device)
    return torch.where(masks, logit, -logit)


def stack_proposals(proposals: Sequence[ProposalSet], num_queries: int | None = None) -> Tensor:
    """The proposals of a batch as ``(B, Q, H, W)`` mask logits, padded with empty masks.

    Padding masks are ``-MASK_LOGIT`` everywhere: :func:`find_proposals` finds them empty at any
    threshold, so they get no crop. Queries keep each set's order.

    Args:
        proposals: one set per image, all at the same image size.
        num_queries: ``Q``; None: the largest set's size.

    Shapes:
        returns ``(B, Q, H, W)`` float32.
    """
    if not proposals:
        raise ValueError('no proposal sets: give one ProposalSet per image')
    sizes = {p.image_size for p in proposals}
    if len(sizes) > 1:
        raise ValueError(f'the images have different sizes {sorted(sizes)}; a batch of mask '
                         'logits needs one size: stack the proposals of same-size images, or '
                         'run the OVSeg core one image at a time')
    most = max(p.num_proposals for p in proposals)
    q = most if num_queries is None else num_queries
    if q < most:
        raise ValueError(f'num_queries={num_queries} is smaller than the {most} proposals of '
                         'one image; cap the generator (max_proposals) or raise num_queries')
    first = proposals[0].mask_logits
    out = first.new_full((len(proposals), q, *first.shape[1:]), -MASK_LOGIT,
                         dtype=torch.float32)
    for i, p in enumerate(proposals):
        out[i, :p.num_proposals] = p.mask_logits
    return out


# ----- SAM ----------------------------------------------------------------------------------


def _import_sam() -> Any:
    try:
        import segment_anything
    except ImportError as err:
        raise ImportError('SAM proposals need the segment-anything package, which is not '
                          'installed: pip install segment-anything') from err
    return segment_anything


def build_sam(checkpoint: str | os.PathLike, model_type: str = 'vit_h',
              device: str | torch.device = 'cpu') -> nn.Module:
    """SAM from a local weights file, as ``sam_model_registry[model_type](checkpoint=path)``.

    Raises:
        ImportError: segment-anything is not installed.
        FileNotFoundError: the checkpoint does not exist (the message says where SAM's weights
            come from).
        ValueError: an unknown model type, or weights that do not fit it.
    """
    sam = _import_sam()
    registry = sam.sam_model_registry
    if model_type not in registry:
        raise ValueError(f'unknown SAM model type {model_type!r}; segment-anything has '
                         f'{", ".join(sorted(registry))}')
    path = os.fspath(checkpoint)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'SAM checkpoint {path!r} does not exist. {_SAM_WEIGHTS_HELP}; '
                                'download the one of your model_type and pass its path')
    try:
        model = registry[model_type](checkpoint=path)
    except RuntimeError as err:
        if 'state_dict' not in str(err):
            raise
        raise ValueError(f'{path} does not fit SAM model type {model_type!r}: pass the '
                         f'model_type these weights are for. {_SAM_WEIGHTS_HELP}.\n{err}') from err
    return model.to(device).eval()


def _to_uint8_hwc(image: Tensor) -> np.ndarray:
    # SAM's automatic mask generator takes HWC uint8 RGB arrays
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f'expected an RGB image of shape (3, H, W), got {tuple(image.shape)}')
    if image.is_floating_point():
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(f'images must be RGB on the 0-255 scale, not normalised; these '
                             f'values run from {lo:.3g} to {hi:.3g}')
        image = image.round()
    return image.to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class SAMProposalGenerator:
    """Mask proposals from SAM's automatic mask generator (a point grid over the image).

    Proposals are ordered by SAM's predicted IoU (best first), which is also their score, and
    capped at ``max_proposals``; their mask logits are ``±MASK_LOGIT`` (see the module).

    Args:
        checkpoint: a SAM weights file (``sam_vit_h_4b8939.pth`` ...).
        model_type: its ``sam_model_registry`` key: ``'vit_h'``, ``'vit_l'`` or ``'vit_b'``.
        max_proposals: keep at most this many proposals per image; None: all.
        device: where SAM runs.
        **generator_options: ``SamAutomaticMaskGenerator`` options (``points_per_side``,
            ``pred_iou_thresh``, ``stability_score_thresh``, ``box_nms_thresh``,
            ``min_mask_region_area`` ...); ``output_mode`` is ``'binary_mask'``.

    Shapes:
        images: ``(B, 3, H, W)`` or B tensors ``(3, H_i, W_i)``, RGB 0-255; each result's
        mask logits ``(N_i, H_i, W_i)`` float32 and scores ``(N_i,)``.
    """

    def __init__(self, checkpoint: str | os.PathLike, model_type: str = 'vit_h', *,
                 max_proposals: int | None = None, device: str | torch.device = 'cpu',
                 **generator_options: Any) -> None:
        self._setup(build_sam(checkpoint, model_type, device), max_proposals, generator_options)

    @classmethod
    def from_sam_model(cls, model: nn.Module, *, max_proposals: int | None = None,
                       **generator_options: Any) -> SAMProposalGenerator:
        """A generator over a SAM model already built (e.g. a tiny one with random weights).

        Args:
            model: a ``segment_anything.modeling.Sam``, on the device it should run on.
            max_proposals, generator_options: as for the constructor.
        """
        self = cls.__new__(cls)
        self._setup(model, max_proposals, generator_options)
        return self

    def _setup(self, model: nn.Module, max_proposals: int | None,
               options: dict[str, Any]) -> None:
        sam = _import_sam()
        if max_proposals is not None and (not isinstance(max_proposals, int)
                                          or max_proposals < 1):
            raise ValueError(f'max_proposals must be a positive int or None, got '
                             f'{max_proposals!r}')
        if options.get('output_mode', 'binary_mask') != 'binary_mask':
            raise ValueError(f"output_mode={options['output_mode']!r} is not supported: the "
                             "generator turns SAM's binary masks into logits, so it uses "
                             "output_mode='binary_mask'; leave the option out")
        known = set(inspect.signature(sam.SamAutomaticMaskGenerator).parameters) - {'model'}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f'unknown SamAutomaticMaskGenerator option(s) {unknown}; the options '
                            f'are {", ".join(sorted(known))}')
        self.model = model.eval()
        self.max_proposals = max_proposals
        self.generator = sam.SamAutomaticMaskGenerator(model, **options)

    def generate(self, image: Tensor) -> ProposalSet:
        """The proposals of one image.

        Shapes:
            image: ``(3, H, W)`` RGB 0-255; returns mask logits ``(N, H, W)`` and scores
            ``(N,)`` on the image's device.
        """
        h, w = image.shape[-2:]
        records = self.generator.generate(_to_uint8_hwc(image))
        records = sorted(records, key=lambda r: -r['predicted_iou'])[:self.max_proposals]
        masks = np.stack([r['segmentation'] for r in records]) if records else \
            np.zeros((0, h, w), dtype=bool)
        scores = torch.tensor([r['predicted_iou'] for r in records], dtype=torch.float32)
        return ProposalSet(binary_masks_to_logits(masks).to(image.device),
                           scores.to(image.device))

    def __call__(self, images: Tensor | Sequence[Tensor]) -> list[ProposalSet]:
        """One :class:`ProposalSet` per image (see the class for the shapes)."""
        if isinstance(images, Tensor) and images.ndim != 4:
            raise ValueError(f'expected images of shape (B, 3, H, W), got '
                             f'{tuple(images.shape)}; add the batch dimension for one image')
        return [self.generate(image) for image in images]
