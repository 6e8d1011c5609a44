"""ViLD-image at inference: the frozen CLIP's embeddings of each proposal's crops, scored against
the text embeddings and ensembled with the text head's probabilities (Gu et al., ICLR 2022)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

from ..clip import create_clip
from ..text import Vocabulary

VILD_WEIGHT = 2 / 3


def vild_ensemble(text_probs: Tensor, image_probs: Tensor, is_base: Tensor,
                  weight: float = VILD_WEIGHT) -> Tensor:
    """ViLD's geometric ensemble of the text head's and CLIP's class probabilities.

    ``p = p_text ** w * p_image ** (1 - w)`` for base classes and
    ``p = p_text ** (1 - w) * p_image ** w`` for novel ones, ``w = 2/3`` in ViLD: the text head
    (trained on the base classes) weighs more on them, CLIP more on the novel ones. Source: the
    paper's ViLD-ensemble (section 3.4, lambda = 2/3) and its released code,
    tensorflow/tpu ``models/official/detection/projects/vild/ops/postprocess_ops.py``
    (``GenericDetectionGenerator``, ``visual_feature_distill='double_branch'``), which computes
    ``(p_text * p_image * t) ** (1/3)`` with ``t = p_text`` on base and ``t = p_image`` on rare
    (novel) classes, i.e. the formula above with ``w = 2/3``.

    Shapes:
        text_probs, image_probs: ``(N, K)`` (no background column); is_base: ``(K,)`` bool;
        returns ``(N, K)``, not renormalised (as in the reference).
    """
    w_text = torch.where(is_base.to(text_probs.device), weight, 1.0 - weight).to(text_probs)
    return text_probs.pow(w_text) * image_probs.pow(1.0 - w_text)


def crop_boxes(images: Tensor, rois: Tensor, size: tuple[int, int], scale: float = 1.0) -> Tensor:
    """The image regions of ``rois``, enlarged ``scale`` times about their centres and resized
    to ``size`` (RoIAlign with adaptive sampling: bilinear when enlarging, an average when
    shrinking). Outside the image it reads zeros, i.e. the mean colour of a normalised input.

    Shapes:
        images ``(B, 3, H, W)``; rois ``(N, 5)`` ``[batch_index, x1, y1, x2, y2]`` in the
        images' pixels; returns ``(N, 3, *size)``.
    """
    centre = (rois[:, 1:3] + rois[:, 3:5]) / 2
    half = (rois[:, 3:5] - rois[:, 1:3]) * (scale / 2)
    boxes = torch.cat([rois[:, :1], centre - half, centre + half], dim=1).to(images)
    return roi_align(images, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=-1,
                     aligned=True)


class ViLDImageEnsemble:
    """Rescores a detector's proposals with CLIP on their crops (ViLD-image) and ensembles
    the result with the text head's probabilities (:func:`vild_ensemble`).

    For each proposal (the RoIs the box head classifies, before box regression and NMS, as the
    reference ensembles per RoI), the 1x and 1.5x crops (ViLD, section 3.2: the larger crop adds
    context) are resized to the CLIP's input, encoded by the **frozen** CLIP image tower,
    L2-normalised, summed and normalised again; the embedding's cosines with the vocabulary's text
    embeddings (synonyms pooled) times CLIP's temperature are softmaxed over the ``K`` classes
    (no background, as the reference's image branch). The text head's softmax keeps its
    background column in the normaliser; the ensemble is over the ``K`` class columns only, and
    the background column is passed on unchanged (mmdet's NMS ignores it).

    The tower is built here from the backbone's ``clip`` config, not shared with the backbone:
    the detector fine-tunes its CLIP trunk (and drops its embedding head), while ViLD scores
    crops with the teacher as pre-trained. It is not a sub-module (outside checkpoints and
    optimisers) and follows the input's device.

    Args:
        clip: the backbone's ``dict(model_name=..., pretrained=...)`` (:func:`create_clip`).
        weight: ``w`` of :func:`vild_ensemble`, ViLD's 2/3.
        crop_scales: the crop enlargements whose embeddings are ensembled.
        temperature: the scale of the cosines; None: CLIP's own (``exp(logit_scale)``).
        base_classes: the training vocabulary; None: the detector's recorded one.
        batch_size: crops per forward of the CLIP tower.

    Shapes:
        images ``(B, 3, H, W)`` normalised with CLIP's mean and std; rois ``(N, 5)``;
        text_probs ``(N, K + 1)`` -> ``(N, K + 1)``.
    """

    def __init__(self, *, clip: dict, weight: float = VILD_WEIGHT,
                 crop_scales: Sequence[float] = (1.0, 1.5), temperature: float | None = None,
                 base_classes: Sequence[str] | None = None, batch_size: int = 256) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f'the ensemble weight must lie in [0, 1], got {weight}')
        model = create_clip(clip['model_name'], clip.get('pretrained')).model
        self.visual = model.visual.eval().requires_grad_(False)
        size = self.visual.image_size
        self.input_size = tuple(size) if isinstance(size, Sequence) else (int(size), int(size))
        clip_scale = model.logit_scale.detach().exp()
        self.temperature = float(clip_scale if temperature is None else temperature)
        self.weight = float(weight)
        self.crop_scales = tuple(float(s) for s in crop_scales)
        self.base_classes = None if base_classes is None else list(base_classes)
        self.batch_size = int(batch_size)

    @torch.no_grad()
    def crop_embeddings(self, images: Tensor, rois: Tensor) -> Tensor:
        """Unit CLIP embeddings of the rois, their crops' embeddings summed.

        Shapes:
            images ``(B, 3, H, W)``; rois ``(N, 5)``; returns ``(N, C)``.
        """
        if hasattr(self.visual, 'to'):    # a tower (not a sub-module: follows the input) or a stub
            self.visual.to(images.device)
        total = 0.0
        for scale in self.crop_scales:
            crops = crop_boxes(images, rois, self.input_size, scale)
            embeddings = torch.cat([self.visual(chunk) for chunk in crops.split(self.batch_size)])
            total = total + F.normalize(embeddings.float(), dim=-1)
        return F.normalize(total, dim=-1)

    def image_probs(self, images: Tensor, rois: Tensor, vocab: Vocabulary) -> Tensor:
        """CLIP's class probabilities of the rois' crops. Shapes: ``(N, K)``."""
        regions = self.crop_embeddings(images, rois)
        text = F.normalize(vocab.embeddings.to(regions), dim=-1)
        return (self.temperature * vocab.pool_synonyms(regions @ text.T, dim=1)).softmax(-1)

    def is_base(self, vocab: Vocabulary, base_classes: Sequence[str]) -> Tensor:
        """Whether each class of ``vocab`` is a base class: one of its synonyms is one of the
        base classes' (case-insensitive). Shapes: ``(K,)`` bool."""
        base = {q.casefold() for q in Vocabulary.parse(list(base_classes)).queries}
        owner = vocab.query_to_class.cpu()
        flags = torch.zeros(vocab.num_classes, dtype=torch.bool)
        for query, k in zip(vocab.queries, owner.tolist()):
            flags[k] |= query.casefold() in base
        return flags

    def __call__(self, images: Tensor, rois: Tensor, text_probs: Tensor, vocab: Vocabulary,
                 is_base: Tensor) -> Tensor:
        ensembled = vild_ensemble(text_probs[:, :-1], self.image_probs(images, rois, vocab),
                                  is_base, self.weight)
        return torch.cat([ensembled, text_probs[:, -1:]], dim=1)
