"""Masked crops of mask proposals: what OVSeg's CLIP classifies (plain PyTorch).

For every proposal whose mask is not empty after thresholding, the tight box of its binary mask
is cut out of the image, the pixels outside the mask are set to CLIP's mean colour, the crop is
normalised with CLIP's mean and std and resized (bicubic) to the CLIP input size; the binary
mask, cut to the same box, is resized alike (nearest) and becomes the crop's region mask (what
mask prompt tuning reads). Proposals of all images of a batch are taken together, image-major and
in query order, and :func:`encode_masked_crops` runs a CLIP over them a bounded chunk at a time.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import Tensor

#: How many crops :func:`encode_masked_crops` builds and encodes at once by default.
DEFAULT_CHUNK_SIZE = 32


def _pixel_stat(values: Sequence[float] | None, default: Sequence[float], device) -> Tensor:
    # 0-255 scale; CLIP's default computed as the reference does (fp32 statistic times 255)
    stat = torch.tensor(default) * 255.0 if values is None else torch.tensor(values).float()
    if stat.shape != (3,):
        raise ValueError(f'mean and std need one value per RGB channel, got {stat.tolist()}')
    return stat.to(device).view(3, 1, 1)


@dataclass
class MaskProposals:
    """The valid proposals of a batch: binary masks, their order and tight boxes.

    Shapes:
        binary: ``(B, Q, H, W)`` bool; valid: ``(B, Q)`` bool; image_index, query_index:
        ``(N,)`` long, ``N = valid.sum()``; boxes: ``(N, 4)`` long ``(x1, y1, x2, y2)``,
        exclusive ends.

    Attributes:
        binary: ``sigmoid(mask_logits) > threshold``.
        valid: proposals with at least one pixel in their binary mask.
        image_index, query_index: the image and query of each valid proposal, image-major.
        boxes: the tight box of each valid binary mask.
    """

    binary: Tensor
    valid: Tensor
    image_index: Tensor
    query_index: Tensor
    boxes: Tensor

    @property
    def num_crops(self) -> int:
        return int(self.image_index.numel())


@dataclass
class MaskedCrops:
    """Masked crops of all valid proposals of a batch, ready for a CLIP image tower.

    Shapes:
        crops: ``(N, 3, S, S)`` float32, normalised; region_masks: ``(N, 1, S, S)`` float32 in
        ``{0, 1}``; valid: ``(B, Q)``; boxes, image_index, query_index as in
        :class:`MaskProposals`.
    """

    crops: Tensor
    region_masks: Tensor
    valid: Tensor
    boxes: Tensor
    image_index: Tensor
    query_index: Tensor


def tight_boxes(binary: Tensor) -> Tensor:
    """Tight boxes of binary masks, ``(x1, y1, x2, y2)`` with exclusive ends; zeros when empty.

    Shapes:
        binary: ``(N, H, W)`` bool; returns ``(N, 4)`` long.
    """
    if binary.ndim != 3:
        raise ValueError(f'expected binary masks of shape (N, H, W), got {tuple(binary.shape)}')
    rows = binary.any(dim=2).to(torch.uint8)            # (N, H): rows holding a mask pixel
    cols = binary.any(dim=1).to(torch.uint8)            # (N, W)
    h, w = binary.shape[1:]
    # argmax returns the first maximum: the first and (on the flipped axis) the last set index
    y1, x1 = rows.argmax(dim=1), cols.argmax(dim=1)
    y2, x2 = h - rows.flip(1).argmax(dim=1), w - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1)
    return boxes * rows.any(dim=1, keepdim=True)


def find_proposals(mask_logits: Tensor, threshold: float) -> MaskProposals:
    """Threshold the proposals' masks and keep the non-empty ones.

    A pixel belongs to a proposal when ``sigmoid(logit) > threshold`` (strictly, on the
    probability, as the reference compares ``mask_pred.sigmoid() > mask_thr``); a proposal with
    no such pixel is invalid and gets no crop.

    Args:
        mask_logits: mask logits at the images' resolution.
        threshold: probability threshold in ``[0, 1)`` (OVSeg: 0.5 with ViT-B/16, 0.4 with
            ViT-L/14).

    Shapes:
        mask_logits: ``(B, Q, H, W)``; see :class:`MaskProposals` for the result.
    """
    if mask_logits.ndim != 4:
        raise ValueError(f'expected mask logits of shape (B, Q, H, W), got '
                         f'{tuple(mask_logits.shape)}; add the batch dimension for one image')
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f'the mask threshold is a probability in [0, 1), got {threshold}; a '
                         'pixel belongs to a proposal when sigmoid(logit) > threshold')
    binary = mask_logits.float().sigmoid() > threshold
    valid = binary.flatten(2).any(dim=2)
    image_index, query_index = valid.nonzero(as_tuple=True)
    boxes = tight_boxes(binary[image_index, query_index])
    return MaskProposals(binary, valid, image_index, query_index, boxes)


def crop_proposals(images: Tensor, proposals: MaskProposals, index: Tensor | slice | None = None,
                   *, size: int = 224, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None) -> tuple[Tensor, Tensor]:
    """Masked, normalised, resized crops of (some of) the valid proposals.

    Each crop is the tight box of the binary mask; pixels outside the mask take the mean colour
    (zero once normalised); the crop is normalised, then resized to ``size`` (bicubic, no
    corner alignment) and its mask cut (nearest), as the reference does one crop at a time.
    Here each image is normalised once and its crops cut from it (the same values), and crops
    of one size share one resize.

    Args:
        images: RGB images on the 0-255 scale (not normalised), as the proposals were made for.
        proposals: from :func:`find_proposals` on these images' mask logits.
        index: which valid proposals (positions in ``proposals.boxes``); None: all.
        size: side of the square CLIP input.
        mean, std: RGB, 0-255; None: CLIP's (OpenAI's) pixel statistics.

    Shapes:
        images: ``(B, 3, H, W)``; returns crops ``(n, 3, size, size)`` and region masks
        ``(n, 1, size, size)``, float32.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'expected RGB images of shape (B, 3, H, W), got {tuple(images.shape)}')
    if images.shape[0] != proposals.binary.shape[0] or \
            images.shape[-2:] != proposals.binary.shape[-2:]:
        raise ValueError(f'images {tuple(images.shape)} and mask logits '
                         f'{tuple(proposals.binary.shape)} must have the same batch size and '
                         'resolution; upsample the masks to the images (and crop the padding) '
                         'first')
    pixel_mean = _pixel_stat(mean, OPENAI_DATASET_MEAN, images.device)
    pixel_std = _pixel_stat(std, OPENAI_DATASET_STD, images.device)
    index = slice(None) if index is None else index
    boxes = proposals.boxes[index].tolist()
    image_index = proposals.image_index[index].tolist()
    query_index = proposals.query_index[index].tolist()
    n = len(boxes)
    crops = images.new_empty((n, 3, size, size), dtype=torch.float32)
    region_masks = images.new_empty((n, 1, size, size), dtype=torch.float32)
    normalised = {b: (images[b].float() - pixel_mean) / pixel_std for b in set(image_index)}
    outside = crops.new_zeros(())                       # the mean colour, normalised
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        groups.setdefault((y2 - y1, x2 - x1), []).append(i)
    for (h, w), members in groups.items():
        cut = crops.new_empty((len(members), 3, h, w))
        masks = crops.new_empty((len(members), 1, h, w))
        for j, i in enumerate(members):
            x1, y1, x2, y2 = boxes[i]
            b, q = image_index[i], query_index[i]
            mask = proposals.binary[b, q, y1:y2, x1:x2]
            torch.where(mask, normalised[b][:, y1:y2, x1:x2], outside, out=cut[j])
            masks[j, 0] = mask
        rows = torch.tensor(members, device=images.device)
        crops[rows] = F.interpolate(cut, size=(size, size), mode='bicubic', align_corners=False)
        region_masks[rows] = F.interpolate(masks, size=(size, size), mode='nearest')
    return crops, region_masks


