"""What a HIL test saw: every telemetry packet and FDIR event, time-stamped, by named channel.

:class:`TelemetryHistory` is ``flight.tm`` in the pytest plugin. It keeps each packet the flight
software sent as a :class:`TmPacket` (mission time of the cycle it was sent in, APID, CCSDS
sequence count, service/subtype, dictionary name, the bytes; the decoded report on demand) and
each FDIR event as a :class:`SeenEvent`. Raw-sample packets (one per cycle) are kept in a ring of
``raw_limit`` packets (default one hour of mission time at 10 Hz); every other packet and every
event is kept until :meth:`TelemetryHistory.clear`.

Named channels (``tm[name]`` returns a :class:`ChannelHistory` of :class:`TmSample`):

=============================== ====================================================== =========
name                            value                                                  source
=============================== ====================================================== =========
``"soyuz-om.p1"`` (sensor id)   the board's reading, SI (Pa, K, kg/s); ``status`` is    raw samples
                                the SampleStatus                                        (per cycle)
``"soyuz-om"`` (module)         ``ModuleHk`` (pressure_pa, temperature_k, inventory_mol, housekeeping
                                leak_rate_kg_s, status)                                 (1 Hz)
``"soyuz-om.status"``           ``ModuleStatus``; likewise ``.pressure_pa``,            housekeeping
                                ``.temperature_k``, ``.inventory_mol``, ``.leak_rate_kg_s``
``"dm-om"`` (valve id)          ``ValveHk`` (cmd, fb, health)                           housekeeping
``"dm-om.fb"``                  feedback 0..1; likewise ``.cmd`` (0/1), ``.health``     housekeeping
                                (ValveHealth)
``"mode"``, ``"link_up"``...    a housekeeping field: mode (FdirMode), isolation_state, housekeeping
                                cycle, overruns, link_up, link_errors, sensors_failed
=============================== ====================================================== =========

Times are mission seconds of the cycle, rounded to the microsecond (so a cycle at 300.1 s reads
exactly ``300.1``).
"""

from __future__ import annotations

import collections
import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ...firmware.telemetry import packets as P
from ...firmware.telemetry.fastcodec import fast_decode
from ...firmware.types import FdirMode, IsolationState, ModuleStatus, Severity, ValveHealth
from ...hal.interfaces import Layout, SampleStatus

#: Raw-sample packets kept (a ring): one hour of mission time at 10 Hz.
RAW_HISTORY_PACKETS = 36_000
#: Decimal places of the mission times the test API reports (microseconds).
TIME_DECIMALS = 6

_MODULE_FIELDS = {"pressure_pa": None, "temperature_k": None, "inventory_mol": None,
                  "leak_rate_kg_s": None, "status": ModuleStatus}
_VALVE_FIELDS = {"cmd": None, "fb": None, "health": ValveHealth}
_HK_FIELDS = {"mode": FdirMode, "isolation_state": IsolationState, "cycle": None, "overruns": None,
              "link_up": None, "link_errors": None, "sensors_failed": None}


def mission_time(t: float) -> float:
    """``t`` (s) rounded to the microsecond: the form every time of the test API takes."""
    return round(t, TIME_DECIMALS)


class TmPacket:
    """One telemetry packet as the test saw it.

    Attributes: ``t`` (mission s of the cycle it was sent in), ``apid``, ``seq`` (CCSDS sequence
    count, per APID, wraps at 16384), ``service``, ``subtype``, ``name`` (the dictionary name:
    ``housekeeping``, ``raw_samples``, ``layout``, ``event_high``...), ``raw`` (the bytes, CRC
    included), ``index`` (its place among every packet of the test, from 0). ``data`` decodes the
    report (Housekeeping, RawSamples, Event, LayoutReport...) on first use.
    """

    __slots__ = ("t", "apid", "seq", "service", "subtype", "raw", "index", "_data")

    def __init__(self, t: float, raw: bytes, index: int) -> None:
        self.t = t
        self.raw = raw
        self.index = index
        self.apid = ((raw[0] & 0x07) << 8) | raw[1]
        self.seq = ((raw[2] & 0x3F) << 8) | raw[3]
        self.service = raw[7] if len(raw) > 8 else 0
        self.subtype = raw[8] if len(raw) > 8 else 0
        self._data: Any = None

    @property
    def data(self) -> Any:
        """The decoded application data. Raises PacketDecodeError for a malformed packet."""
        if self._data is None:
            self._data = fast_decode(self.raw).data
        return self._data

    @property
    def name(self) -> str:
        if self.service == 5:
            return f"event_{Severity(self.subtype).name.lower()}" if 1 <= self.subtype <= 4 else "event"
        if self.service == 3 and len(self.raw) > 20:
            sid = (self.raw[19] << 8) | self.raw[20]
            return {P.SID_HOUSEKEEPING: "housekeeping", P.SID_RAW_SAMPLES: "raw_samples",
                    P.SID_LAYOUT: "layout"}.get(sid, "unknown")
        return P.Packet(self.apid, self.seq, P.PacketType.TM, self.service, self.subtype).name

    def __repr__(self) -> str:
        return f"TmPacket(t={self.t}, apid={self.apid}, seq={self.seq}, {self.name})"


