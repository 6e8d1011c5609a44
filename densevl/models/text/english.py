"""A small offline English lexicon and part-of-speech tagger for short descriptions.

No parser, model or download: closed-class words come from word lists, open-class words from a
few suffix rules, and everything else is a noun. It assigns the Universal POS tags (UPOS) that
stanza and spaCy give (``NOUN``, ``ADJ``, ``VERB``, ``NUM``, ``DET``, ``ADP``, ``CCONJ``,
``PRON``, ``AUX``, ``ADV``, ``PART``, ``PUNCT``) and suits the short noun phrases of referring
expressions and captions ("man in red shirt on the left", "second banana from right"); for
free text use stanza or spaCy.

Rules, in order:

* punctuation is ``PUNCT``, digits and number words are ``NUM`` (``one`` after a determiner or an
  adjective is ``NOUN``: "the one on the left", "left one");
* the closed classes (determiners, prepositions, conjunctions, pronouns, auxiliaries, adverbs)
  and a lexicon of adjectives (colours, sizes, ordinals, materials, ...) by list;
* spatial words (``left``, ``right``, ``top``, ``middle``, ...) are ``ADJ`` before another
  open-class word ("left man", "top left corner"), ``ADV`` before ``of`` when no determiner
  precedes them ("the star left of the ring") and ``NOUN`` otherwise ("on the left", "to the
  left of");
* ``-ing`` words are ``VERB`` and ``-ed``/``-est``/``-ly`` words ``ADJ``/``ADJ``/``ADV``, except
  the nouns listed in :data:`NOUN_EXCEPTIONS` ("building", "bed", "chest");
* anything else is ``NOUN``.
"""
from __future__ import annotations

import re

__all__ = ['ADPOSITIONS', 'CONJUNCTIONS', 'DETERMINERS', 'NOUN_EXCEPTIONS', 'SPATIAL_WORDS',
           'tag_words', 'tokenize']

DETERMINERS = ('a', 'an', 'the', 'this', 'that', 'these', 'those', 'some', 'any', 'each',
               'every', 'no', 'its', 'his', 'her', 'their', 'my', 'your', 'our', 'another',
               'both', 'all', 'either', 'neither')
ADPOSITIONS = ('in', 'on', 'at', 'of', 'with', 'without', 'from', 'to', 'by', 'near', 'behind',
               'beside', 'besides', 'under', 'over', 'above', 'below', 'between', 'into',
               'onto', 'against', 'across', 'along', 'around', 'through', 'toward', 'towards',
               'for', 'inside', 'outside', 'beneath', 'underneath', 'atop', 'upon', 'off',
               'like', 'about', 'than', 'via', 'after', 'before', 'next', 'among', 'amongst',
               'within', 'beyond', 'past', 'up', 'down', 'out')
CONJUNCTIONS = ('and', 'or', 'but', 'nor', 'while', 'whose')
_PRONOUNS = ('it', 'he', 'she', 'they', 'him', 'them', 'who', 'which', 'what', 'i', 'you',
             'we', 'me', 'us', 'itself', 'himself', 'herself', 'themselves', 'there', 'where')
_AUXILIARIES = ('is', 'are', 'was', 'were', 'be', 'being', 'been', 'has', 'have', 'had',
                'does', 'do', 'did', 'can', 'could', 'will', 'would', 'may', 'might')
_ADVERBS = ('very', 'not', 'just', 'only', 'also', 'most', 'more', 'less', 'least', 'almost',
            'too', 'so', 'partly', 'partially', 'mostly', 'slightly', 'closer', 'further',
            'farther', 'here', 'again', 'kind', 'sort', 'directly', 'barely', 'half')
_PARTICLES = ("'s", "'", 'to')
_NUMBERS = ('one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
            'eleven', 'twelve', 'dozen')
#: Words that say where something is; adjectives before another open-class word, else nouns.
SPATIAL_WORDS = ('left', 'right', 'top', 'bottom', 'middle', 'center', 'centre', 'front', 'back',
                 'side', 'upper', 'lower', 'far', 'rear', 'leftmost', 'rightmost', 'topmost',
                 'bottommost', 'foreground', 'background')
_ADJECTIVES = (
    # colours and tones
    'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown', 'black', 'white',
    'gray', 'grey', 'tan', 'beige', 'gold', 'golden', 'silver', 'dark', 'light', 'bright',
    'pale', 'navy', 'maroon', 'teal', 'colorful', 'colourful', 'plain', 'clear',
    # sizes and shapes
    'big', 'small', 'large', 'little', 'tiny', 'huge', 'tall', 'short', 'long', 'wide', 'thin',
    'fat', 'round', 'square', 'bigger', 'smaller', 'larger', 'taller', 'shorter', 'longer',
    'full', 'empty', 'whole', 'open', 'closed',
    # ordinals and order
    'first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'last', 'other', 'same', 'single',
    'nearest', 'closest', 'furthest', 'farthest', 'close',
    # people and things
    'old', 'young', 'new', 'male', 'female', 'wooden', 'metal', 'plastic', 'glass', 'leather',
    'fuzzy', 'partial', 'visible', 'hidden', 'cut', 'sliced',
    # the synthetic world's pattern and size words
    'solid', 'dotted', 'striped', 'checkered', 'medium')
