"""Mask adaptation of CLIP on region–noun pairs: fine-tuning and mask prompt tuning (OVSeg).

OVSeg adapts the CLIP that classifies its masked crops in two contrastive stages on the
region–noun pairs (:mod:`.region_nouns`), both with the text tower locked:

1. **fine-tuning** (``tune='image_tower'``): the whole image tower trains on the crops as they
   are (ov-seg's ``open_clip_training`` ``main``: AdamW lr 5e-6, weight decay 0.2 off gains and
   biases, betas (0.9, 0.98), eps 1e-6, 100 warm-up steps, cosine, 5 epochs);
2. **mask prompt tuning** (``tune='mask_prompts'``): the image tower is frozen too and only the
   mask embedding of :class:`MaskPromptCLIP` trains (``main_mask_prompt_tuning``: depth 3, lr
   0.05, no weight decay, the same schedule), usually on top of the fine-tuned CLIP.

:class:`RegionTextTuner` is the mmengine model of both (``tools/train.py`` runs it); the loss is
:func:`region_text_loss`. :meth:`RegionTextTuner.export` (called by
:class:`~densevl.engine.ExportTunedCLIPHook` when training ends) writes the CLIP in the files that
:class:`~densevl.models.segmentors.OVSegSegmentor` takes: ``clip.pth`` (``model.clip.pretrained``)
and, after mask prompt tuning, ``clip.mask_embedding.pth`` (``model.clip.mask_embedding``).

Two choices differ from the reference, both documented where they act: the contrastive targets
treat the crops of one batch that share a title as positives of each other (the reference's
one-hot targets make them negatives, which a small vocabulary makes frequent), and CLIP's
logit scale stays frozen (the reference leaves it trainable in both stages).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from ...registry import SEG_MODELS
from ..clip import create_clip
from ..text import TextEmbedder
from .checkpoint import read_mask_embedding
from .mask_prompt_vit import MaskPromptCLIP

__all__ = ['TUNED_PARTS', 'RegionTextTuner', 'region_text_loss']

#: What :class:`RegionTextTuner` trains.
TUNED_PARTS = ('image_tower', 'mask_prompts')
#: The files :meth:`RegionTextTuner.export` writes in a work dir.
CLIP_FILE, MASK_EMBEDDING_FILE = 'clip.pth', 'clip.mask_embedding.pth'


def region_text_loss(image_embeddings: Tensor, titles: list[str], title_embeddings: Tensor,
                     title_names: list[str], logit_scale: float | Tensor) -> Tensor:
    """CLIP's symmetric contrastive loss between crops and their titles, one batch.

    Crops that share a title are positives of each other: the image-to-text side is a
    cross-entropy over the batch's distinct titles, the text-to-image side one over the crops
    with targets spread evenly over a title's crops (with distinct titles this is CLIP's loss).

    Args:
        image_embeddings: the crops' embeddings (not normalised).
        titles: each crop's title.
        title_embeddings: unit text embeddings of the distinct titles ``title_names``.
        logit_scale: the multiplier of the cosines (CLIP's ``exp(logit_scale)``).

    Shapes:
        image_embeddings: ``(B, C)``; title_embeddings: ``(T, C)``; returns a scalar.
    """
    index = {name: i for i, name in enumerate(title_names)}
    target = torch.zeros(len(titles), len(title_names), device=image_embeddings.device)
    target[torch.arange(len(titles)), torch.tensor([index[t] for t in titles])] = 1.0
    logits = logit_scale * F.normalize(image_embeddings, dim=-1) @ title_embeddings.T
    to_text = F.cross_entropy(logits, target)
    to_image = F.cross_entropy(logits.T, target.T / target.T.sum(dim=1, keepdim=True))
    return (to_text + to_image) / 2


@SEG_MODELS.register_module()
class RegionTextTuner(BaseModel):
    """Contrastive tuning of a CLIP on masked crops and their titles (see the module).

    Args:
        clip: ``dict(model_name=..., pretrained=...)`` of :func:`~densevl.models.clip.create_clip`
            (the weights are loaded now: this model trains them).
        tune: ``'image_tower'`` (fine-tuning) or ``'mask_prompts'`` (mask prompt tuning).
        mask_prompt_depth: the mask embedding's depth (OVSeg: 3), with ``'mask_prompts'``.
        mask_embedding: a mask embedding file to start from (None: zeros, as the reference).
        templates: prompt templates of the titles (the reference tokenizes the title alone).
        data_preprocessor, init_cfg: mmengine's.

    Batches: ``inputs`` (normalised crops at the tower's input size), ``region_masks`` and
    ``titles`` (:class:`~densevl.datasets.RegionTextDataset`).
    """

    def __init__(self, clip: dict, tune: str = 'mask_prompts', mask_prompt_depth: int = 3,
                 mask_embedding: str | os.PathLike | None = None,
                 templates: tuple[str, ...] = ('{}', ), data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if tune not in TUNED_PARTS:
            raise ValueError(f"tune={tune!r}; use 'image_tower' (fine-tune the image tower) or "
                             "'mask_prompts' (train only the mask embedding)")
        if tune == 'image_tower' and mask_embedding is not None:
            raise ValueError('fine-tuning the image tower trains on plain crops; tune mask '
                             "prompts afterwards (tune='mask_prompts') with the fine-tuned "
                             'clip.pth')
        bundle = create_clip(clip['model_name'], clip.get('pretrained'))
        if bundle.random_weights:
            raise ValueError(f"{clip['model_name']!r} has no pretrained weights here; tuning "
                             'adapts a trained CLIP: set clip.pretrained')
        self.tune = tune
        self.clip = bundle.model
        self.clip.requires_grad_(False)
        self.clip.logit_scale.requires_grad_(False)
        self.titles = TextEmbedder(self.clip, bundle.tokenizer, model_id=bundle.model_id,
                                   templates=list(templates), cache_dir=False)
        if tune == 'image_tower':
            self.clip.visual.requires_grad_(True)
            self.mask_prompt = None
        else:
            self.mask_prompt = MaskPromptCLIP(self.clip.visual, depth=mask_prompt_depth)
            if mask_embedding is not None:
                self.mask_prompt.load_state_dict(
                    {**{f'visual.{k}': v for k, v in self.clip.visual.state_dict().items()},
                     'mask_embedding': read_mask_embedding(mask_embedding)})
            self.mask_prompt.mask_embedding.requires_grad_(True)

    def train(self, mode: bool = True) -> RegionTextTuner:
        super().train(mode)
        self.clip.transformer.eval()          # the locked text tower never trains
        if self.tune == 'mask_prompts':
            self.clip.visual.eval()
        return self

    def encode(self, inputs: Tensor, region_masks: Tensor | None) -> Tensor:
        """The crops' embeddings: the plain tower, or with mask prompts on the blank patches.

        Shapes:
            inputs: ``(B, 3, S, S)``; region_masks: ``(B, 1, S, S)``; returns ``(B, C)``.
        """
        if self.mask_prompt is None:
            return self.clip.visual(inputs)
        return self.mask_prompt(inputs, region_masks)

    def forward(self, inputs: Tensor, region_masks: Tensor | None = None,
                titles: list[str] | None = None, mode: str = 'tensor'):
        embeddings = self.encode(inputs, region_masks)
        if mode == 'tensor':
            return embeddings
        if mode != 'loss':
            raise ValueError(f"RegionTextTuner runs in mode 'loss' or 'tensor', not {mode!r}; "
                             'evaluate the tuned CLIP inside OVSeg (tools/test.py)')
        names = sorted(set(titles))
        text = self.titles(names).embeddings.to(embeddings.device)
        loss = region_text_loss(embeddings, list(titles), text, names,
                                self.clip.logit_scale.exp())
        return dict(loss_contrastive=loss)

    def export(self, work_dir: str | os.PathLike) -> list[Path]:
        """Write the tuned CLIP for OVSeg: ``clip.pth`` and, after mask prompt tuning,
        ``clip.mask_embedding.pth`` (the layout of ``tools/convert_ovseg_clip_checkpoint.py``).

        Returns:
            The files written.
        """
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        files = [work_dir / CLIP_FILE]
        torch.save({k: v.detach().cpu() for k, v in self.clip.state_dict().items()}, files[0])
        if self.mask_prompt is not None:
            files.append(work_dir / MASK_EMBEDDING_FILE)
            torch.save({'mask_embedding': self.mask_prompt.mask_embedding.detach().cpu()},
                       files[1])
        return files
