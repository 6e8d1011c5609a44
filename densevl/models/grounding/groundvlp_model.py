"""mmengine adapter around :class:`~densevl.apis.GroundingInferencer`, so that ``tools/test.py``
evaluates a GroundVLP config on RefCOCO-format data (:class:`RefCOCOGroundingDataset` ->
:class:`GroundingAccuracyMetric`).

Imports OpenMMLab, so :mod:`densevl.models.grounding` does not import it:
:mod:`densevl.models.mm_adapters` (the configs' ``custom_imports``) registers it.
"""
from __future__ import annotations

import logging
import os.path as osp
from collections.abc import Sequence

from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from ...apis.grounding_inferencer import (
    GT_SCORE_THRESHOLD,
    PREDICTED_SCORE_THRESHOLD,
    GroundingInferencer,
)
from ...registry import DET_MODELS

__all__ = ['GroundVLP']

CATEGORY_MODES = ('predicted', 'gt')


@DET_MODELS.register_module()
class GroundVLP(BaseModel):
    """GroundVLP zero-shot grounding (training-free) as an mmengine model: test/val only.

    Each batch's sentences are grouped by image and each group is one
    :class:`~densevl.apis.GroundingInferencer` call (one detector forward and one heat-map
    forward/backward for the group). Nothing here is trained or loaded from ``load_from``: the CLIP
    weights and the detector's checkpoint come from the config.

    Args:
        clip: the heat-map CLIP (also maps subjects to categories): a densevl zoo name
            (``'clip-synthetic-tiny'``) or an open_clip architecture (``'ViT-B-32'``).
        clip_weights: its weights (a tag such as ``'openai'``, or a local file); None: the zoo
            entry's packaged weights.
        detector: the detector slot, ``dict(config=..., weights=...)`` (a densevl detection
            config and its checkpoint; ``weights=None`` gives random weights).
        category_mode: ``'predicted'`` (zero-shot: the subject mapped by CLIP text similarity)
            or ``'gt'`` (the dataset's category of each sentence; **not strictly zero-shot**).
        category_from: in predicted mode, what is mapped: ``'subject'`` (the head noun,
            GroundVLP's rule) or ``'phrase'`` (the subject's noun phrase, as
            ``tools/benchmark_grounding.py`` uses on the colour vocabulary of the proving ground).
        predicted_score_thr: the detector's threshold in predicted mode (GroundVLP: 0.3).
        gt_score_thr: the detector's threshold in GT mode (GroundVLP: 0.15).
        parser: ``'offline'``, ``'stanza'`` or ``'spacy'``.
        template: the heat map's prompt; None: 'a photo of {}' (CLIP), 'there is a {}' (ALBEF).
        subject_heat: average each expression's heat map with its subject's.
        heat_model: ``'clip'`` (the CLIP's heat map) or ``'albef'`` (GroundVLP's own ALBEF/TCL
            heat map with visual-word aggregation; then ``heat_weights`` = the local
            ALBEF.pth / TCL.pth and ``bert_vocab`` = bert-base-uncased's vocab.txt).
        device: where the CLIP and the detector run; default cuda when available.

    Each output data sample holds the input's meta (``gt_bbox``, ``text``, ``category``...)
    and ``pred_bbox`` (``(4,)`` xyxy, image pixels), ``pred_score``, ``pred_category`` (None:
    unknown subject) and ``fallback`` (class-agnostic proposals were scored).
    """

    def __init__(self, *, clip: str, detector: dict, clip_weights: str | None = None,
                 category_mode: str = 'predicted', category_from: str = 'subject',
                 predicted_score_thr: float = PREDICTED_SCORE_THRESHOLD,
                 gt_score_thr: float = GT_SCORE_THRESHOLD,
                 parser: str = 'offline', template: str | None = None,
                 subject_heat: bool = False, heat_model: str = 'clip',
                 heat_weights: str | None = None, bert_vocab: str | None = None,
                 device: str | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if category_mode not in CATEGORY_MODES:
            raise ValueError(f'category_mode must be one of {CATEGORY_MODES}, got '
                             f'{category_mode!r}')
        _check_detector(detector)
        self.category_mode = category_mode
        self.score_thr = gt_score_thr if category_mode == 'gt' else predicted_score_thr
        # A plain attribute, not a sub-module: the adapter has no state for load_from to fill.
        self.inferencer = GroundingInferencer(
            clip, clip_weights, detector=dict(detector), device=device, parser=parser,
            template=template, category_from=category_from, subject_heat=subject_heat,
            heat_model=heat_model, heat_weights=heat_weights, bert_vocab=bert_vocab)
        if self.inferencer.is_random_weights:
            print_log('GroundVLP: the CLIP or the detector has random weights; the accuracy '
                      'means nothing', logger='current', level=logging.WARNING)
        if category_mode == 'gt':
            print_log('GroundVLP: ground-truth categories (not strictly zero-shot)',
                      logger='current')

    def forward(self, inputs=None, data_samples: Sequence[BaseDataElement] | None = None,
                mode: str = 'predict') -> list[BaseDataElement]:
        if mode != 'predict':
            raise RuntimeError(f'GroundVLP is training-free: it only predicts (got mode '
                               f'{mode!r}); evaluate it with tools/test.py')
        return self.predict(data_samples or [])

    def predict(self, data_samples: Sequence[BaseDataElement]) -> list[BaseDataElement]:
        """Ground each sample's ``text`` in its ``img_path``; the samples come back with
        ``pred_bbox`` and the rest set (see the class docstring)."""
        by_image: dict[str, list[BaseDataElement]] = {}
        for sample in data_samples:
            by_image.setdefault(sample.img_path, []).append(sample)
        for path, samples in by_image.items():
            gt = [s.category for s in samples] if self.category_mode == 'gt' else None
            out = self.inferencer(path, [s.text for s in samples], gt_categories=gt,
                                  score_threshold=self.score_thr)
            for sample, prediction in zip(samples, out['predictions']):
                sample.pred_bbox = prediction.box
                sample.pred_score = prediction.score
                sample.pred_category = prediction.category
                sample.fallback = prediction.fallback
        return list(data_samples)


def _check_detector(detector: dict) -> None:
    if not isinstance(detector, dict) or 'config' not in detector:
        raise ValueError(f'detector must be dict(config=..., weights=...), got {detector!r}')
    weights = detector.get('weights')
    if weights is not None and '://' not in str(weights) and not osp.isfile(weights):
        raise FileNotFoundError(
            f"the detector checkpoint {weights!r} does not exist: train the detector "
            f"(python tools/train.py {detector['config']}), or point model.detector.weights at "
            'its checkpoint with --cfg-options (configs/groundvlp/README.md)')
