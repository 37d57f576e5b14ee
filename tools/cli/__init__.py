"""The ``hullwatch`` command line.

Each verb lives in its own module ``hullwatch.tools.cli.<verb>`` exposing
``register(subparsers) -> None`` (adds its parser, sets ``func``) and a handler
``func(args) -> int``. The library never prints; only these handlers and this module do.
Only here are exceptions turned into exit statuses and one-line messages (no tracebacks).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import EXIT_BAD_INPUT, EXIT_DEVICE, ToolError

#: verb -> module. Order is the order of ``hullwatch --help``.
COMMANDS: dict[str, str] = {
    "run": "hullwatch.tools.cli.run",
    "scenarios": "hullwatch.tools.cli.scenarios",
    "decode": "hullwatch.tools.cli.decode",
    "dictionary": "hullwatch.tools.cli.dictionary",
    "replay": "hullwatch.tools.cli.replay",
    "rerun": "hullwatch.tools.cli.rerun",
    "plot": "hullwatch.tools.cli.plot",
    "monitor": "hullwatch.tools.cli.monitor",
    "board": "hullwatch.tools.cli.board",
    "board-info": "hullwatch.tools.cli.board_info",
    "flash": "hullwatch.tools.cli.flash",
    "campaign": "hullwatch.tools.cli.campaign",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hullwatch",
        description="Spacecraft cabin leak detection: flight software, simulated station, "
        "USB sensor board tools and telemetry captures.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # verb not built in this tree
            raise
        module.register(sub)
    return parser


def _error_exit(message: str, code: int) -> int:
    print(f"hullwatch: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from ...firmware.errors import FirmwareError
    from ...hal.errors import DeviceOpenError, HalError, LinkError
    from ...sim.errors import SimError

    try:
        return int(args.func(args) or 0)
    except ToolError as exc:
        return _error_exit(str(exc), exc.exit_code)
    except (DeviceOpenError, LinkError) as exc:
        return _error_exit(str(exc), EXIT_DEVICE)
    except (HalError, FirmwareError, SimError) as exc:
        return _error_exit(str(exc), EXIT_BAD_INPUT)
    except FileNotFoundError as exc:
        return _error_exit(f"{exc.filename}: no such file", EXIT_BAD_INPUT)
    except IsADirectoryError as exc:
        return _error_exit(f"{exc.filename}: is a directory, expected a file", EXIT_BAD_INPUT)
    except PermissionError as exc:
        return _error_exit(f"{exc.filename}: permission denied", EXIT_BAD_INPUT)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        return _error_exit(f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip(), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
