"""Referring expressions for synthetic scenes, and a resolver for their small grammar.

Grammar (lowercase, single spaces)::

    expr  := desc
           | desc REL desc                           "the star left of the blue ring"
           | "the" (larger|smaller) "of the two" plural "the larger of the two squares"
           | "the" (leftmost|rightmost|topmost|bottommost) noun-phrase
    desc  := "the" [size] [colour] [pattern-adjective] (shape | "object")
    REL   := "left of" | "right of" | "above" | "below"

Positions and sizes compare object frames (centre, side). A comparison that a reader could find
borderline (centres closer than half the mean side, sides within 25%) makes the expression
ill-posed, and :func:`resolve_expression` then returns no object; so "exactly one index" means
"clearly exactly one object".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .world import DEFAULT_SPEC, PATTERN_WORDS, SHAPE_PLURALS, SceneWorldSpec

if TYPE_CHECKING:
    from .scene import Scene, SceneObject

RELATIONS = ('left of', 'right of', 'above', 'below')
SUPERLATIVES = ('leftmost', 'rightmost', 'topmost', 'bottommost')
_MIN_SIDE_RATIO = 1.25
_PATTERN_OF_WORD = {w: p for p, w in PATTERN_WORDS.items()}
_SHAPE_OF_PLURAL = {p: s for s, p in SHAPE_PLURALS.items()}


@dataclass(frozen=True)
class _Desc:
    size: str | None = None
    colour: str | None = None
    pattern: str | None = None
    shape: str | None = None

    def matches(self, obj: SceneObject) -> bool:
        return ((self.size is None or obj.size_name == self.size)
                and (self.colour is None or obj.colour == self.colour)
                and (self.pattern is None or obj.pattern == self.pattern)
                and (self.shape is None or obj.shape == self.shape))

    def words(self, plural: bool = False) -> list[str]:
        noun = self.shape or 'object'
        if plural:
            noun = SHAPE_PLURALS.get(noun, noun + 's')
        pattern = PATTERN_WORDS[self.pattern] if self.pattern else None
        return [w for w in (self.size, self.colour, pattern) if w] + [noun]


def _parse_desc(tokens: list[str], spec: SceneWorldSpec, plural: bool = False) -> _Desc:
    """Attribute words then one noun, consuming all of ``tokens``."""
    if not tokens:
        raise ValueError('missing noun')
    *adjs, noun = tokens
    fields: dict[str, str] = {}
    for word in adjs:
        if word in spec.sizes:
            key, value = 'size', word
        elif word in spec.thing_classes:
            key, value = 'colour', word
        elif word in _PATTERN_OF_WORD:
            key, value = 'pattern', _PATTERN_OF_WORD[word]
        else:
            raise ValueError(f'unknown word {word!r}')
        if key in fields:
            raise ValueError(f'two {key} words')
        fields[key] = value
    if plural:
        if noun != 'objects' and noun not in _SHAPE_OF_PLURAL:
            raise ValueError(f'expected a plural noun, got {noun!r}')
        shape = _SHAPE_OF_PLURAL.get(noun)
    else:
        if noun != 'object' and noun not in spec.shapes:
            raise ValueError(f'expected a noun, got {noun!r}')
        shape = None if noun == 'object' else noun
    return _Desc(shape=shape, **fields)


def _margin(a: SceneObject, b: SceneObject) -> float:
    return 0.25 * (a.side + b.side)


def _offset(a: SceneObject, b: SceneObject, relation: str) -> float:
    """How far ``a`` lies in ``relation``'s direction from ``b`` (positive: it does)."""
    (ax, ay), (bx, by) = a.center, b.center
    return {'left of': bx - ax, 'right of': ax - bx, 'above': by - ay, 'below': ay - by,
            'leftmost': bx - ax, 'rightmost': ax - bx, 'topmost': by - ay,
            'bottommost': ay - by}[relation]


def resolve_expression(scene: Scene, sentence: str,
                       spec: SceneWorldSpec = DEFAULT_SPEC) -> list[int]:
    """Indices of the objects in ``scene`` that ``sentence`` picks out.

    Returns an empty list when the sentence names nothing or is ill-posed (an anchor that is not
    unique, a borderline position or size comparison).

    Raises:
        ValueError: if ``sentence`` is outside the grammar.
    """
    tokens = sentence.split()
    objs = scene.objects
    if len(tokens) < 2 or tokens[0] != 'the':
        raise ValueError(f'not an expression: {sentence!r}')
    if tokens[1] in ('larger', 'smaller'):
        if tokens[2:5] != ['of', 'the', 'two']:
            raise ValueError(f'not an expression: {sentence!r}')
        desc = _parse_desc(tokens[5:], spec, plural=True)
        pair = [i for i, o in enumerate(objs) if desc.matches(o)]
        if len(pair) != 2:
            return []
        small, large = sorted(pair, key=lambda i: objs[i].side)
        if objs[large].side < _MIN_SIDE_RATIO * objs[small].side:
            return []
        return [large if tokens[1] == 'larger' else small]
    if tokens[1] in SUPERLATIVES:
        desc = _parse_desc(tokens[2:], spec)
        group = [i for i, o in enumerate(objs) if desc.matches(o)]
        if len(group) < 2:
            return group
        best = max(group, key=lambda i: _score(objs[i], tokens[1]))
        clear = all(_offset(objs[best], objs[i], tokens[1]) >= _margin(objs[best], objs[i])
                    for i in group if i != best)
        return [best] if clear else []
    for relation in RELATIONS:
        words = relation.split()
        for k in range(2, len(tokens)):
            if tokens[k:k + len(words)] == words:
                rest = tokens[k + len(words):]
                if not rest or rest[0] != 'the':
                    raise ValueError(f'not an expression: {sentence!r}')
                target = _parse_desc(tokens[1:k], spec)
                anchor_desc = _parse_desc(rest[1:], spec)
                anchors = [i for i, o in enumerate(objs) if anchor_desc.matches(o)]
                if len(anchors) != 1:
                    return []
                a = objs[anchors[0]]
                picked, borderline = [], False
                for i, o in enumerate(objs):
                    if i == anchors[0] or not target.matches(o):
                        continue
                    off = _offset(o, a, relation)
                    if off >= _margin(o, a):
                        picked.append(i)
                    elif off > 0:
                        borderline = True
                return [] if borderline else picked
    desc = _parse_desc(tokens[1:], spec)
    return [i for i, o in enumerate(objs) if desc.matches(o)]


