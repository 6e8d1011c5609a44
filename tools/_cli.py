"""What the checkpoint converters (``tools/convert_*_checkpoint.py``) share.

Importing this module makes ``densevl`` importable (the repository goes first on ``sys.path``
when densevl is not installed); :func:`converter_parser` is the ``SRC DST`` command line every
converter starts from.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO_ROOT))


def converter_parser(doc: str, src_help: str, dst_help: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the tool's ``doc``, with SRC and DST."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help=dst_help)
    return parser
