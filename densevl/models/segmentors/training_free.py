"""mmseg adapter of :class:`ZeroShotSegmenter`: training-free segmentation in mmseg's test loop."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmseg.models.segmentors import BaseSegmentor
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor

from ...registry import SEG_MODELS
from ..inference_protocol import InferenceProtocol, preprocessor_normalisation
from ..text import resolve_class_names
from .dense_predictor import Segmentation
from .mm_common import predict_by_segment, vocabulary_names
from .zero_shot_segmenter import ZeroShotSegmenter


@SEG_MODELS.register_module()
class TrainingFreeSegmentor(BaseSegmentor):
    """Open-vocabulary segmentation with a frozen CLIP (MaskCLIP, SCLIP, ClearCLIP, NACLIP).

    The config records the model's :class:`InferenceProtocol`: ``mode``, ``templates``,
    ``logit_scale``, ``slide``, ``prob_threshold``, ``background_index`` here, the mean/std in
    ``data_preprocessor`` and the short side in the test pipeline's ``Resize``.

    Args:
        clip: ``dict(model_name=..., pretrained=...)`` for :func:`densevl.models.clip.create_clip`.
        class_names: default vocabulary: a list (synonyms joined by ``;``) or a names file;
            ``tools/test.py`` fills in the dataset's classes when None. ``predict(texts=...)``
            overrides it per call.
        with_seg_logits: also attach ``seg_logits`` (class probabilities ``(K, H, W)``) to each
            prediction. Off by default: evaluation needs only ``pred_sem_seg``, which is then
            computed without materialising any ``(K, H, W)`` tensor.
        Other args: the protocol's fields (see :class:`InferenceProtocol`); ``naclip_std`` and
            ``text_cache_dir`` as :class:`ZeroShotSegmenter`.
    """

    def __init__(self, *, clip: dict, mode: str = 'naclip', naclip_std: float = 5.0,
                 class_names: str | Sequence[str] | None = None,
                 templates: str | Sequence[str] = 'imagenet80', logit_scale: float = 40.0,
                 prob_threshold: float = 0.0, background_index: int = -1,
                 slide: dict | None = None, text_cache_dir=None, with_seg_logits: bool = False,
                 data_preprocessor: OptConfigType = None, init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        protocol = InferenceProtocol(
            short_side=None, slide=slide, logit_scale=logit_scale, mode=mode,
            templates=templates, prob_threshold=prob_threshold,
            background_index=background_index,
            **preprocessor_normalisation(self.data_preprocessor))
        self.core = ZeroShotSegmenter(model_name=clip['model_name'],
                                      pretrained=clip.get('pretrained'), protocol=protocol,
                                      naclip_std=naclip_std, text_cache_dir=text_cache_dir)
        self.class_names = resolve_class_names(class_names)
        self.with_seg_logits = bool(with_seg_logits)

    @property
    def protocol(self) -> InferenceProtocol:
        return self.core.protocol

    @property
    def random_weights(self) -> bool:
        return self.core.random_weights

    def _names(self, texts: Sequence[str] | None) -> list[str]:
        return vocabulary_names(texts, self.class_names)

    def predict(self, inputs: Tensor, data_samples: SampleList | None = None,
                texts: Sequence[str] | None = None) -> SampleList:
        """Label maps at each image's original size, as ``pred_sem_seg`` (and ``seg_logits`` when
        ``with_seg_logits``).

        Shapes:
            inputs: ``(B, 3, H, W)`` normalised by the data preprocessor.
        """
        return predict_by_segment(self.core.segment, inputs, data_samples, self._names(texts),
                                  with_seg_logits=self.with_seg_logits)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise NotImplementedError('TrainingFreeSegmentor has nothing to train; use tools/test.py')

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        return [self.core.encoder.forward_dense(inputs).dense]

    def encode_decode(self, inputs: Tensor, batch_data_samples: SampleList) -> Tensor:
        return self.core.score_maps(inputs, self.core.vocabulary(self._names(None)))

    def _forward(self, inputs: Tensor, data_samples: SampleList | None = None) -> Tensor:
        return self.encode_decode(inputs, data_samples)

    def train(self, mode: bool = True):
        # The CLIP stays in eval mode: nothing here is trained and nothing should drift.
        super().train(mode)
        self.core.eval()
        return self

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], **options) -> list[Segmentation]:
        """:meth:`ZeroShotSegmenter.segment` of the core (the same keyword-only options)."""
        return self.core.segment(images, texts, **options)
