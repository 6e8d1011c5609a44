"""Class-name vocabularies: parsing, synonyms, and the embedded :class:`Vocabulary`."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

SYNONYM_SEPARATOR = ';'


def parse_class_names(names: Sequence[str]) -> list[list[str]]:
    """Split each class entry into its synonyms.

    Each entry is one class; ``';'`` separates synonyms
    (``'tv; monitor'`` -> ``['tv', 'monitor']``). Whitespace around every synonym is stripped.

    Args:
        names: one string per class.

    Returns:
        One list of synonyms per class, in order.

    Raises:
        TypeError: if ``names`` is a single string or holds a non-string.
        ValueError: for an empty vocabulary, a blank class or synonym, or a class/synonym that
            appears twice (compared case-insensitively after stripping).
    """
    return _parse(names, lambda i: f'class_names[{i}]')


def read_class_names_file(path: str | os.PathLike) -> list[str]:
    """Read a class-names file: one class per line, synonyms separated by ``';'``.

    Blank lines at the end of the file are ignored; a blank line anywhere else is an error.
    The file is validated with the rules of :func:`parse_class_names`.

    Args:
        path: a UTF-8 text file.

    Returns:
        One entry per class (the stripped line), ready for :class:`TextEmbedder`.

    Raises:
        FileNotFoundError: if ``path`` is not an existing file.
        ValueError: as :func:`parse_class_names`, naming the offending line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = 'is a directory, not a file' if path.is_dir() else 'does not exist'
        raise FileNotFoundError(
            f'class-names file {str(path)!r} {what}; expected a UTF-8 text file with one class per '
            "line and synonyms separated by ';' (e.g. 'tv; monitor')")
    lines = path.read_text(encoding='utf-8').splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    _parse(lines, lambda i: f'line {i + 1} of {str(path)!r}')
    return [line.strip() for line in lines]


def _parse(names: Sequence[str], where: Callable[[int], str]) -> list[list[str]]:
    if isinstance(names, (str, bytes)):
        raise TypeError(f'class names must be a list of strings, one per class, got the single '
                        f'string {names!r}; wrap it in a list ([{names!r}]) or read a file with '
                        'read_class_names_file()')
    names = list(names)
    if not names:
        raise ValueError("the vocabulary is empty; pass at least one class name, e.g. ['cat', "
                         "'dog'] (synonyms of one class go in one entry: 'tv; monitor')")
    seen: dict[str, tuple[int, str]] = {}
    classes = []
    for i, entry in enumerate(names):
        if not isinstance(entry, str):
            raise TypeError(f'{where(i)} is a {type(entry).__name__} ({entry!r}), not a string; '
                            'every class name must be a string')
        if not entry.strip():
            raise ValueError(f'{where(i)} is blank; every entry must name a class — remove the '
                             'entry or write a name in it')
        synonyms = [s.strip() for s in entry.split(SYNONYM_SEPARATOR)]
        for j, synonym in enumerate(synonyms):
            if not synonym:
                raise ValueError(f'{where(i)} = {entry!r} has a blank synonym (number {j + 1}); '
                                 f"remove the extra '{SYNONYM_SEPARATOR}'")
            key = synonym.casefold()
            if key in seen:
                first, first_name = seen[key]
                raise ValueError(
                    f'{synonym!r} in {where(i)} duplicates {first_name!r} in {where(first)} (names '
                    'are compared case-insensitively after stripping whitespace); every '
                    'class and synonym must be unique — remove one, or merge them into one '
                    f"class with '{SYNONYM_SEPARATOR}'")
            seen[key] = (i, synonym)
        classes.append(synonyms)
    return classes


@dataclass(eq=False)
class Vocabulary:
    """Embedded class names, one embedding per query (synonym).

    Shapes:
        query_to_class: ``(Q,)`` long, the class of each query; embeddings: ``(Q, C)``
        L2-normalised. ``K = num_classes <= Q = num_queries``.

    Attributes:
        class_names: ``K`` entries as given (stripped), e.g. ``'tv; monitor'``.
        queries: ``Q`` synonyms, all classes flattened in order.
        query_to_class: index into ``class_names`` for each query.
        embeddings: one unit-norm text embedding per query.
    """

    class_names: list[str]
    queries: list[str]
    query_to_class: Tensor
    embeddings: Tensor

    def __post_init__(self) -> None:
        q = len(self.queries)
        if self.query_to_class.shape != (q,) or self.embeddings.shape[0] != q:
            raise ValueError(f'inconsistent Vocabulary: {q} queries, query_to_class of shape '
                             f'{tuple(self.query_to_class.shape)}, embeddings of shape '
                             f'{tuple(self.embeddings.shape)}')
        owner = self.query_to_class.detach().cpu()
        if q and (int(owner.min()) < 0 or int(owner.max()) >= self.num_classes
                  or bool((torch.bincount(owner, minlength=self.num_classes) == 0).any())):
            raise ValueError('inconsistent Vocabulary: query_to_class must map the queries onto '
                             f'all {self.num_classes} classes, got {owner.tolist()}')
        self._identity = bool(torch.equal(owner, torch.arange(q)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_queries(self) -> int:
        return len(self.queries)

    def to(self, device: torch.device | str) -> Vocabulary:
        """A copy with the tensors on ``device``."""
        return Vocabulary(list(self.class_names), list(self.queries),
                          self.query_to_class.to(device), self.embeddings.to(device))

    def pool_synonyms(self, probs: Tensor, dim: int = 1) -> Tensor:
        """Max over each class's synonyms: per-query scores to per-class scores.

        The training-free methods take the softmax over all ``Q`` queries first, then keep,
        for each class, its best synonym. Exact and vectorised; when every class has a single
        query (in class order) this returns ``probs`` itself.

        Args:
            probs: scores with the ``Q`` queries along ``dim`` (any number of other dims).
            dim: the query dimension.

        Shapes:
            probs: ``(..., Q, ...)``; returns ``(..., K, ...)`` (``Q`` replaced by ``K`` at
            ``dim``), e.g. ``(B, Q, h, w) -> (B, K, h, w)``.
        """
        if probs.ndim == 0:
            raise ValueError('probs must have a query dimension; got a 0-d tensor')
        dim = dim % probs.ndim
        if probs.shape[dim] != self.num_queries:
            raise ValueError(f'probs has {probs.shape[dim]} entries along dim {dim} (shape '
                             f'{tuple(probs.shape)}) but the vocabulary has {self.num_queries} '
                             'queries; pass the dimension that holds the queries')
        if self._identity:
            return probs
        moved = probs.movedim(dim, -1)
        index = self.query_to_class.to(probs.device).expand_as(moved)
        pooled = moved.new_empty(*moved.shape[:-1], self.num_classes)
        # every class has at least one query, so include_self=False leaves no slot uninitialised
        pooled.scatter_reduce_(-1, index, moved, reduce='amax', include_self=False)
        return pooled.movedim(-1, dim)
