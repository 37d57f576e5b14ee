"""The ``hullwatch`` command line.

Each verb lives in its own module ``hullwatch.tools.cli.<verb>`` exposing
``register(subparsers) -> None`` (adds its parser, sets ``func``) and a handler
``func(args) -> int``. The library never prints; only these handlers and this module do.
A command imports only its own verb's module (which imports what the verb needs at its top);
``hullwatch --help`` imports none, its list comes from :data:`SUMMARIES`.
Only here are exceptions turned into exit statuses and one-line messages (no tracebacks).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from importlib import metadata
from typing import Iterable, Sequence

from ...firmware.errors import FirmwareError
from ...sim.errors import SimError
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
    "example": "hullwatch.tools.cli.example",
    "command": "hullwatch.tools.cli.command",
}

#: verb -> its line in ``hullwatch --help``. Each verb's parser takes its help from here, so the
#: listing is made without importing any verb module (see :func:`build_parser`).
SUMMARIES: dict[str, str] = {
    "run": "run the flight software in closed loop (default: soyuz-ms09 on the simulated station)",
    "scenarios": "list the built-in scenarios, or summarise one",
    "decode": "print or export the packets of a telemetry capture (table, CSV, JSON lines, Parquet)",
    "dictionary": "print every telemetry/telecommand packet and event definition as JSON",
    "replay": "re-emit a capture's packets with their recorded timing to UDP or a serial port",
    "rerun": "re-run the flight software on a capture's samples and list where its events differ",
    "plot": "plot pressure, temperature, inventory and leak rate per module from a capture",
    "monitor": "live web page: station diagram, plots, events, FDIR, sensors, valves, link health",
    "board": "run the USB sensor board emulator on a pseudo-terminal or a serial port",
    "board-info": "print the board's id, versions, flash slots and configuration tables",
    "flash": "validate a board configuration (TOML) and flash it to the USB sensor board",
    "campaign": "run a Monte Carlo campaign of the closed loop (local pool or Dask); 'campaign report DIR'",
    "example": "print a shipped example file: the board configuration, the FDIR defaults",
    "command": "send a telecommand over UDP and print its verification (docs/commanding.md)",
}


class Parser(argparse.ArgumentParser):
    """argparse with hints: a misspelt verb, choice or option gets a "did you mean" from the
    names this parser knows. Usage errors exit 2 with this (sub)command's usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = _hint(self, message)
        super().error(message + hint)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _hint(parser: argparse.ArgumentParser, message: str) -> str:
    if "invalid choice:" in message:
        bad = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'\"")
        choices = message.rsplit("(choose from", 1)[-1].rstrip(")").replace("'", "").split(",")
        close = difflib.get_close_matches(bad, [c.strip() for c in choices], n=1, cutoff=0.5)
        return f"; did you mean {close[0]!r}?" if close else ""
    if message.startswith("unrecognized arguments:"):
        hints = []
        for word in message.split(":", 1)[1].split():
            if word.startswith("-"):
                flag = word.split("=", 1)[0]
                close = difflib.get_close_matches(flag, _options(parser), n=1, cutoff=0.5)
                if close:
                    hints.append(close[0])
        return f" (did you mean {', '.join(hints)}?)" if hints else ""
    return ""


def version() -> str:
    """The installed distribution's version (``0.1.0``), or ``unknown`` outside an install."""
    try:
        return metadata.version("hullwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser(verbs: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``hullwatch`` parser. ``verbs``: the verbs whose modules are imported and whose parsers
    are complete (default: all of them); every other verb is listed by name and summary only,
    which is all the top-level ``--help`` and the "invalid choice" hint need."""
    wanted = set(COMMANDS) if verbs is None else set(verbs)
    parser = Parser(
        prog="hullwatch",
        description="Spacecraft cabin leak detection: flight software, simulated station, "
        "USB sensor board tools and telemetry captures.",
        epilog="Documentation: README.md and docs/ (a page per use; hullwatch VERB --help for each verb).",
    )
    parser.add_argument("--version", action="version", version=f"hullwatch {version()}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    for verb, module_name in COMMANDS.items():
        if verb not in wanted:
            sub.add_parser(verb, help=SUMMARIES[verb])
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # verb not built in this tree
            raise
        module.register(sub)
    return parser


def _named(exc: BaseException, message: str) -> str:
    """The message with the flag it came from in front (``--device serial:///dev/x: ...``), when
    the verb raised it inside :func:`hullwatch.tools.cli.common.naming` and it does not say so."""
    flag = getattr(exc, "hullwatch_flag", None)
    if flag and not message.startswith(flag):
        return f"{flag} {message}"
    return message


def _error_exit(message: str, code: int) -> int:
    print(f"hullwatch: error: {message}", file=sys.stderr)
    return code


def _subparser(parser: argparse.ArgumentParser, verb: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and verb in action.choices:
            return action.choices[verb]
    return parser


def _verb(argv: Sequence[str]) -> list[str]:
    """The verb a command line names (its first word that is not an option), as a list of at
    most one: the only verb module :func:`main` imports."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return [first] if first in COMMANDS else []


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_verb(argv))
    args, extras = parser.parse_known_args(argv)  # usage errors: SystemExit(2), as argparse does
    if extras:
        # an unknown option belongs to the verb: show the verb's usage, with a did-you-mean
        _subparser(parser, getattr(args, "verb", None)).error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    # deferred: hal's package (entry-point registry, pyserial) is for the verbs, not for `hullwatch --help`
    from ...hal.errors import DeviceOpenError, HalError, LinkError

    try:
        return int(args.func(args) or 0)
    except ToolError as exc:
        return _error_exit(_named(exc, str(exc)), exc.exit_code)
    except (DeviceOpenError, LinkError) as exc:
        return _error_exit(_named(exc, str(exc)), EXIT_DEVICE)
    except (HalError, FirmwareError, SimError) as exc:
        return _error_exit(_named(exc, str(exc)), EXIT_BAD_INPUT)
    except FileNotFoundError as exc:
        return _error_exit(_named(exc, f"{exc.filename}: no such file"), EXIT_BAD_INPUT)
    except IsADirectoryError as exc:
        return _error_exit(_named(exc, f"{exc.filename}: is a directory, expected a file"), EXIT_BAD_INPUT)
    except PermissionError as exc:
        return _error_exit(_named(exc, f"{exc.filename}: permission denied"), EXIT_BAD_INPUT)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        text = f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip()
        return _error_exit(_named(exc, text), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        # Every verb says what Ctrl-C left behind: its module's on_interrupt(args) -> str
        note = getattr(sys.modules.get(getattr(args.func, "__module__", ""), None), "on_interrupt", None)
        text = note(args) if note is not None else "stopped"
        print(f"hullwatch {args.verb}: interrupted (Ctrl-C): {text}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
