"""Parsed referring expressions and the pluggable parser that makes them.

GroundVLP needs two things from language: the expression's *subject* (:mod:`.subject`), which
picks the detector's category, and its *visual words* — the words whose part of speech is
``NOUN``, ``VERB``, ``ADJ``, ``PROPN`` or ``NUM`` (:data:`VISUAL_POS`), whose tokens' heat maps
are averaged. The reference parses with stanza, whose models are downloaded at run time. Here a
parser is anything with ``parse(text) -> ParsedExpression``:

* :class:`OfflineExpressionParser` (the default): the offline tagger of
  :mod:`densevl.models.text.english` and the base-noun-phrase subject rule; no model, no
  download; made for short referring expressions.
* :class:`~.nlp_parsers.StanzaExpressionParser` / :class:`~.nlp_parsers.SpacyExpressionParser`:
  the reference's own parse, for users who have the models locally.

:func:`build_expression_parser` makes one by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..text.english import tag_words, tokenize
from .subject import subject_from_tags

__all__ = ['VISUAL_POS', 'ExpressionParser', 'OfflineExpressionParser', 'ParsedExpression',
           'build_expression_parser', 'check_expression']

#: The parts of speech (UPOS) of the words GroundVLP's heat map averages over.
VISUAL_POS = ('NOUN', 'VERB', 'ADJ', 'PROPN', 'NUM')


@dataclass(frozen=True)
class ParsedExpression:
    """A referring expression split into words, with their UPOS tags and its subject.

    Attributes:
        text: the expression as given.
        words: its words in order (the parser's tokenisation).
        pos: one UPOS tag per word.
        subject: the subject word, or ``None`` when it is unknown (no noun).
    """

    text: str
    words: tuple[str, ...]
    pos: tuple[str, ...]
    subject: str | None

    def __post_init__(self) -> None:
        if len(self.words) != len(self.pos):
            raise ValueError(f'{len(self.words)} words but {len(self.pos)} POS tags')

    @property
    def visual_word_indices(self) -> tuple[int, ...]:
        """Indices of the words whose tag is in :data:`VISUAL_POS` (may be empty: then the
        reference uses every token)."""
        return tuple(i for i, tag in enumerate(self.pos) if tag in VISUAL_POS)

    @property
    def visual_words(self) -> tuple[str, ...]:
        return tuple(self.words[i] for i in self.visual_word_indices)


@runtime_checkable
class ExpressionParser(Protocol):
    """What GroundVLP needs from a parser."""

    def parse(self, text: str) -> ParsedExpression:
        ...


def check_expression(text: str) -> str:
    """``text`` stripped; raises ``ValueError``/``TypeError`` for a blank or non-string one."""
    if not isinstance(text, str):
        raise TypeError(f'a referring expression must be a string, got {type(text).__name__}')
    if not text.strip():
        raise ValueError('the referring expression is empty; give a phrase that names the '
                         "object, e.g. 'man in red shirt on the left'")
    return text.strip()


class OfflineExpressionParser:
    """The offline parser: lexicon-and-suffix POS tags and the base-noun-phrase subject.

    Needs no model. Its tags follow :func:`densevl.models.text.english.tag_words`; its subject
    is the last noun of the first base noun phrase that has a noun
    (:func:`~.subject.subject_from_tags`), which agrees with the reference's tree rule on the
    usual RefCOCO phrasing, except that a plural head is taken ("two men on left" → ``men``,
    where the reference's ``NN``-only walk answers ``left``).

    Example:
        >>> OfflineExpressionParser().parse('second banana from right').subject
        'banana'
    """

    def parse(self, text: str) -> ParsedExpression:
        text = check_expression(text)
        words = tokenize(text)
        pos = tag_words(words)
        if all(tag == 'PUNCT' for tag in pos):
            raise ValueError(f'the referring expression {text!r} has no words')
        return ParsedExpression(text, tuple(words), tuple(pos), subject_from_tags(words, pos))


def build_expression_parser(kind: str = 'offline', **kwargs) -> ExpressionParser:
    """A parser by name: ``'offline'``, ``'stanza'`` or ``'spacy'`` (``kwargs`` go to its
    constructor)."""
    if kind == 'offline':
        return OfflineExpressionParser(**kwargs)
    if kind in ('stanza', 'spacy'):
        from .nlp_parsers import SpacyExpressionParser, StanzaExpressionParser
        cls = StanzaExpressionParser if kind == 'stanza' else SpacyExpressionParser
        return cls(**kwargs)
    raise ValueError(f"unknown expression parser {kind!r}; use 'offline' (no model), 'stanza' "
                     "or 'spacy' (their English models installed locally)")