#: Nouns that the suffix rules would take for verbs, adjectives or adverbs.
NOUN_EXCEPTIONS = (
    'building', 'ring', 'king', 'thing', 'ceiling', 'painting', 'clothing', 'string', 'wing',
    'swing', 'spring', 'sling', 'ping', 'wedding', 'pudding', 'icing', 'frosting', 'topping',
    'stuffing', 'railing', 'awning', 'sibling', 'duckling', 'morning', 'evening', 'everything',
    'something', 'nothing', 'anything', 'bed', 'shed', 'sled', 'seed', 'weed', 'reed', 'sheet',
    'chest', 'forest', 'vest', 'nest', 'west', 'guest', 'crest', 'rest', 'test', 'quest',
    'bully', 'belly', 'jelly', 'family', 'lily', 'fly', 'butterfly', 'dragonfly', 'rally',
    'ally', 'doily', 'trolley', 'alley', 'tortilla', 'umbrella', 'reply', 'supply', 'bread',
    'blanket', 'steed', 'speed', 'bing', 'bowling', 'lightning', 'boxing', 'parking',
    'sailing', 'skiing', 'surfing', 'pending', 'dumpling', 'earring', 'cling', 'sing', 'ling')
_NUMBER = re.compile(r'\d+(?:\.\d+)?(?:st|nd|rd|th)?$')
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:st|nd|rd|th)?|[a-z]+(?:-[a-z]+)*|'[a-z]*|[^\w\s]")
_OPEN_CLASS = ('NOUN', 'ADJ', 'SPATIAL', 'VERB')
_CLOSED = {**{w: 'DET' for w in DETERMINERS}, **{w: 'ADP' for w in ADPOSITIONS},
           **{w: 'CCONJ' for w in CONJUNCTIONS}, **{w: 'PRON' for w in _PRONOUNS},
           **{w: 'AUX' for w in _AUXILIARIES}, **{w: 'ADV' for w in _ADVERBS},
           **{w: 'PART' for w in _PARTICLES}}


def tokenize(text: str) -> list[str]:
    """Lower-cased words, numbers, possessive ``'s`` and punctuation marks, in order.

    ``"Man's red T-shirt, left"`` gives ``['man', "'s", 'red', 't-shirt', ',', 'left']``.
    """
    return _TOKEN.findall(text.lower())


def _lexical_tag(word: str) -> str:
    if _NUMBER.match(word):
        return 'ADJ' if word[-1].isalpha() else 'NUM'   # '2nd' is an ordinal
    if not word[0].isalnum() and word not in _PARTICLES:
        return 'PUNCT'
    if word in _NUMBERS:
        return 'NUM'
    if word in SPATIAL_WORDS:
        return 'SPATIAL'
    if word in _ADJECTIVES:
        return 'ADJ'
    if word in _CLOSED:
        return _CLOSED[word]
    if word in NOUN_EXCEPTIONS or len(word) <= 4:
        return 'NOUN'
    if word.endswith('ing'):
        return 'VERB'
    if word.endswith(('ed', 'est', 'ish', 'ful', 'ous')):
        return 'ADJ'
    if word.endswith('ly'):
        return 'ADV'
    return 'NOUN'


def tag_words(words: list[str]) -> list[str]:
    """The UPOS tag of each word of :func:`tokenize` (see the module's rules).

    ``['man', 'in', 'red', 'shirt', 'on', 'the', 'left']`` gives
    ``['NOUN', 'ADP', 'ADJ', 'NOUN', 'ADP', 'DET', 'NOUN']``.
    """
    tags = [_lexical_tag(w) for w in words]
    for i, word in enumerate(words):
        if word == 'one' and i > 0 and tags[i - 1] in ('DET', 'ADJ', 'SPATIAL'):
            tags[i] = 'NOUN'
    for i in reversed(range(len(tags))):
        if tags[i] == 'SPATIAL':
            after = tags[i + 1] if i + 1 < len(tags) else None
            before = tags[i - 1] if i > 0 else None
            if after in _OPEN_CLASS:
                tags[i] = 'ADJ'
            elif words[i + 1:i + 2] == ['of'] and before != 'DET':
                tags[i] = 'ADV'
            else:
                tags[i] = 'NOUN'
    return tags
