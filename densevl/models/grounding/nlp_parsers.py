"""Expression parsers over stanza and spaCy, for users who have their English models locally.

Neither library nor its models is a dependency: the models are downloaded by the user
(``stanza.download('en', model_dir=...)``; ``python -m spacy download en_core_web_sm``) and
never at run time here. A ready pipeline can be passed instead (``pipeline=``), which is also how
the tests drive them without the libraries.
"""
from __future__ import annotations

from .parsing import ParsedExpression, check_expression
from .subject import last_noun, subject_from_constituency

__all__ = ['SpacyExpressionParser', 'StanzaExpressionParser']


class StanzaExpressionParser:
    """GroundVLP's own parse: stanza's UPOS tags and constituency tree (first sentence).

    The subject is :func:`~.subject.subject_from_constituency` (the reference's walk, ``NN``
    heads only), else the last ``NOUN``, else unknown.

    Args:
        pipeline: a ready ``stanza.Pipeline`` (or any callable with its output's shape); when
            ``None`` one is built with the processors ``tokenize,pos,constituency``, offline.
        model_dir: stanza's model folder (``None``: stanza's default, ``~/stanza_resources``).
    """

    def __init__(self, *, pipeline=None, model_dir: str | None = None) -> None:
        if pipeline is None:
            try:
                import stanza
            except ImportError as err:
                raise ImportError("the 'stanza' parser needs `pip install stanza` and its "
                                  "English models; or use the offline parser") from err
            try:
                pipeline = stanza.Pipeline(
                    'en', processors='tokenize,pos,constituency', model_dir=model_dir,
                    download_method=None, verbose=False)
            except Exception as err:   # stanza raises several types for missing resources
                raise FileNotFoundError(
                    f'stanza cannot load its English models from {model_dir or "its default"} '
                    f"folder ({err}); download them once with stanza.download('en') where "
                    "there is network, or use the offline parser") from err
        self.pipeline = pipeline

    def parse(self, text: str) -> ParsedExpression:
        text = check_expression(text)
        sentence = self.pipeline(text).sentences[0]
        words = tuple(w.text for w in sentence.words)
        pos = tuple(w.upos for w in sentence.words)
        subject = subject_from_constituency(sentence.constituency) or last_noun(words, pos)
        return ParsedExpression(text, words, pos, subject)


class SpacyExpressionParser:
    """spaCy's UPOS tags; the subject is the root of the first noun chunk whose root is a
    ``NOUN``/``PROPN`` (spaCy has no constituency tree: its noun chunks are the base noun
    phrases, i.e. the lowest ``NP`` s), else the last ``NOUN``, else unknown.

    Args:
        pipeline: a ready ``spacy.Language`` (or any callable with its output's shape); when
            ``None``, ``spacy.load(model)``.
        model: an installed spaCy pipeline name or folder.
    """

    def __init__(self, *, pipeline=None, model: str = 'en_core_web_sm') -> None:
        if pipeline is None:
            try:
                import spacy
            except ImportError as err:
                raise ImportError("the 'spacy' parser needs `pip install spacy` and an English "
                                  'pipeline; or use the offline parser') from err
            try:
                pipeline = spacy.load(model)
            except OSError as err:
                raise FileNotFoundError(
                    f'spaCy pipeline {model!r} is not installed ({err}); install it where there '
                    'is network (python -m spacy download en_core_web_sm) or use the offline '
                    'parser') from err
        self.pipeline = pipeline

    def parse(self, text: str) -> ParsedExpression:
        text = check_expression(text)
        doc = self.pipeline(text)
        words = tuple(t.text for t in doc)
        pos = tuple(t.pos_ for t in doc)
        subject = next((chunk.root.text for chunk in doc.noun_chunks
                        if chunk.root.pos_ in ('NOUN', 'PROPN')), None)
        return ParsedExpression(text, words, pos, subject or last_noun(words, pos))
