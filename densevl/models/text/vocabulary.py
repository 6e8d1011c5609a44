"""Class-name vocabularies: one parser, one :class:`Vocabulary` type, one synonym pooling.

Every model of the library takes its vocabulary through here: a list of entries (synonyms of one
class joined by ``;``), a names file, or a registered dataset type (:func:`resolve_class_names`)
becomes a :class:`Vocabulary` (:meth:`Vocabulary.parse`), which a model then completes with what
it scores against: fixed text embeddings (:class:`~densevl.models.text.TextEmbedder`) or the token
ids of a learned-context text encoder (DenseCLIP).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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


def resolve_class_names(class_names: str | os.PathLike | Sequence[str] | None) -> list[str] | None:
    """Class entries from a list, a names file, or a registered dataset type; None stays None.

    Args:
        class_names: a list of entries (``'tv; monitor'``: one class, two synonyms); the path of
            a names file (one class a line, see :func:`read_class_names_file`); or the name of a
            dataset type registered with mmseg or mmdet, densevl's included (``'ADE20KDataset'``,
            ``'ADE20K847Dataset'``: its ``METAINFO['classes']``, the vocabulary its checkpoints
            were trained with).

    Returns:
        The entries, validated by :func:`parse_class_names` (stripped), or None.

    Raises:
        ValueError: a string that is neither an existing file nor a dataset type, or entries
            :func:`parse_class_names` refuses.
    """
    if class_names is None:
        return None
    if isinstance(class_names, os.PathLike) or (isinstance(class_names, str)
                                                 and os.path.isfile(class_names)):
        return read_class_names_file(class_names)
    if isinstance(class_names, str):
        classes = _dataset_classes(class_names)
        if classes is None:
            raise ValueError(f'class_names={class_names!r} is neither a names file nor a '
                             'registered dataset type; pass a list, a file with one class a '
                             "line, or a dataset type such as 'ADE20KDataset'")
        class_names = classes
    names = [str(name) for name in class_names]
    parse_class_names(names)
    return [name.strip() for name in names]


def _dataset_classes(dataset_type: str) -> list[str] | None:
    """``METAINFO['classes']`` of a dataset type registered with mmseg or mmdet, else None."""
    from importlib.util import find_spec

    if find_spec('mmseg') is None:
        return None
    from ... import registry  # the mm stack is only needed for this lookup
    from ...datasets import mm_datasets  # noqa: F401  (registers densevl's dataset types)

    for name in ('SEG_DATASETS', 'DET_DATASETS'):
        datasets = getattr(registry, name, None)
        dataset = datasets.get(dataset_type) if datasets is not None else None
        classes = getattr(dataset, 'METAINFO', {}).get('classes') if dataset is not None else None
        if classes:
            return list(classes)
    return None


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Class names, their synonyms (queries), and what a model scores the queries with.

    Shapes:
        query_to_class: ``(Q,)`` long, the class of each query; embeddings: ``(Q, C)``
        L2-normalised; tokens: ``(Q, L)`` long. ``K = num_classes <= Q = num_queries``.

    Attributes:
        class_names: ``K`` entries as given (stripped), e.g. ``'tv; monitor'``.
        queries: ``Q`` synonyms, all classes flattened in order.
        query_to_class: index into ``class_names`` for each query.
        embeddings: one unit-norm text embedding per query (models with fixed text embeddings),
            or None.
        tokens: token ids of each query (models with a learned-context text encoder), or None.
    """

    class_names: list[str]
    queries: list[str]
    query_to_class: Tensor
    embeddings: Tensor | None = None
    tokens: Tensor | None = None

    def __post_init__(self) -> None:
        q = len(self.queries)
        for name in ('embeddings', 'tokens'):
            value = getattr(self, name)
            if value is not None and value.shape[0] != q:
                raise ValueError(f'inconsistent Vocabulary: {q} queries but {name} of shape '
                                 f'{tuple(value.shape)}')
        if self.query_to_class.shape != (q,):
            raise ValueError(f'inconsistent Vocabulary: {q} queries, query_to_class of shape '
                             f'{tuple(self.query_to_class.shape)}')
        owner = self.query_to_class.detach().cpu()
        if q and (int(owner.min()) < 0 or int(owner.max()) >= self.num_classes
                  or bool((torch.bincount(owner, minlength=self.num_classes) == 0).any())):
            raise ValueError('inconsistent Vocabulary: query_to_class must map the queries onto '
                             f'all {self.num_classes} classes, got {owner.tolist()}')
        object.__setattr__(self, '_identity', bool(torch.equal(owner, torch.arange(q))))

    @classmethod
    def parse(cls, class_names: Sequence[str]) -> Vocabulary:
        """The vocabulary of ``class_names`` (see :func:`parse_class_names`), with no embeddings
        or tokens yet."""
        classes = parse_class_names(class_names)
        return cls(class_names=[c.strip() for c in class_names],
                   queries=[q for synonyms in classes for q in synonyms],
                   query_to_class=torch.tensor([k for k, synonyms in enumerate(classes)
                                                for _ in synonyms], dtype=torch.long))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_queries(self) -> int:
        return len(self.queries)

    @property
    def has_synonyms(self) -> bool:
        return not self._identity

    def pooled(self) -> Vocabulary:
        """One query per class (the class entry itself), as scores are once synonyms are pooled
        (e.g. the logits of a closed-set head that pools inside the network)."""
        return Vocabulary(list(self.class_names), list(self.class_names),
                          torch.arange(self.num_classes))

    def with_embeddings(self, embeddings: Tensor) -> Vocabulary:
        """A copy holding one text embedding per query. Shapes: ``(Q, C)``."""
        return replace(self, embeddings=embeddings)

    def with_tokens(self, tokens: Tensor) -> Vocabulary:
        """A copy holding the token ids of each query. Shapes: ``(Q, L)``."""
        return replace(self, tokens=tokens)

    def to(self, device: torch.device | str) -> Vocabulary:
        """A copy with the tensors on ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, query_to_class=self.query_to_class.to(device),
                       embeddings=move(self.embeddings), tokens=move(self.tokens))

    def pool_synonyms(self, scores: Tensor, dim: int = 1) -> Tensor:
        """Max over each class's synonyms: per-query scores to per-class scores.

        The one synonym pooling of the library. Segmentors take the softmax over all ``Q``
        queries first and keep, for each class, its best synonym's probability; closed-set
        models that fix ``K`` inside the network pool their per-query score maps the same way.
        Exact and vectorised; when every class has a single query (in class order) this returns
        ``scores`` itself.

        Args:
            scores: scores with the ``Q`` queries along ``dim`` (any number of other dims).
            dim: the query dimension.

        Shapes:
            scores: ``(..., Q, ...)``; returns ``(..., K, ...)`` (``Q`` replaced by ``K`` at
            ``dim``), e.g. ``(B, Q, h, w) -> (B, K, h, w)``.
        """
        if scores.ndim == 0:
            raise ValueError('scores must have a query dimension; got a 0-d tensor')
        dim = dim % scores.ndim
        if scores.shape[dim] != self.num_queries:
            raise ValueError(f'scores has {scores.shape[dim]} entries along dim {dim} (shape '
                             f'{tuple(scores.shape)}) but the vocabulary has {self.num_queries} '
                             'queries; pass the dimension that holds the queries')
        if self._identity:
            return scores
        moved = scores.movedim(dim, -1)
        index = self.query_to_class.to(scores.device).expand_as(moved)
        pooled = moved.new_empty(*moved.shape[:-1], self.num_classes)
        # every class has at least one query, so include_self=False leaves no slot uninitialised
        pooled.scatter_reduce_(-1, index, moved, reduce='amax', include_self=False)
        return pooled.movedim(-1, dim)
