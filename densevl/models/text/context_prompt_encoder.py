"""CLIP's text tower with learnable context vectors between the start token and the class name."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

_TOWER_PARTS = ('token_embedding', 'positional_embedding', 'transformer', 'ln_final',
                'text_projection', 'attn_mask')


class ContextPromptTextEncoder(nn.Module):
    """Class-name embeddings from a frozen CLIP text tower prompted by learned context vectors.

    DenseCLIP's text side (its ``CLIPTextContextEncoder``). A class name is tokenised into a
    *name slot* of ``name_length`` tokens (``[SOT] name [EOT] pad``, 5 by default: up to three BPE
    tokens). The ``num_context`` learnable vectors (trunc-normal, std 1) are inserted after
    ``[SOT]``, so the tower reads ``num_context + name_length`` positions (8 + 5 = 13: DenseCLIP's
    text ``context_length``) with the first that many rows of CLIP's positional embedding and
    CLIP's causal mask; the output is the ``[EOT]`` position after ``ln_final`` and the text
    projection.

    **Long names.** DenseCLIP raises for a name that does not fit its slot. Here the slot grows
    instead: the name slot becomes as long as the longest name of the batch needs, and the slice of
    the positional embedding grows with it. Because the tower is causal, the ``[EOT]`` output of a
    name that fitted is unchanged by the padding that growth adds after it, so growing is exact
    for every other name. The limit is the positional table (77 rows for CLIP): a name may have
    at most ``rows - num_context - 2`` BPE tokens.

    The tower's parameters are the CLIP model's own (shared, not copied); ``frozen=True`` sets
    ``requires_grad=False`` on them (DenseCLIP trains its text encoder with lr 0). Only
    :attr:`contexts` is trained then. The full positional table is kept so that names can grow;
    DenseCLIP's checkpoints hold only its first 13 rows (see :meth:`load_truncated_positions`).

    Args:
        clip_model: an open_clip ``CLIP`` (its text tower is used; causal mask, ``[EOT]``
            pooling by the largest token id).
        tokenizer: its open_clip tokenizer, ``list[str] -> LongTensor (N, L)``.
        num_context: number of learned context vectors.
        name_length: tokens of the name slot, ``[SOT]`` and ``[EOT]`` included.
        frozen: freeze the text tower.

    Shapes:
        :meth:`forward`: tokens ``(K, L)`` -> ``(Bc, K, C)`` with ``Bc`` the batch of the context
        vectors (1 for the learned ones).
    """

    def __init__(self, clip_model: nn.Module, tokenizer, *, num_context: int = 8,
                 name_length: int = 5, frozen: bool = True) -> None:
        super().__init__()
        missing = [p for p in _TOWER_PARTS if not hasattr(clip_model, p)]
        if missing:
            raise TypeError(f'{type(clip_model).__name__} has no CLIP text tower (missing '
                            f'{", ".join(missing)}); pass an open_clip CLIP model')
        if getattr(clip_model, 'text_pool_type', 'argmax') != 'argmax':
            raise ValueError('ContextPromptTextEncoder pools the [EOT] token found by the largest '
                             f'token id; this model pools {clip_model.text_pool_type!r}')
        if name_length < 3:
            raise ValueError(f'name_length must be at least 3 ([SOT], a token, [EOT]), got '
                             f'{name_length}')
        self.tokenizer = tokenizer
        self.token_embedding = clip_model.token_embedding
        self.positional_embedding = clip_model.positional_embedding
        self.transformer = clip_model.transformer
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.register_buffer('attn_mask', clip_model.attn_mask, persistent=False)
        self.num_context = num_context
        self.name_length = name_length
        self.width = self.token_embedding.embedding_dim
        self.contexts = nn.Parameter(torch.empty(1, num_context, self.width))
        nn.init.trunc_normal_(self.contexts, std=1.0)
        if frozen:
            for name, param in self.named_parameters():
                if name != 'contexts':
                    param.requires_grad_(False)

    @property
    def max_name_tokens(self) -> int:
        """The most BPE tokens a class name may have (the positional table's limit)."""
        return min(self.positional_embedding.shape[0], self.attn_mask.shape[0]) \
            - self.num_context - 2

    def tokenize(self, class_names: Sequence[str]) -> Tensor:
        """Tokens of the class names in a name slot, grown to fit the longest name.

        Shapes:
            returns ``(K, max(name_length, longest + 2))`` long.
        """
        if isinstance(class_names, str) or len(class_names) == 0:
            raise ValueError('class_names must be a non-empty sequence of strings, got '
                             f'{class_names!r}')
        tokens = self.tokenizer(list(class_names))
        ends = tokens.argmax(dim=-1)
        longest = int(ends.max()) + 1
        if longest - 2 > self.max_name_tokens or longest == tokens.shape[1]:
            worst = class_names[int(ends.argmax())]
            raise ValueError(f'class name {worst!r} is too long: it has {longest - 2}+ BPE '
                             f'tokens and {self.num_context} context vectors leave room for '
                             f'{self.max_name_tokens}; shorten the name')
        length = max(self.name_length, longest)
        if length > self.name_length:
            logger.info('name slot grown from %d to %d tokens for %r', self.name_length, length,
                        class_names[int(ends.argmax())])
        return tokens[:, :length]

    def forward(self, tokens: Tensor, contexts: Tensor | None = None) -> Tensor:
        """``[EOT]`` embeddings of ``[SOT] contexts name [EOT]``.

        Args:
            tokens: name-slot tokens from :meth:`tokenize`.
            contexts: context vectors ``(Bc, N, width)``; default :attr:`contexts`.
        """
        contexts = self.contexts if contexts is None else contexts
        num_names, slot = tokens.shape
        batch, num_context, width = contexts.shape
        length = num_context + slot
        if length > min(self.positional_embedding.shape[0], self.attn_mask.shape[0]):
            raise ValueError(f'{num_context} context vectors + {slot} name tokens exceed the '
                             f'{self.positional_embedding.shape[0]} positions of the text tower; '
                             'a checkpoint with a truncated positional table cannot grow the '
                             'name slot (load_truncated_positions keeps CLIP\'s other rows)')
        dtype = self.positional_embedding.dtype
        names = self.token_embedding(tokens).to(dtype)
        names = names[None].expand(batch, -1, -1, -1)
        ctx = contexts.to(dtype)[:, None].expand(-1, num_names, -1, -1)
        x = torch.cat([names[:, :, :1], ctx, names[:, :, 1:]], dim=2).reshape(-1, length, width)
        x = x + self.positional_embedding[:length]
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = self.ln_final(x)
        eot = (tokens.argmax(dim=-1) + num_context).repeat(batch)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        x = self.text_projection(x) if isinstance(self.text_projection, nn.Module) \
            else x @ self.text_projection
        return x.reshape(batch, num_names, -1)

    @torch.no_grad()
    def load_truncated_positions(self, positions: Tensor) -> None:
        """Copy a truncated positional table (DenseCLIP checkpoints: 13 rows) into the first rows.

        The other rows stay CLIP's, so the name slot can still grow.

        Shapes:
            positions: ``(L, width)`` with ``L`` at most the table's rows.
        """
        rows = positions.shape[0]
        if rows > self.positional_embedding.shape[0] or positions.shape[1] != self.width:
            raise ValueError(f'positional table of shape {tuple(positions.shape)} does not fit '
                             f'{tuple(self.positional_embedding.shape)}')
        self.positional_embedding[:rows].copy_(positions)
