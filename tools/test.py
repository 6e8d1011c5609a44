"""Evaluate a densevl model with an mmengine Runner.

Training-free models need no checkpoint: their CLIP weights come from ``model.clip.pretrained``.

Examples:
    python tools/test.py configs/training_free/sclip_vit-b16_training-free_voc21-336.py \
        --cfg-options model.clip.pretrained=/path/to/ViT-B-16.pt
    python tools/test.py CONFIG CHECKPOINT --out preds/ --show-dir vis/
    python tools/test.py CONFIG --texts "background;sky;wall,aeroplane,bicycle,..."
    python tools/test.py configs/ovseg/ovseg_clip-synthetic-tiny_400it_synthetic-64.py CKPT \
        --texts "pink,purple;violet,grass"    # OVSeg as its config says (no demo preset)
    python tools/test.py CONFIG CHECKPOINT --tta     # multi-scale + flip (the config's tta_*)
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import sys
from pathlib import Path

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Imported first: lets mmengine checkpoints load under torch>=2.6 weights-only torch.load.
import densevl.engine  # noqa: E402,F401
from densevl.engine.run_config import load_run_config, parse_run_args  # noqa: E402

# isort: split
from mmengine.config import Config  # noqa: E402
from mmengine.evaluator import DumpResults  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.model import BaseTTAModel, is_model_wrapper  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

# mmseg metrics that write their predictions as PNGs under ``output_dir``.
_PNG_METRICS = ('IoUMetric', 'CityscapesMetric')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a densevl model')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint to load (optional: training-free models need none)')
    parser.add_argument('--out', metavar='PATH',
                        help='a .pkl file: dump the raw predictions there; a directory: save '
                        'the predicted label maps there as PNGs (IoUMetric)')
    parser.add_argument('--show-dir', metavar='DIR', help='save painted predictions to DIR '
                        '(every default_hooks.visualization.interval-th image)')
    parser.add_argument('--texts', help='vocabulary for this run, overriding model.class_names: '
                        'comma-separated classes, synonyms joined by ";" '
                        '("person;man,dog"), or a names file, one class per line')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the dataset config's tta_pipeline "
                        "(multi-scale + flip), predictions merged by the runtime's tta_model")
    return parse_run_args(parser, argv, work_dir_holds='logs and metrics',
                          cfg_example='model.slide=None')


def parse_texts(texts: str) -> str | list[str]:
    """A names-file path as is, else the comma-separated entries (``;`` synonyms kept)."""
    if osp.isfile(texts):
        return texts
    names = [name.strip() for name in texts.split(',') if name.strip()]
    if not names:
        raise SystemExit('--texts: no class names given')
    return names


def _dump_to_png_dir(cfg: Config, out_dir: str) -> None:
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    targets = [e for e in evaluators if isinstance(e, dict) and e.get('type') in _PNG_METRICS]
    if not targets:
        raise SystemExit(f'--out {out_dir}: saving PNGs needs one of {_PNG_METRICS} in '
                         'test_evaluator; pass a .pkl path to dump raw predictions instead')
    for evaluator in targets:
        evaluator['output_dir'] = out_dir


def _trigger_visualization(cfg: Config, show_dir: str) -> None:
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise SystemExit('--show-dir needs default_hooks.visualization '
                         '(e.g. dict(type="SegVisualizationHook")) in the config')
    hook['draw'] = True
    cfg.visualizer['save_dir'] = show_dir


def _use_tta(cfg: Config) -> None:
    missing = [key for key in ('tta_model', 'tta_pipeline') if cfg.get(key) is None]
    if missing:
        raise SystemExit(f'--tta needs {" and ".join(missing)} in the config (the ADE20K and '
                         'synthetic training dataset configs define tta_pipeline, '
                         'default_runtime.py tta_model)')
    from densevl.registry import SEG_MODELS
    model_cls = SEG_MODELS.get(cfg.model.type)
    if not getattr(model_cls, 'supports_tta', False):
        raise SystemExit(f'--tta: {cfg.model.type} does not give the per-class logits that '
                         "mmseg's SegTTAModel averages; DenseCLIPSegmentor does")
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model.with_seg_logits = True
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def setup_cfg(args: argparse.Namespace) -> Config:
    cfg = load_run_config(args.config, launcher=args.launcher, cfg_options=args.cfg_options,
                          work_dir=args.work_dir)

    if args.checkpoint is not None:
        if cfg.model.get('type') == 'GroundVLP':
            raise SystemExit('GroundVLP is training-free and takes no checkpoint; its detector '
                             'weights are model.detector.weights (--cfg-options '
                             f'model.detector.weights={args.checkpoint})')
        if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
            raise SystemExit(f'checkpoint {args.checkpoint!r} does not exist; pass the path of a '
                             f'checkpoint of {osp.basename(args.config)} (tools/train.py writes '
                             'work_dirs/<config>/iter_*.pth), or none for a training-free model')
        cfg.load_from = args.checkpoint
    if args.texts is not None:
        cfg.model.class_names = parse_texts(args.texts)
    if args.tta:
        _use_tta(cfg)
    if args.show_dir:
        _trigger_visualization(cfg, args.show_dir)
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        _dump_to_png_dir(cfg, args.out)
    if cfg.launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
        # DDP refuses a module without trainable parameters, such as a frozen training-free
        # CLIP; this wrapper only puts DDP around the sub-modules that have some.
        cfg.model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
    return cfg


def check_test_data(cfg: Config) -> None:
    """Before any model is built (it may first fail on absent weights): a test dataset whose
    class can check its files (``check_files``, e.g. RefCOCO's) names a missing one."""
    import densevl.registry as registries

    dataset = cfg.test_dataloader.dataset
    for name in ('SEG_DATASETS', 'DET_DATASETS'):    # the second only with mmdet installed
        registry = getattr(registries, name, None)
        check = getattr(registry and registry.get(dataset.get('type', '')), 'check_files', None)
        if check is not None:
            try:
                check(**dataset)
            except FileNotFoundError as err:
                raise SystemExit(str(err)) from None
            return


def set_vocabulary(runner: Runner, texts: str | list[str] | None) -> None:
    """Give a model without a vocabulary (``class_names=None``) the dataset's classes, and warn
    when ``--texts`` does not have as many classes as the dataset it is scored against."""
    model = runner.model
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    if texts is None and getattr(model, 'class_names', ()) is not None:
        return
    classes = runner.test_loop.dataloader.dataset.metainfo.get('classes')
    if classes is None:
        return
    if texts is None:
        model.class_names = list(classes)
    elif isinstance(texts, list) and len(texts) != len(classes):
        print_log(f'--texts gives {len(texts)} classes but the dataset has {len(classes)}: '
                  "metrics and painted labels use the dataset's class indices, so they are "
                  'only meaningful when the texts follow its label order.',
                  logger='current', level=logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = setup_cfg(args)
    check_test_data(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    set_vocabulary(runner, parse_texts(args.texts) if args.texts is not None else None)
    if args.out and args.out.endswith(('.pkl', '.pickle')):
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
