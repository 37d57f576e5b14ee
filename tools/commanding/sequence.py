"""Stored, time-tagged command sequences (``hullwatch run --commands FILE.toml``).

A TOML file of ``[[commands]]`` tables, each with ``at_s`` (mission seconds, >= 0), ``command``
(a verb of :mod:`.verbs`) and that verb's keys::

    [[commands]]
    at_s = 600
    command = "valve"
    valve = "zarya-usos"
    open = false

Every entry is checked when the file is loaded (valve ids against the device layout, event and
parameter names, types), so a bad file is refused before the run starts. The flight software
applies each command at the first cycle due at or after its ``at_s``, through the same queue,
checks and verification reports as a telecommand from the link (source id 2).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from .verbs import VerbError, from_table

#: most commands in one sequence (every table is bounded)
MAX_COMMANDS = 100_000


@dataclass(frozen=True, slots=True)
class SequencedCommand:
    """One entry: mission time (s), the telecommand dataclass, its index in the file."""

    at_s: float
    command: Any
    index: int


def load_sequence(path: str | os.PathLike[str], valve_ids: Sequence[str] | None = None) -> list[SequencedCommand]:
    """Load and check a sequence file; entries sorted by time (stable).

    Raises InputError naming the file and the key (``cmds.toml: commands[2].valve: no valve
    'x'; expected one of ...``); FileNotFoundError when it does not exist.
    """
    p = Path(path)
    text = p.read_bytes().decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML: {exc}") from exc
    return sequence_from_dict(data, str(p), valve_ids, p.parent)


def sequence_from_dict(data: dict[str, Any], source: str, valve_ids: Sequence[str] | None = None,
                       base_dir: Path = Path(".")) -> list[SequencedCommand]:
    """As :func:`load_sequence`, from parsed TOML; ``source`` names it in messages."""
    for key in data:
        if key != "commands":
            raise InputError(f"{source}: {key}: unknown key; expected [[commands]] tables")
    entries = data.get("commands")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{source}: commands: expected one or more [[commands]] tables")
    if len(entries) > MAX_COMMANDS:
        raise InputError(f"{source}: commands: {len(entries)} entries, more than {MAX_COMMANDS}")
    out: list[SequencedCommand] = []
    for i, entry in enumerate(entries):
        where = f"{source}: commands[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a table")
        at = entry.get("at_s")
        if at is None:
            raise InputError(f"{where}.at_s: missing key (mission seconds)")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or at < 0:
            raise InputError(f"{where}.at_s: expected a number of seconds >= 0, got {at!r}")
        verb = entry.get("command")
        if not isinstance(verb, str):
            raise InputError(f"{where}.command: missing key or not a string (ping, valve, mode, ack, "
                             "params, get, set, hk, events)")
        rest = {k: v for k, v in entry.items() if k not in ("at_s", "command")}
        try:
            command = from_table(verb, rest, valve_ids, base_dir)
        except VerbError as exc:
            raise InputError(f"{where}.{exc}") from exc
        out.append(SequencedCommand(float(at), command, i))
    out.sort(key=lambda c: c.at_s)
    return out
