"""Operator verbs -> telecommand dataclasses: one table shared by ``hullwatch command`` and the
stored sequence file (``hullwatch run --commands``).

=========================  ==========================  ========================================
verb and words             sequence keys               telecommand
=========================  ==========================  ========================================
``ping``                   —                           17/1 are-you-alive
``valve NAME open|close``  ``valve``, ``open``         8/1 function 1 (NAME: id or index)
``mode active|passive|off``  ``mode``                  8/1 function 2
``ack [EVENT]``            ``event`` (optional)        8/1 function 3 (name or id; none: all)
``params FILE``            ``file`` or ``toml``        8/1 function 4 (the TOML text)
``get PARAM``              ``param``                   20/1 (name ``section.key`` or id)
``set PARAM VALUE...``     ``param``, ``value``        20/3 (a number, or a list)
``hk on|off``              ``on``, ``report``          3/5, 3/6 (``report``: housekeeping|raw)
``hk period S``            ``period_s``, ``report``    3/31
``events enable|disable ID...``  ``enable``, ``ids``   5/5, 5/6 (names or ids)
=========================  ==========================  ========================================

Raises :class:`VerbError` naming the word or key and what was expected.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

from ...firmware.telemetry import packets as P
from ...firmware.types import EventId, FdirMode

VERBS = ("ping", "valve", "mode", "ack", "params", "get", "set", "hk", "events")
REPORTS = {"housekeeping": P.SID_HOUSEKEEPING, "raw": P.SID_RAW_SAMPLES}


class VerbError(ValueError):
    """A verb's arguments are wrong. ``key`` names the word or key (``valve``, ``args[1]``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def valve_index(name: str | int, valve_ids: Sequence[str] | None, key: str = "valve") -> int:
    """A valve index from an index or a valve id (``valve_ids`` in layout order; None: ids
    unknown, only an index is taken)."""
    if isinstance(name, bool):
        raise VerbError(key, f"expected a valve id or index, got {name!r}")
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        index = int(name)
        if valve_ids is not None and not 0 <= index < len(valve_ids):
            raise VerbError(key, f"valve index {index}; this station has valves 0..{len(valve_ids) - 1}")
        return index
    if valve_ids is None:
        raise VerbError(key, f"valve {name!r}: valve ids are not known here; give its index")
    if name in valve_ids:
        return list(valve_ids).index(name)
    raise VerbError(key, f"no valve {name!r}; expected one of {', '.join(valve_ids)}")


def event_id(name: str | int, key: str = "event") -> int:
    """An EventId code from a name (``LEAK_CONFIRMED``, case-insensitive) or a number."""
    if isinstance(name, int) and not isinstance(name, bool):
        return name
    if isinstance(name, str):
        if name.isdigit():
            return int(name)
        try:
            return int(EventId[name.upper()])
        except KeyError:
            pass
    raise VerbError(key, f"no event {name!r}; expected an id or one of {', '.join(e.name for e in EventId)}")


def parameter_ref(name: str | int, key: str = "param") -> P.ReportParameter:
    """A service 20 reference: a number is an id, anything else a ``section.key`` name."""
    if isinstance(name, int) and not isinstance(name, bool):
        return P.ReportParameter(name, "")
    if isinstance(name, str) and name.isdigit():
        return P.ReportParameter(int(name), "")
    if isinstance(name, str) and "." in name:
        return P.ReportParameter(0, name)
    raise VerbError(key, f"expected a parameter name section.key or an id, got {name!r}")


