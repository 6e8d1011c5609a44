"""Mask prompt tuning: an open_clip ViT that sees only the masked region of a crop (OVSeg).

A patch of a masked crop with no pixel of the region mask is blank (mean colour). Mask prompt
tuning replaces the tokens of blank patches with learned embeddings, one per patch position and
per depth: before the class token is prepended (and before the positional embedding and
``ln_pre``) with ``mask_embedding[0]``, and after block ``d - 1`` with ``mask_embedding[d]``
for ``d = 1 .. depth - 1``; the class token and the tokens of patches touching the mask are
left alone. The class token then gives the image embedding as in CLIP.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..clip import image_tower


class MaskPromptCLIP(nn.Module):
    """An open_clip ``VisionTransformer`` with OVSeg's mask prompts.

    The tower's weights are used as they are (``self.visual``, its submodules called one by
    one); only ``mask_embedding`` is new. It starts at zero, as in the reference, and is learned
    or loaded from an OVSeg checkpoint.

    The mask embedding is learned per patch position of the tower's input grid, so crops must
    have the tower's input size, and a ``mask_embedding`` of another grid is refused with an
    error (it is not resized: unlike positional embeddings, its positions are tied to where a
    blank patch lies in a crop of the trained size). A grid of one position (``(depth, 1,
    width)``) is one embedding shared by every position, as the reference allows.

    Args:
        visual: an open_clip ``VisionTransformer`` with a class-token output (``clip.visual``),
            or a :class:`~densevl.models.clip.CLIPDenseViT` or open_clip ``CLIP`` holding one.
        depth: number of mask prompt layers (OVSeg: 3); ``1 <= depth <= number of blocks``.

    Shapes:
        ``mask_embedding``: ``(depth, grid ** 2, width)``.
    """

    def __init__(self, visual: nn.Module, depth: int = 3) -> None:
        super().__init__()
        visual = image_tower(visual)        # a CLIPDenseViT or a whole open_clip CLIP too
        if not hasattr(visual, 'conv1') or not hasattr(visual, 'transformer'):
            raise ValueError(f'{type(visual).__name__} is not an open_clip VisionTransformer; '
                             'mask prompt tuning is defined for CLIP ViTs')
        if getattr(visual, 'attn_pool', None) is not None or \
                getattr(visual, 'pool_type', 'tok') != 'tok':
            raise ValueError('mask prompt tuning reads the class token; this ViT pools with '
                             f"{getattr(visual, 'pool_type', 'attention')!r}: use a CLIP ViT "
                             "with pool_type='tok'")
        if not isinstance(getattr(visual, 'patch_dropout', nn.Identity()), nn.Identity):
            raise ValueError('mask prompts replace tokens by patch position, which patch dropout '
                             'removes; build the tower with patch_dropout=0')
        blocks = len(visual.transformer.resblocks)
        if not isinstance(depth, int) or not 1 <= depth <= blocks:
            raise ValueError(f'depth must be an int from 1 to the {blocks} blocks of the tower, '
                             f'got {depth!r} (OVSeg uses 3); for CLIP without mask prompts, '
                             'call the tower itself')
        self.visual = visual
        self.depth = depth
        self.patch_size = int(visual.conv1.kernel_size[0])
        num_patches = visual.positional_embedding.shape[0] - 1
        self.grid_size = math.isqrt(num_patches)
        if self.grid_size ** 2 != num_patches:
            raise ValueError(f'the tower has {num_patches} patch positions, not a square grid')
        self.input_size = self.grid_size * self.patch_size
        self.width = int(visual.conv1.out_channels)
        self.embed_dim = visual.proj.shape[1] if visual.proj is not None else self.width
        self.batch_first = getattr(visual.transformer, 'batch_first', True)
        self.mask_embedding = nn.Parameter(torch.zeros(depth, num_patches, self.width))

    def _check_mask_embedding(self, shape: tuple[int, ...], where: str) -> None:
        expected = (self.depth, self.grid_size ** 2, self.width)
        if len(shape) == 3 and shape[0] == self.depth and shape[2] == self.width \
                and shape[1] in (1, self.grid_size ** 2):
            return
        grid = math.isqrt(shape[1]) if len(shape) == 3 else None
        raise ValueError(
            f'{where} mask_embedding has shape {tuple(shape)} but this tower needs '
            f'{expected} (depth {self.depth}, a {self.grid_size}x{self.grid_size} grid of its '
            f'{self.input_size}-px input with patch {self.patch_size}, width {self.width})'
            + (f'; it was learned for a {grid}x{grid} grid ({grid * self.patch_size}-px crops): '
               'build the tower at that input size' if grid and grid * grid == shape[1] else '')
            + '. Mask embeddings are not resized: use the CLIP they were trained with, and '
            'MaskPromptCLIP(depth=...) equal to their first dimension')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + 'mask_embedding'
        if key in state_dict:
            self._check_mask_embedding(tuple(state_dict[key].shape), 'the loaded')
            if state_dict[key].shape[1] != self.mask_embedding.shape[1]:
                # a shared embedding: keep its (depth, 1, width) shape
                self.mask_embedding = nn.Parameter(self.mask_embedding.new_zeros(
                    state_dict[key].shape), requires_grad=self.mask_embedding.requires_grad)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def blank_patches(self, region_masks: Tensor) -> Tensor:
        """Which patches hold no pixel of the region mask.

        Shapes:
            region_masks: ``(N, 1, S, S)`` or ``(N, S, S)``; returns ``(N, grid ** 2, 1)`` bool.
        """
        masks = region_masks if region_masks.ndim == 4 else region_masks[:, None]
        touched = F.max_pool2d((masks > 0).float(), self.patch_size)
        return (touched == 0).flatten(1)[..., None]

    def _block(self, block: nn.Module, x: Tensor) -> Tensor:
        # open_clip's towers are batch-first; older ones take (L, N, D)
        return block(x) if self.batch_first else block(x.transpose(0, 1)).transpose(0, 1)

    def forward(self, crops: Tensor, region_masks: Tensor | None = None) -> Tensor:
        """Image embeddings of masked crops, with mask prompts where ``region_masks`` is given.

        Args:
            crops: normalised crops at the tower's input size (:func:`masked_crops`).
            region_masks: their region masks (nonzero inside the region); None: plain CLIP.

        Returns:
            The projected class-token embeddings (not normalised).

        Shapes:
            crops: ``(N, 3, S, S)``; region_masks: ``(N, 1, S, S)``; returns ``(N, C)``.
        """
        if crops.ndim != 4 or crops.shape[1] != 3:
            raise ValueError(f'expected crops of shape (N, 3, S, S), got {tuple(crops.shape)}')
        if crops.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f'crops are {crops.shape[-2]}x{crops.shape[-1]} px but the tower and '
                             f'its mask embedding ({self.grid_size}x{self.grid_size} patches of '
                             f'{self.patch_size}) take {self.input_size}x{self.input_size}; make '
                             f'the crops with masked_crops(size={self.input_size})')
        if region_masks is not None and (region_masks.shape[0] != crops.shape[0]
                                         or region_masks.shape[-2:] != crops.shape[-2:]):
            raise ValueError(f'region masks {tuple(region_masks.shape)} do not fit crops '
                             f'{tuple(crops.shape)}; give one (1, S, S) mask per crop')
        self._check_mask_embedding(tuple(self.mask_embedding.shape), 'the')
        visual = self.visual
        if crops.shape[0] == 0:
            return crops.new_zeros(0, self.embed_dim)
        x = visual.conv1(crops.to(visual.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)                                    # (N, g*g, D)
        blank = prompts = None
        if region_masks is not None:
            blank = self.blank_patches(region_masks)
            prompts = self.mask_embedding.to(x.dtype).expand(self.depth, x.shape[1], -1)
            x = torch.where(blank, prompts[0], x)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        x = visual.ln_pre(x)
        for i, block in enumerate(visual.transformer.resblocks):
            x = self._block(block, x)
            if blank is not None and i + 1 < self.depth:
                x = torch.cat([x[:, :1], torch.where(blank, prompts[i + 1], x[:, 1:])], dim=1)
        pooled = visual.ln_post(x[:, 0])
        return pooled @ visual.proj if visual.proj is not None else pooled
