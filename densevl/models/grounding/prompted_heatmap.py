"""What the CLIP and ALBEF heat maps of GroundVLP share: each puts an expression in a prompt
template, runs one image against up to ``max_batch`` prompts per forward and upsamples its maps
to the original image."""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class PromptedHeatMap(nn.Module):
    """Base of :class:`~densevl.models.grounding.CLIPHeatMap` and
    :class:`~densevl.models.grounding.ALBEFHeatMap`.

    Args:
        template: the prompt, with exactly one ``'{}'`` for the expression.
        max_batch: the most prompts (image copies) run in one forward/backward.
    """

    def __init__(self, *, template: str, max_batch: int) -> None:
        super().__init__()
        if template.count('{}') != 1:
            raise ValueError(f"template {template!r} needs one '{{}}' for the expression")
        if max_batch < 1:
            raise ValueError(f'max_batch must be at least 1, got {max_batch}')
        self.template = template
        self.max_batch = max_batch

    def prompts(self, texts: Sequence[str]) -> list[str]:
        return [self.template.format(t) for t in texts]

    @staticmethod
    def one_image(image: Tensor) -> Tensor:
        """``(3, H, W)`` or ``(1, 3, H, W)`` -> ``(1, 3, H, W)``; a batch is an error."""
        image = image if image.ndim == 4 else image[None]
        if image.shape[0] != 1:
            raise ValueError(f'expected one image, got a batch of {image.shape[0]}')
        return image

    @staticmethod
    def upsample(heat: Tensor, out_size: tuple[int, int]) -> Tensor:
        """``(K, h, w)`` maps -> ``(K, H, W)`` at ``out_size`` (bicubic)."""
        return F.interpolate(heat[:, None], size=tuple(out_size), mode='bicubic',
                             align_corners=False)[:, 0]
