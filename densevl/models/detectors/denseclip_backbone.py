"""DenseCLIP's detection backbone: a CLIP built by name inside :class:`DenseCLIPCore`, for mmdet."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import open_clip
import torch
from mmengine.logging import print_log
from torch import nn

from ...errors import WeightsUnavailableError
from ...registry import DET_MODELS
from ..clip import MODEL_ZOO, create_clip, is_modified_resnet
from ..clip.factory import CLIPBundle
from ..denseclip import DenseCLIPCore
from ..denseclip.checkpoint import copy_clip_weights
from ..denseclip.denseclip_core import build_denseclip_encoders


def _truncate_text_positions(clip_model: nn.Module, rows: int) -> None:
    """Keep the first ``rows`` positions of the text tower (DenseCLIP: 8 contexts + 5 tokens)."""
    table = clip_model.positional_embedding
    if rows > table.shape[0]:
        raise ValueError(f'text_context_length {rows} exceeds the {table.shape[0]} positions of '
                         'the CLIP text tower')
    clip_model.positional_embedding = nn.Parameter(table.detach()[:rows].clone(),
                                                   requires_grad=table.requires_grad)
    clip_model.attn_mask = clip_model.attn_mask[:rows, :rows]


def _clip_architecture(model_name: str) -> CLIPBundle:
    """The CLIP with the weights it has without a download: random for open_clip names, the
    packaged ones for trained densevl zoo models (random when this installation lacks them:
    a checkpoint will overwrite them, and :meth:`DenseCLIPDetBackbone.init_weights` reports it
    before training)."""
    try:
        return create_clip(model_name)
    except WeightsUnavailableError:
        entry = MODEL_ZOO[model_name]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(entry.seed)
            model = open_clip.CLIP(**entry.config).float().eval()
        tokenizer = open_clip.get_tokenizer(
            entry.tokenizer, context_length=entry.config['text_cfg']['context_length'])
        return CLIPBundle(model=model, tokenizer=tokenizer, model_id=f'{model_name}@random',
                          random_weights=True)


@DET_MODELS.register_module()
class DenseCLIPDetBackbone(DenseCLIPCore):
    """:class:`DenseCLIPCore` set up as DenseCLIP's detectors use it, built from a CLIP name.

    The neck input is the four backbone levels with the score map ``cos / tau`` concatenated to
    the level of the dense embeddings' stride (res5 for a ModifiedResNet, stride ``p`` for a
    patch-``p`` ViT); :attr:`neck_in_channels` gives its channels.

    ModifiedResNet towers run their attention pool with the positions of a
    ``input_resolution / 32`` grid (42 x 42 for 1344-pixel inputs: bilinearly resized once from
    CLIP's 7 x 7 here, then cropped top-left to each batch's feature map, see
    :func:`~densevl.models.clip.cropped_pool_positions`). The text tower keeps the first
    ``text_context_length`` rows of its positional table, as DenseCLIP's checkpoints do (13 =
    8 context vectors + a 5-token name slot), so a class name may have at most 3 BPE tokens.

    Weights: the CLIP architecture is built here with the weights ``create_clip(model_name)``
    gives without a ``pretrained`` argument (random for open_clip names, the packaged weights of
    trained densevl zoo models when installed). ``clip['pretrained']`` (an open_clip tag such as
    ``'openai'`` or a local file) is loaded by :meth:`init_weights`, which mmengine's Runner
    calls when training starts, not when testing, so evaluating a detection checkpoint never
    needs CLIP's weights.

    Args:
        clip: ``dict(model_name=..., pretrained=...)``: a CLIP name for
            :func:`~densevl.models.clip.create_clip` (``'RN50'``, ``'RN101'``,
            ``'clip-synthetic-tiny'``...) and the weights to start training from.
        class_names: the ``K`` class names (fixed count: the neck has ``K`` extra channels).
        input_resolution: ResNet: side of the input the pool's positional grid covers.
        text_context_length: rows of the text positional table kept; None keeps all of them.
        num_context: learned context vectors.
        name_length: tokens of the name slot (``[SOT]`` and ``[EOT]`` included).
        context_decoder: keyword arguments of :class:`ContextDecoder` (width 256, 4 heads,
            3 layers, dropout 0.1 by default, as DenseCLIP).
        vit: keyword arguments of :class:`CLIPViTFeaturePyramid` (ViT towers only).
        tau: temperature of the score map (``score_scale = 1 / tau``).
        gamma_init: initial value of ``γ``.

    Shapes:
        images ``(B, 3, H, W)`` -> :class:`~densevl.models.denseclip.DenseCLIPOutput`.
    """

    def __init__(self, *, clip: dict, class_names: Sequence[str], input_resolution: int = 1344,
                 text_context_length: int | None = 13, num_context: int = 8, name_length: int = 5,
                 context_decoder: dict | None = None, vit: dict | None = None,
                 tau: float = 0.07, gamma_init: float = 1e-4) -> None:
        if 'model_name' not in clip:
            raise ValueError(f"clip must name a model, e.g. dict(model_name='RN50', "
                             f"pretrained='openai'); got {clip!r}")
        bundle = _clip_architecture(clip['model_name'])
        clip_model = bundle.model
        if text_context_length is not None:
            _truncate_text_positions(clip_model, text_context_length)
        resnet = is_modified_resnet(clip_model.visual)
        if resnet and vit:
            raise ValueError(f'vit options given for the ModifiedResNet {clip["model_name"]}')
        image_encoder, text_encoder, decoder = build_denseclip_encoders(
            clip_model, bundle.tokenizer, vit=vit, pool_positions='crop',
            # the ResNet's pool keeps a grid as large as the inputs; a ViT keeps CLIP's
            input_resolution=input_resolution if resnet else None, num_context=num_context,
            name_length=name_length, context_decoder=context_decoder)
        super().__init__(image_encoder, text_encoder, class_names=class_names,
                         context_decoder=decoder, score_scale=1.0 / tau, gamma_init=gamma_init)
        self.clip_cfg = dict(clip)
        self.input_resolution = input_resolution
        self.packaged_weights = not bundle.random_weights

    @property
    def level_channels(self) -> list[int]:
        """Channels of the four backbone levels, strides 4 to 32."""
        return list(self.image_encoder.level_channels)

    @property
    def neck_in_channels(self) -> list[int]:
        """Channels of the fused levels: ``K`` more at :attr:`score_concat_index`."""
        return [c + (self.fused_channels if i == self.score_concat_index else 0)
                for i, c in enumerate(self.level_channels)]

    def load_clip_weights(self, clip_model: nn.Module) -> None:
        """Copy an open_clip CLIP's image and text towers in (see
        :func:`~densevl.models.denseclip.checkpoint.copy_clip_weights`)."""
        copy_clip_weights(clip_model, self.image_encoder, self.text_encoder)

    def init_weights(self) -> None:
        """Load ``clip['pretrained']`` (called by mmengine's Runner before training)."""
        pretrained = self.clip_cfg.get('pretrained')
        name = self.clip_cfg['model_name']
        if pretrained is None and self.packaged_weights:
            return  # loaded when built
        # raises WeightsUnavailableError with advice when the weights cannot be had
        bundle = create_clip(name, pretrained)
        if bundle.random_weights:
            print_log(f'DenseCLIP backbone: {name} starts from RANDOM CLIP weights; set '
                      "model.backbone.clip.pretrained (e.g. 'openai' or a local file)",
                      logger='current', level=logging.WARNING)
            return
        self.load_clip_weights(bundle.model)
        print_log(f'DenseCLIP backbone: loaded CLIP weights {name} <- {pretrained}',
                  logger='current')
