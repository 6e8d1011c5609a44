"""What the checkpoint converters (``tools/convert_*_checkpoint.py``) share.

A converter finds this module beside it, as Python puts a script's folder on ``sys.path`` (the
tests, which load the tools by file path, do the same: ``tests/conftest.py``). Importing it makes
``densevl`` importable (the repository goes first on ``sys.path`` when densevl is not installed).

:func:`converter_main` is every converter's ``main``: the ``SRC DST`` command line described by
the first paragraph of the tool's docstring, plus the tool's own options (declared with
:func:`argument`), handed to the tool's conversion function::

    def convert(args: argparse.Namespace) -> None:
        ...

    main = converter_main(__doc__, convert, src_help='...', dst_help='...',
                          extra_arguments=[argument('--model-name', help='...')])

    if __name__ == '__main__':
        main()
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]

try:
    import densevl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO_ROOT))

Result = TypeVar('Result')
Argument = tuple[tuple[str, ...], dict[str, Any]]


def argument(*flags: str, **options: Any) -> Argument:
    """One option of a converter: what ``parser.add_argument(*flags, **options)`` is given."""
    return flags, options


def converter_parser(doc: str, src_help: str, dst_help: str,
                     extra_arguments: Iterable[Argument] = ()) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the tool's ``doc``: SRC, DST, then the
    ``extra_arguments`` in their order."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help=dst_help)
    for flags, options in extra_arguments:
        parser.add_argument(*flags, **options)
    return parser


def converter_main(doc: str, convert: Callable[[argparse.Namespace], Result], *, src_help: str,
                   dst_help: str, extra_arguments: Iterable[Argument] = ()
                   ) -> Callable[[Sequence[str] | None], Result]:
    """A converter's ``main(argv=None)``: parses ``argv`` (the command line when None) with
    :func:`converter_parser` and returns what ``convert(args)`` returns."""
    extra_arguments = tuple(extra_arguments)

    def main(argv: Sequence[str] | None = None) -> Result:
        parser = converter_parser(doc, src_help, dst_help, extra_arguments)
        return convert(parser.parse_args(argv))

    main.__doc__ = f'Parse ``argv`` (the command line when None), then ``{convert.__name__}``.'
    return main
