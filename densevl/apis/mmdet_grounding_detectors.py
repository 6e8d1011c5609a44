"""mmdet's text-prompted open-vocabulary detectors (GLIP, Grounding DINO) as a detection
inferencer: the category names are the text prompt, the labels index into them.

:class:`TextPromptedDetInferencer` is an :class:`OpenVocabDetInferencer` whose model is an mmdet
GLIP / Grounding DINO built from an mmdet config (``'mmdet::grounding_dino/...py'`` or a file)
and a local checkpoint, so :class:`~densevl.apis.grounding_detector.DetectorSlot` takes it like
any other detection inferencer. The names reach the model as mmdet's ``DetInferencer(texts=...,
custom_entities=True)`` passes them: ``text`` and ``custom_entities`` in each data sample's
metainfo.

Both models embed the prompt with BERT (``transformers``), loaded from
``model.language_model.name``; nothing is downloaded, so that key must name a local
bert-base-uncased folder.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from .det_inferencer import (
    OpenVocabDetInferencer,
    _dataset_classes_from_config,
    ndarray_test_pipeline,
)

__all__ = ['BERT_KEY', 'TextPromptedDetInferencer', 'is_text_prompted', 'load_det_config']

#: The config key holding the BERT folder (GLIP's head reads the same folder).
BERT_KEY = 'model.language_model.name'
_TRANSFORMERS_PIP = 'pip install "transformers==5.25.0"'


def load_det_config(config: str, cfg_options: dict | None = None):
    """An mmengine ``Config`` from a file or an installed package's config
    (``'mmdet::glip/glip_atss_swin-t_a_fpn_dyhead_pretrain_obj365.py'``), with ``cfg_options``
    merged in."""
    from mmengine.config import Config
    from mmengine.utils import get_installed_path

    path = str(config)
    if '::' in path:
        package, _, relative = path.partition('::')
        path = os.path.join(get_installed_path(package), '.mim', 'configs', relative)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config {config!r} does not exist' +
                                (f' ({path})' if path != str(config) else ''))
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    return cfg


def is_text_prompted(cfg) -> bool:
    """True when the config's model is an mmdet GLIP or Grounding DINO (or a subclass)."""
    from mmdet.models.detectors import GLIP, GroundingDINO
    from mmdet.registry import MODELS

    model_type = cfg.get('model', {}).get('type')
    if isinstance(model_type, str):
        model_type = MODELS.get(model_type)
    return isinstance(model_type, type) and issubclass(model_type, (GLIP, GroundingDINO))


def _check_local_bert(folder: str) -> None:
    """A clear error, before mmdet tries a download, when BERT is not a local folder."""
    try:
        import transformers  # noqa: F401
    except ImportError as error:
        raise ImportError(f'GLIP / Grounding DINO embed the prompt with BERT from the '
                          f'transformers package: {_TRANSFORMERS_PIP}') from error
    has_tokenizer = any(os.path.isfile(os.path.join(folder, f))
                        for f in ('vocab.txt', 'tokenizer.json'))
    if not (os.path.isfile(os.path.join(folder, 'config.json')) and has_tokenizer):
        raise FileNotFoundError(
            f'the language model {folder!r} is not a local BERT folder (config.json, vocab.txt, '
            'model.safetensors) and nothing is downloaded here: download bert-base-uncased '
            '(https://huggingface.co/google-bert/bert-base-uncased) and point the config at '
            f"it with cfg_options={{{BERT_KEY!r}: '/path/to/bert-base-uncased'}} "
            f'(--cfg-options {BERT_KEY}=/path/to/bert-base-uncased)')


def _fit_transformers_5(language_model: nn.Module) -> None:
    """mmdet 3.3's ``BertModel`` targets transformers 4: give it what transformers 5 dropped.

    The tokenizer loses ``batch_encode_plus`` (its ``__call__`` takes the same arguments), and
    Grounding DINO's per-phrase ``(B, L, L)`` attention mask, which transformers 4 broadcast
    over heads as an additive mask, must now arrive as one: ``(B, 1, L, L)``, 0 or the dtype's
    minimum.
    """
    import transformers

    tokenizer = language_model.tokenizer
    if not hasattr(tokenizer, 'batch_encode_plus'):
        tokenizer.batch_encode_plus = tokenizer.__call__
    bert = language_model.language_backbone.body.model

    def additive_3d_mask(module, args, kwargs):
        mask = kwargs.get('attention_mask')
        if mask is not None and mask.dim() == 3:
            dtype = module.embeddings.word_embeddings.weight.dtype
            blocked = ~mask.bool()[:, None]
            additive = torch.zeros(blocked.shape, dtype=dtype, device=mask.device)
            kwargs['attention_mask'] = additive.masked_fill(blocked, torch.finfo(dtype).min)
        return args, kwargs

    if int(transformers.__version__.split('.')[0]) >= 5:
        bert.register_forward_pre_hook(additive_3d_mask, with_kwargs=True)


