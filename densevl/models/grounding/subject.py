"""The subject of a referring expression: the word GroundVLP asks the detector for.

GroundVLP (Shen et al., AAAI 2024) takes "the head noun of the lowest leftmost noun phrase" of
stanza's constituency tree; when there is none, the last word tagged ``NOUN``; else the subject
is unknown. The reference's tree walk, reproduced by :func:`subject_from_constituency`:

* walk the tree depth-first, left to right, counting ``NP`` nodes;
* at an ``NP`` none of whose descendants is an ``NP`` (a lowest one), take its rightmost
  preterminal labelled exactly ``NN`` — singular common nouns only, so "two men on left" skips
  ``men`` (``NNS``) and answers the next lowest ``NP``'s ``left``;
* the first such noun found wins.

Without a tree (the offline tagger, spaCy) :func:`subject_from_tags` takes the last noun of the
first base noun phrase that has one — a base noun phrase is a maximal run of determiners,
numbers, adjectives and nouns, i.e. a lowest ``NP`` — plural heads included.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ['NP_WORD_TAGS', 'last_noun', 'subject_from_constituency', 'subject_from_tags']

#: The UPOS tags a base noun phrase is made of.
NP_WORD_TAGS = ('DET', 'NUM', 'ADJ', 'NOUN', 'PROPN')


def _is_leaf(node) -> bool:
    is_leaf = getattr(node, 'is_leaf', None)
    return is_leaf() if callable(is_leaf) else not node.children


def _rightmost_noun(node, noun_labels: Sequence[str]) -> str | None:
    if _is_leaf(node):
        return None
    if node.label in noun_labels:
        return str(node.children[0].label)
    for child in reversed(node.children):
        found = _rightmost_noun(child, noun_labels)
        if found is not None:
            return found
    return None


def subject_from_constituency(tree, noun_labels: Sequence[str] = ('NN',)) -> str | None:
    """The head noun of the lowest leftmost noun phrase of a constituency tree (GroundVLP's rule).

    Args:
        tree: the root of a Penn-treebank constituency tree; each node has ``label`` and
            ``children`` (stanza's ``Tree``: a leaf's ``label`` is its word).
        noun_labels: the preterminal labels that count as a head noun; the reference's
            ``('NN',)`` by default (pass ``('NN', 'NNS')`` to accept plural heads).

    Returns:
        The noun as written, or ``None`` when no lowest noun phrase has such a noun.
    """
    noun_phrases = 0

    def walk(node) -> str | None:
        nonlocal noun_phrases
        if _is_leaf(node):
            return None
        if node.label == 'NP':
            noun_phrases += 1
        seen = noun_phrases
        for child in node.children:
            found = walk(child)
            if found is not None:
                return found
        if node.label == 'NP' and noun_phrases == seen:
            return _rightmost_noun(node, noun_labels)
        return None

    return walk(tree)


def last_noun(words: Sequence[str], tags: Sequence[str]) -> str | None:
    """The last word tagged ``NOUN`` (the reference's fallback), or ``None``."""
    for word, tag in zip(reversed(words), reversed(tags)):
        if tag == 'NOUN':
            return word
    return None


def subject_from_tags(words: Sequence[str], tags: Sequence[str]) -> str | None:
    """The last noun of the first base noun phrase that has a noun, or ``None``.

    ``man in red shirt on the left`` → ``man``; ``second banana from right`` → ``banana``;
    ``a red and white checkered table with two wooden chairs`` → ``table``.
    """
    head = None
    for word, tag in zip(words, tags):
        if tag in NP_WORD_TAGS:
            if tag in ('NOUN', 'PROPN'):
                head = word
        elif head is not None:
            return head
    return head
