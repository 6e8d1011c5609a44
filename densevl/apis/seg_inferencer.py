"""Open-vocabulary segmentation of images for a vocabulary given at call time."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.inference_protocol import InferenceProtocol
from ..visualization import draw_sem_seg
from .image_io import ImageInput, load_image, save_drawing


@dataclass
class SegPrediction:
    """One image's prediction.

    Attributes:
        pred_sem_seg: ``(H, W)`` int64 indices into ``texts``; the protocol's
            ``background_index`` (-1 unless a config names a background class) where the
            background threshold rejected every class.
        scores: ``(K, H, W)`` class probabilities, when asked for with ``return_scores=True``.
        texts: the vocabulary the indices refer to.
    """

    pred_sem_seg: Tensor
    texts: list[str]
    scores: Tensor | None = None


def _short_side_from_pipeline(pipeline) -> int | None:
    for step in pipeline or []:
        if step.get('type') == 'Resize' and step.get('keep_ratio'):
            return int(min(step['scale']))
    return None


class OpenVocabSegInferencer:
    """Segment images for any list of words.

    Images are prepared and segmented by the model's :class:`InferenceProtocol`
    (``inferencer.protocol``): resized to its short side, normalised by its mean/std, then
    segmented with its windows, dense mode, templates and background policy.

    Args:
        model: a CLIP model name used training-free (a densevl model such as
            ``'clip-synthetic-tiny'``, or an open_clip name such as ``'ViT-B-16'``), or the path
            of a densevl config (``configs/.../*.py``) whose model is an
            :class:`~densevl.models.segmentors.OpenVocabSegmenter`.
        weights: for a CLIP name, an open_clip pretrained tag (``'openai'``) or a local weights
            file; for a config, a checkpoint of the whole model (a path that does not exist is
            refused before the model is built).
        device: ``'cpu'``, ``'cuda'``...; default cuda when available.
        cfg_options: for a config, entries to change in it, as ``--cfg-options`` of the tools
            (``{'model.classifier': 'mask_pooling'}``); applied after the demo preset.
        demo_preset: for a config, apply its model's ``demo_preset`` (the settings of the
            reference's demo) over the config first; only OVSeg has one: CLIP alone
            (``ensemble_weight=0.0``) with ``mask_threshold=0.35``, as ov-seg's demo. False: the
            config as it is (what ``tools/test.py`` runs). :attr:`preset` says what was applied.
        **protocol_changes: fields of the protocol that differ from the model's own: for a
            CLIP name any (``mode='sclip'``, ``templates=...``, ``short_side=None``,
            ``slide=None``...); the model's own is its zoo entry's (NACLIP with the references'
            224/112 windows at short side 336 for real CLIP weights; SCLIP at 64 px for the
            proving-ground model); for a config only ``short_side`` (the rest is the config's).

    A single name is contrasted with ``'others'`` by a model that classifies by a softmax over
    the names (OVSeg); its pixels are then background.

    Example:
        >>> seg = OpenVocabSegInferencer('ViT-B-16', weights='openai')
        >>> out = seg('street.jpg', texts=['car', 'bicycle', 'road'], out_dir='outputs/')
        >>> out['predictions'][0].pred_sem_seg    # (H, W) indices into texts
    """

    def __init__(self, model: str, weights: str | None = None, device: str | None = None, *,
                 cfg_options: dict | None = None, demo_preset: bool = True,
                 **protocol_changes) -> None:
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        #: The model settings applied over the config (its model's ``demo_preset``), or {}.
        self.preset: dict = {}
        if str(model).endswith('.py'):
            cfg = self._load_config(model, weights, cfg_options, demo_preset)
            self.segmenter, self.protocol, self.random_weights = self._from_config(
                cfg, model, weights, protocol_changes)
        elif cfg_options:
            raise ValueError('cfg_options change a config; for a CLIP name pass protocol '
                             'fields (mode=..., templates=...) instead')
        else:
            from ..models.segmentors import ZeroShotSegmenter

            self.segmenter = ZeroShotSegmenter(model_name=model, pretrained=weights,
                                               **protocol_changes)
            self.protocol, self.random_weights = (self.segmenter.protocol,
                                                  self.segmenter.random_weights)
        self.mean = torch.tensor(self.protocol.mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(self.protocol.std, dtype=torch.float32).view(3, 1, 1)
        self.segmenter.to(self.device).eval()

    def _load_config(self, path, weights, cfg_options, demo_preset: bool):
        """The config with the model's demo preset, then ``cfg_options``, applied; the paths
        checked before anything is built."""
        from mmengine.config import Config

        import densevl.models.mm_adapters  # noqa: F401 - registers the adapters

        from ..registry import SEG_MODELS

        if not os.path.isfile(path):
            raise FileNotFoundError(f'config {path!r} does not exist')
        if weights and '://' not in str(weights) and not os.path.isfile(weights):
            raise FileNotFoundError(f'checkpoint {weights!r} does not exist; pass the path of a '
                                    f'checkpoint of {os.path.basename(path)} (tools/train.py '
                                    'writes work_dirs/<config>/iter_*.pth), or no weights')
        cfg = Config.fromfile(path)
        model_cls = SEG_MODELS.get(cfg.model.get('type'))
        preset = dict(getattr(model_cls, 'demo_preset', None) or {}) if demo_preset else {}
        cfg.model.update(preset)
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        self.preset = {k: v for k, v in preset.items() if cfg.model.get(k) == v}
        return cfg

    @staticmethod
    def _from_config(cfg, path, weights, changes) -> tuple[object, InferenceProtocol, bool]:
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint

        import densevl.datasets.mm_datasets  # noqa: F401 - registers the dataset classes
        import densevl.engine  # noqa: F401 - lets torch load mmengine checkpoints

        from ..models.segmentors import OpenVocabSegmenter
        from ..registry import SEG_MODELS

        if set(changes) - {'short_side'}:
            raise ValueError(f'{sorted(set(changes) - {"short_side"})}: a config records how its '
                             "model is run; change it there (or with cfg_options, the demo's "
                             '--cfg-options)')
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        model = SEG_MODELS.build(cfg.model)
        if not isinstance(model, OpenVocabSegmenter):
            raise ValueError(f'{type(model).__name__} (from {path}) has no segment() method, so '
                             'it cannot take a vocabulary at call time')
        if weights:
            load_checkpoint(model, weights, map_location='cpu', strict=True)
        pipeline = cfg.get('test_pipeline') or cfg.get('test_dataloader', {}).get(
            'dataset', {}).get('pipeline')
        changes.setdefault('short_side', _short_side_from_pipeline(pipeline))
        # without a checkpoint, what a config trains (a decode head, a proposal network) is random
        trained_parts = any(p.requires_grad for p in model.parameters())
        random = not weights and (model.random_weights or trained_parts)
        return model, model.protocol.updated(**changes), random

    @property
    def is_random_weights(self) -> bool:
        """True when the model has random weights (its output means nothing)."""
        return bool(self.random_weights)

    def preprocess(self, image: np.ndarray) -> Tensor:
        """RGB uint8 ``(H, W, 3)`` → normalised ``(1, 3, h, w)`` at the inference size."""
        height, width = image.shape[:2]
        core = getattr(self.segmenter, 'core', self.segmenter)
        patch = getattr(getattr(core, 'encoder', None), 'patch_size', 1)
        if min(height, width) < patch:
            raise ValueError(f'image of {height}x{width} pixels is smaller than one {patch}x'
                             f'{patch} patch of the model; use an image of at least {patch} '
                             'pixels per side')
        tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float()
        tensor = ((tensor - self.mean) / self.std)[None]
        if self.protocol.short_side:
            scale = self.protocol.short_side / min(height, width)
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            # antialias when shrinking, so fine texture is averaged rather than aliased
            tensor = F.interpolate(tensor, size=size, mode='bilinear', align_corners=False,
                                   antialias=scale < 1)
        return tensor.to(self.device)

    def __call__(self, inputs: ImageInput | Sequence[ImageInput], texts: Sequence[str], *,
                 return_scores: bool = False, out_dir: str | os.PathLike | None = None,
                 bg_threshold: float | None = None, visualize: bool = True,
                 palette: Sequence[Sequence[int]] | None = None) -> dict:
        """Segment one image or a list of images.

        Args:
            inputs: a path, an RGB ndarray, a PIL image, or a list of them.
            texts: the vocabulary, one entry per class; synonyms inside a class joined by ``;``.
            return_scores: also return per-class probability maps.
            out_dir: if given, overlays are written there as PNG.
            bg_threshold: pixels whose best class probability is lower are labelled -1;
                default the protocol's background policy.
            visualize: draw the overlays (with a legend).
            palette: one RGB colour per class for the overlays (default: distinct colours).

        Returns:
            ``dict(predictions=[SegPrediction], visualization=[ndarray HxWx3] or [])``.
        """
        batch = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        texts = list(texts) if not isinstance(texts, str) else [texts]
        predictions, drawings = [], []
        for i, item in enumerate(batch):
            image = load_image(item)
            result = self.segmenter.segment(self.preprocess(image), texts,
                                            out_size=image.shape[:2], prob_threshold=bg_threshold,
                                            return_probs=return_scores)[0]
            labels = result.labels.cpu()
            predictions.append(SegPrediction(
                pred_sem_seg=labels, texts=texts,
                scores=result.class_probs.cpu() if return_scores else None))
            if visualize or out_dir is not None:
                drawing = draw_sem_seg(image, labels.numpy(), texts, palette=palette)
                drawings.append(drawing)
                if out_dir is not None:
                    save_drawing(drawing, item, i, out_dir, 'seg')
        return dict(predictions=predictions, visualization=drawings)
