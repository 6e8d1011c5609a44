"""The CLIP-FPN baseline of DenseCLIP: CLIP's image tower as a plain backbone under an FPN."""
from __future__ import annotations

from collections.abc import Sequence

from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor, nn

from ...registry import SEG_MODELS
from ..denseclip.denseclip_core import build_image_encoder
from ..text import Vocabulary
from .clip_encoder_decoder import CLIPEncoderDecoder


@SEG_MODELS.register_module()
class CLIPFPNSegmentor(CLIPEncoderDecoder):
    """CLIP's image tower, without its embedding head, as an ordinary backbone under a Semantic
    FPN: no text, a fixed ``num_classes`` classifier (DenseCLIP's "CLIP + FPN" baseline; its
    ``CLIPResNet`` / ``CLIPVisionTransformer`` backbones have no embedding head either).

    Args:
        clip: ``dict(model_name=..., pretrained=...)`` as :class:`DenseCLIPSegmentor`'s.
        neck, decode_head: the FPN (``in_channels`` filled in) and ``FPNHead``.
        class_names: the ``num_classes`` labels' names (a list, a names file or a dataset type).
        input_resolution, vit: as :class:`DenseCLIPSegmentor`'s.
        with_seg_logits, auxiliary_head, train_cfg, test_cfg, data_preprocessor, init_cfg:
            mmseg's.
    """

    def __init__(self, *, clip: dict, neck: OptConfigType, decode_head: ConfigType,
                 class_names: str | Sequence[str] | None = None,
                 input_resolution: int | None = None, vit: dict | None = None,
                 with_seg_logits: bool = False, auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None, test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        bundle = self._init_clip(clip, data_preprocessor, init_cfg)
        self.backbone = build_image_encoder(bundle.model.visual, vit=vit,
                                            input_resolution=input_resolution)
        self.backbone.drop_embedding_head()
        self._init_neck_and_heads(list(self.backbone.level_channels), neck=neck,
                                  decode_head=decode_head, auxiliary_head=auxiliary_head,
                                  class_names=class_names, with_seg_logits=with_seg_logits,
                                  train_cfg=train_cfg, test_cfg=test_cfg)

    @property
    def image_encoder(self) -> nn.Module:
        return self.backbone

    def check_vocabulary(self, vocabulary: Vocabulary, *, training: bool) -> None:
        super().check_vocabulary(vocabulary, training=training)
        if vocabulary.num_classes != self.decode_head.out_channels:
            raise ValueError(f'the CLIP-FPN baseline has {self.decode_head.out_channels} fixed '
                             f'classes; got {vocabulary.num_classes} names')

    def logits_vocabulary(self, vocabulary: Vocabulary) -> Vocabulary:
        # a fixed classifier: one output per class, whatever the names say
        return vocabulary.pooled()

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        levels = self.backbone.features(inputs)
        return list(self.neck(levels)) if self.with_neck else levels

    def window_logits(self, images: Tensor, vocabulary: Vocabulary) -> Tensor:
        return self.decode_head.forward(self.extract_feat(images))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        levels = self.extract_feat(inputs)
        losses = self._decode_head_forward_train(levels, data_samples)
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(levels, data_samples))
        return losses
