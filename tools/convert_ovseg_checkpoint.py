"""Convert a released whole OVSeg model (detectron2) into a densevl OVSegSegmentor checkpoint.

Reads ov-seg's ``ovseg_R101c_vitB16_ft_mpt.pth`` / ``ovseg_swinbase_vitL14_ft_mpt.pth``
(``{'model': ...}``), renames the proposal network's keys (backbone, pixel decoder, transformer
predictor, CLIP-space class head and its no-object embedding; see
``densevl/models/ovseg/detectron2_checkpoint.py``) and writes DST, an mmengine checkpoint
``{'state_dict': ..., 'meta': ...}`` that ``load_checkpoint`` / ``tools/test.py --checkpoint``
load into ``OVSegSegmentor``. With ``--config`` the weights are first loaded strictly into the
config's model; nothing is written unless every key fits. The frozen mask-prompt-tuned CLIP
(``clip_adapter.clip_model.*``) is not part of that state dict: ``--clip-dst`` writes its two
files as ``tools/convert_ovseg_clip_checkpoint.py`` does (the config's ``model.clip.pretrained``
and ``model.clip.mask_embedding`` point at them). Without ``--config`` the tool prints what the
weights need (backbone depth and widths, queries, decoder layers ...).

Example:
    python tools/convert_ovseg_checkpoint.py ovseg_R101c_vitB16_ft_mpt.pth \
        checkpoints/ovseg_r101c-vit-b16.pth --config CONFIG \
        --clip-dst checkpoints/ovseg_clip_vit-b16.pth --clip-model-name ViT-B-16-quickgelu
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys

from _cli import argument, converter_main  # before densevl: makes it importable

# Imported next: lets mmengine checkpoints load under torch>=2.6 weights-only torch.load.
import densevl.engine  # noqa: F401

# isort: split
import convert_ovseg_clip_checkpoint as clip_tool
from convert_clip_checkpoint import save_atomic
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from densevl.models.clip.checkpoint import read_clip_state_dict
from densevl.models.denseclip.checkpoint import compare_state_dicts
from densevl.models.ovseg.detectron2_checkpoint import (
    OVSegDetectron2Weights,
    convert_ovseg_detectron2_state_dict,
    describe_ovseg_detectron2,
)


def read_weights(src: str) -> OVSegDetectron2Weights:
    """The converted weights of SRC; exit with the reason when it is not a whole OVSeg model."""
    if not os.path.isfile(src):
        sys.exit(f'error: {src} does not exist; pass a whole OVSeg checkpoint from ov-seg\'s '
                 'GETTING_STARTED.md (ovseg_R101c_vitB16_ft_mpt.pth, '
                 'ovseg_swinbase_vitL14_ft_mpt.pth)')
    try:
        return convert_ovseg_detectron2_state_dict(read_clip_state_dict(src), src)
    except pickle.UnpicklingError:
        sys.exit(f'error: {src} holds Python objects besides tensors, which densevl does not '
                 "unpickle. If you trust the file, keep only its weights: torch.save("
                 "{'model': torch.load(src, weights_only=False)['model']}, dst) and convert dst")
    except ValueError as err:
        sys.exit(f'error: {err}')


def ovseg_model(config: str, options: dict | None):
    """CONFIG's OVSegSegmentor (its frozen CLIP's weights are not loaded)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options or {})
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import densevl.datasets.mm_datasets  # noqa: F401 - dataset types used as class_names
    import densevl.models.mm_adapters  # noqa: F401 - registers OVSegSegmentor
    from densevl.registry import SEG_MODELS

    model = SEG_MODELS.build(cfg.model)
    if type(model).__name__ != 'OVSegSegmentor':
        sys.exit(f'error: {config} builds a {type(model).__name__}, not an OVSegSegmentor')
    return model


def _described(description: dict) -> str:
    return '\n'.join(f'  {part}: {values}' for part, values in description.items())


def convert(args: argparse.Namespace) -> None:
    if args.clip_dst and not args.clip_model_name:
        sys.exit('error: --clip-dst needs --clip-model-name (ViT-B-16-quickgelu for the R101c '
                 'model, ViT-L-14-quickgelu for the Swin-B one)')
    weights = read_weights(args.src)
    description = describe_ovseg_detectron2(weights)
    if args.config:
        model = ovseg_model(args.config, args.cfg_options)
        report = compare_state_dicts(weights.state_dict, model.state_dict())
        if not report.ok:
            sys.exit(f'error: {args.src} does not fit {args.config}; nothing was written.\n'
                     f'{report}\nThe checkpoint needs:\n{_described(description)}')
        model.load_state_dict(weights.state_dict, strict=True)
    if args.clip_dst:
        clip_tool.convert(argparse.Namespace(src=args.src, dst=args.clip_dst,
                                             model_name=args.clip_model_name,
                                             mask_dst=args.mask_dst))
    meta = dict(source=os.path.basename(args.src), converted_by='tools/convert_ovseg_checkpoint.py',
                config=os.path.basename(args.config) if args.config else None,
                backbone=weights.backbone, architecture=description, dropped=weights.dropped,
                clip=os.path.basename(args.clip_dst) if args.clip_dst else None)
    save_atomic(dict(state_dict=weights.state_dict, meta=meta), args.dst)
    checked = (f'loaded strictly into {args.config}\'s OVSegSegmentor' if args.config else
               'not checked against a config (pass --config); the weights need:\n'
               + _described(description))
    print(f'{args.src} -> {args.dst}: {len(weights.state_dict)} entries ({weights.backbone} '
          f'backbone), {weights.clip_keys} CLIP entries left to the CLIP files, '
          f'{len(weights.dropped)} without weights dropped; {checked}')


main = converter_main(
    __doc__, convert, src_help='released whole OVSeg checkpoint (detectron2 .pth)',
    dst_help='output mmengine checkpoint for OVSegSegmentor',
    extra_arguments=[
        argument('--config', help='densevl OVSeg config the weights must load into strictly'),
        argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                 help='override config entries'),
        argument('--clip-dst', help='also write the frozen CLIP (open_clip state dict) here, '
                 'and its mask embedding beside it'),
        argument('--clip-model-name', help='open_clip QuickGELU name of the CLIP, e.g. '
                 'ViT-B-16-quickgelu (R101c) or ViT-L-14-quickgelu (Swin-B)'),
        argument('--mask-dst', help='output of the mask embedding; default: CLIP_DST with the '
                 f'suffix {clip_tool.MASK_SUFFIX}')])


if __name__ == '__main__':
    main()
