"""What the golden-tensor tools (``tools/make_golden_*.py``) share.

Their command line (``--ref-root``, ``--mirror-root``, ``--out``), the extraction of a pinned
commit from a bare mirror with the stamp that records it, fp16 rounding, and writing the record.
"""
from __future__ import annotations

import argparse
import io
import subprocess
from collections.abc import Iterable
from pathlib import Path

import torch


def golden_parser(doc: str, ref_root_help: str, mirror_root_help: str,
                  default_out: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the tool's ``doc``, with ``--ref-root``
    (default ``/tmp/refs``), ``--mirror-root`` and ``--out`` (default ``default_out``)."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('--ref-root', type=Path, default=Path('/tmp/refs'), help=ref_root_help)
    parser.add_argument('--mirror-root', type=Path, default=None, help=mirror_root_help)
    parser.add_argument('--out', type=Path, default=Path(default_out))
    return parser


def extract_commit(git_dir: Path, commit: str, folders: Iterable[str], dest: Path) -> None:
    """Extract ``folders`` of ``commit`` from the bare repository ``git_dir`` into ``dest`` and
    stamp ``dest`` with the commit (see :func:`is_stamped`)."""
    dest.mkdir(parents=True, exist_ok=True)
    # pathspec on purpose: the mirrors lack some large binary blobs outside these folders
    tar = subprocess.run(['git', '-C', str(git_dir), 'archive', commit, *folders],
                         check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', str(dest)], input=tar, check=True)
    (dest / '.commit').write_text(commit + '\n')


def is_stamped(root: Path, commit: str) -> bool:
    """Whether ``root`` was extracted from ``commit`` by :func:`extract_commit`."""
    stamp = root / '.commit'
    return stamp.is_file() and stamp.read_text().strip() == commit


def fp16_round(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to fp16 and back to fp32."""
    return t.half().float()


def max_abs(t: torch.Tensor) -> float:
    return t.abs().max().item()


def write_record(record: dict, out: Path) -> None:
    """``torch.save`` the record to ``out`` (its folder made first) and say so, with its size."""
    buf = io.BytesIO()
    torch.save(record, buf)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    print(f'wrote {out} ({len(buf.getvalue()) / 2**20:.2f} MiB)')
