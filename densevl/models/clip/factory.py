"""Create CLIP models by name, with weights from an open_clip tag, ``hf-hub:`` or a local file."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import open_clip
import torch
from torch import nn

from ...errors import WeightsUnavailableError
from .checkpoint import check_state_dict, is_torchscript_archive, read_clip_state_dict
from .dense_resnet import CLIPDenseResNet
from .dense_vit import CLIPDenseViT
from .model_zoo import MODEL_ZOO

_SCHEMAS = ('hf-hub:', 'local-dir:')
_WEIGHT_SUFFIXES = ('.pt', '.pth', '.bin', '.safetensors', '.ckpt')


@dataclass
class CLIPBundle:
    """A CLIP model with what is needed to use it.

    Attributes:
        model: the open_clip ``CLIP`` (image tower in ``model.visual``).
        tokenizer: callable ``list[str] -> LongTensor (N, context_length)``.
        model_id: a stable name of architecture + weights source (used in cache keys).
        random_weights: True when no pretrained weights were loaded.
    """

    model: nn.Module
    tokenizer: object
    model_id: str
    random_weights: bool


def available_models() -> list[str]:
    """densevl's named models followed by every open_clip architecture name."""
    return list(MODEL_ZOO) + list(open_clip.list_models())


def _unknown_model(name: str) -> ValueError:
    close = difflib.get_close_matches(name, available_models(), n=5, cutoff=0.5)
    hint = f' Did you mean {", ".join(close)}?' if close else ''
    return ValueError(f'unknown CLIP model {name!r}.{hint} Use a densevl model '
                      f'({", ".join(MODEL_ZOO)}), an open_clip name (open_clip.list_models()) or '
                      "'hf-hub:org/repo'.")


def _looks_like_path(pretrained: str) -> bool:
    return (os.sep in pretrained or pretrained.endswith(_WEIGHT_SUFFIXES)
            or os.path.exists(pretrained))


def _load_file(model: nn.Module, path: str, model_name: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path!r} does not exist; pass the path of a CLIP '
                                'checkpoint (OpenAI .pt or open_clip .pth/.bin/.safetensors)')
    state_dict = read_clip_state_dict(path)
    try:
        check_state_dict(model, state_dict)
    except ValueError as err:
        raise ValueError(f'{path} does not fit the architecture {model_name!r}. {err}\nPass the '
                         'model name these weights were trained with.') from err
    model.load_state_dict(state_dict, strict=True)