@dataclass(frozen=True)
class SeenEvent:
    """An FDIR event as the test sees it: ``t`` (mission s of the cycle it was emitted in),
    ``name`` (EventId name), ``subject``, ``values`` (SI units, meaning per event in the
    dictionary), ``severity`` (Severity name), ``apid`` and ``seq`` of its service 5 packet
    (-1 if the packet could not be sent), ``n`` (its number among the test's events, from 0)."""

    t: float
    name: str
    subject: str
    values: tuple[float, float, float]
    severity: str = ""
    apid: int = P.APID_EVENT
    seq: int = -1
    n: int = -1

    def __str__(self) -> str:
        return f"{self.name}({self.subject})@{self.t:g}"


@dataclass(frozen=True)
class TmSample:
    """One value of a named channel: ``t`` (mission s), ``value``, ``status`` (SampleStatus for
    a sensor channel, None for housekeeping), ``apid`` and ``seq`` of the packet it came in."""

    t: float
    value: Any
    status: SampleStatus | None
    apid: int
    seq: int


class ChannelHistory(Sequence[TmSample]):
    """The samples of one named channel, oldest first (a list-like sequence)."""

    def __init__(self, name: str, samples: list[TmSample]) -> None:
        self.name = name
        self._samples = samples

    def __getitem__(self, i: Any) -> Any:
        return self._samples[i]

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def latest(self) -> TmSample:
        """The newest sample. Raises LookupError when there is none yet."""
        if not self._samples:
            raise LookupError(f"no telemetry for {self.name!r} yet")
        return self._samples[-1]

    @property
    def values(self) -> list[Any]:
        return [s.value for s in self._samples]

    @property
    def times(self) -> list[float]:
        return [s.t for s in self._samples]

    def where(self, predicate: Callable[[Any], bool]) -> list[TmSample]:
        """The samples whose value satisfies ``predicate``."""
        return [s for s in self._samples if predicate(s.value)]

    def __repr__(self) -> str:
        return f"ChannelHistory({self.name!r}, {len(self)} samples)"


class _Channel:
    """Where a named channel's values come from: a packet kind and an extractor."""

    __slots__ = ("name", "sid", "extract")

    def __init__(self, name: str, sid: int, extract: Callable[[Any], tuple[Any, Any]]) -> None:
        self.name = name
        self.sid = sid
        self.extract = extract

    def sample(self, packet: TmPacket) -> TmSample:
        value, status = self.extract(packet.data)
        return TmSample(packet.t, value, status, packet.apid, packet.seq)


def _channels(layout: Layout) -> dict[str, _Channel]:
    out: dict[str, _Channel] = {}
    for attr, status_attr, chans in (("pressure", "pressure_status", layout.pressure),
                                     ("temperature", "temperature_status", layout.temperature),
                                     ("flow", "flow_status", layout.flow)):
        for i, c in enumerate(chans):
            out[c.id] = _Channel(c.id, P.SID_RAW_SAMPLES, lambda d, a=attr, s=status_attr, i=i:
                                 (getattr(d, a)[i], SampleStatus(getattr(d, s)[i])))
    for m, mod in enumerate(layout.modules):
        out[mod.name] = _Channel(mod.name, P.SID_HOUSEKEEPING, lambda d, m=m: (d.modules[m], None))
        for f, enum_ in _MODULE_FIELDS.items():
            out[f"{mod.name}.{f}"] = _Channel(f"{mod.name}.{f}", P.SID_HOUSEKEEPING, _field(
                lambda d, m=m: d.modules[m], f, enum_))
    for v, valve in enumerate(layout.valves):
        out[valve.id] = _Channel(valve.id, P.SID_HOUSEKEEPING, lambda d, v=v: (d.valves[v], None))
        for f, enum_ in _VALVE_FIELDS.items():
            out[f"{valve.id}.{f}"] = _Channel(f"{valve.id}.{f}", P.SID_HOUSEKEEPING, _field(
                lambda d, v=v: d.valves[v], f, enum_))
    for f, enum_ in _HK_FIELDS.items():
        out[f] = _Channel(f, P.SID_HOUSEKEEPING, _field(lambda d: d, f, enum_))
    return out


def _field(part: Callable[[Any], Any], name: str, enum_: Any) -> Callable[[Any], tuple[Any, Any]]:
    def extract(d: Any) -> tuple[Any, Any]:
        value = getattr(part(d), name)
        return (enum_(value) if enum_ is not None else value), None
    return extract