def _score(obj: SceneObject, superlative: str) -> float:
    x, y = obj.center
    return {'leftmost': -x, 'rightmost': x, 'topmost': -y, 'bottommost': y}[superlative]


def _simple_descs(obj: SceneObject) -> list[_Desc]:
    """Every attribute subset of ``obj`` as a description: fewest words first, and among equals
    colour before shape before pattern before size (colour is what a tiny CLIP sees best)."""
    keys = ('colour', 'shape', 'pattern', 'size')
    values = dict(size=obj.size_name, colour=obj.colour, pattern=obj.pattern, shape=obj.shape)
    subsets = [[k for n, k in enumerate(keys) if bits >> n & 1] for bits in range(1, 16)]
    subsets.sort(key=lambda ks: (len(ks), [keys.index(k) for k in ks]))
    return [_Desc(**{k: values[k] for k in ks}) for ks in subsets]


def _sentence(*parts: list[str] | str) -> str:
    return ' '.join(p if isinstance(p, str) else ' '.join(p) for p in parts)


def candidate_expressions(scene: Scene, index: int,
                          spec: SceneWorldSpec = DEFAULT_SPEC) -> list[str]:
    """Every expression of the grammar (within a fixed repertoire) that picks out only ``index``."""
    objs = scene.objects
    obj = objs[index]

    def unique(sentence: str) -> bool:
        return resolve_expression(scene, sentence, spec) == [index]

    simple = [_sentence('the', d.words()) for d in _simple_descs(obj)]
    found = [s for s in simple if unique(s)]
    coarse = [_Desc(shape=obj.shape), _Desc(colour=obj.colour), _Desc(pattern=obj.pattern), _Desc()]
    for d in coarse[:3]:
        for word in ('larger', 'smaller'):
            s = _sentence('the', word, 'of the two', d.words(plural=True))
            if unique(s):
                found.append(s)
    for d in coarse:
        for word in SUPERLATIVES:
            s = _sentence('the', word, d.words())
            if sum(d.matches(o) for o in objs) >= 2 and unique(s):
                found.append(s)
    for j, anchor in enumerate(objs):
        if j == index:
            continue
        anchor_words = next((s for s in (_sentence('the', d.words()) for d in _simple_descs(anchor))
                             if resolve_expression(scene, s, spec) == [j]), None)
        if anchor_words is None:
            continue
        for relation in RELATIONS:
            for d in (_Desc(), _Desc(colour=obj.colour), _Desc(shape=obj.shape)):
                s = _sentence('the', d.words(), relation, anchor_words)
                if unique(s):
                    found.append(s)
                    break
    return found


def _kind(sentence: str) -> str:
    words = sentence.split()
    if words[1] in ('larger', 'smaller') or words[1] in SUPERLATIVES:
        return 'compare'
    if any(w in words for w in ('left', 'right', 'above', 'below')):
        return 'relation'
    return 'attributes'


def referring_expressions(scene: Scene, rng: np.random.Generator, *, per_object: int = 3,
                          spec: SceneWorldSpec = DEFAULT_SPEC) -> list[tuple[str, int]]:
    """Unambiguous referring expressions, at most ``per_object`` for each object.

    Each object's shortest unique attribute description comes first (when one exists); the rest
    are drawn at random from its other unique expressions, taking the kinds (longer attribute
    descriptions, comparatives/superlatives, spatial relations) in turn. Every returned
    sentence resolves to exactly its object.

    Returns:
        ``[(sentence, object_index), ...]`` in object order.
    """
    out = []
    for index in range(len(scene.objects)):
        found = candidate_expressions(scene, index, spec)
        if not found or per_object < 1:
            continue
        chosen, rest = [found[0]], found[1:]
        # Then one of each kind in turn (attributes / comparison / relation), at random.
        kinds = {k: [s for s in rest if _kind(s) == k] for k in ('attributes', 'compare',
                                                                   'relation')}
        order = [str(k) for k in rng.permutation(list(kinds)) if kinds[k]]
        while len(chosen) < per_object and order:
            for k in list(order):
                if len(chosen) == per_object:
                    break
                pool = kinds[k]
                chosen.append(pool.pop(int(rng.integers(len(pool)))))
                if not pool:
                    order.remove(k)
        out += [(s, index) for s in chosen]
    return out
