"""GroundVLP's language side: offline parsing, the reference's subject rule, visual words, and
subject → category mapping."""
from types import SimpleNamespace as NS

import pytest

from densevl.models.clip import create_clip
from densevl.models.grounding import (
    VISUAL_POS,
    ExpressionParser,
    OfflineExpressionParser,
    SubjectCategoryMapper,
    build_expression_parser,
)
from densevl.models.grounding.categories import coco80_names
from densevl.models.grounding.nlp_parsers import SpacyExpressionParser, StanzaExpressionParser
from densevl.models.grounding.subject import subject_from_constituency, subject_from_tags
from densevl.models.text import TextEmbedder


@pytest.mark.parametrize('text, subject', [
    ('man in red shirt on the left', 'man'),
    ('second banana from right', 'banana'),
    ('a red and white checkered table with two wooden chairs', 'table'),
    ('left guy', 'guy'),
    ('guy on left', 'guy'),
    ('The woman wearing a hat', 'woman'),
    ('kid sitting on the bed', 'kid'),
    ('the building behind the man', 'building'),
    ('top left corner pizza', 'pizza'),
    ("man's shirt", 'man'),
    ('two men on left', 'men'),             # plural head (the reference's NN-only walk: 'left')
    ('the one on the left', 'one'),
    # the synthetic world's grammar
    ('the star left of the blue ring', 'star'),
    ('the larger of the two squares', 'squares'),
    ('the leftmost blue dotted ring', 'ring'),
])
def test_offline_subject(text, subject):
    assert OfflineExpressionParser().parse(text).subject == subject


def test_offline_pos_and_visual_words():
    parsed = OfflineExpressionParser().parse('man in red shirt on the left')
    assert parsed.words == ('man', 'in', 'red', 'shirt', 'on', 'the', 'left')
    assert parsed.pos == ('NOUN', 'ADP', 'ADJ', 'NOUN', 'ADP', 'DET', 'NOUN')
    assert parsed.visual_words == ('man', 'red', 'shirt', 'left')
    parsed = OfflineExpressionParser().parse('second banana from right, 2 of them sitting')
    assert set(parsed.visual_words) == {'second', 'banana', 'right', '2', 'sitting'}
    assert {parsed.pos[i] for i in parsed.visual_word_indices} <= set(VISUAL_POS)
    assert isinstance(OfflineExpressionParser(), ExpressionParser)


@pytest.mark.parametrize('text', ['', '   ', '\n'])
def test_empty_expression_is_refused(text):
    with pytest.raises(ValueError, match='empty'):
        OfflineExpressionParser().parse(text)


def test_bad_expressions():
    with pytest.raises(ValueError, match='no words'):
        OfflineExpressionParser().parse('   !!  ')
    with pytest.raises(TypeError, match='string'):
        OfflineExpressionParser().parse(None)
    with pytest.raises(ValueError, match="unknown expression parser 'nltk'"):
        build_expression_parser('nltk')


@pytest.mark.parametrize('text', ['bright red', 'on the', 'very small and dark'])
def test_expression_without_noun_has_unknown_subject(text):
    parsed = OfflineExpressionParser().parse(text)
    assert parsed.subject is None
    assert 'NOUN' not in parsed.pos
    assert subject_from_tags(parsed.words, parsed.pos) is None


def _tree(label, *children):
    """A stanza-like constituency node; a str child is a leaf."""
    kids = [NS(label=c, children=[], is_leaf=lambda: True) if isinstance(c, str) else c
            for c in children]
    return NS(label=label, children=kids, is_leaf=lambda: False)


def _two_men_on_left():
    return _tree('ROOT', _tree('NP', _tree('NP', _tree('CD', 'two'), _tree('NNS', 'men')),
                               _tree('PP', _tree('IN', 'on'), _tree('NP', _tree('NN', 'left')))))


def test_reference_tree_rule():
    # (NP (NP man) (PP in (NP (NP red shirt) (PP on (NP the left)))))
    the_left = _tree('PP', _tree('IN', 'on'), _tree('NP', _tree('DT', 'the'), _tree('NN', 'left')))
    red_shirt = _tree('NP', _tree('NP', _tree('JJ', 'red'), _tree('NN', 'shirt')), the_left)
    man = _tree('ROOT', _tree('NP', _tree('NP', _tree('NN', 'man')),
                              _tree('PP', _tree('IN', 'in'), red_shirt)))
    assert subject_from_constituency(man) == 'man'
    # the rightmost NN of the lowest leftmost NP
    table = _tree('ROOT', _tree('NP', _tree('DT', 'a'), _tree('NN', 'dining'),
                                _tree('NN', 'table')))
    assert subject_from_constituency(table) == 'table'
    # NN only: a plural head is skipped for the next lowest NP, as in the reference
    assert subject_from_constituency(_two_men_on_left()) == 'left'
    assert subject_from_constituency(_two_men_on_left(), ('NN', 'NNS')) == 'men'
    assert subject_from_constituency(_tree('ROOT', _tree('ADJP', _tree('JJ', 'red')))) is None


