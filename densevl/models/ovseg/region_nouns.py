"""Region–noun pairs mined from captioned images: the data of mask-adapted CLIP (OVSeg).

OVSeg adapts CLIP to masked images with pairs of a masked region and a word, mined without
labels: class-agnostic mask proposals of a captioned image are matched to the nouns of its
caption by CLIP itself, each noun taking the proposal whose masked crop CLIP finds most like it
(the paper's "pair each noun with the mask proposal that best matches it"; the reference never
released this step). A pair is saved losslessly as the proposal's tight crop with the pixels
outside the mask set to one fill colour, so that the region mask can be read back from the
image alone (:func:`region_mask_of`), and listed in a tab-separated file with the columns
``filepath`` and ``title`` (what ov-seg's CLIP training reads).

* :func:`noun_phrases` splits a caption into noun phrases with a small English chunker (no
  parser or model: split at punctuation, conjunctions and prepositions, drop determiners and
  the nouns that name the picture or a place in it). It suits short descriptive captions (COCO,
  the synthetic world); pass your own ``nouns`` callable for anything else (e.g. spaCy's
  ``noun_chunks``).
* :func:`match_nouns` pairs each noun with its best proposal from CLIP embeddings.
* :func:`region_crop` and :func:`region_mask_of` write and read a pair's crop.
* :func:`mine_regions` does it for one image with a trained OVSeg (its MaskFormer's proposals,
  its frozen CLIP's masked crops); ``tools/mine_region_nouns.py`` for a captioned image set.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
from open_clip.constants import OPENAI_DATASET_MEAN
from torch import Tensor

from ..text.english import ADPOSITIONS, CONJUNCTIONS, DETERMINERS

__all__ = ['FILL_RGB', 'match_nouns', 'mine_regions', 'noun_phrases', 'region_crop',
           'region_mask_of']

#: The colour of the pixels outside a saved region: CLIP's mean colour, rounded to 8 bits (the
#: reference fills with ImageNet's (124, 116, 103); CLIP's own mean keeps the saved crops equal
#: to the masked crops that OVSeg classifies at inference, whose outside is CLIP's mean).
FILL_RGB = tuple(int(round(c * 255)) for c in OPENAI_DATASET_MEAN)

# the shared offline lexicon (also GroundVLP's expression parser): phrases end at prepositions,
# conjunctions and a few verbs, and lose their determiners
_SPLIT_WORDS = ADPOSITIONS + CONJUNCTIONS + ('is', 'are', 'has', 'have', 'there')
_DROP_WORDS = DETERMINERS
# nouns that name the picture itself or a place in it, not a region of it
_NOT_REGIONS = ('picture', 'photo', 'image', 'view', 'scene', 'top', 'bottom', 'left', 'right',
                'center', 'centre', 'middle', 'side', 'front', 'back', 'corner', 'top left',
                'top right', 'bottom left', 'bottom right')
_SPLIT = re.compile(r'[,.;:!?()]|\b(?:' + '|'.join(_SPLIT_WORDS) + r')\b')


def noun_phrases(caption: str) -> list[str]:
    """The noun phrases of a short descriptive caption, in order, without repeats.

    ``'a picture of a small red star and a blue dotted ring in the center on wood'`` gives
    ``['small red star', 'blue dotted ring', 'wood']``; ``'a sky background'`` gives ``['sky
    background']``.
    """
    phrases: list[str] = []
    for chunk in _SPLIT.split(caption.lower()):
        words = [w for w in chunk.split() if w not in _DROP_WORDS]
        phrase = ' '.join(words)
        if phrase and phrase not in _NOT_REGIONS and phrase not in phrases:
            phrases.append(phrase)
    return phrases


def match_nouns(region_embeddings: Tensor, noun_embeddings: Tensor) -> Tensor:
    """For each noun, the region CLIP finds most like it (cosine similarity).

    Shapes:
        region_embeddings: ``(R, C)``; noun_embeddings: ``(T, C)``; returns ``(T,)`` long
        (empty when there are no regions).
    """
    if region_embeddings.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=noun_embeddings.device)
    regions = torch.nn.functional.normalize(region_embeddings.float(), dim=-1)
    nouns = torch.nn.functional.normalize(noun_embeddings.float(), dim=-1)
    return (nouns @ regions.T).argmax(dim=1)


def region_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The tight crop of a region with :data:`FILL_RGB` outside it.

    Pixels of the region that happen to be exactly the fill colour are nudged by one level so
    that :func:`region_mask_of` reads the mask back exactly.

    Shapes:
        image: ``(H, W, 3)`` uint8; mask: ``(H, W)`` bool with at least one pixel; returns
        ``(h, w, 3)`` uint8.
    """
    if not mask.any():
        raise ValueError('the region mask is empty: there is nothing to crop')
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    fill = np.array(FILL_RGB, np.uint8)
    pixels = image[box].copy()
    on_fill = (pixels == fill).all(axis=-1) & mask[box]
    pixels[on_fill, 0] ^= 1
    pixels[~mask[box]] = fill
    return pixels


def region_mask_of(crop: np.ndarray) -> np.ndarray:
    """The region of a saved crop: the pixels that are not the fill colour (as the reference's
    ``Maskget``). Shapes: ``(h, w, 3)`` uint8 -> ``(h, w)`` bool."""
    return ~(crop == np.array(FILL_RGB, np.uint8)).all(axis=-1)


@torch.no_grad()
def mine_regions(segmentor, images: Tensor, captions: Sequence[str],
                 nouns: Callable[[str], list[str]] = noun_phrases
                 ) -> list[list[tuple[str, np.ndarray]]]:
    """The region–noun pairs of a batch of captioned images, as saved crops.

    The proposals are the trained OVSeg's (``segmentor``: an
    :class:`~densevl.models.segmentors.OVSegSegmentor`), class-agnostic: every proposal with a
    pixel above the mask threshold is a candidate, whatever its class. Its frozen CLIP embeds the
    candidates' masked crops and the nouns (with the segmentor's templates), and each noun of an
    image takes that image's best candidate (:func:`match_nouns`); two nouns may take the same
    region.

    Args:
        segmentor: the trained OVSeg (in eval mode).
        images: images of one size, normalised as the segmentor's data preprocessor does, at the
            size it segments (``OpenVocabSegInferencer.preprocess``).
        captions: one caption per image.
        nouns: a caption's nouns (default :func:`noun_phrases`).

    Returns:
        Per image, ``(noun, crop)`` pairs (:func:`region_crop`); none for an image whose caption
        has no noun or which has no valid proposal.

    Shapes:
        images: ``(B, 3, H, W)``; each crop ``(h, w, 3)`` uint8.
    """
    words = [nouns(caption) for caption in captions]
    names = sorted({word for image_words in words for word in image_words})
    if not names:
        return [[] for _ in captions]
    clip = segmentor.frozen_clip
    vocabulary = clip.vocabulary(names)
    rgb = segmentor.unnormalise(images)
    _, mask_logits = segmentor.proposals(images, rgb, vocabulary)
    regions, proposals = clip.embed_proposals(rgb, mask_logits, segmentor.mask_threshold,
                                              classifier='masked_crops')
    masks = proposals.binary[proposals.image_index, proposals.query_index].cpu().numpy()
    pixels = rgb.round().byte().permute(0, 2, 3, 1).cpu().numpy()
    pairs = []
    for b, image_words in enumerate(words):
        mine = (proposals.image_index == b).nonzero().flatten()
        if not image_words or mine.numel() == 0:
            pairs.append([])
            continue
        text = vocabulary.embeddings[[names.index(w) for w in image_words]]
        best = mine[match_nouns(regions[mine], text)].tolist()
        pairs.append([(w, region_crop(pixels[b], masks[i])) for w, i in zip(image_words, best)])
    return pairs