def masked_crops(images: Tensor, mask_logits: Tensor, threshold: float, *, size: int = 224,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> MaskedCrops:
    """All masked crops of a batch at once (see :func:`encode_masked_crops` for bounded memory).

    Args:
        images: RGB, 0-255, not normalised.
        mask_logits: the proposals' mask logits at the images' resolution.
        threshold, size, mean, std: see :func:`find_proposals` and :func:`crop_proposals`.

    Shapes:
        images: ``(B, 3, H, W)``; mask_logits: ``(B, Q, H, W)``; see :class:`MaskedCrops`
        (``N = 0`` when no mask is valid).
    """
    proposals = find_proposals(mask_logits, threshold)
    crops, region_masks = crop_proposals(images, proposals, size=size, mean=mean, std=std)
    return MaskedCrops(crops, region_masks, proposals.valid, proposals.boxes,
                       proposals.image_index, proposals.query_index)


CropEncoder = Callable[[Tensor, Tensor], Tensor]


def encode_masked_crops(encode: CropEncoder, images: Tensor, mask_logits: Tensor,
                        threshold: float, *, size: int = 224,
                        chunk_size: int = DEFAULT_CHUNK_SIZE, mean: Sequence[float] | None = None,
                        std: Sequence[float] | None = None) -> tuple[Tensor, MaskProposals]:
    """Encode the masked crops of a batch, at most ``chunk_size`` crops in memory at a time.

    Args:
        encode: ``encode(crops, region_masks) -> embeddings``, e.g. a :class:`MaskPromptCLIP`
            (``lambda crops, masks: tower(crops)`` without mask prompts). It is called once per
            chunk, and once with ``N = 0`` crops when no mask is valid.
        images, mask_logits, threshold, size, mean, std: as :func:`masked_crops`.
        chunk_size: crops per call of ``encode``.

    Returns:
        The embeddings of the valid proposals (image-major, query order) and the proposals.

    Shapes:
        images: ``(B, 3, H, W)``; mask_logits: ``(B, Q, H, W)``; returns ``(N, C)``.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}')
    proposals = find_proposals(mask_logits, threshold)
    stats = dict(size=size, mean=mean, std=std)
    if proposals.num_crops == 0:
        return encode(*crop_proposals(images, proposals, **stats)), proposals
    chunks = [encode(*crop_proposals(images, proposals, slice(start, start + chunk_size),
                                     **stats))
              for start in range(0, proposals.num_crops, chunk_size)]
    return torch.cat(chunks), proposals
