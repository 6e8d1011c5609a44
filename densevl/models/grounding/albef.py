"""ALBEF / TCL image-text matching model for GroundVLP heat maps (plain PyTorch + timm's ViT).

ALBEF (Li et al., NeurIPS 2021) and TCL (Yang et al., CVPR 2022) share one architecture: a ViT
image encoder (timm's ``VisionTransformer``, same parameter names), a BERT whose first
``fusion_layer`` layers encode the text alone and whose later layers add cross-attention to the
image tokens, and an ITM head (``Linear(hidden, 2)``, index 1 = "matches").

The BERT is written here rather than taken from ``transformers``' ``BertModel``: there a layer
gets cross-attention only as a causal decoder, its keys/values are sized by the text width (ALBEF
sizes them by ``encoder_width``), and the attention probabilities, whose gradient is the heat map,
are not a stable part of its API. The parameter names are BERT's, so the released checkpoints
load as they are (:func:`load_albef_checkpoint`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ['ALBEF_IGNORED_KEYS', 'ALBEFConfig', 'ALBEFITM', 'load_albef_checkpoint']

#: Keys of the released ALBEF.pth / TCL.pth that image-text matching does not use (prefixes end
#: in '.'): momentum encoders, contrastive projections and queues, the MLM head, the pooler, and
#: the position-id buffer old ``transformers`` versions saved.
ALBEF_IGNORED_KEYS = (
    'visual_encoder_m.', 'text_encoder_m.', 'vision_proj.', 'text_proj.', 'vision_proj_m.',
    'text_proj_m.', 'text_encoder.cls.', 'text_encoder.pooler.', 'temp', 'image_queue',
    'text_queue', 'queue_ptr', 'idx_queue', 'text_encoder.embeddings.position_ids')

#: Where the released weights come from (named in the errors; never downloaded here).
WEIGHTS_HINT = ('ALBEF.pth: https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth; '
                'TCL.pth: the TCL checkpoint linked from github.com/uta-smile/TCL (as GroundVLP '
                'uses it); put it under checkpoints/ and pass its path')


@dataclass(frozen=True)
class ALBEFConfig:
    """Dimensions of the ITM model; the defaults are ALBEF/TCL's (ViT-B/16 at 256 px,
    bert-base-uncased with fusion from layer 6)."""

    image_size: int = 256
    patch_size: int = 16
    vision_width: int = 768
    vision_depth: int = 12
    vision_heads: int = 12
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    fusion_layer: int = 6
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f'hidden_size {self.hidden_size} is not a multiple of num_heads '
                             f'{self.num_heads}')
        if not 0 <= self.fusion_layer < self.num_layers:
            raise ValueError(f'fusion_layer {self.fusion_layer} outside 0..{self.num_layers - 1}')


class BertAttentionCore(nn.Module):
    """BERT's multi-head attention (``query``/``key``/``value``); returns the context and the
    attention probabilities (kept in the graph, so their gradient can be taken)."""

    def __init__(self, hidden: int, heads: int, kv_width: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)

    def _split(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x: Tensor, kv: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        q, k, v = self._split(self.query(x)), self._split(self.key(kv)), self._split(self.value(kv))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores + mask
        probs = scores.softmax(dim=-1)
        return (probs @ v).transpose(1, 2).flatten(2), probs


class BertAddNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)`` (BERT's ``output`` blocks)."""

    def __init__(self, in_width: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_width, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttentionBlock(nn.Module):
    def __init__(self, cfg: ALBEFConfig, kv_width: int) -> None:
        super().__init__()
        self.self = BertAttentionCore(cfg.hidden_size, cfg.num_heads, kv_width)
        self.output = BertAddNorm(cfg.hidden_size, cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: Tensor, kv: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        context, probs = self.self(x, kv, mask)
        return self.output(context, x), probs


class BertIntermediate(nn.Module):
    def __init__(self, cfg: ALBEFConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.gelu(self.dense(x))


class FusionBertLayer(nn.Module):
    """Self-attention, cross-attention to the image (fusion layers only), feed-forward."""

    def __init__(self, cfg: ALBEFConfig, fusion: bool) -> None:
        super().__init__()
        self.attention = BertAttentionBlock(cfg, cfg.hidden_size)
        if fusion:
            self.crossattention = BertAttentionBlock(cfg, cfg.vision_width)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertAddNorm(cfg.intermediate_size, cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor, image: Tensor) -> tuple[Tensor, Tensor | None]:
        x, _ = self.attention(x, x, mask)
        probs = None
        if hasattr(self, 'crossattention'):
            x, probs = self.crossattention(x, image, None)   # every image token is attended
        return self.output(self.intermediate(x), x), probs


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: ALBEFConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
             + self.position_embeddings(positions))
        return self.LayerNorm(x)


class FusionBert(nn.Module):
    """ALBEF's BERT (``text_encoder``): text layers, then fusion layers with cross-attention."""

    def __init__(self, cfg: ALBEFConfig) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            FusionBertLayer(cfg, fusion=i >= cfg.fusion_layer) for i in range(cfg.num_layers))

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                image_embeds: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        """Last hidden states and each layer's cross-attention probabilities (None in the text
        layers). Shapes: ids, mask ``(K, L)``; image ``(K, N, Cv)``; returns ``(K, L, C)`` and
        ``(K, heads, L, N)`` per fusion layer."""
        # BERT's additive mask (-10000, as ALBEF's code); padded keys get exactly zero weight
        mask = (1.0 - attention_mask[:, None, None, :].to(image_embeds.dtype)) * -10000.0
        x = self.embeddings(input_ids)
        probs = []
        for layer in self.encoder.layer:
            x, p = layer(x, mask, image_embeds)
            probs.append(p)
        return x, probs


def build_vit(cfg: ALBEFConfig) -> nn.Module:
    """timm's ``VisionTransformer`` with ALBEF's settings; its parameter names are ALBEF's."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.vision_width,
        depth=cfg.vision_depth, num_heads=cfg.vision_heads, mlp_ratio=4, qkv_bias=True,
        num_classes=0, global_pool='token', norm_layer=partial(nn.LayerNorm, eps=1e-6))


class ALBEFITM(nn.Module):
    """ALBEF / TCL image-text matching: ``visual_encoder`` (ViT), ``text_encoder`` (fusion
    BERT), ``itm_head``.

    Args:
        config: the dimensions (ALBEF/TCL's by default).

    Example::

        model = ALBEFITM()
        ignored = load_albef_checkpoint(model, 'checkpoints/ALBEF.pth')
        logits, cross = model(model.encode_image(images), input_ids, attention_mask)
    """

    def __init__(self, config: ALBEFConfig | None = None) -> None:
        super().__init__()
        self.config = config or ALBEFConfig()
        self.visual_encoder = build_vit(self.config)
        self.text_encoder = FusionBert(self.config)
        self.itm_head = nn.Linear(self.config.hidden_size, 2)

    @property
    def grid(self) -> tuple[int, int]:
        side = self.config.image_size // self.config.patch_size
        return side, side

    def encode_image(self, images: Tensor) -> Tensor:
        """ViT tokens ([CLS] first), after the final norm. Shapes: ``(B, 3, S, S) ->
        (B, 1 + (S/p)^2, Cv)``."""
        return self.visual_encoder.forward_features(images)

    def forward(self, image_embeds: Tensor, input_ids: Tensor,
                attention_mask: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        """ITM logits of each (image, text) pair and the cross-attention probabilities.

        Shapes:
            image_embeds: ``(K, N, Cv)`` (expand one image's to ``K``); input_ids,
            attention_mask: ``(K, L)``; returns ``(K, 2)`` and per layer ``(K, heads, L, N)``
            or None.
        """
        hidden, probs = self.text_encoder(input_ids, attention_mask, image_embeds)
        return self.itm_head(hidden[:, 0]), probs


def _ignored(key: str) -> bool:
    return any(key.startswith(p) if p.endswith('.') else key == p for p in ALBEF_IGNORED_KEYS)


def load_albef_checkpoint(model: ALBEFITM, path: str | Path) -> list[str]:
    """Load a released ALBEF.pth / TCL.pth (or any checkpoint of that layout) strictly.

    ``text_encoder.bert.*`` is read as ``text_encoder.*`` (the pre-training checkpoints hold a
    masked-LM BERT); the keys of :data:`ALBEF_IGNORED_KEYS` are skipped. Any other unexpected
    key, any missing key, or a shape that differs is an error that lists them (the reference
    loads with ``strict=False``, which hides mismatches).

    Returns:
        The checkpoint keys that were ignored, sorted.

    Raises:
        FileNotFoundError: no file at ``path`` (the message says where to get it).
        KeyError: unexpected or missing keys; ValueError: shape mismatches.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'ALBEF/TCL weights not found at {path}; nothing is downloaded '
                                f'here. Get them yourself: {WEIGHTS_HINT}')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    state = checkpoint.get('model', checkpoint)
    renamed = {k.replace('text_encoder.bert.', 'text_encoder.', 1)
               if k.startswith('text_encoder.bert.') else k: v for k, v in state.items()}
    ignored = sorted(k for k in renamed if _ignored(k))
    wanted = model.state_dict()
    unexpected = sorted(k for k in renamed if k not in wanted and not _ignored(k))
    missing = sorted(k for k in wanted if k not in renamed)
    if unexpected or missing:
        raise KeyError(f'{path} does not have the ALBEF/TCL ITM layout: unexpected keys '
                       f'{unexpected}, missing keys {missing}')
    shapes = [f'{k}: {tuple(renamed[k].shape)} vs model {tuple(v.shape)}'
              for k, v in wanted.items() if renamed[k].shape != v.shape]
    if shapes:
        raise ValueError(f'{path}: shapes differ from the model ({model.config}): {shapes}')
    model.load_state_dict({k: renamed[k] for k in wanted}, strict=True)
    return ignored
