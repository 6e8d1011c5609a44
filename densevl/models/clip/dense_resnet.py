"""Dense embeddings from an open_clip ModifiedResNet image tower (CLIP RN50, RN101, ...)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cropped_pool_positions import cropped_pool_positions
from .dense_output import DenseOutput
from .last_block import VIT_ONLY_MODES, check_mode
from .pos_embed import resize_attnpool_pos_embed

RESNET_MODES = ('plain', 'maskclip')
POOL_POSITIONS = ('resize', 'crop')


def dense_attention_pool(pool: nn.Module, res5: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """An open_clip ``AttentionPool2d`` with every position as a query, not only the mean token.

    Shapes:
        res5: ``(B, D, h, w)``; positions: ``(1 + h * w, D)``; returns global ``(B, C)`` and
        dense ``(B, C, h, w)``.
    """
    b, d, h, w = res5.shape
    x = res5.flatten(2).permute(2, 0, 1)
    x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
    x = x + positions[:, None].to(x.dtype)
    x, _ = F.multi_head_attention_forward(
        query=x, key=x, value=x, embed_dim_to_check=d, num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight, in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    return x[0], x[1:].permute(1, 2, 0).reshape(b, -1, h, w)


class CLIPDenseResNet(nn.Module):
    """Dense embeddings from the attention pool of a ``ModifiedResNet``.

    Modes:
        ``maskclip``: MaskCLIP's value path — the pool's ``v_proj`` then ``c_proj`` applied to every
        res5 position as 1x1 convolutions, no attention, no positional embedding.
        ``plain``: the attention pool run with every position as a query (the mean token first,
        positional embedding resized to the grid), as DenseCLIP's ``CLIPResNetWithAttention``.

    The pyramid interface DenseCLIP uses (shared with
    :class:`~densevl.models.denseclip.CLIPViTFeaturePyramid`): :attr:`level_channels`,
    :meth:`features`, ``forward_dense(return_features=True)``, :attr:`position_grid_owner` and
    :meth:`drop_embedding_head`.

    Args:
        visual: an open_clip ``ModifiedResNet`` (``clip_model.visual``).
        mode: default mode, ``'plain'`` or ``'maskclip'``.
        pool_positions: how the pool's positional grid meets a feature map of another size:
            ``'resize'`` it bilinearly (CLIP, DenseCLIP segmentation) or ``'crop'`` its top-left
            window (DenseCLIP detection, see :func:`cropped_pool_positions`).
    """

    def __init__(self, visual: nn.Module, *, mode: str = 'maskclip',
                 pool_positions: str = 'resize', **unused) -> None:
        super().__init__()
        if pool_positions not in POOL_POSITIONS:
            raise ValueError(f'unknown pool_positions {pool_positions!r}; choose one of '
                             f'{", ".join(POOL_POSITIONS)}')
        self.visual = visual
        self.mode = self._check(mode)
        self.pool_positions = pool_positions
        self.patch_size = 32
        self.width = visual.attnpool.k_proj.in_features
        self.embed_dim = visual.attnpool.c_proj.out_features
        self.level_channels = [layer[-1].conv3.out_channels for layer in
                               (visual.layer1, visual.layer2, visual.layer3, visual.layer4)]

    @property
    def position_grid_owner(self) -> nn.Module:
        """The module whose ``positional_embedding`` is the tower's positional grid."""
        return self.visual.attnpool

    def drop_embedding_head(self) -> None:
        """Remove the attention pool (a plain backbone, as DenseCLIP's ``CLIPResNet``)."""
        self.visual.attnpool = None

    @staticmethod
    def _check(mode: str) -> str:
        check_mode(mode)
        if mode in VIT_ONLY_MODES:
            raise ValueError(f'mode {mode!r} is defined for ViT image towers only; a '
                             f'ModifiedResNet supports {", ".join(RESNET_MODES)}')
        return mode

    def stages(self, images: Tensor) -> list[Tensor]:
        """The outputs of res2..res5. Shapes: strides 4, 8, 16, 32 of ``(B, 3, H, W)``."""
        visual = self.visual
        if images.shape[-1] < 32 or images.shape[-2] < 32:
            raise ValueError(f'image of {images.shape[-2]}x{images.shape[-1]} pixels is smaller '
                             'than the 32-pixel stride of a ModifiedResNet; resize it to at least '
                             '32 pixels per side')
        x = visual.stem(images.to(visual.conv1.weight.dtype))
        outs = []
        for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = layer(x)
            outs.append(x)
        return outs

    def features(self, images: Tensor) -> list[Tensor]:
        """The four pyramid levels (res2..res5)."""
        return self.stages(images)

    def attention_pool(self, res5: Tensor) -> tuple[Tensor, Tensor]:
        """Full multi-head attention pool over the mean token and every position, the pool's
        positions resized or cropped to the grid (``pool_positions``).

        Shapes:
            res5: ``(B, D, h, w)``; returns global ``(B, C)`` and dense ``(B, C, h, w)``.
        """
        pool = self.visual.attnpool
        fit = cropped_pool_positions if self.pool_positions == 'crop' else \
            resize_attnpool_pos_embed
        return dense_attention_pool(pool, res5, fit(pool.positional_embedding,
                                                    tuple(res5.shape[-2:])))

    def value_path(self, res5: Tensor) -> Tensor:
        """MaskCLIP: ``c_proj(v_proj(x))`` at every position.

        Shapes:
            ``(B, D, h, w) -> (B, C, h, w)``.
        """
        pool = self.visual.attnpool
        x = res5.permute(0, 2, 3, 1)
        x = pool.c_proj(pool.v_proj(x))
        return x.permute(0, 3, 1, 2)

    def forward_dense(self, images: Tensor, mode: str | None = None, *,
                      return_features: bool = False, return_global: bool = True) -> DenseOutput:
        """Dense and global embeddings. Shapes: ``(B, 3, H, W) -> dense (B, C, H/32, W/32)``."""
        mode = self._check(mode or self.mode)
        stages = self.stages(images)
        global_embedding = None
        if mode == 'plain' or return_global:
            global_embedding, dense = self.attention_pool(stages[-1])
        if mode == 'maskclip':
            dense = self.value_path(stages[-1])
        return DenseOutput(dense=dense, global_embedding=global_embedding,
                           features=stages if return_features else [])

    def forward(self, images: Tensor) -> DenseOutput:
        return self.forward_dense(images)
