"""Open-vocabulary segmentation of images for a vocabulary given at call time."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..models.clip import MODEL_ZOO
from ..visualization import draw_sem_seg
from .image_io import ImageInput, load_image

OPENAI_MEAN = (122.771, 116.746, 104.094)
OPENAI_STD = (68.501, 66.632, 70.323)
# The training-free protocol of the references: short side 336, 224/112 sliding windows.
DEFAULT_INFERENCE = dict(short_side=336, slide=dict(crop=224, stride=112), logit_scale=40.0,
                         mode='naclip')


@dataclass
class SegPrediction:
    """One image's prediction.

    Attributes:
        pred_sem_seg: ``(H, W)`` int64 indices into ``texts``; -1 where the background threshold
            rejected every class.
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

    Args:
        model: a CLIP model name used training-free (a densevl model such as
            ``'clip-tiny-random'``, or an open_clip name such as ``'ViT-B-16'``), or the path of a
            densevl config (``configs/.../*.py``) whose model has a ``segment`` method.
        weights: for a CLIP name, an open_clip pretrained tag (``'openai'``) or a local weights
            file; for a config, a checkpoint of the whole model.
        device: ``'cpu'``, ``'cuda'``...; default cuda when available.
        mode: dense last-block mode for a CLIP name (``naclip``, ``sclip``, ``clearclip``,
            ``maskclip``, ``plain``); default the model's own protocol (NACLIP for real CLIP
            weights, the best on the published benchmarks; SCLIP for the proving-ground model,
            the best on its table).
        templates: prompt templates for a CLIP name; default the model's own protocol (the 80
            ImageNet templates for real CLIP weights).
        short_side: images are resized so their short side has this length before inference
            (the papers' protocol); None keeps the size. Default: the model's own protocol.
        slide: ``dict(crop=..., stride=...)`` sliding windows, or None for one whole-image
            forward, for a CLIP name. Default: the model's own protocol.

    Example:
        >>> seg = OpenVocabSegInferencer('ViT-B-16', weights='openai')
        >>> out = seg('street.jpg', texts=['car', 'bicycle', 'road'], out_dir='outputs/')
        >>> out['predictions'][0].pred_sem_seg    # (H, W) indices into texts
    """

    def __init__(self, model: str, weights: str | None = None, device: str | None = None, *,
                 mode: str = 'auto', templates: str | Sequence[str] = 'auto',
                 short_side: int | None | str = 'auto', slide: dict | None | str = 'auto') -> None:
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        if str(model).endswith('.py'):
            self.segmenter, pipeline_short, mean, std = self._from_config(model, weights)
        else:
            self.segmenter, pipeline_short, mean, std = self._from_clip(model, weights, mode,
                                                                         templates, slide)
        self.short_side = pipeline_short if short_side == 'auto' else short_side
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.segmenter.to(self.device).eval()

    def _from_clip(self, name, weights, mode, templates, slide):
        from ..models.segmentors import ZeroShotSegmenter

        entry = MODEL_ZOO.get(name)
        protocol = {**DEFAULT_INFERENCE, **(entry.extra.get('inference', {}) if entry else {})}
        if slide != 'auto':
            protocol['slide'] = slide
        if mode == 'auto':
            mode = protocol['mode']
        if templates == 'auto':
            templates = list(protocol.get('templates', ['imagenet80']))
            templates = templates[0] if templates == ['imagenet80'] else templates
        segmenter = ZeroShotSegmenter(model_name=name, pretrained=weights, mode=mode,
                                      templates=templates, logit_scale=protocol['logit_scale'],
                                      slide=protocol['slide'])
        return segmenter, protocol['short_side'], OPENAI_MEAN, OPENAI_STD

    def _from_config(self, path, weights):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint

        import densevl.datasets.mm_datasets  # noqa: F401 - registers the dataset classes
        import densevl.engine  # noqa: F401 - lets torch load mmengine checkpoints
        import densevl.models.mm_adapters  # noqa: F401 - registers the adapters

        from ..registry import SEG_MODELS

        if not os.path.isfile(path):
            raise FileNotFoundError(f'config {path!r} does not exist')
        cfg = Config.fromfile(path)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        model = SEG_MODELS.build(cfg.model)
        if not hasattr(model, 'segment'):
            raise ValueError(f'{type(model).__name__} (from {path}) has no segment() method, so '
                             'it cannot take a vocabulary at call time')
        if weights:
            load_checkpoint(model, weights, map_location='cpu', strict=True)
        pre = cfg.model.get('data_preprocessor', {})
        pipeline = cfg.get('test_pipeline') or cfg.get('test_dataloader', {}).get(
            'dataset', {}).get('pipeline')
        return (model, _short_side_from_pipeline(pipeline), pre.get('mean', OPENAI_MEAN),
                pre.get('std', OPENAI_STD))

    @property
    def is_random_weights(self) -> bool:
        """True when the model has random weights (its output means nothing)."""
        core = getattr(self.segmenter, 'core', self.segmenter)
        return bool(getattr(core, 'random_weights', False))

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
        if self.short_side:
            scale = self.short_side / min(height, width)
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            # antialias when shrinking, so fine texture is averaged rather than aliased
            tensor = F.interpolate(tensor, size=size, mode='bilinear', align_corners=False,
                                   antialias=scale < 1)
        return tensor.to(self.device)

    def __call__(self, inputs: ImageInput | Sequence[ImageInput], texts: Sequence[str], *,
                 return_scores: bool = False, out_dir: str | os.PathLike | None = None,
                 bg_threshold: float = 0.0, visualize: bool = True,
                 palette: Sequence[Sequence[int]] | None = None) -> dict:
        """Segment one image or a list of images.

        Args:
            inputs: a path, an RGB ndarray, a PIL image, or a list of them.
            texts: the vocabulary, one entry per class; synonyms inside a class joined by ``;``.
            return_scores: also return per-class probability maps.
            out_dir: if given, overlays are written there as PNG.
            bg_threshold: pixels whose best class probability is lower are labelled -1.
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
                                            background_index=-1, return_probs=return_scores)[0]
            labels = result.labels.cpu()
            predictions.append(SegPrediction(
                pred_sem_seg=labels, texts=texts,
                scores=result.class_probs.cpu() if return_scores else None))
            if visualize or out_dir is not None:
                drawing = draw_sem_seg(image, labels.numpy(), texts, palette=palette)
                drawings.append(drawing)
                if out_dir is not None:
                    stem = Path(item).stem if isinstance(item, (str, os.PathLike)) else f'image_{i}'
                    Path(out_dir).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(drawing).save(Path(out_dir) / f'{stem}_seg.png')
        return dict(predictions=predictions, visualization=drawings)
