"""GroundVLP zero-shot visual grounding of referring expressions: CLIP heat map x detector."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.grounding import (
    ALBEFHeatMap,
    CLIPHeatMap,
    ParsedExpression,
    SubjectCategoryMapper,
    build_expression_parser,
    fuse_heat_and_boxes,
)
from ..models.grounding.subject import NP_WORD_TAGS
from .grounding_detector import Detections, build_detector_slot, whole_image_box
from .image_io import ImageInput, load_image, save_drawing

__all__ = ['GT_SCORE_THRESHOLD', 'GroundingInferencer', 'GroundingPrediction',
           'PREDICTED_SCORE_THRESHOLD', 'subject_phrase']

#: GroundVLP's detector score thresholds: with the ground-truth category, with a predicted one.
GT_SCORE_THRESHOLD = 0.15
PREDICTED_SCORE_THRESHOLD = 0.3


@dataclass
class GroundingPrediction:
    """The answer for one referring expression, in the pixels of the image as given.

    Attributes:
        expression: the expression.
        subject: its subject word (None: no noun was found).
        category: the category the detector was asked for (None: unknown subject).
        box: ``(4,)`` xyxy of the chosen candidate.
        score: its fused score ``g`` (``d · Σ_box H / sqrt(area)``).
        candidates: ``(N, 4)`` the boxes scored (the category's detections, or the
            class-agnostic proposals when ``fallback``).
        candidate_scores: ``(N,)`` their fused scores.
        detector_scores: ``(N,)`` the detector's scores ``d`` (all 1 when ``fallback``).
        fallback: True when the candidates are class-agnostic proposals (unknown category, or
            nothing of it above the threshold).
        heat_map: ``(H, W)`` float32, the expression's CLIP heat map at the image's size.
    """

    expression: str
    subject: str | None
    category: str | None
    box: Tensor
    score: float
    candidates: Tensor
    candidate_scores: Tensor
    detector_scores: Tensor
    fallback: bool
    heat_map: Tensor


def subject_phrase(parsed: ParsedExpression) -> str | None:
    """The subject's base noun phrase without its determiners: ``'the small red star left of
    ...'`` -> ``'small red star'``; None when the subject is unknown."""
    if parsed.subject is None:
        return None
    end = parsed.words.index(parsed.subject)
    start = end
    while start > 0 and parsed.pos[start - 1] in NP_WORD_TAGS:
        start -= 1
    words = [w for w, t in zip(parsed.words[start:end + 1], parsed.pos[start:end + 1])
             if t != 'DET']
    return ' '.join(words)