def _create_zoo(name: str, pretrained: str | None) -> tuple[nn.Module, bool]:
    entry = MODEL_ZOO[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(entry.seed)
        model = open_clip.CLIP(**entry.config)
    if pretrained:
        _load_file(model, pretrained, name)
        return model, False
    if entry.weights_path is not None:
        if not entry.weights_path.is_file():
            raise WeightsUnavailableError(f'the weights of {name!r} ({entry.weights_path}) are '
                                          'missing from this installation; reinstall densevl')
        _load_file(model, str(entry.weights_path), name)
        return model, False
    return model, True


def _create_open_clip(name: str, pretrained: str | None) -> tuple[nn.Module, bool]:
    if name.startswith(_SCHEMAS):
        try:
            return open_clip.create_model(name), False
        except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
            raise WeightsUnavailableError(
                f'could not load {name!r}: {type(err).__name__}: {err}. Without network access, '
                "download the repository elsewhere and use 'local-dir:/path/to/it', or pass the "
                'architecture name with pretrained=/path/to/weights') from err
    if name not in open_clip.list_models():
        raise _unknown_model(name)
    if pretrained is None:
        return open_clip.create_model(name, pretrained=None, pretrained_text=False), True
    if _looks_like_path(pretrained):
        # OpenAI ships TorchScript archives and trained with QuickGELU: build it so, whatever
        # the architecture name says, or the features silently differ.
        quick_gelu = os.path.isfile(pretrained) and is_torchscript_archive(pretrained)
        model = open_clip.create_model(name, pretrained=None, pretrained_text=False,
                                       force_quick_gelu=quick_gelu)
        _load_file(model, pretrained, name)
        return model, False
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        raise ValueError(f'{name!r} has no pretrained tag {pretrained!r}; its tags are '
                         f'{", ".join(tags) or "(none)"}; or pass the path of a local weights file')
    # Weights trained with QuickGELU (OpenAI's) get it even under the plain architecture name.
    quick_gelu = bool(open_clip.get_pretrained_cfg(name, pretrained).get('quick_gelu', False))
    try:
        return open_clip.create_model(name, pretrained=pretrained,
                                      force_quick_gelu=quick_gelu), False
    except Exception as err:  # noqa: BLE001 - network, hub and cache failures alike
        cfg = open_clip.get_pretrained_cfg(name, pretrained)
        source = cfg.get('hf_hub') or cfg.get('url') or 'its source'
        raise WeightsUnavailableError(
            f'could not download the {pretrained!r} weights of {name!r} '
            f'({type(err).__name__}: {err}). This machine may have no network. Download them '
            f'elsewhere (from {source}) and pass the local file: pretrained=/path/to/file '
            '(demo: --weights /path/to/file).') from err


def create_clip(model_name: str, pretrained: str | None = None, *,
                device: str | torch.device = 'cpu') -> CLIPBundle:
    """Build a CLIP model and its tokenizer, in eval mode, fp32.

    Args:
        model_name: a densevl model (``'clip-tiny-random'``), an open_clip architecture
            (``'ViT-B-16'``, ``'RN50'``) or ``'hf-hub:org/repo'``.
        pretrained: an open_clip pretrained tag (``'openai'``), the path of a local checkpoint
            (OpenAI TorchScript, open_clip state dict; see ``tools/convert_clip_checkpoint.py``),
            or None for the model's default (random weights for open_clip names).
        device: where to put the model.

    Raises:
        ValueError: unknown model name or pretrained tag, or weights that do not fit the
            architecture (the message lists the keys).
        WeightsUnavailableError: weights that must be downloaded cannot be.
    """
    if model_name in MODEL_ZOO:
        model, random_weights = _create_zoo(model_name, pretrained)
        entry = MODEL_ZOO[model_name]
        tokenizer = open_clip.get_tokenizer(
            entry.tokenizer, context_length=entry.config['text_cfg']['context_length'])
    else:
        model, random_weights = _create_open_clip(model_name, pretrained)
        tokenizer = open_clip.get_tokenizer(model_name)
    source = 'random' if random_weights else os.path.basename(str(pretrained or 'packaged'))
    model = model.float().eval().to(device)
    return CLIPBundle(model=model, tokenizer=tokenizer, model_id=f'{model_name}@{source}',
                      random_weights=random_weights)


def check_activation(model_name: str, pretrained: str | None) -> None:
    """Refuse an open_clip architecture whose activation differs from its pretrained tag's.

    OpenAI's CLIPs were trained with QuickGELU; open_clip's ``'RN50'``, ``'ViT-B-16'`` ... use
    GELU and only warn when given ``pretrained='openai'``. A model that fine-tunes OpenAI's
    weights in their own architecture (DenseCLIP) needs the ``-quickgelu`` names.
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


def image_tower(model: nn.Module) -> nn.Module:
    """The open_clip image tower of a whole CLIP, of a densevl dense encoder around one
    (``CLIPDenseViT``, ``CLIPDenseResNet``), or the tower itself."""
    while not hasattr(model, 'conv1') and isinstance(getattr(model, 'visual', None), nn.Module):
        model = model.visual
    return model


def is_modified_resnet(visual: nn.Module) -> bool:
    """Whether an open_clip image tower is a ModifiedResNet (else a ViT): the one place the
    library tells the two apart; everything else goes through the encoders' shared interface."""
    return hasattr(visual, 'attnpool')


def build_dense_encoder(visual: nn.Module, mode: str = 'maskclip',
                        **kwargs) -> CLIPDenseViT | CLIPDenseResNet:
    """Wrap an open_clip image tower in the dense interface that fits it."""
    if is_modified_resnet(visual):
        return CLIPDenseResNet(visual, mode=mode)
    if hasattr(visual, 'transformer') and hasattr(visual, 'conv1'):
        return CLIPDenseViT(visual, mode=mode, **kwargs)
    raise ValueError(f'{type(visual).__name__} is not a CLIP ViT or ModifiedResNet image tower; '
                     'dense embeddings are defined for those two (timm towers are not supported)')
