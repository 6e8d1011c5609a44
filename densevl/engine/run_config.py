"""The config of a ``tools/train.py`` / ``tools/test.py`` run."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction


def parse_run_args(parser: argparse.ArgumentParser, argv: list[str] | None, *,
                   work_dir_holds: str, cfg_example: str) -> argparse.Namespace:
    """Add the arguments every run takes (``--work-dir``, ``--cfg-options``, ``--launcher``,
    ``--local-rank``) to a tool's parser and parse ``argv``; ``LOCAL_RANK`` is set from it."""
    parser.add_argument('--work-dir', help=f'where {work_dir_holds} go (default: work_dir of '
                        'the config, else work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help=f'override config entries, e.g. {cfg_example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local_rank (older) or --local-rank (newer).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_run_config(path: str, *, launcher: str = 'none', cfg_options: dict | None = None,
                    work_dir: str | None = None) -> Config:
    """Read a config and apply a run's command line: the launcher, ``--cfg-options`` and the
    work dir (``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>``)."""
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
