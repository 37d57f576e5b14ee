"""The README stays true: every CLI verb has an example there, and the examples parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hullwatch.tools.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _example_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip().rstrip("&").strip()
            if line.startswith("hullwatch "):
                lines.append(line)
    return lines


def test_every_verb_has_an_example() -> None:
    verbs = {shlex.split(line)[1] for line in _example_lines()}
    assert set(COMMANDS) <= verbs, f"verbs without a README example: {set(COMMANDS) - verbs}"


@pytest.mark.parametrize("line", _example_lines())
def test_every_example_parses(line: str) -> None:
    """argparse accepts every example exactly as written (no renamed or missing options)."""
    argv = shlex.split(line.split(">")[0])[1:]
    parser = build_parser()
    parser.parse_args(argv)
