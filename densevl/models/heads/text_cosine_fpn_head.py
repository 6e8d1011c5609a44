"""A Semantic FPN head that classifies pixels by their cosine with text embeddings."""
from __future__ import annotations

import math

import torch
from mmseg.models.decode_heads import FPNHead
from mmseg.models.utils import resize
from torch import Tensor, nn

from ...registry import SEG_MODELS
from ..clip import score_map


@SEG_MODELS.register_module()
class TextCosineFPNHead(FPNHead):
    """Semantic FPN whose classifier is the text: ``logits = scale * cos(pixel, text)``.

    The FPN levels are merged as :class:`mmseg.models.decode_heads.FPNHead` merges them; the 1x1
    classifier then maps each pixel to an embedding of the joint image-text space instead of to
    ``num_classes`` scores, and each class's logit is the scaled cosine of that embedding with the
    class's text embedding. No weight depends on the vocabulary, so the head segments any list
    of texts (DenseCLIP's vocabulary-agnostic variant; ``num_classes`` is only the size of the
    training vocabulary).

    Args:
        embed_dims: dimension ``C`` of the joint space (:class:`DenseCLIPSegmentor` fills it in).
        logit_scale: initial scale of the cosine logits (``1 / 0.07``, CLIP's initial
            temperature); learned in log space and capped at 100, as CLIP's.
        learn_logit_scale: train the scale.
        **kwargs: :class:`FPNHead` arguments.

    Shapes:
        :meth:`forward` takes ``[text, *levels]``, text ``(B, K, C)`` and the FPN levels
        ``(B, D_i, H_i, W_i)``; returns ``(B, K, H_0, W_0)``.
    """

    #: The segmentor passes the text embeddings as the first input.
    takes_text = True

    def __init__(self, *, embed_dims: int, logit_scale: float = 1 / 0.07,
                 learn_logit_scale: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dims = embed_dims
        self.conv_seg = nn.Conv2d(self.channels, embed_dims, kernel_size=1)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(logit_scale)),
                                            requires_grad=learn_logit_scale)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        text, levels = inputs[0], self._transform_inputs(inputs[1:])
        output = self.scale_heads[0](levels[0])
        for i in range(1, len(self.feature_strides)):
            output = output + resize(self.scale_heads[i](levels[i]), size=output.shape[2:],
                                     mode='bilinear', align_corners=self.align_corners)
        return self.cls_seg(output, text)

    def cls_seg(self, feat: Tensor, text: Tensor) -> Tensor:
        """Shapes: feat ``(B, channels, h, w)``, text ``(B, K, C)``; returns ``(B, K, h, w)``."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        scale = self.log_logit_scale.exp().clamp(max=100.0)
        return score_map(self.conv_seg(feat), text) * scale
