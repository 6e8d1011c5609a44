"""Convert a released DenseCLIP detection checkpoint (mmdet 2.x) for densevl's detectors.

Renames the published keys (``backbone.*``, ``text_encoder.*``, ``context_decoder.*``,
``contexts``, ``gamma``; the mmdet heads keep theirs) to the layout of ``DenseCLIPRetinaNet`` /
``DenseCLIPMaskRCNN`` and, with ``--config``, checks that the result loads strictly into that
config's model (listing missing, unexpected and mismatched keys) before writing anything. The
class names recorded in the checkpoint are kept as ``meta.dataset_meta.classes``.

Example:
    python tools/convert_denseclip_det_checkpoint.py \
        retinanet_denseclip_r50.pth checkpoints/retinanet_denseclip_r50_1x_coco.pth \
        --config configs/denseclip/retinanet_denseclip_r50_1x_coco.py
    python tools/test.py configs/denseclip/retinanet_denseclip_r50_1x_coco.py \
        checkpoints/retinanet_denseclip_r50_1x_coco.pth
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from _cli import argument, converter_main  # before densevl: makes it importable

from densevl.models.denseclip.det_checkpoint import (
    LoadReport,
    checkpoint_classes,
    compare_state_dict,
    convert_det_state_dict,
    read_det_checkpoint,
)


def build_model(config: str):
    """The config's model, with CLIP built without downloading its pretrained weights."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import densevl.models.mm_adapters  # noqa: F401 - registers the detectors
    from densevl.registry import DET_MODELS

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.clip.pretrained = None
    return DET_MODELS.build(cfg.model)


def verify(model, state_dict: dict) -> LoadReport:
    """Compare, then load strictly when everything matches."""
    report = compare_state_dict(model, state_dict)
    if report.ok:
        model.load_state_dict(state_dict, strict=True)
    return report


def convert(args: argparse.Namespace) -> int:
    try:
        state_dict, meta = read_det_checkpoint(args.src, trust_pickle=args.trust_pickle)
        converted = convert_det_state_dict(state_dict)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    classes = checkpoint_classes(meta)
    if args.config:
        model = build_model(args.config)
        report = verify(model, converted)
        if not report.ok:
            print(f'error: {args.src} does not load into the model of {args.config}:\n'
                  f'{report.format()}', file=sys.stderr)
            return 1
        print(f'verified: loads strictly into {args.config} ({len(converted)} tensors)')
        if classes is not None and len(classes) != model.num_classes:
            print(f'error: the checkpoint records {len(classes)} classes, the config '
                  f'{model.num_classes}', file=sys.stderr)
            return 1
    out_meta = dict(converted_from=str(args.src))
    if classes is not None:
        out_meta['dataset_meta'] = dict(classes=classes)
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=converted, meta=out_meta), args.dst)
    print(f'wrote {args.dst} ({len(converted)} tensors'
          f'{f", {len(classes)} classes" if classes else ""})')
    return 0


main = converter_main(
    __doc__, convert, src_help='published DenseCLIP detection checkpoint (.pth)',
    dst_help='output checkpoint for tools/test.py',
    extra_arguments=[
        argument('--config', help='densevl detection config to verify against '
                 '(strict load); omit to convert without checking'),
        argument('--trust-pickle', action='store_true',
                 help='allow pickled objects in SRC (runs code from the file: only for '
                 'a file from a source you trust)')])


if __name__ == '__main__':
    sys.exit(main())
