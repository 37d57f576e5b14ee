"""``hullwatch dictionary``: every packet and event definition as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..ground.dictionary import build_dictionary
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch dictionary                      # the whole dictionary, JSON on standard output
  hullwatch dictionary -o dictionary.json
  hullwatch dictionary | jq '.events[] | select(.name == "LEAK_LOCATED")'
  hullwatch dictionary | jq '.packets[] | {name, apid, service, subtype}'

Derived from the construct declarations the flight software encodes with: packets (name, APID,
TM/TC, service, subtype, SID or function id, each field with type and unit), events (id, name,
severity, the names and units of their three values) and every enumeration on the wire.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dictionary",
        help=SUMMARIES["dictionary"],
        description="Print the telemetry dictionary as JSON: headers, packets with their fields, types "
        "and units, events with the names and units of their values, enumerations.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--compact", action="store_true", help="one line, no indentation")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    text = json.dumps(build_dictionary(), indent=None if args.compact else 2, ensure_ascii=False)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0