class TelemetryHistory:
    """Every packet and event of a HIL test (see the module docstring). Fed by the flight
    software's telemetry (:meth:`add_packet`) and event callback (:meth:`add_event`)."""

    def __init__(self, layout: Layout, raw_limit: int = RAW_HISTORY_PACKETS) -> None:
        self.layout = layout
        self.raw_limit = raw_limit
        self._channels = _channels(layout)
        self._packets: list[TmPacket] = []
        self._raw: collections.deque[TmPacket] = collections.deque(maxlen=raw_limit)
        self.events: list[SeenEvent] = []
        self._count = 0
        self._event_count = 0

    # -- feeding ----------------------------------------------------------------------------

    def add_packet(self, t: float, raw: bytes) -> TmPacket:
        packet = TmPacket(t, bytes(raw), self._count)
        self._count += 1
        if packet.apid == P.APID_RAW:
            self._raw.append(packet)
        else:
            self._packets.append(packet)
        return packet

    def add_event(self, t: float, name: str, subject: str, values: tuple[float, float, float],
                  severity: str) -> SeenEvent:
        last = self._packets[-1] if self._packets else None
        seq = last.seq if last is not None and last.apid == P.APID_EVENT and last.t == t else -1
        event = SeenEvent(t, name, subject, values, severity, P.APID_EVENT, seq, self._event_count)
        self._event_count += 1
        self.events.append(event)
        return event

    def clear(self) -> None:
        """Forget every packet and event seen so far (numbering goes on)."""
        self._packets.clear()
        self._raw.clear()
        self.events.clear()

    # -- reading ----------------------------------------------------------------------------

    def packets(self, *, apid: int | None = None, name: str | None = None,
                since: float | None = None) -> list[TmPacket]:
        """Kept packets in the order sent, optionally only of ``apid``, of dictionary ``name``
        (``housekeeping``, ``raw_samples``, ``layout``, ``event_info``...) or from mission time
        ``since`` (s) on."""
        if apid == P.APID_RAW or name == "raw_samples":
            pool: Any = list(self._raw)
        elif apid is not None or (name is not None and name != "raw_samples"):
            pool = self._packets
        else:
            pool = sorted([*self._packets, *self._raw], key=lambda p: p.index)
        return [p for p in pool if (apid is None or p.apid == apid) and (name is None or p.name == name)
                and (since is None or p.t >= since)]

    @property
    def housekeeping(self) -> list[TmPacket]:
        """The housekeeping packets kept, oldest first."""
        return self.packets(name="housekeeping")

    def channel_names(self) -> list[str]:
        return list(self._channels)

    def channel(self, name: str) -> _Channel:
        """The source of channel ``name``. Raises KeyError naming the closest known names."""
        try:
            return self._channels[name]
        except KeyError:
            near = difflib.get_close_matches(name, self._channels, n=4)
            raise KeyError(f"no telemetry channel {name!r}"
                           + (f"; did you mean {', '.join(near)}?" if near else
                              "; channels are sensor ids, module names, valve ids and "
                              "housekeeping fields (see docs/hil.md)")) from None

    def samples(self, name: str, since: float | None = None) -> ChannelHistory:
        ch = self.channel(name)
        pool = self._raw if ch.sid == P.SID_RAW_SAMPLES else self.housekeeping
        return ChannelHistory(name, [ch.sample(p) for p in pool
                                     if (since is None or p.t >= since) and _sid(p) == ch.sid])

    def __getitem__(self, name: str) -> ChannelHistory:
        return self.samples(name)

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def module_status(self, module: str) -> ModuleStatus:
        """The module's status in the latest housekeeping. Raises KeyError, LookupError."""
        return self.samples(f"{module}.status").latest.value

    def summary(self, events: int = 12) -> str:
        """A few lines for a failure message: the last ``events`` events and the latest
        housekeeping (mode, link, module statuses)."""
        shown = ", ".join(str(e) for e in self.events[-events:]) or "none"
        more = f" (last {events} of {len(self.events)})" if len(self.events) > events else ""
        lines = [f"events seen{more}: {shown}"]
        hk = self.housekeeping
        if hk:
            last = hk[-1]
            d = last.data
            mods = ", ".join(f"{m.name} {ModuleStatus(h.status).name}"
                             for m, h in zip(self.layout.modules, d.modules))
            lines.append(f"latest housekeeping at t={last.t:g} (seq {last.seq}): mode "
                         f"{FdirMode(d.mode).name}, link {'up' if d.link_up else 'DOWN'}, "
                         f"{d.sensors_failed} sensor(s) failed; {mods}")
        else:
            lines.append("no housekeeping seen")
        return "\n".join(lines)


def _sid(packet: TmPacket) -> int:
    raw = packet.raw
    return (raw[19] << 8) | raw[20] if packet.service == 3 and len(raw) > 20 else -1


__all__ = ["ChannelHistory", "RAW_HISTORY_PACKETS", "SeenEvent", "TelemetryHistory", "TmPacket",
           "TmSample", "mission_time"]
