"""DenseCLIP's language-guided forward, in plain PyTorch (the mm segmentor/detector wrap it)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..clip import (
    CLIPDenseResNet,
    CLIPViTFeaturePyramid,
    DenseOutput,
    is_modified_resnet,
    score_map,
)
from ..text import ContextPromptTextEncoder, Vocabulary
from .checkpoint import set_position_grid
from .context_decoder import ContextDecoder

# strides of the four feature levels of both image encoders
FEATURE_STRIDES = (4, 8, 16, 32)


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


class DenseCLIPCore(nn.Module):
    """Backbone features, embeddings, context-refined text, score map and the fused neck input.

    1. The image encoder gives four feature levels, a global embedding and dense embeddings: a
       :class:`CLIPDenseResNet` (res2-res5 and the attention pool over res5, every position a
       query) or a :class:`CLIPViTFeaturePyramid`, through their shared ``forward_dense``.
    2. The text encoder embeds the class names with the learned context (``(1, K, C)``,
       expanded to the batch).
    3. The :class:`ContextDecoder` lets the text attend to ``[global; dense]`` of each image;
       ``text + γ·Δ`` with ``γ`` per channel, initially ``gamma_init``.
    4. ``score_map = cos(dense, text) * score_scale`` per image. Segmentation: ``score_scale=1``;
       detection: ``1 / 0.07`` (the same map, upsampled, feeds :func:`box_score_map_loss`).
    5. The score map is concatenated to one level: res5 for a ResNet, stride 16 for a ViT-B/16
       (``score_concat_index`` 3 / 2 by default: the level as large as the score map).

    Closed set (DenseCLIP): the neck's input has ``K`` extra channels, so the class count is
    fixed by ``class_names``; other names may be passed at call time if there are as many
    classes (a class with synonyms gets the largest of its synonyms' scores,
    :meth:`Vocabulary.pool_synonyms`).
    ``vocabulary_agnostic=True`` (densevl, not in the paper) concatenates instead the text
    embedding averaged under ``softmax_k(cos / agnostic_temperature)`` at each position: ``C``
    channels whatever the vocabulary, so any ``class_names`` can be passed at call time (the
    head must then classify against the text embeddings too).

    Args:
        image_encoder: see step 1.
        text_encoder: a :class:`ContextPromptTextEncoder`.
        class_names: the default vocabulary.
        context_decoder: default ``ContextDecoder(C)`` (width 256, 4 heads, 3 layers).
        score_concat_index: level to fuse the score map into; ``None``: the level of the dense
            embeddings' stride.
        score_scale: multiplies the cosine score map.
        gamma_init: initial value of every channel of ``γ``.
        vocabulary_agnostic: see above.
        agnostic_temperature: softmax temperature of the vocabulary-agnostic fusion.
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: ContextPromptTextEncoder, *,
                 class_names: Sequence[str], context_decoder: ContextDecoder | None = None,
                 score_concat_index: int | None = None, score_scale: float = 1.0,
                 gamma_init: float = 1e-4, vocabulary_agnostic: bool = False,
                 agnostic_temperature: float = 0.07) -> None:
        super().__init__()
        if not isinstance(image_encoder, CLIPDenseResNet | CLIPViTFeaturePyramid):
            raise TypeError(f'image_encoder must be a CLIPDenseResNet or CLIPViTFeaturePyramid, '
                            f'got {type(image_encoder).__name__}')
        if score_concat_index is None:
            score_concat_index = FEATURE_STRIDES.index(image_encoder.patch_size)
        if not 0 <= score_concat_index < 4:
            raise ValueError(f'score_concat_index must be 0..3, got {score_concat_index}')
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.embed_dim = image_encoder.embed_dim
        self.context_decoder = context_decoder or ContextDecoder(self.embed_dim)
        self.gamma = nn.Parameter(torch.full((self.embed_dim,), float(gamma_init)))
        self.score_concat_index = score_concat_index
        self.score_scale = score_scale
        self.vocabulary_agnostic = vocabulary_agnostic
        self.agnostic_temperature = agnostic_temperature
        self.set_vocabulary(class_names)

    @classmethod
    def from_clip(cls, clip_model: nn.Module, tokenizer, *, class_names: Sequence[str],
                  vit: dict | None = None, input_resolution: int | None = None,
                  pool_positions: str = 'resize', num_context: int = 8, name_length: int = 5,
                  context_decoder: dict | None = None, **kwargs) -> DenseCLIPCore:
        """Build from an open_clip ``CLIP`` with :func:`build_denseclip_encoders`; ``kwargs``:
        the other arguments of :class:`DenseCLIPCore`."""
        image_encoder, text_encoder, decoder = build_denseclip_encoders(
            clip_model, tokenizer, vit=vit, input_resolution=input_resolution,
            pool_positions=pool_positions, num_context=num_context, name_length=name_length,
            context_decoder=context_decoder)
        return cls(image_encoder, text_encoder, class_names=class_names,
                   context_decoder=decoder, **kwargs)

    def set_vocabulary(self, class_names: Sequence[str]) -> None:
        """Replace the default vocabulary (closed set: as many classes as it was built with)."""
        vocab = self.vocabulary(class_names)
        if hasattr(self, 'tokens') and not self.vocabulary_agnostic \
                and vocab.num_classes != self.num_classes:
            raise ValueError(f'this DenseCLIP was built for {self.num_classes} classes, got '
                             f'{vocab.num_classes} names')
        self.default_vocabulary = vocab
        tokens = vocab.tokens.to(self.tokens.device) if hasattr(self, 'tokens') else vocab.tokens
        self.register_buffer('tokens', tokens, persistent=False)

    def vocabulary(self, class_names: Sequence[str] | Vocabulary) -> Vocabulary:
        """The :class:`Vocabulary` of ``class_names`` with the text encoder's tokens."""
        vocab = class_names if isinstance(class_names, Vocabulary) \
            else Vocabulary.parse(list(class_names))
        return vocab if vocab.tokens is not None \
            else vocab.with_tokens(self.text_encoder.tokenize(vocab.queries))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.default_vocabulary.class_names)

    @property
    def num_classes(self) -> int:
        return self.default_vocabulary.num_classes

    @property
    def fused_channels(self) -> int:
        """Channels the fusion adds to its level (``K``, or ``C`` when vocabulary-agnostic)."""
        return self.embed_dim if self.vocabulary_agnostic else self.num_classes

    def encode_image(self, images: Tensor) -> DenseOutput:
        """Step 1. Shapes: ``(B, 3, H, W)`` -> :class:`DenseOutput` with four ``features``."""
        return self.image_encoder.forward_dense(images, return_features=True)

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

    def forward(self, images: Tensor, class_names: Sequence[str] | Vocabulary | None = None
                ) -> DenseCLIPOutput:
        """The whole language-guided forward of a batch of normalised images.

        Args:
            images: ``(B, 3, H, W)``.
            class_names: a vocabulary for this call (names, or a :class:`Vocabulary`); default
                the one given at construction.
        """
        vocab = self.default_vocabulary if class_names is None else self.vocabulary(class_names)
        if not self.vocabulary_agnostic and vocab.num_classes != self.num_classes:
            raise ValueError(f'closed-set DenseCLIP fuses {self.num_classes} score channels '
                             f'into its neck, so it takes {self.num_classes} class names, '
                             f'not {vocab.num_classes}; build it with '
                             'vocabulary_agnostic=True for a free vocabulary')
        tokens = self.tokens if vocab is self.default_vocabulary else vocab.tokens
        out = self.encode_image(images)
        text = self.encode_text(out.global_embedding, out.dense, tokens)
        scores = score_map(out.dense, text, self.score_scale)
        if not self.vocabulary_agnostic:
            scores = vocab.pool_synonyms(scores)    # K score channels, whatever the synonyms
        fused = self.fuse(out.features, scores, text)
        return DenseCLIPOutput(features=list(out.features), global_embedding=out.global_embedding,
                               dense=out.dense, text=text, score_map=scores, fused=fused)


