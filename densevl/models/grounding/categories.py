"""Subject word → detector category, by CLIP text similarity or from the ground truth.

GroundVLP asks its detector for one category per expression. In its zero-shot mode that is the
COCO-80 name whose CLIP text embedding is most like the subject's, both embedded as
``"a photo of " + word`` (CLIP ViT-B/32 in the reference; any :func:`create_clip` model here);
in its ``--use_gt_category`` mode (not strictly zero-shot) the annotated category. Deviation: the
reference embeds stanza's ``'[UNK]'`` like a word and maps it to some category; here an unknown
subject stays unknown (``None``), and the caller falls back to class-agnostic proposals.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ...datasets.packaged_names import NAMES_DIR, read_dataset_names
from ..text.text_embedder import TextEmbedder

__all__ = ['COCO80_NAMES_FILE', 'REFERENCE_TEMPLATE', 'SubjectCategoryMapper', 'coco80_names']

#: The 80 COCO category names in the reference's spelling and order (its ``coco_80.txt``).
COCO80_NAMES_FILE = NAMES_DIR / 'coco80.txt'
#: The reference's prompt for subjects and categories alike.
REFERENCE_TEMPLATE = 'a photo of {}'


def coco80_names() -> list[str]:
    """The 80 COCO names, ``'person'`` … ``'toothbrush'``."""
    return list(read_dataset_names(COCO80_NAMES_FILE.name))


class SubjectCategoryMapper:
    """Maps subject words onto one name of a category vocabulary.

    Args:
        embedder: a :class:`TextEmbedder` with a single template (the reference's
            ``'a photo of {}'``: see :meth:`from_clip`); the categories are embedded through it
            (cached), each subject as ``template.format(word)``.
        categories: the category names (default: COCO-80); no synonyms.

    Example:
        >>> mapper = SubjectCategoryMapper.from_clip(create_clip('ViT-B-32', 'openai'))
        >>> mapper.map(['guy', None, 'banana'])
        ['person', None, 'banana']
    """

    def __init__(self, embedder: TextEmbedder, *, categories: Sequence[str] | None = None) -> None:
        if len(embedder.templates) != 1:
            raise ValueError(f'the embedder has {len(embedder.templates)} templates; subject '
                             "mapping embeds words with one, e.g. templates=['a photo of {}']")
        self.embedder = embedder
        self.categories = list(categories) if categories is not None else coco80_names()
        self._category_index = {name: i for i, name in enumerate(self.categories)}
        self._category_embeddings: Tensor | None = None

    @classmethod
    def from_clip(cls, bundle, *, categories: Sequence[str] | None = None,
                  template: str = REFERENCE_TEMPLATE,
                  cache_dir: str | bool | None = False) -> SubjectCategoryMapper:
        """From a :class:`~densevl.models.clip.CLIPBundle` (``create_clip(...)``)."""
        embedder = TextEmbedder(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                                templates=[template], cache_dir=cache_dir)
        return cls(embedder, categories=categories)

    @property
    def category_embeddings(self) -> Tensor:
        """Shapes: ``(K, C)`` float32, unit norm, on the CPU."""
        if self._category_embeddings is None:
            vocabulary = self.embedder(self.categories)
            if vocabulary.num_queries != len(self.categories):
                raise ValueError('category names must not hold synonyms (no ";")')
            self._category_embeddings = vocabulary.embeddings.float().cpu()
        return self._category_embeddings

    def similarities(self, words: Sequence[str]) -> Tensor:
        """Cosine similarity of each word's prompt to each category's.

        Shapes:
            returns ``(len(words), K)``.
        """
        template = self.embedder.templates[0]
        texts = self.embedder.encode_texts([template.format(w) for w in words])
        return texts @ self.category_embeddings.T

    def map(self, subjects: Sequence[str | None]) -> list[str | None]:
        """The most similar category of each subject; ``None`` (unknown) stays ``None``."""
        known = [i for i, s in enumerate(subjects) if s is not None]
        out: list[str | None] = [None] * len(subjects)
        if known:
            best = self.similarities([subjects[i] for i in known]).argmax(dim=1).tolist()
            for i, k in zip(known, best):
                out[i] = self.categories[k]
        return out

    def check_category(self, category: str | int) -> str:
        """A ground-truth category (name, or index into :attr:`categories`), checked.

        Raises:
            ValueError: a name or index outside the vocabulary.
        """
        if isinstance(category, int) and not isinstance(category, bool):
            if 0 <= category < len(self.categories):
                return self.categories[category]
        elif isinstance(category, str) and category in self._category_index:
            return category
        shown = ', '.join(self.categories[:5])
        raise ValueError(f'category {category!r} is not in the vocabulary of '
                         f'{len(self.categories)} categories ({shown}, ...); give one of its '
                         'names or an index below its length')

    def resolve(self, subjects: Sequence[str | None], *,
                gt_categories: Sequence[str | int] | None = None) -> list[str | None]:
        """The detector's category per expression: predicted from ``subjects`` (zero-shot), or
        the checked ``gt_categories`` when given (the reference's ``--use_gt_category``)."""
        if gt_categories is None:
            return self.map(subjects)
        if len(gt_categories) != len(subjects):
            raise ValueError(f'{len(gt_categories)} ground-truth categories for '
                             f'{len(subjects)} expressions')
        return [self.check_category(c) for c in gt_categories]
