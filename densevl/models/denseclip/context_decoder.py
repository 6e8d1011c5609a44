"""DenseCLIP's context decoder: text embeddings attend to the image's embeddings."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class _Attention(nn.Module):
    """Multi-head attention with bias-free q/k/v projections and a biased output projection."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'width {dim} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, query: Tensor, memory: Tensor) -> Tensor:
        """Shapes: query ``(B, N, D)``, memory ``(B, M, D)``; returns ``(B, N, D)``."""
        q, k, v = (self._split(p(t)) for p, t in
                   ((self.q_proj, query), (self.k_proj, memory), (self.v_proj, memory)))
        x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return self.proj_drop(self.proj(x))


class _DecoderLayer(nn.Module):
    """Pre-norm layer: self-attention, cross-attention to the memory, 4x MLP."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = _Attention(dim, num_heads, dropout)
        self.cross_attn = _Attention(dim, num_heads, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h, h)
        # the memory is normalised once by the decoder's memory projection, not per layer
        x = x + self.cross_attn(self.norm2(x), memory)
        return x + self.dropout(self.mlp(self.norm3(x)))


class ContextDecoder(nn.Module):
    """Transformer decoder whose queries are class text embeddings and memory the image's.

    ``memory = LN(Linear(LN(visual)))`` and ``x = Linear(LN(text))`` project both to
    ``width``; ``layers`` pre-norm decoder layers follow; ``Linear(LN(x))`` maps back to the
    joint dimension. The output is the *update* ``Δ`` of the text embeddings (DenseCLIP adds
    ``γ·Δ``, see :class:`~densevl.models.denseclip.denseclip_core.DenseCLIPCore`). Linear weights
    start trunc-normal (std 0.02) with zero biases, LayerNorms at identity. Sub-module names follow
    DenseCLIP's, so its checkpoints load key for key.

    Args:
        visual_dim: joint embedding dimension ``C`` (1024 for RN50, 512 for ViT-B/16).
        width: decoder width (256).
        num_heads: attention heads (4).
        layers: decoder layers (3 in DenseCLIP's configs).
        dropout: dropout after each attention and in and after the MLP (0.1).

    Shapes:
        text: ``(B, K, C)``; visual: ``(B, M, C)`` (global token then ``h*w`` dense tokens);
        returns ``(B, K, C)``.
    """

    def __init__(self, visual_dim: int, *, width: int = 256, num_heads: int = 4,
                 layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.memory_proj = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, width),
                                         nn.LayerNorm(width))
        self.text_proj = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, width))
        self.decoder = nn.ModuleList(
            [_DecoderLayer(width, num_heads, dropout) for _ in range(layers)])
        self.out_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, visual_dim))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        if text.shape[0] != visual.shape[0] or text.shape[-1] != visual.shape[-1]:
            raise ValueError(f'text {tuple(text.shape)} and visual {tuple(visual.shape)} must '
                             'share the batch size and the joint dimension')
        memory = self.memory_proj(visual)
        x = self.text_proj(text)
        for layer in self.decoder:
            x = layer(x, memory)
        return self.out_proj(x)