def _number(text: Any, key: str) -> float:
    if isinstance(text, bool):
        raise VerbError(key, f"expected a number, got {text!r}")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise VerbError(key, f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise VerbError(key, f"expected a finite number, got {text!r}")
    return value


def _report_sid(report: Any, key: str) -> int:
    if report not in REPORTS:
        raise VerbError(key, f"expected {' or '.join(REPORTS)}, got {report!r}")
    return REPORTS[report]


def _hk_period(period_s: Any, sid: int, key: str) -> P.SetHousekeepingPeriod:
    seconds = _number(period_s, key)
    ms = round(seconds * 1000)
    if ms <= 0 or abs(ms - seconds * 1000) > 1e-6:
        raise VerbError(key, f"expected a period > 0 in whole milliseconds, got {period_s!r}")
    return P.SetHousekeepingPeriod([(sid, ms)])


def from_words(verb: str, words: Sequence[str], valve_ids: Sequence[str] | None = None,
               read_file: Callable[[str], str] | None = None) -> Any:
    """The telecommand for ``hullwatch command VERB WORDS...``. ``read_file(path)`` reads the
    file of ``params FILE`` (default: as UTF-8)."""
    w = list(words)

    def need(n: int, usage: str) -> None:
        if len(w) != n:
            raise VerbError(verb, f"usage: {verb} {usage}")

    if verb == "ping":
        need(0, "")
        return P.AreYouAlive()
    if verb == "valve":
        need(2, "NAME open|close")
        if w[1] not in ("open", "close"):
            raise VerbError("valve", f"expected open or close, got {w[1]!r}")
        return P.ValveCommand(valve_index(w[0], valve_ids), w[1] == "open")
    if verb == "mode":
        need(1, "active|passive|off")
        return _mode(w[0], "mode")
    if verb == "ack":
        if len(w) > 1:
            raise VerbError("ack", "usage: ack [EVENT]")
        return P.Acknowledge(event_id(w[0]) if w else 0)
    if verb == "params":
        need(1, "FILE")
        reader = read_file or (lambda path: Path(path).read_text(encoding="utf-8"))
        return P.LoadFdirParams(reader(w[0]))
    if verb == "get":
        need(1, "PARAM")
        return parameter_ref(w[0])
    if verb == "set":
        if len(w) < 2:
            raise VerbError("set", "usage: set PARAM VALUE [VALUE...]")
        ref = parameter_ref(w[0])
        return P.SetParameter(ref.parameter_id, ref.name, [_number(v, "value") for v in w[1:]])
    if verb == "hk":
        if w[:1] in (["on"], ["off"]) and len(w) in (1, 2):
            sid = _report_sid(w[1], "hk") if len(w) == 2 else P.SID_HOUSEKEEPING
            return (P.EnableHousekeeping if w[0] == "on" else P.DisableHousekeeping)([sid])
        if w[:1] == ["period"] and len(w) in (2, 3):
            sid = _report_sid(w[2], "hk") if len(w) == 3 else P.SID_HOUSEKEEPING
            return _hk_period(w[1], sid, "period")
        raise VerbError("hk", "usage: hk on|off [housekeeping|raw] | hk period S [housekeeping|raw]")
    if verb == "events":
        if len(w) < 2 or w[0] not in ("enable", "disable"):
            raise VerbError("events", "usage: events enable|disable ID...")
        ids = [event_id(x, "events") for x in w[1:]]
        return P.EnableEvents(ids) if w[0] == "enable" else P.DisableEvents(ids)
    raise VerbError("verb", f"unknown verb {verb!r}; expected one of {', '.join(VERBS)}")


def _mode(text: Any, key: str) -> P.SetFdirMode:
    if not isinstance(text, str) or text.upper() not in FdirMode.__members__:
        raise VerbError(key, f"expected active, passive or off, got {text!r}")
    return P.SetFdirMode(FdirMode[text.upper()])


#: the keys each verb takes in a sequence file (besides ``at_s`` and ``command``)
SEQUENCE_KEYS: dict[str, tuple[set[str], set[str]]] = {  # verb -> (required, optional)
    "ping": (set(), set()),
    "valve": ({"valve", "open"}, set()),
    "mode": ({"mode"}, set()),
    "ack": (set(), {"event"}),
    "params": (set(), {"file", "toml"}),
    "get": ({"param"}, set()),
    "set": ({"param", "value"}, set()),
    "hk": (set(), {"on", "period_s", "report"}),
    "events": ({"enable", "ids"}, set()),
}


def from_table(verb: str, table: dict[str, Any], valve_ids: Sequence[str] | None,
               base_dir: Path) -> Any:
    """The telecommand of one ``[[commands]]`` entry (keys as in :data:`SEQUENCE_KEYS`; paths
    relative to ``base_dir``). Raises VerbError naming the key."""
    if verb not in SEQUENCE_KEYS:
        raise VerbError("command", f"unknown command {verb!r}; expected one of {', '.join(SEQUENCE_KEYS)}")
    required, optional = SEQUENCE_KEYS[verb]
    for k in table:
        if k not in required | optional:
            allowed = ", ".join(sorted(required | optional)) or "none"
            raise VerbError(k, f"unknown key for command {verb!r}; expected {allowed}")
    for k in sorted(required):
        if k not in table:
            raise VerbError(k, f"missing key (command {verb!r} needs {', '.join(sorted(required))})")
    if verb == "ping":
        return P.AreYouAlive()
    if verb == "valve":
        if not isinstance(table["open"], bool):
            raise VerbError("open", f"expected true or false, got {table['open']!r}")
        return P.ValveCommand(valve_index(table["valve"], valve_ids), table["open"])
    if verb == "mode":
        return _mode(table["mode"], "mode")
    if verb == "ack":
        return P.Acknowledge(event_id(table["event"]) if "event" in table else 0)
    if verb == "params":
        if ("file" in table) == ("toml" in table):
            raise VerbError("file", "give exactly one of file (a path) or toml (the text)")
        if "toml" in table:
            if not isinstance(table["toml"], str):
                raise VerbError("toml", "expected a string")
            return P.LoadFdirParams(table["toml"])
        path = base_dir / str(table["file"])
        try:
            return P.LoadFdirParams(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise VerbError("file", f"{path}: {exc.strerror or exc}") from exc
    if verb == "get":
        return parameter_ref(table["param"])
    if verb == "set":
        ref = parameter_ref(table["param"])
        value = table["value"]
        values = value if isinstance(value, list) else [value]
        return P.SetParameter(ref.parameter_id, ref.name, [_number(v, "value") for v in values])
    if verb == "hk":
        sid = _report_sid(table.get("report", "housekeeping"), "report")
        if ("on" in table) == ("period_s" in table):
            raise VerbError("on", "give exactly one of on (true/false) or period_s")
        if "on" in table:
            if not isinstance(table["on"], bool):
                raise VerbError("on", f"expected true or false, got {table['on']!r}")
            return (P.EnableHousekeeping if table["on"] else P.DisableHousekeeping)([sid])
        return _hk_period(table["period_s"], sid, "period_s")
    # events
    if not isinstance(table["enable"], bool):
        raise VerbError("enable", f"expected true or false, got {table['enable']!r}")
    ids = table["ids"]
    if not isinstance(ids, list) or not ids:
        raise VerbError("ids", f"expected a non-empty list of event names or ids, got {ids!r}")
    codes = [event_id(x, "ids") for x in ids]
    return P.EnableEvents(codes) if table["enable"] else P.DisableEvents(codes)
