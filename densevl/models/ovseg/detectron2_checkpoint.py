"""Released OVSeg (detectron2) checkpoints in :class:`~densevl.models.segmentors.OVSegSegmentor`'s
key names.

facebookresearch/ov-seg releases whole models (``ovseg_R101c_vitB16_ft_mpt.pth``,
``ovseg_swinbase_vitL14_ft_mpt.pth``): ``{'model': state_dict}`` of its detectron2 ``OVSeg``.
Plain functions here rename the proposal network's keys (one rule a line, in the tables below)
and split off the mask-prompt-tuned CLIP, which
:func:`~densevl.models.ovseg.checkpoint.split_ovseg_clip_state_dict` turns into open_clip's layout
(the frozen CLIP is not part of the segmentor's state dict: it loads from its own files).

=================================================  ============================================
released (``model``)                               densevl (``OVSegSegmentor``)
=================================================  ============================================
``backbone.stem.conv{1,2,3}`` (DeepLab stem)       ``backbone.stem.{0,3,6}`` / ``.{1,4,7}`` (BN)
``backbone.res{2-5}.{b}.conv{n}[.norm]``           ``backbone.layer{1-4}.{b}.conv{n}`` / ``.bn{n}``
``backbone.res{2-5}.{b}.shortcut[.norm]``          ``backbone.layer{1-4}.{b}.downsample.{0,1}``
``backbone.patch_embed.proj`` (Swin)               ``backbone.patch_embed.projection``
``backbone.layers.{i}.blocks.{j}.attn.*``          ``backbone.stages.{i}.blocks.{j}.attn.w_msa.*``
``backbone.layers.{i}.blocks.{j}.mlp.fc{1,2}``     ``backbone.stages.{i}.blocks.{j}.ffn.layers.*``
                                                   (``0.0``, ``1``)
``backbone.layers.{i}.downsample.*``               ``backbone.stages.{i}.downsample.*`` (channels
                                                   reordered: mmseg merges patches with Unfold)
``sem_seg_head.pixel_decoder.adapter_{k}``         ``decode_head.pixel_decoder.lateral_convs.{k-1}``
``sem_seg_head.pixel_decoder.layer_{k}``           ``...output_convs.{k-1}``; the last level's:
                                                   ``...last_feat_conv``
``sem_seg_head.pixel_decoder.mask_features``       ``decode_head.pixel_decoder.mask_feature``
``sem_seg_head.predictor.input_proj``              ``decode_head.decoder_input_proj``
``sem_seg_head.predictor.query_embed``             ``decode_head.query_embed``
``...predictor.transformer.decoder.layers.{i}``    ``decode_head.transformer_decoder.layers.{i}``:
  ``self_attn`` / ``multihead_attn``                 ``self_attn.attn`` / ``cross_attn.attn``
  ``linear1`` / ``linear2``                          ``ffn.layers.0.0`` / ``ffn.layers.1``
  ``norm1`` / ``norm2`` / ``norm3``                  ``norms.0`` / ``norms.1`` / ``norms.2``
``...predictor.transformer.decoder.norm``          ``decode_head.transformer_decoder.post_norm``
``sem_seg_head.predictor.mask_embed.layers.{i}``   ``decode_head.mask_embed.{2 i}``
``sem_seg_head.predictor.class_embed.layers.{i}``  ``decode_head.cls_embed.layers.{i}``
``clip_adapter.non_object_embedding``              ``decode_head.cls_embed.non_object_embedding``
``clip_adapter.clip_model.*``                      the frozen CLIP's files (not in the state dict)
=================================================  ============================================

Left out, as they hold no learned weight densevl uses: ``clip_adapter.pixel_mean`` /
``pixel_std`` and ``pixel_mean`` / ``pixel_std`` (fixed normalisations) and
``criterion.empty_weight`` (the loss's class weights, set by ``no_object_weight``). detectron2's
frozen batch norms carry no ``num_batches_tracked``; a zero one is added for mmseg's ``BN``.
Both attention layouts are ``nn.MultiheadAttention``'s (``in_proj_weight`` packs q, k, v), so
they are copied as they are; mmdet's ``batch_first`` only transposes around the same weights.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .checkpoint import OVSEG_CLIP_PREFIX

__all__ = ['OVSegDetectron2Weights', 'convert_ovseg_detectron2_state_dict',
           'describe_ovseg_detectron2', 'unfold_channel_order']

_SOURCES = ("a whole OVSeg checkpoint from ov-seg's GETTING_STARTED.md, such as "
            'ovseg_R101c_vitB16_ft_mpt.pth or ovseg_swinbase_vitL14_ft_mpt.pth: '
            "{'model': {'backbone.*', 'sem_seg_head.*', 'clip_adapter.*'}}")

#: Entries of a released model that hold no weight of the segmentor (see the module).
DROPPED = ('pixel_mean', 'pixel_std', 'clip_adapter.pixel_mean', 'clip_adapter.pixel_std',
           'criterion.empty_weight')

Rule = tuple[str, Callable[[re.Match], str]]
_NORM = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


def _layer(m: re.Match, group: int = 1) -> int:
    """detectron2's ``res{2-5}`` as mmseg's ``layer{1-4}``."""
    return int(m[group]) - 1


#: detectron2's ResNet (DeepLab stem, ``STRIDE_IN_1X1`` False) -> mmseg's ``ResNetV1c``.
RESNET_RULES: tuple[Rule, ...] = (
    (r'stem\.conv([123])\.weight', lambda m: f'stem.{3 * _layer(m)}.weight'),
    (rf'stem\.conv([123])\.norm\.{_NORM}', lambda m: f'stem.{3 * _layer(m) + 1}.{m[2]}'),
    (r'res([2-5])\.(\d+)\.conv([123])\.weight',
     lambda m: f'layer{_layer(m)}.{m[2]}.conv{m[3]}.weight'),
    (rf'res([2-5])\.(\d+)\.conv([123])\.norm\.{_NORM}',
     lambda m: f'layer{_layer(m)}.{m[2]}.bn{m[3]}.{m[4]}'),
    (r'res([2-5])\.(\d+)\.shortcut\.weight',
     lambda m: f'layer{_layer(m)}.{m[2]}.downsample.0.weight'),
    (rf'res([2-5])\.(\d+)\.shortcut\.norm\.{_NORM}',
     lambda m: f'layer{_layer(m)}.{m[2]}.downsample.1.{m[3]}'),
)

#: ov-seg's detectron2 Swin -> mmseg's ``SwinTransformer``.
SWIN_RULES: tuple[Rule, ...] = (
    (r'patch_embed\.proj\.(weight|bias)', lambda m: f'patch_embed.projection.{m[1]}'),
    (r'patch_embed\.norm\.(weight|bias)', lambda m: f'patch_embed.norm.{m[1]}'),
    (r'layers\.(\d+)\.blocks\.(\d+)\.(norm[12])\.(weight|bias)',
     lambda m: f'stages.{m[1]}.blocks.{m[2]}.{m[3]}.{m[4]}'),
    (r'layers\.(\d+)\.blocks\.(\d+)\.attn\.(relative_position_bias_table|'
     r'relative_position_index|qkv\.weight|qkv\.bias|proj\.weight|proj\.bias)',
     lambda m: f'stages.{m[1]}.blocks.{m[2]}.attn.w_msa.{m[3]}'),
    (r'layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)',
     lambda m: f'stages.{m[1]}.blocks.{m[2]}.ffn.layers.0.0.{m[3]}'),
    (r'layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)',
     lambda m: f'stages.{m[1]}.blocks.{m[2]}.ffn.layers.1.{m[3]}'),
    (r'layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)',
     lambda m: f'stages.{m[1]}.downsample.{m[2]}'),
    (r'norm([0-3])\.(weight|bias)', lambda m: f'norm{m[1]}.{m[2]}'),
)

_ATTENTION = {'self_attn': 'self_attn.attn', 'multihead_attn': 'cross_attn.attn'}
_DECODER_PARTS = {'linear1': 'ffn.layers.0.0', 'linear2': 'ffn.layers.1', 'norm1': 'norms.0',
                  'norm2': 'norms.1', 'norm3': 'norms.2'}


def _pixel_decoder_rules(levels: int) -> tuple[Rule, ...]:
    """MaskFormer's ``BasePixelDecoder`` -> mmdet's ``PixelDecoder``; ``layer_{levels}`` is the
    coarsest level's conv (mmdet's ``last_feat_conv``), the others pair with the laterals."""

    def conv(m: re.Match) -> str:
        k = int(m[2])
        module = ('last_feat_conv' if m[1] == 'layer' and k == levels else
                  f'{"lateral" if m[1] == "adapter" else "output"}_convs.{k - 1}')
        return f'{module}.{"gn" if m[3] else "conv"}.{m[4]}'

    return ((r'(adapter|layer)_(\d+)\.(norm\.)?(weight|bias)', conv),
            (r'mask_features\.(weight|bias)', lambda m: f'mask_feature.{m[1]}'))


#: MaskFormer's ``TransformerPredictor`` (OVSeg's open-vocabulary one) -> mmseg/mmdet's
#: ``MaskFormerHead`` with densevl's CLIP-space class head.
PREDICTOR_RULES: tuple[Rule, ...] = (
    (r'query_embed\.weight', lambda m: 'query_embed.weight'),
    (r'input_proj\.(weight|bias)', lambda m: f'decoder_input_proj.{m[1]}'),
    (r'transformer\.decoder\.layers\.(\d+)\.(self_attn|multihead_attn)\.'
     r'(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)',
     lambda m: f'transformer_decoder.layers.{m[1]}.{_ATTENTION[m[2]]}.{m[3]}'),
    (r'transformer\.decoder\.layers\.(\d+)\.(linear[12]|norm[123])\.(weight|bias)',
     lambda m: f'transformer_decoder.layers.{m[1]}.{_DECODER_PARTS[m[2]]}.{m[3]}'),
    (r'transformer\.decoder\.norm\.(weight|bias)',
     lambda m: f'transformer_decoder.post_norm.{m[1]}'),
    (r'mask_embed\.layers\.(\d+)\.(weight|bias)', lambda m: f'mask_embed.{2 * int(m[1])}.{m[2]}'),
    (r'class_embed\.layers\.(\d+)\.(weight|bias)', lambda m: f'cls_embed.layers.{m[1]}.{m[2]}'),
)


def unfold_channel_order(weight: Tensor) -> Tensor:
    """A Swin patch merging's ``4 C`` input channels from detectron2's order to mmseg's.

    The reference concatenates the 2x2 neighbours as ``[(0, 0), (1, 0), (0, 1), (1, 1)]``
    (``(row, column)`` offsets) blocks of ``C``; mmseg's ``nn.Unfold`` gives channel
    ``c * 4 + 2 * row + column``.

    Shapes:
        ``(..., 4 C) -> (..., 4 C)`` (the reduction's weight and the norm's weight and bias).
    """
    *lead, channels = weight.shape
    blocks = weight.reshape(*lead, 4, channels // 4)[..., [0, 2, 1, 3], :]
    return blocks.transpose(-1, -2).reshape(*lead, channels).contiguous()


@dataclass
class OVSegDetectron2Weights:
    """A released OVSeg checkpoint, split for densevl.

    Attributes:
        state_dict: the segmentor's (``backbone.*``, ``decode_head.*``), fp32.
        backbone: ``'resnet'`` or ``'swin'``.
        clip_keys: how many ``clip_adapter.clip_model.*`` entries (the frozen CLIP) were left to
            :func:`~densevl.models.ovseg.checkpoint.split_ovseg_clip_state_dict`.
        dropped: the entries left out that hold no weight (see the module).
    """

    state_dict: dict[str, Tensor]
    backbone: str
    clip_keys: int = 0
    dropped: list[str] = field(default_factory=list)


def _rename(key: str, rules: tuple[Rule, ...]) -> str | None:
    for pattern, target in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return target(match)
    return None


def _pixel_decoder_levels(state: Mapping[str, Tensor]) -> int:
    found = [int(m[1]) for k in state
             if (m := re.fullmatch(r'sem_seg_head\.pixel_decoder\.layer_(\d+)\..*', k))]
    return max(found, default=0)


def _backbone_kind(state: Mapping[str, Tensor], where: str) -> str:
    if any(k.startswith('backbone.stem.') for k in state):
        return 'resnet'
    if any(k.startswith('backbone.patch_embed.') for k in state):
        return 'swin'
    found = ', '.join(sorted({'.'.join(k.split('.')[:2]) for k in state
                              if k.startswith('backbone.')})[:5]) or 'no backbone.* keys'
    raise ValueError(f'{where}: the backbone is neither a detectron2 ResNet (backbone.stem.*) '
                     f'nor ov-seg\'s Swin (backbone.patch_embed.*); it has {found}. Pass '
                     f'{_SOURCES}')


def _listing(keys: list[str], most: int = 12) -> str:
    more = f' ... and {len(keys) - most} more' if len(keys) > most else ''
    return ', '.join(keys[:most]) + more


def convert_ovseg_detectron2_state_dict(state: Mapping[str, Tensor],
                                        where: str = 'the checkpoint') -> OVSegDetectron2Weights:
    """Rename a released OVSeg model's keys to :class:`OVSegSegmentor`'s (see the module).

    Args:
        state: the checkpoint's ``model`` dict (``module.`` prefixes already removed).
        where: how errors name the source.

    Raises:
        ValueError: not a whole OVSeg model, or keys that no rule knows (listed; e.g. a
            deformable ResNet, a Swin with absolute positions, a transformer encoder in the
            predictor, which densevl's modules do not have).
    """
    if not any(k.startswith('sem_seg_head.') for k in state):
        clip_only = any(k.startswith(('visual.', 'module.visual.', OVSEG_CLIP_PREFIX))
                        for k in state)
        fix = ('it holds a CLIP only: convert it with tools/convert_ovseg_clip_checkpoint.py'
               if clip_only else f'pass {_SOURCES}')
        raise ValueError(f'{where} has no sem_seg_head.* keys, so it is not a whole OVSeg '
                         f'model; {fix}')
    kind = _backbone_kind(state, where)
    sections = {
        'backbone.': ('backbone.', RESNET_RULES if kind == 'resnet' else SWIN_RULES),
        'sem_seg_head.pixel_decoder.': ('decode_head.pixel_decoder.',
                                        _pixel_decoder_rules(_pixel_decoder_levels(state))),
        'sem_seg_head.predictor.': ('decode_head.', PREDICTOR_RULES),
    }
    out: dict[str, Tensor] = {}
    unknown, dropped, clip_keys = [], [], 0
    for key, value in state.items():
        if key.startswith(OVSEG_CLIP_PREFIX):
            clip_keys += 1
            continue
        if key in DROPPED:
            dropped.append(key)
            continue
        if key == 'clip_adapter.non_object_embedding':
            new = 'decode_head.cls_embed.non_object_embedding'
        else:
            prefix = next((p for p in sections if key.startswith(p)), None)
            renamed = prefix and _rename(key[len(prefix):], sections[prefix][1])
            new = sections[prefix][0] + renamed if renamed else None
        if new is None:
            unknown.append(key)
            continue
        value = value.detach()
        if kind == 'swin' and re.search(r'\.downsample\.(reduction\.weight|norm\.)', new):
            value = unfold_channel_order(value)
        out[new] = (value.float() if value.is_floating_point() else value).contiguous()
    if unknown:
        raise ValueError(f'{where}: {len(unknown)} keys have no counterpart in densevl\'s '
                         f'OVSegSegmentor ({kind} backbone): {_listing(unknown)}. The released '
                         'OVSeg models (R101c DeepLab-stem ResNet or Swin-B, BasePixelDecoder, '
                         'no transformer encoder, post-norm decoder) convert; this one differs')
    for key in [k for k in out if k.endswith('.running_var')]:
        out.setdefault(key[:-len('running_var')] + 'num_batches_tracked',
                       torch.tensor(0, dtype=torch.long))
    needed = ('decode_head.query_embed.weight', 'decode_head.cls_embed.non_object_embedding',
              'decode_head.pixel_decoder.mask_feature.weight',
              'decode_head.transformer_decoder.post_norm.weight')
    missing = [k for k in needed if k not in out]
    if missing:
        raise ValueError(f'{where} lacks what every OVSeg model has ({_listing(missing)} after '
                         f'renaming); is it cut short? Pass {_SOURCES}')
    return OVSegDetectron2Weights(out, kind, clip_keys, dropped)


def describe_ovseg_detectron2(weights: OVSegDetectron2Weights) -> dict:
    """The architecture the converted weights need, read off their shapes: what a densevl
    config must set for a strict load (backbone depth / widths, queries, decoder layers ...)."""
    sd = weights.state_dict
    layers = {k.split('.')[3] for k in sd
              if k.startswith('decode_head.transformer_decoder.layers.')}
    cls_layers = [k for k in sd if re.fullmatch(r'decode_head\.cls_embed\.layers\.\d+\.weight', k)]
    head = dict(
        in_channels=[int(sd[k].shape[1]) for k in sorted(
            k for k in sd if re.fullmatch(r'decode_head\.pixel_decoder\.lateral_convs\.\d+\.conv'
                                          r'\.weight', k))]
        + [int(sd['decode_head.pixel_decoder.last_feat_conv.conv.weight'].shape[1])],
        feat_channels=int(sd['decode_head.query_embed.weight'].shape[1]),
        out_channels=int(sd['decode_head.pixel_decoder.mask_feature.weight'].shape[0]),
        num_queries=int(sd['decode_head.query_embed.weight'].shape[0]),
        decoder_layers=len(layers),
        feedforward_channels=int(sd['decode_head.transformer_decoder.layers.0.ffn.layers.0.0'
                                    '.weight'].shape[0]) if layers else None,
        embed_dims=int(sd['decode_head.cls_embed.non_object_embedding'].shape[-1]),
        class_hidden_dims=int(sd['decode_head.cls_embed.layers.0.weight'].shape[0]),
        class_layers=len(cls_layers))
    if weights.backbone == 'resnet':
        blocks = [len({k.split('.')[2] for k in sd if k.startswith(f'backbone.layer{i}.')})
                  for i in range(1, 5)]
        depth = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}.get(tuple(blocks))
        backbone = dict(type='ResNetV1c', depth=depth, blocks=blocks,
                        stem_channels=int(sd['backbone.stem.6.weight'].shape[0]),
                        base_channels=int(sd['backbone.layer1.0.conv1.weight'].shape[0]))
    else:
        stages = sorted({int(k.split('.')[2]) for k in sd if k.startswith('backbone.stages.')})
        depths = [len({k.split('.')[4] for k in sd if k.startswith(f'backbone.stages.{i}.blocks.')})
                  for i in stages]
        table = [sd[f'backbone.stages.{i}.blocks.0.attn.w_msa.relative_position_bias_table']
                 for i in stages]
        backbone = dict(type='SwinTransformer',
                        embed_dims=int(sd['backbone.patch_embed.projection.weight'].shape[0]),
                        patch_size=int(sd['backbone.patch_embed.projection.weight'].shape[-1]),
                        depths=depths, num_heads=[int(t.shape[1]) for t in table],
                        window_size=(int(round(table[0].shape[0] ** 0.5)) + 1) // 2)
    return dict(backbone=backbone, decode_head=head)