class _TextPromptedModel(nn.Module):
    """An mmdet GLIP / Grounding DINO behind the ``predict(inputs, data_samples, rescale,
    texts)`` that :class:`OpenVocabDetInferencer` calls."""

    def __init__(self, detector: nn.Module, class_names: list[str]) -> None:
        super().__init__()
        self.detector = detector
        self.class_names = class_names

    @property
    def data_preprocessor(self) -> nn.Module:
        return self.detector.data_preprocessor

    def predict(self, inputs: torch.Tensor, data_samples: list, rescale: bool = True,
                texts: Sequence[str] | None = None) -> list:
        names = tuple(texts if texts is not None else self.class_names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f'the text prompt needs non-empty class names, got {list(names)}')
        for sample in data_samples:
            # a tuple: GLIP compares the prompts of a batch as a set
            sample.set_metainfo(dict(text=names, custom_entities=True))
        samples = self.detector.predict(inputs, data_samples, rescale=rescale)
        for sample in samples:
            # GLIP's boxes, rescaled by the rounded resize factor, can pass the border
            height, width = sample.ori_shape if rescale else sample.img_shape
            boxes = sample.pred_instances.bboxes
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return samples


class TextPromptedDetInferencer(OpenVocabDetInferencer):
    """Detect objects with mmdet's GLIP or Grounding DINO, asking for class names by text.

    Called like :class:`OpenVocabDetInferencer` (``texts`` any number of names); labels index
    into the names asked for.

    Args:
        model: an mmdet GLIP / Grounding DINO config: a file, or
            ``'mmdet::grounding_dino/grounding_dino_swin-t_pretrain_obj365_goldg_cap4m.py'``.
        weights: the model's local checkpoint (mmdet's release). Without it the weights are
            random and the output means nothing.
        class_names: the default vocabulary; default the checkpoint's ``dataset_meta``
            classes, else the config's test dataset's (COCO for mmdet's configs).
        device: ``'cpu'``, ``'cuda'``...; default cuda when available.
        cfg_options: config changes, e.g. ``{'model.language_model.name':
            '/path/to/bert-base-uncased'}`` (required unless the config names a local folder).

    Example:
        >>> det = TextPromptedDetInferencer(
        ...     'mmdet::grounding_dino/grounding_dino_swin-t_pretrain_obj365_goldg_cap4m.py',
        ...     'checkpoints/groundingdino_swint_ogc_mmdet-822d7e9d.pth',
        ...     cfg_options={'model.language_model.name': 'checkpoints/bert-base-uncased'})
        >>> det('street.jpg', texts=['car', 'bicycle'])['predictions'][0].labels  # into texts
    """

    def __init__(self, model: str, weights: str | None = None, *,
                 class_names: Sequence[str] | None = None, device: str | None = None,
                 cfg_options: dict | None = None) -> None:
        from mmdet.registry import MODELS
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint

        import densevl.engine  # noqa: F401 - mmengine checkpoints under weights-only loading

        from ..models.denseclip.det_checkpoint import checkpoint_classes

        cfg = load_det_config(model, cfg_options)
        if not is_text_prompted(cfg):
            raise ValueError(f'{model} is not an mmdet GLIP / Grounding DINO config (model.type '
                             f'is {cfg.model.get("type")!r}); use OpenVocabDetInferencer')
        if weights is not None and not os.path.isfile(weights):
            raise FileNotFoundError(f'checkpoint {weights!r} does not exist')
        bert = str(cfg.model.language_model.name)
        _check_local_bert(bert)
        if 'lang_model_name' in cfg.model.get('bbox_head', {}):
            cfg.model.bbox_head.lang_model_name = bert   # GLIP's head reads BERT's config
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        init_default_scope('mmdet')
        detector = MODELS.build(cfg.model)
        _fit_transformers_5(detector.language_model)
        meta = {}
        if weights is not None:
            # as mmdet's DetInferencer: not strict (older releases hold BERT's position-id
            # buffer), mismatches are logged
            meta = load_checkpoint(detector, weights, map_location='cpu',
                                   logger='current').get('meta', {}) or {}
        else:   # mmdet leaves some parameters as allocated (torch.empty) until init_weights
            detector.init_weights()
        self.random_weights = weights is None
        names = (list(class_names) if class_names is not None
                 else checkpoint_classes(meta) or _dataset_classes_from_config(cfg))
        if not names:
            raise ValueError(f'no class names for {model}: pass class_names=[...]')
        self.model = _TextPromptedModel(detector, names).to(self.device).eval()
        self.pipeline = ndarray_test_pipeline(cfg)
