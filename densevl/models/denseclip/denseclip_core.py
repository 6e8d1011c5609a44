"""DenseCLIP's language-guided forward, in plain PyTorch (the mm segmentor/detector wrap it)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..clip.dense_output import DenseOutput
from ..clip.dense_resnet import CLIPDenseResNet
from .context_decoder import ContextDecoder
from .context_text_encoder import ContextPromptTextEncoder
from .cropped_attention_pool import cropped_attention_pool
from .vit_multilevel import CLIPViTFeaturePyramid

POOL_POSITIONS = ('resize', 'crop')


@dataclass
class DenseCLIPOutput:
    """What :meth:`DenseCLIPCore.forward` returns.

    Shapes:
        features: the backbone's four levels ``(B, D_i, H/s_i, W/s_i)``, strides 4 to 32.
        global_embedding: ``(B, C)``; dense: ``(B, C, h, w)`` (not normalised).
        text: ``(B, K, C)`` context-refined text embeddings (not normalised).
        score_map: ``(B, K, h, w)`` cosine of dense and text embeddings times ``score_scale``.
        fused: the neck's input, ``features`` with the score map (or, vocabulary-agnostic, the
            score-weighted text embedding) concatenated to level ``score_concat_index``.
    """

    features: list[Tensor]
    global_embedding: Tensor
    dense: Tensor
    text: Tensor
    score_map: Tensor
    fused: list[Tensor]


def batched_score_map(dense: Tensor, text: Tensor, scale: float = 1.0) -> Tensor:
    """Cosine of every dense embedding with each of its own image's text embeddings, scaled.

    Shapes:
        dense: ``(B, C, h, w)``; text: ``(B, K, C)``; returns ``(B, K, h, w)``.
    """
    dense = F.normalize(dense, dim=1)
    text = F.normalize(text.to(dense.dtype), dim=2)
    return torch.einsum('bchw,bkc->bkhw', dense, text) * scale


class DenseCLIPCore(nn.Module):
    """Backbone features, embeddings, context-refined text, score map and the fused neck input.

    1. The image encoder gives four feature levels, a global embedding and dense embeddings: a
       :class:`CLIPDenseResNet` (res2-res5 and the attention pool over res5, every position a
       query) or a :class:`CLIPViTFeaturePyramid`.
    2. The text encoder embeds the class names with the learned context (``(1, K, C)``,
       expanded to the batch).
    3. The :class:`ContextDecoder` lets the text attend to ``[global; dense]`` of each image;
       ``text + γ·Δ`` with ``γ`` per channel, initially ``gamma_init``.
    4. ``score_map = cos(dense, text) * score_scale`` per image. Segmentation: ``score_scale=1``;
       detection: ``1 / 0.07`` (the same map, upsampled, feeds :func:`box_score_map_loss`).
    5. The score map is concatenated to one level: res5 for a ResNet, stride 16 for a ViT-B/16
       (``score_concat_index`` 3 / 2 by default: the level as large as the score map).

    Closed set (DenseCLIP): the neck's input has ``K`` extra channels, so the class count is
    fixed by ``class_names``; other names may be passed at call time if there are as many.
    ``vocabulary_agnostic=True`` (densevl, not in the paper) concatenates instead the text
    embedding averaged under ``softmax_k(cos / agnostic_temperature)`` at each position: ``C``
    channels whatever the vocabulary, so any ``class_names`` can be passed at call time (the
    head must then classify against the text embeddings too).

    Args:
        image_encoder: see step 1.
        text_encoder: a :class:`ContextPromptTextEncoder`.
        class_names: the default vocabulary.
        context_decoder: default ``ContextDecoder(C)`` (width 256, 4 heads, 3 layers).
        score_concat_index: level to fuse the score map into; ``None`` picks the level of the
            score map's size.
        score_scale: multiplies the cosine score map.
        gamma_init: initial value of every channel of ``γ``.
        pool_positions: ResNet only: ``'resize'`` the pool's positional embedding bilinearly
            (DenseCLIP segmentation) or ``'crop'`` it (DenseCLIP detection, see
            :func:`cropped_attention_pool`).
        vocabulary_agnostic: see above.
        agnostic_temperature: softmax temperature of the vocabulary-agnostic fusion.
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: ContextPromptTextEncoder, *,
                 class_names: Sequence[str], context_decoder: ContextDecoder | None = None,
                 score_concat_index: int | None = None, score_scale: float = 1.0,
                 gamma_init: float = 1e-4, pool_positions: str = 'resize',
                 vocabulary_agnostic: bool = False, agnostic_temperature: float = 0.07) -> None:
        super().__init__()
        if not isinstance(image_encoder, CLIPDenseResNet | CLIPViTFeaturePyramid):
            raise TypeError(f'image_encoder must be a CLIPDenseResNet or CLIPViTFeaturePyramid, '
                            f'got {type(image_encoder).__name__}')
        if pool_positions not in POOL_POSITIONS:
            raise ValueError(f'unknown pool_positions {pool_positions!r}; choose one of '
                             f'{", ".join(POOL_POSITIONS)}')
        if score_concat_index is not None and not 0 <= score_concat_index < 4:
            raise ValueError(f'score_concat_index must be 0..3, got {score_concat_index}')
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.embed_dim = image_encoder.embed_dim
        self.context_decoder = context_decoder or ContextDecoder(self.embed_dim)
        self.gamma = nn.Parameter(torch.full((self.embed_dim,), float(gamma_init)))
        self.score_concat_index = score_concat_index
        self.score_scale = score_scale
        self.pool_positions = pool_positions
        self.vocabulary_agnostic = vocabulary_agnostic
        self.agnostic_temperature = agnostic_temperature
        self.class_names = tuple(class_names)
        self.register_buffer('tokens', text_encoder.tokenize(self.class_names), persistent=False)

    @classmethod
    def from_clip(cls, clip_model: nn.Module, tokenizer, *, class_names: Sequence[str],
                  num_context: int = 8, name_length: int = 5, vit: dict | None = None,
                  **kwargs) -> DenseCLIPCore:
        """Build from an open_clip ``CLIP``: its image tower wrapped for DenseCLIP, its text tower
        prompted with ``num_context`` learned vectors. ``vit``: keyword arguments of
        :class:`CLIPViTFeaturePyramid` (ViT towers only)."""
        visual = clip_model.visual
        if hasattr(visual, 'attnpool'):
            if vit:
                raise ValueError('vit options given for a ModifiedResNet image tower')
            image_encoder = CLIPDenseResNet(visual, mode='plain')
        else:
            image_encoder = CLIPViTFeaturePyramid(visual, **(vit or {}))
        text_encoder = ContextPromptTextEncoder(clip_model, tokenizer, num_context=num_context,
                                                name_length=name_length)
        return cls(image_encoder, text_encoder, class_names=class_names, **kwargs)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def fused_channels(self) -> int:
        """Channels the fusion adds to its level (``K``, or ``C`` when vocabulary-agnostic)."""
        return self.embed_dim if self.vocabulary_agnostic else self.num_classes

    def encode_image(self, images: Tensor) -> DenseOutput:
        """Step 1. Shapes: ``(B, 3, H, W)`` -> :class:`DenseOutput` with four ``features``."""
        encoder = self.image_encoder
        if isinstance(encoder, CLIPViTFeaturePyramid):
            return encoder(images)
        stages = encoder.stages(images)
        if self.pool_positions == 'crop':
            global_embedding, dense = cropped_attention_pool(encoder.visual.attnpool, stages[-1])
        else:
            global_embedding, dense = encoder.attention_pool(stages[-1])
        return DenseOutput(dense=dense, global_embedding=global_embedding, features=stages)

    def encode_text(self, global_embedding: Tensor, dense: Tensor,
                    tokens: Tensor | None = None) -> Tensor:
        """Steps 2-3: context-refined text embeddings of each image.

        Shapes:
            global_embedding ``(B, C)``, dense ``(B, C, h, w)``, tokens ``(K, L)``;
            returns ``(B, K, C)``.
        """
        tokens = self.tokens if tokens is None else tokens
        batch = dense.shape[0]
        text = self.text_encoder(tokens.to(dense.device))
        text = text.to(dense.dtype).expand(batch, -1, -1)
        memory = torch.cat([global_embedding[:, None], dense.flatten(2).transpose(1, 2)], dim=1)
        delta = self.context_decoder(text, memory)
        return text + self.gamma * delta

    def fuse(self, features: Sequence[Tensor], score_map: Tensor, text: Tensor) -> list[Tensor]:
        """Step 5: the neck's input. Shapes: see :class:`DenseCLIPOutput`."""
        index = self.score_concat_index
        if index is None:
            sizes = [f.shape[-2:] for f in features]
            if score_map.shape[-2:] not in sizes:
                raise ValueError(f'no feature level has the score map\'s size '
                                 f'{tuple(score_map.shape[-2:])} (levels {sizes}); set '
                                 'score_concat_index')
            index = sizes.index(score_map.shape[-2:])
        if self.vocabulary_agnostic:
            probs = torch.softmax(score_map / (self.score_scale * self.agnostic_temperature),
                                  dim=1)
            extra = torch.einsum('bkhw,bkc->bchw', probs, F.normalize(text, dim=2))
        else:
            extra = score_map
        level = features[index]
        if level.shape[-2:] != extra.shape[-2:]:
            raise ValueError(f'level {index} is {tuple(level.shape[-2:])} but the score map '
                             f'{tuple(extra.shape[-2:])}; choose the level of the dense '
                             'embeddings\' stride')
        fused = list(features)
        fused[index] = torch.cat([level, extra.to(level.dtype)], dim=1)
        return fused

    def forward(self, images: Tensor, class_names: Sequence[str] | None = None
                ) -> DenseCLIPOutput:
        """The whole language-guided forward of a batch of normalised images.

        Args:
            images: ``(B, 3, H, W)``.
            class_names: a vocabulary for this call; default the one given at construction.
        """
        tokens = None
        if class_names is not None and tuple(class_names) != self.class_names:
            if not self.vocabulary_agnostic and len(class_names) != self.num_classes:
                raise ValueError(f'closed-set DenseCLIP fuses {self.num_classes} score channels '
                                 f'into its neck, so it takes {self.num_classes} class names, '
                                 f'not {len(class_names)}; build it with '
                                 'vocabulary_agnostic=True for a free vocabulary')
            tokens = self.text_encoder.tokenize(class_names)
        out = self.encode_image(images)
        text = self.encode_text(out.global_embedding, out.dense, tokens)
        score_map = batched_score_map(out.dense, text, self.score_scale)
        fused = self.fuse(out.features, score_map, text)
        return DenseCLIPOutput(features=list(out.features), global_embedding=out.global_embedding,
                               dense=out.dense, text=text, score_map=score_map, fused=fused)
