"""OVSeg's class head: query embeddings in CLIP's space, cosine logits against the vocabulary.

Each mask query is mapped by an MLP into CLIP's joint image-text space; its logits are the
cosine with the vocabulary's frozen text embeddings, and with one learned no-object embedding
(the last class), times a fixed temperature. No weight depends on the vocabulary.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..text import Vocabulary

#: The fixed temperature of OVSeg's cosine logits (class head and masked-crop CLIP).
OVSEG_TEMPERATURE = 100.0


def _unit(x: Tensor) -> Tensor:
    # the reference divides by the norm (no epsilon); kept so for bit-faithful logits
    return x / x.norm(dim=-1, keepdim=True)


def text_matrix(vocabulary: Vocabulary, like: Tensor) -> Tensor:
    """The vocabulary's unit text embeddings, on ``like``'s device and dtype.

    Shapes:
        returns ``(Q, C)``.

    Raises:
        ValueError: a vocabulary without embeddings, or with embeddings that are not unit-norm.
    """
    if vocabulary.embeddings is None:
        raise ValueError('the vocabulary has no text embeddings; embed it first, e.g. '
                         "TextEmbedder(clip, tokenizer, model_id=..., templates='vild14')"
                         '(class_names), as OVSeg uses the 14 ViLD prompts')
    text = vocabulary.embeddings.to(device=like.device, dtype=like.dtype)
    norms = text.norm(dim=-1)
    if text.numel() and float((norms - 1).abs().max()) > 1e-3:
        raise ValueError(f'the vocabulary embeddings must be L2-normalised (norms from '
                         f'{float(norms.min()):.4g} to {float(norms.max()):.4g}); TextEmbedder '
                         'makes them so, or normalise them with F.normalize(embeddings, dim=-1)')
    return text


def cosine_logits(features: Tensor, text: Tensor,
                  temperature: float = OVSEG_TEMPERATURE) -> Tensor:
    """``temperature * cos(feature, text)`` for every feature and text row.

    The features are L2-normalised here; ``text`` must be unit-norm already.

    Shapes:
        features: ``(..., C)``; text: ``(K, C)``; returns ``(..., K)``.
    """
    if features.shape[-1] != text.shape[-1]:
        raise ValueError(f'features have {features.shape[-1]} channels but the text embeddings '
                         f'{text.shape[-1]}; they must live in the same CLIP space')
    return temperature * _unit(features) @ text.t()


class CLIPSpaceClassHead(nn.Module):
    """Per-query class logits in CLIP space, with a learned no-object class appended.

    ``logits = temperature * cos(MLP(query), [text_1 .. text_Q, no_object])``; the MLP is
    ``Linear -> ReLU -> ... -> Linear`` (OVSeg: ``256 -> 1024 -> C`` in two layers), the
    no-object embedding is L2-normalised before use. Parameter names follow the reference's
    (``layers.i`` of its ``class_embed`` MLP; ``non_object_embedding`` of its CLIP adapter).

    Args:
        in_dim: query width (MaskFormer's hidden dim, 256).
        embed_dim: ``C``, the CLIP joint-space dimension (512 for ViT-B/16, 768 for ViT-L/14).
        hidden_dim: width of the hidden layers (1024).
        num_layers: linear layers of the MLP (2).
        temperature: fixed logit scale (100).
        text_width: width of the CLIP text transformer; the no-object embedding is initialised
            with std ``text_width ** -0.5`` as in the reference (default ``embed_dim``).

    Shapes:
        forward: query features ``(..., N, in_dim)`` (e.g. ``(B, N, D)``, or ``(L, B, N, D)``
        for every decoder layer); returns ``(..., N, Q + 1)``, the no-object logit last.
    """

    def __init__(self, in_dim: int = 256, embed_dim: int = 512, *, hidden_dim: int = 1024,
                 num_layers: int = 2, temperature: float = OVSEG_TEMPERATURE,
                 text_width: int | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'num_layers must be at least 1, got {num_layers}')
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [embed_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.temperature = float(temperature)
        self.non_object_embedding = nn.Parameter(torch.empty(1, embed_dim))
        nn.init.normal_(self.non_object_embedding, std=(text_width or embed_dim) ** -0.5)

    @property
    def embed_dim(self) -> int:
        return self.layers[-1].out_features

    def embed(self, queries: Tensor) -> Tensor:
        """The MLP: query features to CLIP space (not normalised).

        Shapes:
            ``(..., in_dim) -> (..., C)``.
        """
        x = queries
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x

    def class_embeddings(self, vocabulary: Vocabulary, like: Tensor) -> Tensor:
        """The vocabulary's text embeddings with the unit no-object embedding appended.

        Shapes:
            returns ``(Q + 1, C)``.
        """
        text = text_matrix(vocabulary, like)
        return torch.cat([text, _unit(self.non_object_embedding.to(text.dtype))], dim=0)

    def forward(self, queries: Tensor, vocabulary: Vocabulary) -> Tensor:
        """Class logits of every query, the no-object class last."""
        embedded = self.embed(queries)
        if vocabulary.embeddings is not None and \
                vocabulary.embeddings.shape[-1] != self.embed_dim:
            raise ValueError(f'the head embeds queries in {self.embed_dim} dimensions but the '
                             f'vocabulary has {vocabulary.embeddings.shape[-1]}-d text '
                             'embeddings; build the head with embed_dim of this CLIP')
        return cosine_logits(embedded, self.class_embeddings(vocabulary, embedded),
                             self.temperature)
