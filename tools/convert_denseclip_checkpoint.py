"""Convert a released DenseCLIP segmentation checkpoint into densevl's DenseCLIPSegmentor.

Reads the ``.pth`` that the DenseCLIP reference code released (an mmcv 1.x checkpoint whose
``state_dict`` holds ``backbone.*``, ``text_encoder.*``, ``context_decoder.*``, ``contexts``,
``gamma``, ``neck.*``, ``decode_head.*``), renames its keys (see
``densevl/models/denseclip/checkpoint.py``), fits positional tables as DenseCLIP loads them
(image grids resized bilinearly where the config's ``input_resolution`` differs; the text
table's 13 rows put first, CLIP's rows after them), then builds CONFIG's model and loads the
result strictly. Nothing is written unless every key fits.

The text table's rows after the 13th come from the config's CLIP weights (``model.clip``); they
only matter for class names longer than three BPE tokens. Without those weights the tool warns.

Examples:
    python tools/convert_denseclip_checkpoint.py denseclip_fpn_res50.pth \
        checkpoints/denseclip_r50_80k_ade20k-512.pth \
        --config configs/denseclip/denseclip_r50_80k_ade20k-512.py
    python tools/convert_denseclip_checkpoint.py denseclip_fpn_vit-b.pth out.pth \
        --config configs/denseclip/denseclip_vit-b16_80k_ade20k-640.py \
        --cfg-options model.clip.pretrained=/path/to/ViT-B-16.pt
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from _cli import argument, converter_main  # before densevl: makes it importable

# Imported next: lets mmengine checkpoints load under torch>=2.6 weights-only torch.load.
import densevl.engine  # noqa: F401

# isort: split
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from densevl.errors import WeightsUnavailableError
from densevl.models.denseclip.checkpoint import (
    compare_state_dicts,
    convert_denseclip_state_dict,
    fit_state_dict,
)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of an mmcv/mmengine checkpoint (or a bare state dict)."""
    if not os.path.isfile(path):
        raise SystemExit(f'{path}: no such file')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SystemExit(f'{path}: expected a checkpoint with a state_dict of tensors')
    return state


def build_model(config: str, options: dict | None):
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import densevl.datasets.mm_datasets  # noqa: F401 - dataset types used as class_names
    import densevl.models.mm_adapters  # noqa: F401 - registers DenseCLIPSegmentor
    from densevl.registry import SEG_MODELS

    model = SEG_MODELS.build(cfg.model)
    if type(model).__name__ not in ('DenseCLIPSegmentor', 'CLIPFPNSegmentor'):
        raise SystemExit(f'{config} builds a {type(model).__name__}, not a DenseCLIPSegmentor '
                         'or CLIPFPNSegmentor')
    return model


def convert(args: argparse.Namespace) -> None:
    source = read_state_dict(args.src)
    model = build_model(args.config, args.cfg_options)
    try:
        model.load_clip_weights()
    except WeightsUnavailableError as err:
        print(f'warning: {err}', file=sys.stderr)
    if hasattr(model, 'core') and model.clip_random_weights:   # DenseCLIP's text side
        print('warning: the config\'s CLIP weights are not loaded, so the text positional rows '
              'after the checkpoint\'s are random: class names longer than the checkpoint\'s '
              'name slot will be embedded wrongly. Pass model.clip.pretrained=/path/to/CLIP '
              'weights in --cfg-options to keep CLIP\'s rows.', file=sys.stderr)
    target = model.state_dict()
    converted, skipped = convert_denseclip_state_dict(source)
    state, notes = fit_state_dict(converted, target)
    print(f'{args.src}: {len(source)} keys, {len(state)} converted')
    for note in notes:
        print(f'  fitted {note}')
    if skipped:
        print(f'  dropped {len(skipped)} keys that have no counterpart: '
              f'{", ".join(skipped[:8])}{" ..." if len(skipped) > 8 else ""}')
    report = compare_state_dicts(state, target)
    if not report.ok:
        print(f'the converted checkpoint does not fit {args.config}:\n{report}', file=sys.stderr)
        raise SystemExit(1)
    model.load_state_dict(state, strict=True)
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    meta = dict(source=os.path.basename(args.src), config=os.path.basename(args.config),
                converted_by='tools/convert_denseclip_checkpoint.py', notes=notes,
                dataset_meta=dict(classes=model.class_names))
    torch.save(dict(state_dict=state, meta=meta), args.dst)
    print(f'{report}; loaded strictly into {type(model).__name__}; wrote {args.dst}')


main = converter_main(
    __doc__, convert, src_help='released DenseCLIP segmentation checkpoint (.pth)',
    dst_help='output checkpoint for DenseCLIPSegmentor',
    extra_arguments=[
        argument('--config', required=True,
                 help='the densevl config whose model the checkpoint is for'),
        argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                 help='override config entries, e.g. model.clip.pretrained=RN50.pt')])


if __name__ == '__main__':
    main()
