"""The pieces :class:`DenseCLIPSegmentor` is built from: its vocabulary, the CLIP checks and the
image encoder around an open_clip tower."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import open_clip
from torch import Tensor, nn

from ...registry import SEG_DATASETS
from ..clip import MODEL_ZOO, CLIPDenseResNet
from ..denseclip import CLIPViTFeaturePyramid
from ..text import read_class_names_file


def resolve_class_names(class_names: str | Sequence[str] | None) -> list[str] | None:
    """Class entries from a list, a names file (one class a line), or a registered dataset type
    (its ``METAINFO['classes']``, which is what DenseCLIP trained with); None stays None."""
    if class_names is None:
        return None
    if not isinstance(class_names, str):
        return [str(name) for name in class_names]
    if os.path.isfile(class_names):
        return read_class_names_file(class_names)
    dataset = SEG_DATASETS.get(class_names)
    classes = getattr(dataset, 'METAINFO', {}).get('classes') if dataset is not None else None
    if not classes:
        raise ValueError(f'class_names={class_names!r} is neither a names file nor a registered '
                         'dataset type; pass a list, a file with one class a line, or a dataset '
                         "type such as 'ADE20KDataset'")
    return [name.strip() for name in classes]


@dataclass(frozen=True)
class SegmentorVocabulary:
    """Class entries, their synonyms (queries) and the text tokens of the queries."""

    names: tuple[str, ...]
    queries: tuple[str, ...]
    query_to_class: Tensor
    tokens: Tensor | None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def has_synonyms(self) -> bool:
        return len(self.queries) != len(self.names)


def check_activation(model_name: str, pretrained: str | None) -> None:
    """Refuse an open_clip architecture whose activation differs from its pretrained tag's.

    OpenAI's CLIPs were trained with QuickGELU; open_clip's ``'RN50'``, ``'ViT-B-16'`` ... use
    GELU and only warn when given ``pretrained='openai'``. DenseCLIP fine-tunes OpenAI's weights
    in their own architecture, so the ``-quickgelu`` names are the right ones.
    """
    if model_name in MODEL_ZOO or not pretrained or os.path.exists(pretrained):
        return
    tag = bool(open_clip.get_pretrained_cfg(model_name, pretrained).get('quick_gelu', False))
    model = bool((open_clip.get_model_config(model_name) or {}).get('quick_gelu', False))
    if tag != model:
        fix = model_name + '-quickgelu' if tag else model_name.removesuffix('-quickgelu')
        raise ValueError(f'the {pretrained!r} weights of {model_name!r} were trained with '
                         f'{"QuickGELU" if tag else "GELU"} but the {model_name!r} architecture '
                         f'uses {"GELU" if tag else "QuickGELU"}; use model_name={fix!r}')


def image_encoder_for(visual: nn.Module, vit: dict | None,
                   name: str) -> tuple[nn.Module, int, list[int]]:
    """DenseCLIP's image encoder around an open_clip tower, its stride (the dense embeddings')
    and the channels of its four levels."""
    if hasattr(visual, 'attnpool'):
        if vit:
            raise ValueError(f'vit options given for {name!r}, a ModifiedResNet')
        levels = [layer[-1].conv3.out_channels
                  for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4)]
        return CLIPDenseResNet(visual, mode='plain'), 32, levels
    encoder = CLIPViTFeaturePyramid(visual, **(vit or {}))
    return encoder, encoder.patch_size, list(encoder.out_channels)


def drop_embedding_head(visual: nn.Module) -> None:
    """Remove CLIP's embedding head (attention pool; ViT: ``ln_post`` and ``proj``), which the
    baseline does not use: DenseCLIP's baseline backbones (``CLIPResNet``,
    ``CLIPVisionTransformer`` without ``get_embeddings``) do not have one either."""
    if hasattr(visual, 'attnpool'):
        visual.attnpool = None
    else:
        visual.ln_post, visual.proj = nn.Identity(), None
