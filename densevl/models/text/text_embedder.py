"""Class names to CLIP text embeddings, prompt-ensembled and cached in memory and on disk."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .clip_text_encoder import encode_text_tokens
from .templates import get_templates
from .vocabulary import Vocabulary

logger = logging.getLogger(__name__)

# prompts tokenised and encoded per chunk of queries, which bounds memory for huge vocabularies
_PROMPTS_PER_CHUNK = 65536
# a template may add a few tokens where the name touches it ('{}s', '{}.'); checked exactly beyond
_TOKEN_SLACK = 8


def default_cache_dir() -> Path:
    """``$DENSEVL_CACHE/text``, or ``~/.cache/densevl/text`` when the variable is unset."""
    root = os.environ.get('DENSEVL_CACHE')
    return (Path(root) if root else Path.home() / '.cache' / 'densevl').expanduser() / 'text'


class TextEmbedder:
    """Embeds class names with a CLIP text tower, averaging over prompt templates.

    For every query (synonym) each template is encoded and L2-normalised, the results are averaged
    and the mean is L2-normalised again (the protocol of the CLIP zero-shot reference code).
    Embeddings are cached per query in memory and on disk; the disk cache is keyed by
    ``model_id``, a fingerprint of the text tower's weights and the templates, with one file per
    key under ``cache_dir``. The fingerprint is computed once per instance: after changing the
    model's weights, build a new ``TextEmbedder``.

    Args:
        clip_model: an open_clip model (``encode_text``; ``CLIP`` models get the fast path of
            :func:`encode_text_tokens`).
        tokenizer: its open_clip tokenizer (``tokenizer(list_of_str) -> (N, L)`` long).
        model_id: a name for the model in cache file names, e.g. ``'ViT-B-16/openai'``.
        templates: see :func:`get_templates`.
        cache_dir: folder of the disk cache; ``None`` for :func:`default_cache_dir`, ``False`` to
            keep the cache in memory only.
        device: where the returned :class:`Vocabulary` lives; defaults to the model's device.
        batch_size: prompts per forward pass.

    Example:
        >>> embed = TextEmbedder(model, tokenizer, model_id='ViT-B-16/openai')
        >>> vocab = embed(['cat', 'tv; monitor'])
        >>> vocab.embeddings.shape, vocab.query_to_class
        (torch.Size([3, 512]), tensor([0, 1, 1]))
    """

    def __init__(self, clip_model: nn.Module, tokenizer, *, model_id: str,
                 templates: str | Sequence[str] = 'imagenet80',
                 cache_dir: str | os.PathLike | bool | None = None,
                 device: torch.device | str | None = None, batch_size: int = 1024) -> None:
        if not isinstance(model_id, str) or not model_id.strip():
            raise ValueError(f'model_id must be a non-empty string naming the model and its '
                             f"weights (e.g. 'ViT-B-16/openai'), got {model_id!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        self.clip_model = clip_model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.templates: tuple[str, ...] = tuple(get_templates(templates))
        self.templates_hash = hashlib.sha1(
            json.dumps(self.templates).encode('utf-8')).hexdigest()
        if cache_dir is False:
            self.cache_dir: Path | None = None
        elif cache_dir is None or cache_dir is True:
            self.cache_dir = default_cache_dir()
        else:
            self.cache_dir = Path(cache_dir).expanduser()
        self.device = torch.device(device) if device is not None else None
        self.batch_size = batch_size
        self.context_length = int(getattr(tokenizer, 'context_length', None)
                                  or getattr(clip_model, 'context_length', None) or 77)
        self._fingerprint: str | None = None
        self._memory: dict[str, Tensor] = {}
        self._disk_loaded = False
        self._template_overhead: int | None = None
        self._length_checked: set[str] = set()   # queries whose prompt length was checked

    @property
    def fingerprint(self) -> str:
        """sha1 (hex) over the names, dtypes, shapes and bytes of the text tower's tensors."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(_text_tower_tensors(self.clip_model))
        return self._fingerprint

    @property
    def cache_file(self) -> Path | None:
        """The disk-cache file of this (model, weights, templates), or ``None`` if disabled."""
        if self.cache_dir is None:
            return None
        model = re.sub(r'[^A-Za-z0-9._-]+', '_', self.model_id).strip('._') or 'model'
        return self.cache_dir / f'{model}-{self.fingerprint[:16]}-{self.templates_hash[:12]}.pt'

    @torch.no_grad()
    def __call__(self, class_names: Sequence[str]) -> Vocabulary:
        """Embed a vocabulary.

        Args:
            class_names: one entry per class, synonyms separated by ``';'``
                (see :func:`parse_class_names`).

        Returns:
            The :class:`Vocabulary`, with ``(Q, C)`` float32 unit-norm embeddings.
        """
        if not isinstance(class_names, (str, bytes)):
            class_names = list(class_names)
        vocab = Vocabulary.parse(class_names)
        queries = vocab.queries
        self._warn_truncated([q for q in queries if q not in self._length_checked])
        self._length_checked.update(queries)

        missing = [q for q in dict.fromkeys(queries) if q not in self._memory]
        if missing and self.cache_dir is not None and not self._disk_loaded:
            self._load_disk()
            missing = [q for q in missing if q not in self._memory]
        if missing:
            self._memory.update(self._encode_queries(missing))
            if self.cache_dir is not None:
                self._save_disk()

        device = self.device or _model_device(self.clip_model)
        embeddings = torch.stack([self._memory[q] for q in queries]).to(device)
        return vocab.with_embeddings(embeddings).to(device)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Embed free text as it is (no templates, no cache), e.g. captions for retrieval.

        Shapes:
            returns ``(N, C)`` float32, L2-normalised, on the CPU.
        """
        tokens = self.tokenizer(list(texts)).to(_model_device(self.clip_model))
        return F.normalize(encode_text_tokens(self.clip_model, tokens).float(), dim=-1).cpu()

    def _encode_queries(self, queries: list[str]) -> dict[str, Tensor]:
        """Prompt-ensembled embeddings of ``queries``; float32 on the CPU, one tensor each."""
        model_device = _model_device(self.clip_model)
        num_templates = len(self.templates)
        per_chunk = max(1, _PROMPTS_PER_CHUNK // num_templates)
        out: dict[str, Tensor] = {}
        for start in range(0, len(queries), per_chunk):
            chunk = queries[start:start + per_chunk]
            prompts = [t.format(q) for q in chunk for t in self.templates]
            tokens = self.tokenizer(prompts)
            # short prompts together, so encode_text_tokens truncates each batch further
            order = torch.argsort(tokens.argmax(dim=-1), stable=True)
            feats = []
            for rows in order.split(self.batch_size):
                x = encode_text_tokens(self.clip_model, tokens[rows].to(model_device))
                feats.append(F.normalize(x.float(), dim=-1).cpu())
            sorted_feats = torch.cat(feats)
            per_prompt = torch.empty_like(sorted_feats)
            per_prompt[order] = sorted_feats
            mean = per_prompt.view(len(chunk), num_templates, -1).mean(dim=1)
            out.update(zip(chunk, F.normalize(mean, dim=-1).unbind(0)))
        logger.debug('encoded %d queries x %d templates with %s', len(queries), num_templates,
                     self.model_id)
        return {q: e.clone() for q, e in out.items()}

    def _warn_truncated(self, queries: list[str]) -> None:
        """Warn for every query whose longest prompt does not fit the context length."""
        if _count_tokens(self.tokenizer, '') is None:
            return
        if self._template_overhead is None:
            self._template_overhead = max(_count_tokens(self.tokenizer, t.format(''))
                                          for t in self.templates)
        limit = self.context_length
        for q in queries:
            if _count_tokens(self.tokenizer, q) + self._template_overhead + _TOKEN_SLACK <= limit:
                continue
            counts = [(_count_tokens(self.tokenizer, t.format(q)), t) for t in self.templates]
            longest, template = max(counts, key=lambda c: c[0])
            if longest > limit:
                shown = q if len(q) <= 60 else f'{q[:57]}...'
                warnings.warn(
                    f'class name {shown!r} ({len(q)} characters) is too long: with the template '
                    f'{template!r} its prompt has {longest} tokens but the text context holds '
                    f'{limit}, so the tokenizer truncates it and the embedding ignores the end; '
                    'shorten the name', UserWarning, stacklevel=4)  # past __call__ and no_grad

    def _load_disk(self) -> None:
        self._disk_loaded = True
        cached = _read_cache_file(self.cache_file, _embed_dim(self.clip_model), warn=True)
        for query, embedding in (cached or {}).items():
            self._memory.setdefault(query, embedding)

    def _save_disk(self) -> None:
        """Merge the memory cache into the file (re-read now: others may have written to it)."""
        path = self.cache_file
        on_disk = _read_cache_file(path, _embed_dim(self.clip_model), warn=False) or {}
        merged = {**on_disk, **self._memory}
        try:
            write_atomic(path, lambda f: torch.save(merged, f))
        except OSError as err:
            logger.warning('could not write the text-embedding cache %s (%s); embeddings stay '
                           'in memory only', path, err)


def weights_fingerprint(named_tensors: Iterable[tuple[str, Tensor]]) -> str:
    """sha1 (hex) over the names, dtypes, sizes and bytes of named tensors, in name order: what
    disk caches of model outputs are keyed on (equal weights, equal fingerprint, on any device)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f'{name}|{tensor.dtype}|{tensor.numel()};'.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Create or replace the file ``path`` with what ``write(f)`` writes to the binary file
    ``f``: a temporary file beside it, renamed over it once complete, so that a reader (or a
    process resuming after a crash) sees the old file or the new one, never a half-written one.
    Creates missing parent folders; the temporary file is removed if ``write`` raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_cache_file(path: Path, dim: int | None, *, warn: bool) -> dict[str, Tensor] | None:
    """The ``{query: (C,) float32}`` cache at ``path``; ``{}`` if absent, ``None`` if corrupt."""
    if not path.exists():
        return {}
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
        problem = _cache_problem(data, dim)
    except Exception as err:  # any unreadable file is rebuilt, never fatal
        problem = f'{type(err).__name__}: {err}'
    if problem is None:
        return data
    if warn:
        logger.warning('ignoring the corrupt text-embedding cache %s (%s); it will be rebuilt',
                       path, problem)
    return None