class GroundingInferencer:
    """Zero-shot visual grounding as GroundVLP (Shen et al., AAAI 2024), on the library's CLIP.

    Per expression: parse it (:func:`build_expression_parser`, offline by default); take its
    subject; map the subject to a category of the detector's vocabulary by CLIP text similarity
    (:class:`SubjectCategoryMapper`), or use the ground-truth category given; keep the detector's
    boxes of that category scoring at least 0.15 (ground-truth category) / 0.3 (predicted); when
    there are none, or the subject is unknown, fall back to class-agnostic proposals with
    ``d = 1`` (the detector's boxes of every class, suppressed across classes; the whole image
    when there are none at all); score each box with the expression's CLIP heat map
    (:class:`CLIPHeatMap`) and answer ``argmax_i d_i · Σ_box H / sqrt(area_i)``.

    The expressions of one image share one detector forward and one CLIP forward/backward.

    Args:
        model: the heat-map CLIP: a densevl zoo name (``'clip-synthetic-tiny'``) or an open_clip
            architecture (``'RN50'``, ``'ViT-B-16'``). The same CLIP maps subjects to categories
            (the reference uses ViT-B/32 for that).
        weights: the CLIP's weights (``create_clip``'s ``pretrained``: a tag or a local file).
        detector: the detector slot (:mod:`.grounding_detector`): a detection config path,
            ``(config, weights)``, ``dict(config=..., weights=...)``, an
            :class:`OpenVocabDetInferencer`, or any object with ``class_names`` and
            ``run(image) -> Detections``. Its class names are the category vocabulary.
        device: ``'cpu'``, ``'cuda'``...; default cuda when available.
        parser: ``'offline'`` (no model), ``'stanza'``, ``'spacy'``, or a parser object.
        template: the heat map's prompt; None: ReCLIP's ``'a photo of {}'`` for CLIP,
            GroundVLP's ``'there is a {}'`` for ALBEF.
        category_from: what is mapped to a category in predicted mode: ``'subject'`` (the head
            noun, GroundVLP's rule) or ``'phrase'`` (the subject's noun phrase, adjectives
            included: what a vocabulary of attributes such as colours needs).
        subject_heat: average the expression's heat map with its subject's (CLIPHeatMap).
        heat_model: ``'clip'`` (the CLIP's heat map, :class:`CLIPHeatMap`) or ``'albef'``
            (GroundVLP's own: ALBEF/TCL cross-attention with visual-word aggregation,
            :class:`ALBEFHeatMap`; the CLIP then only maps subjects to categories), or a built
            :class:`ALBEFHeatMap` (other dimensions than ALBEF/TCL's).
        heat_weights: with ``'albef'``, the local ALBEF.pth / TCL.pth.
        bert_vocab: with ``'albef'``, the local bert-base-uncased ``vocab.txt`` or its folder.

    Example:
        >>> ground = GroundingInferencer('clip-synthetic-tiny', detector=(
        ...     'configs/ovdet/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py',
        ...     'work_dirs/.../iter_800.pth'))
        >>> out = ground('scene.png', expressions=['the red star', 'the large blue ring'])
        >>> out['predictions'][0].box     # (4,) xyxy
    """

    def __init__(self, model: str, weights: str | None = None, *, detector,
                 device: str | None = None, parser='offline', template: str | None = None,
                 category_from: str = 'subject', subject_heat: bool = False,
                 heat_model: str | ALBEFHeatMap = 'clip', heat_weights: str | None = None,
                 bert_vocab: str | None = None) -> None:
        from ..models.clip import create_clip
        from ..models.inference_protocol import default_protocol

        self.category_from = category_from
        if not isinstance(heat_model, ALBEFHeatMap) and heat_model not in ('clip', 'albef'):
            raise ValueError(f"heat_model must be 'clip', 'albef' or an ALBEFHeatMap, got "
                             f'{heat_model!r}')
        if isinstance(heat_model, ALBEFHeatMap) and subject_heat:
            raise ValueError('the ALBEF heat map averages visual words instead of subject_heat')
        if heat_model == 'albef' and (heat_weights is None or bert_vocab is None or subject_heat):
            raise ValueError("heat_model='albef' needs heat_weights (ALBEF.pth / TCL.pth) and "
                             'bert_vocab (a bert-base-uncased vocab.txt), and averages visual '
                             'words instead of subject_heat')
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.detector = build_detector_slot(detector, device=str(self.device))
        self.parser = build_expression_parser(parser) if isinstance(parser, str) else parser
        self.clip = create_clip(model, weights, device=self.device)
        if isinstance(heat_model, ALBEFHeatMap):
            self.heat = heat_model.to(self.device)
        elif heat_model == 'albef':
            self.heat = ALBEFHeatMap.from_checkpoint(
                heat_weights, bert_vocab, device=self.device, parser=self.parser,
                template=template or 'there is a {}')
        else:
            self.heat = CLIPHeatMap(self.clip.model, self.clip.tokenizer,
                                    template=template or 'a photo of {}')
        self.mapper = SubjectCategoryMapper.from_clip(self.clip,
                                                      categories=self.detector.class_names)
        self.subject_heat = subject_heat
        protocol = default_protocol(model)
        self.short_side = protocol.short_side
        self.mean = torch.tensor(protocol.mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(protocol.std, dtype=torch.float32).view(3, 1, 1)

    @property
    def category_from(self) -> str:
        """What predicted mode maps to a category: ``'subject'`` or ``'phrase'`` (settable
        between calls; the models stay as they are)."""
        return self._category_from

    @category_from.setter
    def category_from(self, value: str) -> None:
        if value not in ('subject', 'phrase'):
            raise ValueError(f"category_from must be 'subject' or 'phrase', got {value!r}")
        self._category_from = value

    @property
    def categories(self) -> list[str]:
        """The category vocabulary (the detector's class names)."""
        return list(self.mapper.categories)

    @property
    def is_random_weights(self) -> bool:
        """True when the CLIP or the detector has random weights (the answers mean nothing)."""
        return bool(self.clip.random_weights or getattr(self.detector, 'is_random_weights',
                                                        False))

    # -- stages ---------------------------------------------------------------------------------

    def preprocess(self, image: np.ndarray) -> Tensor:
        """RGB uint8 ``(H, W, 3)`` -> the CLIP's normalised ``(1, 3, h, w)`` (short side
        resized to the model's protocol; ALBEF's own transform with ``heat_model='albef'``)."""
        if isinstance(self.heat, ALBEFHeatMap):
            return self.heat.preprocess(image).to(self.device)
        height, width = image.shape[:2]
        tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float()
        tensor = ((tensor - self.mean) / self.std)[None]
        if self.short_side:
            scale = self.short_side / min(height, width)
            size = (max(32, round(height * scale)), max(32, round(width * scale)))
            tensor = F.interpolate(tensor, size=size, mode='bilinear', align_corners=False,
                                   antialias=scale < 1)
        return tensor.to(self.device)

    def parse(self, expressions: Sequence[str]) -> list[ParsedExpression]:
        """Parsed expressions; raises ``ValueError`` for an empty one."""
        return [self.parser.parse(e) for e in expressions]

    def categories_of(self, parsed: Sequence[ParsedExpression],
                      gt_categories: Sequence[str | int] | None = None) -> list[str | None]:
        """The detector category of each expression: predicted (by ``category_from``) or the
        checked ground truth (an unknown name or index is a ``ValueError``)."""
        if gt_categories is not None:
            return self.mapper.resolve([p.subject for p in parsed], gt_categories=gt_categories)
        words = [p.subject if self.category_from == 'subject' else subject_phrase(p)
                 for p in parsed]
        return self.mapper.map(words)

    def heat_maps(self, image: Tensor, parsed: Sequence[ParsedExpression],
                  size: tuple[int, int]) -> Tensor:
        """Every expression's heat map in one forward/backward. Shapes: returns ``(K, H, W)``."""
        if isinstance(self.heat, ALBEFHeatMap):
            return self.heat(image, parsed, out_size=size).cpu()
        subjects = [p.subject for p in parsed] if self.subject_heat else None
        return self.heat(image, [p.text for p in parsed], out_size=size,
                         subjects=subjects).cpu()

    def select(self, parsed: ParsedExpression, heat: Tensor, detections: Detections,
               category: str | None, score_threshold: float) -> GroundingPrediction:
        """GroundVLP's choice for one expression from its heat map and the image's detections."""
        boxes, scores = (detections.of_category(category, score_threshold) if category
                         else (detections.boxes[:0], detections.scores[:0]))
        fallback = len(boxes) == 0
        if fallback:
            boxes = detections.proposals()
            if len(boxes) == 0:
                boxes = whole_image_box(*heat.shape[-2:])
            scores = torch.ones(len(boxes))
        result = fuse_heat_and_boxes(heat, boxes, None if fallback else scores)
        index = result.index if result.index is not None else 0
        return GroundingPrediction(
            expression=parsed.text, subject=parsed.subject, category=category,
            box=boxes[index].clone(), score=float(result.scores[index]), candidates=boxes,
            candidate_scores=result.scores.float(), detector_scores=scores.float(),
            fallback=fallback, heat_map=heat)

    # -- call -----------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, image: ImageInput, expressions: Sequence[str] | str, *,
                 gt_categories: Sequence[str | int] | None = None,
                 score_threshold: float | None = None,
                 out_dir: str | os.PathLike | None = None,
                 visualize: bool = False) -> dict:
        """Ground each expression in one image.

        Args:
            image: a path, an RGB ndarray or a PIL image.
            expressions: referring expressions (a single string is one expression).
            gt_categories: per expression, the ground-truth category (a name or an index of
                :attr:`categories`; not strictly zero-shot); None: predicted from the subject.
            score_threshold: the detector's threshold; default 0.15 with ``gt_categories``,
                else 0.3 (GroundVLP's).
            out_dir: if given, one figure per expression is written there
                (``<stem>_ground<k>.png``).
            visualize: draw the figures (image, heat map, candidates, chosen box).

        Returns:
            ``dict(predictions=[GroundingPrediction], visualization=[ndarray] or [])``.

        Raises:
            ValueError: an empty expression, a category outside the vocabulary, a
                ``gt_categories`` list of the wrong length.
        """
        if isinstance(expressions, str):
            expressions = [expressions]
        expressions = list(expressions)
        if not expressions:
            raise ValueError('no expressions given; pass expressions=["the man on the left"]')
        parsed = self.parse(expressions)
        categories = self.categories_of(parsed, gt_categories)
        if score_threshold is None:
            score_threshold = (GT_SCORE_THRESHOLD if gt_categories is not None
                               else PREDICTED_SCORE_THRESHOLD)
        array = load_image(image)
        size = array.shape[:2]
        detections = self.detector.run(array)
        heat = self.heat_maps(self.preprocess(array), parsed, size)
        predictions = [self.select(p, h, detections, c, score_threshold)
                       for p, h, c in zip(parsed, heat, categories)]
        drawings = []
        if visualize or out_dir is not None:
            from ..visualization import draw_grounding

            for k, prediction in enumerate(predictions):
                drawing = draw_grounding(array, prediction.heat_map.numpy(),
                                         prediction.candidates.numpy(),
                                         prediction.candidate_scores.numpy(),
                                         prediction.box.numpy(), title=prediction.expression)
                drawings.append(drawing)
                if out_dir is not None:
                    save_drawing(drawing, image, 0, out_dir, f'ground{k}')
        return dict(predictions=predictions, visualization=drawings)
