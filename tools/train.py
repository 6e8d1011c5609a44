"""Train a densevl model with an mmengine Runner.

Examples:
    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--cfg-options k=v ...]
    python tools/train.py CONFIG --resume            # latest checkpoint in the work dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_2000.pth
    bash tools/dist_train.sh CONFIG 8                 # 8 GPUs, torchrun
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
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a densevl model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='auto|PATH',
                        help='resume training: from PATH, or with no value (or "auto") from '
                        'the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    return parse_run_args(parser, argv, work_dir_holds='logs and checkpoints',
                          cfg_example='train_cfg.max_iters=100')


def setup_cfg(args: argparse.Namespace) -> Config:
    cfg = load_run_config(args.config, launcher=args.launcher, cfg_options=args.cfg_options,
                          work_dir=args.work_dir)

    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.', logger='current',
                      level=logging.WARNING)
        elif wrapper == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            raise SystemExit(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper}')

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'--resume: no checkpoint at {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = setup_cfg(parse_args(argv))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
