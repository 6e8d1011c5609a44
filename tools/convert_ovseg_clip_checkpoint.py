"""Convert OVSeg's mask-prompt-tuned CLIP into an open_clip CLIP file and a mask embedding file.

Reads ov-seg's mask-adapted CLIP (OpenAI key layout plus ``visual.mask_embedding``), either as
its CLIP training saves it (``{'state_dict': {'module.' + key: ...}}``) or inside a whole OVSeg
checkpoint (``{'model': {'clip_adapter.clip_model.' + key: ...}}``; the segmentation model's keys
are left out). Writes DST, a plain fp32 open_clip state dict that
``create_clip(MODEL_NAME, pretrained=DST)`` loads, and the mask embedding,
``{'mask_embedding': (depth, grid ** 2, width)}``, for
``densevl.models.ovseg.checkpoint.build_mask_prompt_clip`` (default path: DST with the suffix
``.mask_embedding.pth``). Both are checked against ``--model-name`` first: nothing is written
unless every key and the mask embedding fit it.

Example:
    python tools/convert_ovseg_clip_checkpoint.py ovseg_swinbase_vitL14_ft_mpt.pth \
        checkpoints/ovseg_clip_vit-l14.pth --model-name ViT-L-14-quickgelu
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _cli import argument, converter_main  # before densevl: makes it importable
from convert_clip_checkpoint import save_atomic, suggest_model_names

from densevl.models.clip.checkpoint import check_state_dict
from densevl.models.ovseg.checkpoint import (
    build_mask_prompt_clip,
    read_ovseg_clip_checkpoint,
)

MASK_SUFFIX = '.mask_embedding.pth'


def default_mask_path(dst: str | Path) -> Path:
    """``checkpoints/x.pth`` -> ``checkpoints/x.mask_embedding.pth``."""
    dst = Path(dst)
    return dst.with_name(dst.stem + MASK_SUFFIX)


def build_model(model_name: str):
    """The open_clip model to check against; exit with advice for a wrong or GELU name."""
    import open_clip

    if model_name not in open_clip.list_models():
        sys.exit(f'error: unknown open_clip model {model_name!r}; pass a QuickGELU ViT name such '
                 'as ViT-L-14-quickgelu or ViT-B-16-quickgelu (open_clip.list_models())')
    if not (open_clip.get_model_config(model_name) or {}).get('quick_gelu'):
        fix = f'{model_name}-quickgelu'
        fix = fix if fix in open_clip.list_models() else 'a -quickgelu name'
        sys.exit(f'error: {model_name} uses GELU, but OVSeg fine-tunes OpenAI\'s CLIP, which '
                 f'was trained with QuickGELU: the features would silently differ. Pass '
                 f'--model-name {fix}')
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip warns that the model is randomly initialised
    try:
        return open_clip.create_model(model_name, pretrained=None, device='cpu')
    finally:
        logging.disable(previous)


def quickgelu_model_names(state_dict: dict) -> list[str]:
    """The QuickGELU open_clip names whose config has the shapes of ``state_dict``."""
    import open_clip

    return [name for name in suggest_model_names(state_dict)
            if (open_clip.get_model_config(name) or {}).get('quick_gelu')]


def convert(args: argparse.Namespace) -> None:
    mask_dst = Path(args.mask_dst) if args.mask_dst else default_mask_path(args.dst)
    if mask_dst.resolve() == Path(args.dst).resolve():
        sys.exit('error: --mask-dst must differ from DST')
    try:
        weights = read_ovseg_clip_checkpoint(args.src)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    model = build_model(args.model_name)
    try:
        check_state_dict(model, weights.clip)
        model.load_state_dict(weights.clip, strict=True)
        build_mask_prompt_clip(model, weights.mask_embedding)
    except ValueError as err:
        candidates = quickgelu_model_names(weights.clip)
        hint = (f'matching open_clip names: {", ".join(candidates)}' if candidates else
                'no built-in open_clip config has these shapes; see open_clip.list_models()')
        sys.exit(f'error: {args.src} does not fit --model-name {args.model_name}; nothing was '
                 f'written.\n{err}\nFix: pass the --model-name the CLIP was trained as ({hint}).')
    save_atomic(weights.clip, args.dst)
    save_atomic({'mask_embedding': weights.mask_embedding}, mask_dst)
    n_params = sum(v.numel() for v in weights.clip.values())
    depth, positions, width = weights.mask_embedding.shape
    ignored = (f'; {weights.ignored} keys of the segmentation model left out'
               if weights.ignored else '')
    print(f'{args.src} -> {args.dst}: {len(weights.clip)} tensors, {n_params / 1e6:.2f}M values, '
          f'fp32, verified against {args.model_name}{ignored}\n'
          f'mask embedding (depth {depth}, {positions} positions, width {width}) -> {mask_dst}')


main = converter_main(
    __doc__, convert, src_help="OVSeg mask-prompt-tuned CLIP (ov-seg's CLIP training "
    'checkpoint or a whole OVSeg checkpoint)',
    dst_help='output .pth: the plain fp32 open_clip CLIP state dict',
    extra_arguments=[
        argument('--model-name', required=True,
                 help='open_clip QuickGELU ViT name the CLIP was trained as, e.g. '
                 'ViT-L-14-quickgelu (OVSeg Swin-B) or ViT-B-16-quickgelu (OVSeg R101c)'),
        argument('--mask-dst', help=f'output of the mask embedding; default: DST with '
                 f'the suffix {MASK_SUFFIX}')])


if __name__ == '__main__':
    main()
