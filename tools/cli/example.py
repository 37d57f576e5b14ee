"""``hullwatch example [NAME]``: print a shipped example file (board config, FDIR defaults, ...).

A pip-installed user has no clone: the files the README and docs start from are package data,
and this verb prints them (or writes them with ``-o FILE``) to edit.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

from ..errors import EXIT_OK, InputError
from .common import file_kept_text, output_path
from . import SUMMARIES

#: name -> (package, resource, what it is)
EXAMPLES_SHIPPED: dict[str, tuple[str, str, str]] = {
    "board.toml": ("hullwatch.tools.examples", "board.toml",
                   "board configuration of the emulator's board for soyuz-ms09 (hullwatch flash; docs/config-image.md)"),
    "fdir.toml": ("hullwatch.firmware.fdir", "defaults.toml",
                  "the FDIR parameter defaults, every key documented (hullwatch run --fdir; docs/fdir.md)"),
}

EXAMPLES = """\
examples:
  hullwatch example                                  # what is shipped, one line each
  hullwatch example board.toml > board.toml          # then: hullwatch flash board.toml --dry-run
  hullwatch example fdir.toml -o my-params.toml      # edit, then: hullwatch run --fdir my-params.toml

Scenarios are printed by `hullwatch scenarios NAME --toml`; campaign specs are listed by
`hullwatch campaign --list`.
"""


def example_text(name: str) -> str:
    """The text of a shipped example. Raises InputError for an unknown name (listing the known)."""
    try:
        package, resource, _ = EXAMPLES_SHIPPED[name]
    except KeyError:
        raise InputError(f"example {name!r}: unknown; shipped: {', '.join(EXAMPLES_SHIPPED)}") from None
    return resources.files(package).joinpath(resource).read_text(encoding="utf-8")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "example",
        help=SUMMARIES["example"],
        description="Print an example file shipped with hullwatch (to standard output, or to a "
        "file with -o), to edit and use: the board configuration for hullwatch flash, the FDIR "
        "parameter defaults for hullwatch run --fdir. Without NAME, list them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", metavar="NAME", choices=list(EXAMPLES_SHIPPED),
                   help=f"one of: {', '.join(EXAMPLES_SHIPPED)}")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o FILE")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    if args.name is None:
        for name, (_, _, what) in EXAMPLES_SHIPPED.items():
            print(f"{name:<12} {what}")
        return EXIT_OK
    text = example_text(args.name)
    if args.output:
        path = output_path(args.output, args.output, args.force, flag="-o")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {file_kept_text(path)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
