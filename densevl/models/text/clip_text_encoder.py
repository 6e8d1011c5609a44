"""``encode_text`` for open_clip ``CLIP`` models, run only over the tokens a batch uses."""
from __future__ import annotations

import torch
from torch import Tensor, nn

_REQUIRED = ('token_embedding', 'positional_embedding', 'transformer', 'ln_final',
             'text_projection', 'attn_mask', 'text_pool_type')


def encode_text_tokens(clip_model: nn.Module, tokens: Tensor) -> Tensor:
    """Text embeddings equal to ``clip_model.encode_text(tokens)`` (not normalised), faster.

    An open_clip ``CLIP`` pools the end-of-text token (``'argmax'`` pooling: the largest token id;
    ``'eos'``: the first ``text_eos_id``), and its causal mask stops any position from attending
    to later ones. So every position after the last end-of-text token of the batch can be
    dropped without changing the result: the batch runs over ``L' = max(eot) + 1`` positions
    instead of the full context (~10 instead of 77 for class-name prompts). Models without these
    parts (``CustomTextCLIP``, Hugging Face text towers, no causal mask, other pooling) fall back
    to ``clip_model.encode_text``.

    Args:
        clip_model: an open_clip model; ``tokens`` must already be on its device.
        tokens: token ids as the model's tokenizer returns them.

    Shapes:
        tokens: ``(N, L)`` long; returns ``(N, C)``.
    """
    end = _end_positions(clip_model, tokens)
    if end is None:
        return clip_model.encode_text(tokens)
    length = int(end.max()) + 1
    transformer = clip_model.transformer
    cast_dtype = (transformer.get_cast_dtype() if hasattr(transformer, 'get_cast_dtype')
                  else clip_model.positional_embedding.dtype)

    x = clip_model.token_embedding(tokens[:, :length]).to(cast_dtype)
    x = x + clip_model.positional_embedding[:length].to(cast_dtype)
    x = transformer(x, attn_mask=clip_model.attn_mask[:length, :length])
    x = clip_model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), end]
    projection = clip_model.text_projection
    if projection is None:
        return x
    if isinstance(projection, nn.Module):
        return projection(x)
    return x @ projection


def _end_positions(clip_model: nn.Module, tokens: Tensor) -> Tensor | None:
    """Index of the pooled token of each row, or ``None`` where truncating is not exact."""
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        return None
    if not all(hasattr(clip_model, name) for name in _REQUIRED):
        return None
    mask, pos = clip_model.attn_mask, clip_model.positional_embedding
    if not isinstance(mask, Tensor) or mask.ndim != 2 or not isinstance(pos, Tensor) \
            or pos.ndim != 2:
        return None
    pool_type = clip_model.text_pool_type
    if pool_type == 'argmax':
        end = tokens.argmax(dim=-1)
    elif pool_type == 'eos' and getattr(clip_model, 'text_eos_id', None) is not None:
        end = (tokens == clip_model.text_eos_id).int().argmax(dim=-1)
    else:
        return None
    if int(end.max()) + 1 > min(mask.shape[0], pos.shape[0]):
        return None
    return end
