"""Detect objects of a detection config's classes, optionally named anew at call time."""
from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..visualization import draw_boxes
from .image_io import ImageInput, load_image, save_drawing

_ANNOTATION_LOADERS = ('LoadAnnotations', 'mmdet.LoadAnnotations')


def ndarray_test_pipeline(cfg):
    """The config's test pipeline for an RGB/BGR array in memory: the image loader swapped for
    ``LoadImageFromNDArray``, the annotation loaders dropped."""
    from mmcv.transforms import Compose

    pipeline = [step for step in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
                if step['type'] not in _ANNOTATION_LOADERS]
    pipeline[0] = dict(type='mmdet.LoadImageFromNDArray')
    return Compose(pipeline)


@dataclass
class DetPrediction:
    """One image's detections, in the pixels of the image as given.

    Attributes:
        boxes: ``(N, 4)`` float ``x1, y1, x2, y2``.
        labels: ``(N,)`` int64 indices into ``texts``.
        scores: ``(N,)`` float confidences, descending.
        texts: the vocabulary the labels refer to.
        masks: ``(N, H, W)`` bool instance masks (Mask R-CNN), else None.
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    texts: list[str]
    masks: Tensor | None = None


def _dataset_classes_from_config(cfg) -> list[str] | None:
    """The test dataset's classes: its ``metainfo`` in the config, else its class's default."""
    from mmdet.registry import DATASETS

    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes:
        return list(classes)
    dataset_type = dataset.get('type')
    cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    classes = getattr(cls, 'METAINFO', {}).get('classes') if cls is not None else None
    return list(classes) if classes else None


class OpenVocabDetInferencer:
    """Detect objects with a densevl detection config (DenseCLIP RetinaNet / Mask R-CNN, the
    open-vocabulary Faster R-CNN of ``configs/ovdet``).

    The open-vocabulary detector takes any ``texts`` (any number of names, synonyms joined by
    ``;``). DenseCLIP fixes the number of classes ``K`` when it is built, so its ``texts``
    (other names for the same ``K`` classes, in the trained order) may reword the vocabulary but
    not change its size. The default vocabulary is the model's: ``model.class_names`` of the
    config, else the classes recorded in the checkpoint, else the config's test dataset's.

    Args:
        model: path of a detection config (``configs/denseclip/*.py``).
        weights: checkpoint of the whole detector (``tools/train.py`` output, or a released
            DenseCLIP checkpoint converted by ``tools/convert_denseclip_det_checkpoint.py``).
            Without it the detector has random heads and its output means nothing.
        device: ``'cpu'``, ``'cuda'``...; default cuda when available.

    Example:
        >>> det = OpenVocabDetInferencer('configs/denseclip/retinanet_denseclip_r50_1x_coco.py',
        ...                              weights='checkpoints/retinanet_denseclip_r50.pth')
        >>> out = det('street.jpg', score_threshold=0.3, out_dir='outputs/')
        >>> out['predictions'][0].boxes    # (N, 4) xyxy in the image's pixels
    """

    def __init__(self, model: str, weights: str | None = None,
                 device: str | None = None) -> None:
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint

        import densevl.engine  # noqa: F401 - mmengine checkpoints under weights-only loading
        import densevl.models.mm_adapters  # noqa: F401 - registers the detectors

        from ..registry import DET_MODELS

        if not str(model).endswith('.py'):
            raise ValueError(f'OpenVocabDetInferencer takes a detection config file (.py), got '
                             f'{model!r}; see configs/denseclip/')
        if not os.path.isfile(model):
            raise FileNotFoundError(f'config {model!r} does not exist')
        if weights is not None and not os.path.isfile(weights):
            raise FileNotFoundError(f'checkpoint {weights!r} does not exist')
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        cfg = Config.fromfile(model)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        if cfg.model.backbone.get('type') == 'DenseCLIPDetBackbone':
            # CLIP's own weights are only the starting point of DenseCLIP's training; the
            # checkpoint has them (an open-vocabulary detector's frozen text tower needs its own).
            cfg.model.backbone.clip.pretrained = None
        self.model = DET_MODELS.build(cfg.model)
        if not hasattr(self.model, 'class_names'):
            raise ValueError(f'{type(self.model).__name__} (from {model}) is not a densevl '
                             'detector with a vocabulary')
        checkpoint_meta = {}
        if weights is not None:
            checkpoint = load_checkpoint(self.model, weights, map_location='cpu', strict=True,
                                         logger='silent')
            checkpoint_meta = checkpoint.get('meta', {}) or {}
        self.random_weights = weights is None
        if self.model.class_names is None:
            from ..models.denseclip.det_checkpoint import checkpoint_classes

            classes = checkpoint_classes(checkpoint_meta) or _dataset_classes_from_config(cfg)
            if classes is None:
                raise ValueError(f'no class names for {model}: set model.class_names in the '
                                 'config or pass texts=[...]')
            self.model.class_names = classes
        self.model.to(self.device).eval()
        self.pipeline = ndarray_test_pipeline(cfg)

    @property
    def is_random_weights(self) -> bool:
        """True when no checkpoint was loaded (the detections mean nothing)."""
        return self.random_weights

    @property
    def class_names(self) -> list[str]:
        return list(self.model.class_names)

    def preprocess(self, image: np.ndarray, index: int = 0) -> dict:
        """RGB uint8 ``(H, W, 3)`` -> the model's batch of one (resized, normalised, padded)."""
        packed = self.pipeline(dict(img=np.ascontiguousarray(image[..., ::-1]), img_id=index))
        batch = dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']])
        return self.model.data_preprocessor(batch, False)

    @torch.no_grad()
    def __call__(self, inputs: ImageInput | Sequence[ImageInput],
                 texts: Sequence[str] | None = None, score_threshold: float = 0.3,
                 out_dir: str | os.PathLike | None = None, visualize: bool = True) -> dict:
        """Detect objects in one image or a list of images.

        Args:
            inputs: a path, an RGB ndarray, a PIL image, or a list of them.
            texts: class names for this call (DenseCLIP: ``K`` in the model's class order);
                default the model's vocabulary.
            score_threshold: detections scoring lower are dropped.
            out_dir: if given, the drawings are written there as PNG.
            visualize: draw the boxes (and masks) with names and scores.

        Returns:
            ``dict(predictions=[DetPrediction], visualization=[ndarray HxWx3] or [])``.
        """
        batch = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if isinstance(texts, str):
            texts = [texts]
        names = list(texts) if texts is not None else self.class_names
        predictions, drawings = [], []
        for i, item in enumerate(batch):
            image = load_image(item)
            data = self.preprocess(image, i)
            sample = self.model.predict(data['inputs'], data['data_samples'], rescale=True,
                                        texts=texts)[0]
            found = sample.pred_instances
            keep = found.scores >= score_threshold
            order = torch.argsort(found.scores[keep], descending=True)
            masks = found.masks[keep][order].bool().cpu() if 'masks' in found else None
            prediction = DetPrediction(
                boxes=found.bboxes[keep][order].float().cpu(),
                labels=found.labels[keep][order].long().cpu(),
                scores=found.scores[keep][order].float().cpu(), texts=names, masks=masks)
            predictions.append(prediction)
            if visualize or out_dir is not None:
                drawing = draw_boxes(image, prediction.boxes.numpy(), prediction.labels.numpy(),
                                     names, prediction.scores.numpy(),
                                     None if masks is None else masks.numpy())
                drawings.append(drawing)
                if out_dir is not None:
                    save_drawing(drawing, item, i, out_dir, 'det')
        return dict(predictions=predictions, visualization=drawings)
