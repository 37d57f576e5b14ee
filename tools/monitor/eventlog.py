"""The event log: FDIR and executive events (service 5) as readable records.

Names, value names and units come from the telemetry dictionary
(:data:`hullwatch.firmware.telemetry.EVENT_DEFS`). An event id this build does not know (a newer
flight software) is still shown: its body is read through the packet declaration and its values
are listed as ``value1..3`` under the name ``EVENT_<id>``.
"""

from __future__ import annotations

import datetime as _dt
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

from ...firmware.telemetry import EVENT_DEFS, PACKET_DEFS, EventId, Severity

#: events kept (oldest dropped first)
LOG_SIZE = 5000

#: severities that count as alarms on the page
ALARM_SEVERITIES = ("MEDIUM", "HIGH")

# value-name suffixes that repeat the unit (``hole_diameter_m``): dropped from labels
_UNIT_SUFFIXES = ("_kg_s", "_pa_s", "_m3", "_pa", "_m", "_s", "_k")

_EVENT_BODIES = {d.subtype: d.body for d in PACKET_DEFS if d.service == 5 and d.packet_type == 0}


@dataclass(frozen=True, slots=True)
class RawEvent:
    """An event as read from a packet, whether or not this build knows its id."""

    event_id: int
    severity: int  #: 1..4, the packet's subtype
    subject: str
    values: tuple[float, float, float]


def parse_unknown_event(subtype: int, body: bytes) -> RawEvent:
    """An event packet's application data read through its declaration without checking the id
    against :class:`EventId`. Raises ``construct.ConstructError`` or ``UnicodeError`` if the body
    is not an event body."""
    c = _EVENT_BODIES[subtype].parse(body)
    return RawEvent(int(c.event_id), subtype, str(c.subject), tuple(float(v) for v in c["values"]))  # type: ignore[arg-type]


def iso_utc(utc: float) -> str:
    """``2018-08-29T20:06:09.500Z``, to the nearest millisecond (CUC time truncates to 1/65536 s,
    so 0.1 s arrives as 0.09999 s)."""
    seconds, ms = divmod(round(utc * 1000.0), 1000)
    t = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms:03d}Z"


def mission_text(seconds: float) -> str:
    """Mission elapsed time, ``T+1:02:03.4`` (``T-`` before mission time 0)."""
    sign = "-" if seconds < 0 else "+"
    tenths = int(round(abs(seconds) * 10))
    s, f = divmod(tenths, 10)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"T{sign}{h}:{m:02d}:{sec:02d}.{f}"


def _label(name: str) -> str:
    for suffix in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


def format_value(name: str, unit: str, value: float) -> str:
    """A value for people: kg/s as g/s, a hole in mm, seconds as h/min, pressure in Pa."""
    if unit == "kg/s":
        return f"{value * 1000:.3g} g/s"
    if unit == "m" and abs(value) < 0.1:
        return f"{value * 1000:.3g} mm"
    if unit == "s" and abs(value) >= 3600:
        return f"{value / 3600:.2f} h"
    if unit == "s" and abs(value) >= 120:
        return f"{value / 60:.1f} min"
    if unit:
        return f"{value:.4g} {unit}"
    return f"{value:.4g}"


def describe(ev: RawEvent, modules: list[str] | None = None) -> dict[str, Any]:
    """Name, severity, named values and one line of text for ``ev`` (no times). ``modules``: the
    modules a segment subject (``station``, ``seg:0x6``) stands for, written out in the text."""
    try:
        eid: EventId | None = EventId(ev.event_id)
    except ValueError:
        eid = None
    definition = EVENT_DEFS.get(eid) if eid is not None else None
    severity = Severity(ev.severity).name if ev.severity in Severity._value2member_map_ else str(ev.severity)
    values: dict[str, float] = {}
    parts: list[str] = []
    if definition is not None:
        name = definition.event_id.name
        for vdef, value in zip(definition.values, ev.values):
            if vdef.name == "unused":
                continue
            values[vdef.name] = value
            parts.append(f"{_label(vdef.name)} {format_value(vdef.name, vdef.unit, value)}")
    else:  # an id without a dictionary entry: its name if this build knows it, values by position
        name = eid.name if eid is not None else f"EVENT_{ev.event_id}"
        for i, value in enumerate(ev.values, 1):
            values[f"value{i}"] = value
            parts.append(f"value{i} {value:.6g}")
    head = name.replace("_", " ")
    # "seg:0x6" is written out as its modules; "station" (every module) stays as it is
    subject = "+".join(modules) if modules and ev.subject.startswith("seg:") else ev.subject
    text = f"{head} {subject}" if subject else head
    if parts:
        text += ": " + ", ".join(parts)
    return {"id": ev.event_id, "name": name, "severity": severity, "subject": ev.subject,
            "modules": modules or [], "values": values, "text": text, "known": definition is not None}


class EventLog:
    """The last :data:`LOG_SIZE` events, each numbered (``seq``) so readers can ask for what is new.
    Not thread-safe: the caller locks."""

    def __init__(self, size: int = LOG_SIZE) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self.count = 0  #: events ever added; the next one gets this ``seq``
        self.by_severity: dict[str, int] = {}

    def add(self, ev: RawEvent, utc: float, epoch_utc: float | None,
            modules: list[str] | None = None) -> dict[str, Any]:
        record = describe(ev, modules)
        record.update({
            "seq": self.count,
            "utc": iso_utc(utc),
            "utc_s": utc,
            "mission_time_s": None if epoch_utc is None else utc - epoch_utc,
            "mission_time": None if epoch_utc is None else mission_text(utc - epoch_utc),
            "alarm": record["severity"] in ALARM_SEVERITIES,
            "acknowledged": False,
        })
        self._events.append(record)
        self.count += 1
        self.by_severity[record["severity"]] = self.by_severity.get(record["severity"], 0) + 1
        return record

    def since(self, seq: int) -> list[dict[str, Any]]:
        """The events numbered ``seq`` and later that are still held, oldest first."""
        skip = seq - (self.count - len(self._events))
        if skip <= 0:
            return list(self._events)
        return list(self._events)[skip:] if skip < len(self._events) else []

    def last(self, n: int) -> list[dict[str, Any]]:
        return self.since(self.count - n) if n > 0 else []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)
