"""Last-block variants that turn a CLIP ViT's patch tokens into dense embeddings.

Each training-free method changes only the last transformer block:

========== =================================================== ======== =====
mode       attention of the last block                         residual FFN
========== =================================================== ======== =====
plain      softmax(q kᵀ)  (ordinary CLIP)                      yes      yes
maskclip   identity: each token keeps its own value (MaskCLIP) no       no
sclip      softmax(q qᵀ) + softmax(k kᵀ)  (SCLIP)              yes      yes
clearclip  softmax(q qᵀ)  (ClearCLIP)                          no       no
naclip     softmax(k kᵀ + Gaussian neighbourhood prior)        no       no
========== =================================================== ======== =====

Tokens are batch-first ``(B, L, D)`` with the class token at index 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DENSE_MODES = ('plain', 'maskclip', 'sclip', 'clearclip', 'naclip')
VIT_ONLY_MODES = ('sclip', 'clearclip', 'naclip')


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known dense mode, else raise a ValueError naming the choices."""
    if mode not in DENSE_MODES:
        raise ValueError(f'unknown dense mode {mode!r}; choose one of {", ".join(DENSE_MODES)}')
    return mode


def neighbourhood_prior(grid_hw: tuple[int, int], std: float, *, device=None,
                        dtype=torch.float32) -> Tensor:
    """NACLIP's additive attention prior: a Gaussian of the distance between two patches.

    ``prior[p, p'] = exp(-|pos(p) - pos(p')|² / (2 std²))`` over patch positions in patch units;
    the class token's row and column are zero.

    Shapes:
        returns ``(1 + gh * gw, 1 + gh * gw)``.
    """
    if std <= 0:
        raise ValueError(f'naclip_std must be positive, got {std}')
    gh, gw = grid_hw
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float32),
                            torch.arange(gw, dtype=torch.float32), indexing='ij')
    pos = torch.stack([ys.flatten(), xs.flatten()], dim=1)
    dist2 = (pos[:, None, :] - pos[None, :, :]).square().sum(-1)
    prior = torch.zeros(gh * gw + 1, gh * gw + 1)
    prior[1:, 1:] = torch.exp(-dist2 / (2.0 * std * std))
    return prior.to(device=device, dtype=dtype)


def _heads(x: Tensor, num_heads: int) -> Tensor:
    b, n, d = x.shape
    return x.reshape(b, n, num_heads, d // num_heads).transpose(1, 2)


def dense_attention(attn: nn.MultiheadAttention, h: Tensor, mode: str, *,
                    prior: Tensor | None = None) -> Tensor:
    """The last block's attention output (after ``out_proj``) for a dense mode.

    Shapes:
        h: ``(B, L, D)`` tokens after ``ln_1``; returns ``(B, L, D)``.
    """
    num_heads = attn.num_heads
    q, k, v = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    if mode == 'maskclip':
        return attn.out_proj(v)
    q, k, v = (_heads(t, num_heads) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    if mode == 'plain':
        weights = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    elif mode == 'sclip':
        weights = (torch.softmax(q @ q.transpose(-2, -1) * scale, dim=-1)
                   + torch.softmax(k @ k.transpose(-2, -1) * scale, dim=-1))
    elif mode == 'clearclip':
        weights = torch.softmax(q @ q.transpose(-2, -1) * scale, dim=-1)
    elif mode == 'naclip':
        if prior is None:
            raise ValueError('naclip needs the neighbourhood prior')
        weights = torch.softmax(k @ k.transpose(-2, -1) * scale + prior, dim=-1)
    else:
        raise ValueError(f'unknown dense mode {mode!r}; choose one of {", ".join(DENSE_MODES)}')
    out = (weights @ v).transpose(1, 2).flatten(2)
    return attn.out_proj(out)


def dense_last_block(block: nn.Module, x: Tensor, mode: str, *,
                     prior: Tensor | None = None) -> Tensor:
    """Run an open_clip ``ResidualAttentionBlock`` the way ``mode`` prescribes.

    Shapes:
        x: ``(B, L, D)`` tokens entering the block; returns ``(B, L, D)``.
    """
    if mode == 'plain':
        return block(x)
    out = dense_attention(block.attn, block.ln_1(x), mode, prior=prior)
    if mode != 'sclip':
        return out
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def last_block_with_attention(block: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """Run an open_clip ``ResidualAttentionBlock`` as open_clip does, and return its attention
    probabilities too (open_clip's attention does not expose them). The probabilities stay in
    the autograd graph, so gradients w.r.t. them (attention relevancy, Chefer et al.) can be
    taken with ``torch.autograd.grad``.

    Shapes:
        x: ``(B, L, D)`` tokens entering the block; returns tokens ``(B, L, D)`` and
        probabilities ``(B, heads, L, L)``.
    """
    attn = block.attn
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (_heads(t, attn.num_heads) for t in (q, k, v))
    probs = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
    out = attn.out_proj((probs @ v).transpose(1, 2).flatten(2))
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x))), probs
