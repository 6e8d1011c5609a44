"""Convert a CLIP checkpoint into a plain fp32 open_clip state dict.

Reads an OpenAI TorchScript archive (``ViT-B-16.pt`` as OpenAI ships it) or an open_clip /
DDP / mmengine checkpoint, and writes a ``.pth`` that
``open_clip.create_model(NAME, pretrained=DST)`` loads. With ``--model-name`` the result is
checked against that open_clip model before anything is written.

Example:
    python tools/convert_clip_checkpoint.py ViT-B-16.pt checkpoints/clip_vit-b16_openai.pth \
        --model-name ViT-B-16-quickgelu
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch
from _cli import argument, converter_main  # before densevl: makes it importable

from densevl.models.clip.checkpoint import (
    check_state_dict,
    is_torchscript_archive,
    read_clip_state_dict,
)


def _count_blocks(state_dict: dict, prefix: str) -> int:
    return len({k[len(prefix):].split('.', 1)[0] for k in state_dict if k.startswith(prefix)})


def _signature(state_dict: dict) -> tuple | None:
    """Architecture hyper-parameters read off a (text-tower) CLIP state dict, or None."""
    try:
        text = (*state_dict['token_embedding.weight'].shape,
                state_dict['positional_embedding'].shape[0],
                _count_blocks(state_dict, 'transformer.resblocks.'),
                state_dict['text_projection'].shape[1])
        conv1 = state_dict['visual.conv1.weight']
        if 'visual.class_embedding' in state_dict:  # ViT
            grid = round((state_dict['visual.positional_embedding'].shape[0] - 1) ** 0.5)
            patch = conv1.shape[-1]
            vision = (conv1.shape[0], _count_blocks(state_dict, 'visual.transformer.resblocks.'),
                      patch, grid * patch)
        else:  # ModifiedResNet: stem width is half the config width; attention pool at 1/32
            grid = round((state_dict['visual.attnpool.positional_embedding'].shape[0] - 1) ** 0.5)
            layers = tuple(_count_blocks(state_dict, f'visual.layer{i}.') for i in range(1, 5))
            vision = (conv1.shape[0] * 2, layers, None, grid * 32)
    except KeyError:
        return None
    return vision + text


def _config_signature(cfg: dict) -> tuple | None:
    vision, text = cfg.get('vision_cfg', {}), cfg.get('text_cfg', {})
    if 'timm_model_name' in vision or 'hf_model_name' in text or 'width' not in vision:
        return None
    image_size = vision.get('image_size', 224)
    image_size = image_size[0] if isinstance(image_size, (list, tuple)) else image_size
    layers = vision['layers']
    layers = tuple(layers) if isinstance(layers, (list, tuple)) else layers
    return (vision['width'], layers, vision.get('patch_size'), image_size,
            text.get('vocab_size', 49408), text.get('width', 512), text.get('context_length', 77),
            text.get('layers', 12), cfg['embed_dim'])


def suggest_model_names(state_dict: dict) -> list[str]:
    """open_clip model names whose config has the shapes of ``state_dict``."""
    import open_clip

    sig = _signature(state_dict)
    if sig is None:
        return []
    return [name for name in open_clip.list_models()
            if _config_signature(open_clip.get_model_config(name) or {}) == sig]


def verify(state_dict: dict, model_name: str, from_openai: bool) -> dict:
    """Check ``state_dict`` against open_clip model ``model_name``; exit with advice if not.

    Returns the state dict in the key layout of that model (text tower under ``text.`` for
    open_clip's CustomTextCLIP models).
    """
    import open_clip
    from open_clip.model import convert_to_custom_text_state_dict

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip warns that the model is randomly initialised
    try:
        model = open_clip.create_model(model_name, pretrained=None, device='cpu')
    finally:
        logging.disable(previous)
    original = state_dict
    if not hasattr(model, 'positional_embedding'):
        state_dict = convert_to_custom_text_state_dict(state_dict)
    try:
        check_state_dict(model, state_dict)
    except ValueError as err:
        candidates = suggest_model_names(original)
        hint = (f'matching open_clip names: {", ".join(candidates)}' if candidates else
                'no built-in open_clip config has these shapes; see open_clip.list_models()')
        sys.exit(f'error: checkpoint does not fit --model-name {model_name}.\n{err}\n'
                 f'Fix: pass the --model-name the checkpoint was trained with ({hint}).')
    model.load_state_dict(state_dict, strict=True)
    if from_openai and not (open_clip.get_model_config(model_name) or {}).get('quick_gelu'):
        print(f'warning: OpenAI CLIP was trained with QuickGELU but {model_name} uses GELU; '
              f'load it as {model_name}-quickgelu (or force_quick_gelu=True) to get the '
              'features OpenAI published.', file=sys.stderr)
    return state_dict


def save_atomic(state_dict: dict, dst: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``dst``, then rename it over ``dst``."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f'.{dst.name}.{os.getpid()}.tmp')
    try:
        torch.save(state_dict, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def convert(args: argparse.Namespace) -> None:
    from_openai = is_torchscript_archive(args.src)
    state_dict = read_clip_state_dict(args.src)
    if args.model_name:
        state_dict = verify(state_dict, args.model_name, from_openai)
    save_atomic(state_dict, args.dst)
    n_params = sum(v.numel() for v in state_dict.values())
    source = 'TorchScript archive' if from_openai else 'state dict'
    checked = f', verified against {args.model_name}' if args.model_name else ''
    print(f'{args.src} ({source}) -> {args.dst}: {len(state_dict)} tensors, '
          f'{n_params / 1e6:.2f}M values, fp32{checked}')


main = converter_main(
    __doc__, convert, src_help='OpenAI TorchScript archive or open_clip checkpoint',
    dst_help='output .pth (plain fp32 open_clip state dict)',
    extra_arguments=[argument('--model-name', help='open_clip model name to verify against, e.g. '
                              'ViT-B-16-quickgelu; omit to convert without checking')])


if __name__ == '__main__':
    main()
