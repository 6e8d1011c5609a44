"""GroundVLP's heat maps from ALBEF / TCL cross-attention (the method as published).

For an image and the prompt ``'there is a {expression}'``:

* the ITM positive logit ``s`` (``itm_head`` index 1) of each (image, prompt) pair;
* ``A``: the cross-attention probabilities of fusion layer 8 (the third cross-attention layer of
  ALBEF's BERT, whose fusion starts at layer 6); per text token ``t``,
  ``H_t = mean_heads(A ⊙ max(∂s/∂A, 0))`` over the image patches (the image [CLS] column
  dropped), padded tokens zeroed;
* **visual-word aggregation**: the mean of ``H_t`` over the text [CLS] and the tokens of the
  words tagged NOUN, VERB, ADJ, PROPN or NUM by the expression parser; over every non-pad token
  when there is no such word;
* bicubic upsampling (``align_corners=False``) to the original image; no normalisation.

Facts checked against om-ai-lab/GroundVLP ``models/albef/engine.py`` (``get_results_for_rec``)
by ``tests/test_grounding_albef.py``. Tokenisation is ALBEF's: [CLS] + WordPiece tokens, no
[SEP], at most 50 ids. Two deliberate differences, neither visible on ordinary expressions:
the batch is padded to its longest prompt rather than to 50 ids (padded keys get exactly zero
attention either way), and a word's tokens are found by character offsets rather than by
re-tokenising each word alone and counting (the reference's count drifts when its parser splits
a word differently from BERT, and indexes past the end when the prompt is truncated).

Batching: the ViT runs once per image; its tokens are shared by the ``K`` prompts, and one
forward and one backward give every expression's map (``max_batch`` bounds a chunk).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image
from torch import Tensor

from .albef import ALBEFITM, ALBEFConfig, load_albef_checkpoint
from .parsing import ExpressionParser, ParsedExpression, build_expression_parser
from .prompted_heatmap import PromptedHeatMap

__all__ = ['ALBEFHeatMap', 'ALBEFTokenizer', 'TokenizedPrompts', 'visual_token_indices']

VOCAB_HINT = ("bert-base-uncased's vocab.txt (the file of the Hugging Face model "
              "'bert-base-uncased'); put it in a folder such as checkpoints/bert-base-uncased/ "
              'and pass that folder or the file')


@dataclass
class TokenizedPrompts:
    """Token ids of prompts, right-padded.

    Attributes:
        input_ids: ``(K, L)``; [CLS] first, no [SEP], [PAD] after.
        attention_mask: ``(K, L)``; 1 on the real tokens.
        offsets: per prompt, the ``(start, end)`` characters of each real token ([CLS]:
            ``(0, 0)``).
    """

    input_ids: Tensor
    attention_mask: Tensor
    offsets: list[list[tuple[int, int]]]


class ALBEFTokenizer:
    """bert-base-uncased WordPiece as ALBEF feeds it: [CLS] + tokens, no [SEP] (ALBEF's
    ``tokenization_bert`` drops it), at most ``max_length`` ids, [PAD] to the longest.

    Args:
        vocab: a BERT ``vocab.txt`` or the folder holding it (nothing is downloaded).
        max_length: the most ids per prompt, [CLS] included (GroundVLP: 50).
        lowercase: uncased BERT (ALBEF/TCL's).

    Raises:
        FileNotFoundError: no vocab there (the message says what to get).
        ImportError: the ``tokenizers`` package is missing.
    """

    def __init__(self, vocab: str | Path, *, max_length: int = 50, lowercase: bool = True) -> None:
        path = Path(vocab)
        file = path / 'vocab.txt' if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f'BERT vocab not found at {path}; nothing is downloaded '
                                    f'here. Get {VOCAB_HINT}')
        try:
            from tokenizers import BertWordPieceTokenizer
        except ImportError as err:
            raise ImportError('the ALBEF/TCL heat maps need the `tokenizers` package: '
                              'pip install "tokenizers>=0.15"') from err
        if max_length < 2:
            raise ValueError(f'max_length must be at least 2, got {max_length}')
        self.wordpiece = BertWordPieceTokenizer(str(file), lowercase=lowercase)
        self.max_length = max_length
        self.cls_id = self._special('[CLS]')
        self.pad_id = self._special('[PAD]')

    def _special(self, token: str) -> int:
        index = self.wordpiece.token_to_id(token)
        if index is None:
            raise ValueError(f'the vocab has no {token}; expected {VOCAB_HINT}')
        return index

    def __call__(self, texts: Sequence[str]) -> TokenizedPrompts:
        encodings = [self.wordpiece.encode(t, add_special_tokens=False) for t in texts]
        keep = self.max_length - 1
        ids = [[self.cls_id] + e.ids[:keep] for e in encodings]
        offsets = [[(0, 0)] + list(e.offsets[:keep]) for e in encodings]
        length = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
        for row, i in enumerate(ids):
            input_ids[row, :len(i)] = torch.tensor(i)
            attention_mask[row, :len(i)] = 1
        return TokenizedPrompts(input_ids, attention_mask, offsets)


def word_spans(text: str, words: Sequence[str]) -> list[tuple[int, int] | None]:
    """Character span of each parser word in ``text``, found in order (case-insensitive);
    None for a word the parser changed beyond case."""
    lowered, cursor, spans = text.lower(), 0, []
    for word in words:
        start = lowered.find(word.lower(), cursor)
        if start < 0:
            spans.append(None)
            continue
        spans.append((start, start + len(word)))
        cursor = start + len(word)
    return spans


def visual_token_indices(parsed: ParsedExpression, offsets: Sequence[tuple[int, int]],
                         text_start: int) -> list[int] | None:
    """The token rows GroundVLP averages: the text [CLS] (row 0) and every token overlapping a
    visual word (NOUN, VERB, ADJ, PROPN, NUM); None when no token belongs to a visual word
    (then every non-pad token is averaged).

    Args:
        parsed: the expression and its POS tags.
        offsets: the prompt's token character spans, [CLS] first.
        text_start: where the expression starts in the prompt.
    """
    spans = word_spans(parsed.text, parsed.words)
    chosen = set()
    for i in parsed.visual_word_indices:
        if spans[i] is None:
            continue
        start, end = spans[i][0] + text_start, spans[i][1] + text_start
        chosen.update(t for t, (a, b) in enumerate(offsets) if t > 0 and a < end and b > start)
    return [0, *sorted(chosen)] if chosen else None


class ALBEFHeatMap(PromptedHeatMap):
    """GroundVLP's ALBEF/TCL heat maps of referring expressions on one image.

    Same call as :class:`~.clip_heatmap.CLIPHeatMap` (``heat(image, expressions,
    out_size=...)``); an expression may be given parsed (its POS tags pick the visual words),
    a string is parsed with ``parser``.

    Args:
        model: an :class:`ALBEFITM` with its weights, eval mode.
        tokenizer: an :class:`ALBEFTokenizer`.
        template: the prompt (GroundVLP's ``'there is a {}'``).
        layer: the BERT layer whose cross-attention is used (GroundVLP: 8); a fusion layer.
        parser: the expression parser for string inputs (``'offline'`` by default).
        max_batch: the most prompts run in one forward/backward.

    Example::

        heat = ALBEFHeatMap.from_checkpoint('checkpoints/ALBEF.pth',
                                            'checkpoints/bert-base-uncased')
        maps = heat(heat.preprocess(rgb), ['man in red shirt'], out_size=rgb.shape[:2])
    """

    def __init__(self, model: ALBEFITM, tokenizer: ALBEFTokenizer, *,
                 template: str = 'there is a {}', layer: int = 8,
                 parser: str | ExpressionParser = 'offline', max_batch: int = 16) -> None:
        super().__init__(template=template, max_batch=max_batch)
        cfg = model.config
        if not cfg.fusion_layer <= layer < cfg.num_layers:
            raise ValueError(f'layer {layer} has no cross-attention; the fusion layers are '
                             f'{cfg.fusion_layer}..{cfg.num_layers - 1}')
        self.model = model
        self.tokenizer = tokenizer
        self.layer = layer
        self.parser = build_expression_parser(parser) if isinstance(parser, str) else parser
        # ALBEF's image transform normalises with CLIP's statistics
        self.register_buffer('mean', torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1),
                             persistent=False)

    @classmethod
    def from_checkpoint(cls, weights: str | Path, vocab: str | Path, *,
                        config: ALBEFConfig | None = None, device: str | torch.device = 'cpu',
                        **kwargs) -> ALBEFHeatMap:
        """ALBEF.pth / TCL.pth and a local bert-base-uncased vocab (strict load: see
        :func:`load_albef_checkpoint`); ``kwargs`` go to the constructor."""
        tokenizer = ALBEFTokenizer(vocab)
        model = ALBEFITM(config)
        load_albef_checkpoint(model, weights)
        return cls(model.eval(), tokenizer, **kwargs).to(device)

    def preprocess(self, image: np.ndarray) -> Tensor:
        """RGB uint8 ``(H, W, 3)`` -> ``(1, 3, S, S)``: ALBEF's transform (PIL bicubic resize to
        the square model size, ``/255``, CLIP's mean and std)."""
        side = self.model.config.image_size
        resized = Image.fromarray(np.ascontiguousarray(image)).resize((side, side),
                                                                      Image.BICUBIC)
        tensor = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return ((tensor.to(self.mean.device) - self.mean) / self.std)[None]

    def token_maps(self, image: Tensor, tokens: TokenizedPrompts) -> tuple[Tensor, Tensor]:
        """ITM logits and per-token heat maps ``H_t`` at the patch grid.

        Shapes:
            image: ``(1, 3, S, S)`` or ``(3, S, S)``; returns ``(K, 2)`` and ``(K, L, h, w)``
            (padded tokens zero).
        """
        image = self.one_image(image)
        with torch.no_grad():
            embeds = self.model.encode_image(image)
        logits, maps = [], []
        for start in range(0, len(tokens.input_ids), self.max_batch):
            ids = tokens.input_ids[start:start + self.max_batch].to(image.device)
            mask = tokens.attention_mask[start:start + self.max_batch].to(image.device)
            with torch.enable_grad():
                # the image tokens carry the graph, so frozen weights still give A a gradient
                kv = embeds.detach().requires_grad_(True)
                out, probs = self.model(kv.expand(len(ids), -1, -1), ids, mask)
                attn = probs[self.layer]
                (grad,) = torch.autograd.grad(out[:, 1].sum(), attn)
            heat = (attn.detach() * grad.clamp(min=0)).mean(dim=1)[..., 1:]
            maps.append(heat * mask[..., None].to(heat.dtype))
            logits.append(out.detach())
        grid = self.model.grid
        return torch.cat(logits).float(), torch.cat(maps).float().unflatten(-1, grid)

    def aggregate(self, maps: Tensor, parsed: Sequence[ParsedExpression],
                  tokens: TokenizedPrompts) -> Tensor:
        """Visual-word aggregation of per-token maps. Shapes: ``(K, L, h, w) -> (K, h, w)``."""
        text_start = self.template.index('{}')
        out = []
        for k, p in enumerate(parsed):
            rows = visual_token_indices(p, tokens.offsets[k], text_start)
            if rows is None:
                rows = list(range(int(tokens.attention_mask[k].sum())))
            out.append(maps[k, rows].mean(0))
        return torch.stack(out) if out else maps.new_zeros((0, *maps.shape[2:]))

    def forward(self, image: Tensor, expressions: Sequence[str | ParsedExpression], *,
                out_size: tuple[int, int], subjects: Sequence[str | None] | None = None) -> Tensor:
        """Heat maps of ``expressions`` on ``image``, upsampled to ``out_size``.

        Args:
            image: the prepared image (:meth:`preprocess`).
            expressions: referring expressions, as strings or already parsed.
            out_size: ``(H, W)`` of the original image.
            subjects: not supported (ALBEF weights the visual words instead); must be None
                or all None.

        Shapes:
            image: ``(1, 3, S, S)``; returns ``(K, H, W)`` float32.
        """
        if subjects is not None and any(subjects):
            raise ValueError('subject averaging is a CLIP heat-map option; the ALBEF heat map '
                             'averages the visual words of the expression instead')
        parsed = [e if isinstance(e, ParsedExpression) else self.parser.parse(e)
                  for e in expressions]
        if not parsed:
            return image.new_zeros((0, *out_size), dtype=torch.float32)
        tokens = self.tokenizer(self.prompts([p.text for p in parsed]))
        _, maps = self.token_maps(image, tokens)
        heat = self.aggregate(maps, parsed, tokens)
        return self.upsample(heat, out_size)