def test_stanza_parser_with_a_given_pipeline():
    words = [NS(text=t, upos=p) for t, p in
             [('two', 'NUM'), ('men', 'NOUN'), ('on', 'ADP'), ('left', 'NOUN')]]
    doc = NS(sentences=[NS(words=words, constituency=_two_men_on_left())])
    parsed = StanzaExpressionParser(pipeline=lambda text: doc).parse('two men on left')
    assert parsed.subject == 'left' and parsed.visual_words == ('two', 'men', 'left')
    # no NN in the tree: the last NOUN
    doc.sentences[0].constituency = _tree('ROOT', _tree('NP', _tree('NNS', 'men')))
    assert StanzaExpressionParser(pipeline=lambda text: doc).parse('two men').subject == 'left'
    with pytest.raises(ValueError, match='empty'):
        StanzaExpressionParser(pipeline=lambda text: doc).parse(' ')


def test_spacy_parser_with_a_given_pipeline():
    tokens = [NS(text=t, pos_=p) for t, p in
              [('the', 'DET'), ('left', 'ADJ'), ('guy', 'NOUN'), ('in', 'ADP'), ('blue', 'ADJ')]]
    pipeline = lambda text: _Doc(tokens, [NS(root=tokens[2])])   # noqa: E731
    parsed = SpacyExpressionParser(pipeline=pipeline).parse('the left guy in blue')
    assert parsed.subject == 'guy' and parsed.visual_words == ('left', 'guy', 'blue')
    no_chunks = SpacyExpressionParser(pipeline=lambda text: _Doc(tokens, [])).parse('x')
    assert no_chunks.subject == 'guy'   # the last NOUN


class _Doc(list):
    def __init__(self, tokens, chunks):
        super().__init__(tokens)
        self.noun_chunks = chunks


def test_nlp_parsers_need_their_libraries():
    for kind, module in (('stanza', 'stanza'), ('spacy', 'spacy')):
        try:
            __import__(module)
        except ImportError:
            with pytest.raises(ImportError, match='offline parser'):
                build_expression_parser(kind)


@pytest.fixture(scope='module')
def mapper():
    return SubjectCategoryMapper.from_clip(create_clip('clip-tiny-random'))


def test_subject_to_category(mapper):
    names = coco80_names()
    assert len(names) == 80 and names[0] == 'person' and names[-1] == 'toothbrush'
    assert mapper.embedder.templates == ('a photo of {}',)
    # a category's own name is its own nearest category, whatever the weights
    assert mapper.map(['banana', None, 'hair drier']) == ['banana', None, 'hair drier']
    assert mapper.similarities(['guy', 'man']).shape == (2, 80)
    assert mapper.map(['guy'])[0] in names


def test_ground_truth_category_mode(mapper):
    assert mapper.resolve(['guy', None], gt_categories=['person', 46]) == ['person', 'banana']
    assert mapper.resolve(['banana']) == ['banana']
    with pytest.raises(ValueError, match="category 'unicorn' is not in the vocabulary of 80"):
        mapper.resolve(['guy'], gt_categories=['unicorn'])
    with pytest.raises(ValueError, match='not in the vocabulary'):
        mapper.check_category(80)
    with pytest.raises(ValueError, match='2 ground-truth categories for 1'):
        mapper.resolve(['guy'], gt_categories=['person', 'dog'])


def test_mapper_needs_one_template():
    bundle = create_clip('clip-tiny-random')
    embedder = TextEmbedder(bundle.model, bundle.tokenizer, model_id='tiny', templates='vild14',
                            cache_dir=False)
    with pytest.raises(ValueError, match='one, e.g.'):
        SubjectCategoryMapper(embedder)
    small = SubjectCategoryMapper.from_clip(bundle, categories=['cat', 'dog'])
    assert small.map(['dog', 'cat']) == ['dog', 'cat']
