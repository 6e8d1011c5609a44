"""What the golden-tensor tools (``tools/make_golden_*.py``) share.

Their command line (``--ref-root``, ``--mirror-root``, ``--out``), the extraction of a pinned
commit from a bare mirror with the stamp that records it, fp16 rounding, and writing the record.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import subprocess
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Reference:
    """A reference repository pinned at a commit, and the folders of it a tool runs."""

    repo: str
    mirror: str      # <owner>+<name> under --mirror-root
    commit: str
    folders: tuple[str, ...]

    def prepare(self, root: Path, mirror_root: Path | None) -> bool:
        """Extract the folders into ``root`` when a mirror root is given; whether ``root`` holds
        the pinned commit (with a warning when it does not)."""
        if mirror_root is not None:
            extract_commit(mirror_root / self.mirror / 'repo', self.commit, self.folders, root)
        if is_stamped(root, self.commit):
            return True
        print(f'warning: {root} is not stamped with commit {self.commit} of {self.repo}; pass '
              '--mirror-root', file=sys.stderr)
        return False

    def record(self, verified: bool) -> dict:
        return {'repo': self.repo, 'commit': self.commit, 'verified': verified}


def fp16_round(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to fp16 and back to fp32."""
    return t.half().float()


def max_abs(t: torch.Tensor) -> float:
    return t.abs().max().item()


def write_record(record: dict, out: Path) -> None:
    """``torch.save`` the record to ``out`` (its folder made first) and say so, with its size
    and the record's ``visible`` entries (how far apart the outputs that must differ are)."""
    buf = io.BytesIO()
    torch.save(record, buf)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    print(f'wrote {out} ({len(buf.getvalue()) / 2**20:.2f} MiB)')
    for what, value in record.get('visible', {}).items():
        print(f'{what}: {value:.3g}')


def stub_module(name: str, **attrs) -> types.ModuleType:
    """The module ``name`` in ``sys.modules`` (an empty package made, with its parents, when
    absent), with ``attrs`` set: stands in for a reference's dependencies that are not installed."""
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition('.')
        if parent:
            setattr(stub_module(parent), child, module)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def reference_package(name: str, folder: Path) -> types.ModuleType:
    """The package ``name`` of a reference checkout, imported from ``folder`` without running
    its ``__init__`` (which may pull in what is not installed)."""
    module = stub_module(name)
    module.__path__ = [str(folder)]
    return module


def load_module_file(name: str, path: Path) -> types.ModuleType:
    """The module ``name`` run from the file ``path`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