def _cache_problem(data, dim: int | None) -> str | None:
    """What is wrong with loaded cache contents, or ``None`` if they can be used."""
    if not isinstance(data, dict):
        return f'expected a dict of tensors, got {type(data).__name__}'
    if not data:
        return None
    for query, value in data.items():
        if not isinstance(query, str) or not isinstance(value, Tensor):
            return f'entry {query!r} is not a string -> tensor pair'
        if value.dtype != torch.float32 or value.ndim != 1:
            return f'entry {query!r} is {value.dtype} of shape {tuple(value.shape)}'
    sizes = {value.numel() for value in data.values()}
    if len(sizes) != 1 or (dim is not None and sizes != {dim}):
        return f'embedding sizes {sorted(sizes)} where {dim or "one size"} was expected'
    stacked = torch.stack(list(data.values()))
    if not bool(torch.isfinite(stacked).all()):
        return 'non-finite values'
    if not torch.allclose(stacked.norm(dim=-1), torch.ones(len(data)), atol=1e-3):
        return 'embeddings that are not unit-norm'
    return None


def _text_tower_tensors(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """Named parameters and buffers that ``encode_text`` depends on."""
    text = getattr(model, 'text', None)
    if isinstance(text, nn.Module):  # CustomTextCLIP and Hugging Face towers
        return chain(text.named_parameters(), text.named_buffers())
    skip = ('logit_scale', 'logit_bias')
    return ((name, t) for name, t in chain(model.named_parameters(), model.named_buffers())
            if not name.startswith('visual.') and name not in skip)


def _embed_dim(model: nn.Module) -> int | None:
    projection = getattr(model, 'text_projection', None)
    if isinstance(projection, nn.Linear):
        return projection.out_features
    if isinstance(projection, Tensor) and projection.ndim == 2:
        return projection.shape[1]
    return None


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


def _count_tokens(tokenizer, text: str) -> int | None:
    """Tokens of ``text`` with its start/end tokens, before truncation; ``None`` if unknown."""
    if callable(getattr(tokenizer, 'encode', None)) and hasattr(tokenizer, 'eot_token_id'):
        return len(tokenizer.encode(text)) + 2  # open_clip SimpleTokenizer: + SOT and EOT
    hf = getattr(tokenizer, 'tokenizer', None)
    if callable(hf):
        try:
            return len(hf(text)['input_ids'])  # Hugging Face: special tokens included
        except Exception:  # only a warning depends on it
            return None
    return None
