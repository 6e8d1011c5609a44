"""OVSeg's frozen CLIP: text embeddings of a vocabulary, image embeddings of mask proposals.

OVSeg classifies each mask proposal with a CLIP that its segmentation training never changes
(in the published models, a CLIP whose mask prompts were tuned beforehand). :class:`OVSegCLIP`
gathers what the segmentor asks of it, over one open_clip model:

* the vocabulary's text embeddings (:class:`~densevl.models.text.TextEmbedder`, cached; OVSeg
  prompts with the 14 ViLD templates), which the CLIP-space class head and the proposals'
  image embeddings are both compared with;
* the proposals' image embeddings, by one of two classifiers: ``'masked_crops'`` (OVSeg's: one
  CLIP forward per valid proposal on its masked crop, with mask prompts when a mask embedding is
  given, a bounded chunk of crops at a time) or ``'mask_pooling'`` (FC-CLIP's: one dense CLIP
  forward per image, each proposal's embedding pooled under its mask, :func:`mask_pool`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import Tensor, nn

from ..clip import build_dense_encoder, create_clip
from ..clip.last_block import check_mode
from ..text import TextEmbedder, Vocabulary
from .checkpoint import build_mask_prompt_clip, read_mask_embedding
from .clip_space_head import cosine_logits, text_matrix
from .mask_pooling import mask_pool
from .masked_crops import DEFAULT_CHUNK_SIZE, MaskProposals, encode_masked_crops, find_proposals

#: How proposals are classified by the frozen CLIP.
CLASSIFIERS = ('masked_crops', 'mask_pooling')


def check_classifier(classifier: str) -> str:
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier={classifier!r}; use 'masked_crops' (OVSeg: one CLIP "
                         "forward per proposal) or 'mask_pooling' (one dense CLIP forward per "
                         'image, embeddings pooled under the masks)')
    return classifier


def _input_size(visual: nn.Module) -> int:
    size = visual.image_size                 # a ViT keeps (h, w), a ModifiedResNet an int
    size = size if isinstance(size, int) else size[0]
    return int(size)


class OVSegCLIP(nn.Module):
    """The frozen CLIP of OVSeg (see the module): text and proposal embeddings, no gradients.

    Args:
        model: an open_clip ``CLIP`` (used as it is, set to eval mode and frozen).
        tokenizer: its tokenizer.
        model_id: names the model and its weights in the text cache's keys.
        templates: prompt templates of the text embeddings (OVSeg: ``'vild14'``).
        mask_embedding: OVSeg's mask prompts for the masked crops (``(depth, grid ** 2,
            width)``, :func:`read_mask_embedding`); None: the crops go through the plain tower
            (OVSeg without mask prompt tuning).
        dense_mode: the dense CLIP mode of ``'mask_pooling'`` (``'maskclip'``, ``'sclip'`` ...).
        text_cache_dir: disk cache of the text embeddings (None: the default; False: off).

    Attributes:
        crop_size: side of the masked crops, the tower's input size.
        random_weights: True when the CLIP has no pretrained weights (set by :meth:`create`).
    """

    def __init__(self, model: nn.Module, tokenizer, *, model_id: str,
                 templates: str | Sequence[str] = 'vild14', mask_embedding: Tensor | None = None,
                 dense_mode: str = 'maskclip', text_cache_dir=None) -> None:
        super().__init__()
        self.model = model
        visual = model.visual
        self.mask_prompt = None if mask_embedding is None else \
            build_mask_prompt_clip(visual, mask_embedding)
        self.crop_size = self.mask_prompt.input_size if self.mask_prompt is not None \
            else _input_size(visual)
        self.dense_mode = check_mode(dense_mode)
        self._dense: list[nn.Module] = []   # built when mask pooling first needs it
        self.text = TextEmbedder(model, tokenizer, model_id=model_id, templates=templates,
                                 cache_dir=text_cache_dir)
        self.random_weights = False
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def create(cls, model_name: str, pretrained: str | None = None, *,
               mask_embedding: str | os.PathLike | Tensor | None = None,
               device: str | torch.device = 'cpu', **options) -> OVSegCLIP:
        """Build it by name (:func:`~densevl.models.clip.create_clip`), with the mask embedding
        of a file written by ``tools/convert_ovseg_clip_checkpoint.py`` (or a tensor).

        Args:
            model_name, pretrained, device: as :func:`~densevl.models.clip.create_clip`.
            mask_embedding: a mask embedding file or tensor, or None (no mask prompts).
            **options: ``templates``, ``dense_mode``, ``text_cache_dir`` of the constructor.
        """
        bundle = create_clip(model_name, pretrained, device=device)
        if mask_embedding is not None and not isinstance(mask_embedding, Tensor):
            mask_embedding = read_mask_embedding(mask_embedding)
        if mask_embedding is not None:
            mask_embedding = mask_embedding.to(device)
        clip = cls(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                   mask_embedding=mask_embedding, **options)
        clip.random_weights = bundle.random_weights
        return clip

    @property
    def embed_dim(self) -> int:
        """``C``, the joint image-text space's dimension."""
        return int(self.model.text_projection.shape[-1])

    @property
    def text_width(self) -> int:
        """Width of the text transformer (OVSeg initialises its no-object embedding by it)."""
        return int(self.model.transformer.width)

    @property
    def dense(self) -> nn.Module:
        """The dense encoder of mask pooling (``dense_mode``) over the same tower."""
        if not self._dense:
            self._dense.append(build_dense_encoder(self.model.visual, mode=self.dense_mode))
        return self._dense[0]

    @property
    def device(self) -> torch.device:
        return self.model.text_projection.device

    def train(self, mode: bool = True) -> OVSegCLIP:
        # frozen: never in training mode (no dropout, no batch-statistics updates)
        return super().train(False)

    def vocabulary(self, class_names: Sequence[str]) -> Vocabulary:
        """The vocabulary of ``class_names`` with its unit text embeddings (cached per query)."""
        return self.text(list(class_names))

    def normalise(self, images: Tensor) -> Tensor:
        """RGB 0-255 images normalised with CLIP's pixel statistics.

        Shapes:
            ``(B, 3, H, W) -> (B, 3, H, W)``.
        """
        mean = torch.tensor(OPENAI_DATASET_MEAN, device=images.device).view(3, 1, 1) * 255.0
        std = torch.tensor(OPENAI_DATASET_STD, device=images.device).view(3, 1, 1) * 255.0
        return (images.float() - mean) / std

    def _encode_crops(self, crops: Tensor, region_masks: Tensor) -> Tensor:
        if self.mask_prompt is not None:
            return self.mask_prompt(crops, region_masks)
        if crops.shape[0] == 0:
            return crops.new_zeros(0, self.embed_dim)
        return self.model.visual(crops)

    @torch.no_grad()
    def embed_proposals(self, images: Tensor, mask_logits: Tensor, threshold: float, *,
                        classifier: str = 'masked_crops',
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[Tensor, MaskProposals]:
        """Image embeddings of the valid proposals, by ``classifier`` (see the module).

        Args:
            images: RGB on the 0-255 scale (not normalised).
            mask_logits: the proposals' mask logits at the images' resolution.
            threshold: a pixel belongs to a proposal when ``sigmoid(logit) > threshold``; a
                proposal without such pixels is invalid and gets no embedding.
            classifier: ``'masked_crops'`` or ``'mask_pooling'``.
            chunk_size: crops per CLIP forward (masked crops).

        Shapes:
            images: ``(B, 3, H, W)``; mask_logits: ``(B, Q, H, W)``; returns ``(N, C)``
            (``N`` valid proposals, image-major) and the proposals.
        """
        if check_classifier(classifier) == 'masked_crops':
            return encode_masked_crops(self._encode_crops, images, mask_logits, threshold,
                                       size=self.crop_size, chunk_size=chunk_size)
        proposals = find_proposals(mask_logits, threshold)
        if proposals.num_crops == 0:
            return images.new_zeros(0, self.embed_dim), proposals
        dense = self.dense.forward_dense(self.normalise(images), return_global=False).dense
        return mask_pool(dense, proposals), proposals

    @torch.no_grad()
    def proposal_logits(self, images: Tensor, mask_logits: Tensor, threshold: float,
                        vocabulary: Vocabulary, **options) -> tuple[Tensor, MaskProposals]:
        """OVSeg's CLIP logits of the valid proposals: ``100 * cos(embedding, text)``.

        Args:
            images, mask_logits, threshold: see :meth:`embed_proposals`.
            vocabulary: with text embeddings (:meth:`vocabulary`).
            **options: ``classifier`` and ``chunk_size`` of :meth:`embed_proposals`.

        Shapes:
            returns ``(N, Q)`` (one column per query, no no-object) and the proposals.
        """
        embeddings, proposals = self.embed_proposals(images, mask_logits, threshold, **options)
        embeddings = embeddings.float()
        return cosine_logits(embeddings, text_matrix(vocabulary, embeddings)), proposals