def build_denseclip_encoders(clip_model: nn.Module, tokenizer, *, vit: dict | None = None,
                             input_resolution: int | None = None, pool_positions: str = 'resize',
                             num_context: int = 8, name_length: int = 5,
                             context_decoder: dict | None = None
                             ) -> tuple[nn.Module, ContextPromptTextEncoder, ContextDecoder]:
    """The one builder of DenseCLIP's parts from an open_clip ``CLIP`` (segmentation and
    detection): image encoder, learned-context text encoder and context decoder.

    Args:
        clip_model, tokenizer: the CLIP; its towers are used (not copied).
        vit: keyword arguments of :class:`CLIPViTFeaturePyramid` (ViT towers only).
        input_resolution: see :func:`build_image_encoder`.
        pool_positions: ModifiedResNet towers only, see :class:`CLIPDenseResNet`.
        num_context, name_length: see :class:`ContextPromptTextEncoder`.
        context_decoder: keyword arguments of :class:`ContextDecoder`.
    """
    image_encoder = build_image_encoder(clip_model.visual, vit=vit,
                                        input_resolution=input_resolution,
                                        pool_positions=pool_positions)
    text_encoder = ContextPromptTextEncoder(clip_model, tokenizer, num_context=num_context,
                                            name_length=name_length)
    decoder = ContextDecoder(image_encoder.embed_dim, **(context_decoder or {}))
    return image_encoder, text_encoder, decoder


def build_image_encoder(visual: nn.Module, *, vit: dict | None = None,
                        input_resolution: int | None = None,
                        pool_positions: str = 'resize') -> CLIPDenseResNet | CLIPViTFeaturePyramid:
    """DenseCLIP's image encoder around an open_clip tower, its positional grid resized to
    ``input_resolution / stride`` (when given), as DenseCLIP builds its backbones."""
    if is_modified_resnet(visual):
        if vit:
            raise ValueError('vit options given for a ModifiedResNet image tower')
        encoder = CLIPDenseResNet(visual, mode='plain', pool_positions=pool_positions)
    else:
        encoder = CLIPViTFeaturePyramid(visual, **(vit or {}))
    if input_resolution is not None:
        if input_resolution % encoder.patch_size:
            raise ValueError(f'input_resolution {input_resolution} is not a multiple of the '
                             f"image tower's stride {encoder.patch_size}")
        set_position_grid(encoder, input_resolution // encoder.patch_size)
    return encoder
