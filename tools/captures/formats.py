"""Rows and renderers for ``hullwatch decode``: a readable table, JSON lines, and the rows CSV and
Parquet are made of (captures/table_export.py).

CSV, Parquet and JSON lines share one flat row per packet. Column names carry their unit as a suffix
(``pressure_pa``, ``temperature_k``, ``leak_rate_kg_s``); per-sensor columns of raw-samples packets
are named from the capture's layout report (``soyuz-om.p1_pa``, ``soyuz-om.p1_status``...), per
module and per valve columns of housekeeping likewise (``soyuz-om.pressure_pa``, ``om-dm.fb``).
Without a layout report the channels are numbered (``p0_pa``...).

Common columns: ``offset`` (file offset, bytes), ``utc`` (ISO 8601, ms), ``time_utc_s`` (UTC
seconds since 1970, full CUC precision), ``t_s`` (mission seconds from the layout report's epoch,
rounded to 0.1 ms), ``packet`` (kind name),
``apid``, ``type``, ``service``, ``subtype``, ``seq``, ``msg_counter``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import IO, Any, Iterable

from ...firmware.telemetry import packets as P
from ...firmware.telemetry.events import EVENT_DEFS
from ...firmware.types import FdirMode, IsolationState, ModuleStatus, ValveHealth
from ...hal.interfaces import Layout, SampleStatus
from ..commanding.describe import COMMAND_CLASSES, describe_command
from ..units import field_label, kg_day, subject_text, value_text

COMMON = ["offset", "utc", "time_utc_s", "t_s", "packet", "apid", "type", "service", "subtype", "seq",
          "msg_counter"]
#: the value type of each column (:attr:`RowBuilder.types`): whole numbers, float64 or text
INT, FLOAT, TEXT = "int", "float", "text"
_COMMON_TYPES = [INT, TEXT, FLOAT, FLOAT, TEXT, INT, TEXT, INT, INT, INT, INT]
_UNIT = {"PRESSURE": "pa", "TEMPERATURE": "k", "FLOW": "kg_s"}


_SECOND_TEXT: dict[int, str] = {}


def iso_utc(t: float) -> str:
    """``2018-08-29T20:00:00.500Z`` (millisecond resolution)."""
    if not math.isfinite(t) or t < 0:  # (CUC 0 is 1970-01-01T00:00:00.000Z, a time)
        return ""
    # CUC fractions are 1/65536 s: round, not truncate, to the millisecond shown
    ms = round(t * 1000.0)
    second, milli = divmod(ms, 1000)
    text = _SECOND_TEXT.get(second)
    if text is None:  # formatting a datetime costs microseconds: once per second of capture
        if len(_SECOND_TEXT) > 4096:
            _SECOND_TEXT.clear()
        text = _SECOND_TEXT[second] = dt.datetime.fromtimestamp(second, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{milli:03d}Z"


def enum_name(cls: Any, value: int) -> str:
    """The member name of ``value`` in the IntEnum ``cls``, or the number as text if it has none."""
    try:
        return cls(value).name
    except ValueError:
        return str(value)


#: telecommands and reports without columns of their own: their description goes in ``command``
OTHER_COMMAND_KINDS = frozenset({
    "enable_housekeeping", "disable_housekeeping", "one_shot_housekeeping", "set_housekeeping_period",
    "enable_events", "disable_events", "report_parameter", "set_parameter", "parameter_report",
    "are_you_alive", "alive_report"})


class RowBuilder:
    """Flat rows (lists in :attr:`columns` order, ``""`` for an empty cell) for the packet kinds in
    ``kinds``; :attr:`types` gives each column's value type (:data:`INT`, :data:`FLOAT`, :data:`TEXT`)
    and :attr:`starts` where each per-channel block of columns begins.

    ``layout`` names the per-channel columns; ``counts`` (n_pressure, n_temperature, n_flow,
    n_valves, n_modules) sizes numbered ones when there is no layout. A raw-samples or
    housekeeping packet whose channel counts differ gets its common columns only, and is counted
    in :attr:`mismatches`.
    """

    def __init__(self, kinds: Iterable[str], layout: Layout | None,
                 counts: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)) -> None:
        kinds = set(kinds)
        self.layout = layout
        if layout is not None:
            p_ids = [c.id for c in layout.pressure]
            t_ids = [c.id for c in layout.temperature]
            f_ids = [c.id for c in layout.flow]
            v_ids = [v.id for v in layout.valves]
            m_ids = [m.name for m in layout.modules]
        else:
            n_p, n_t, n_f, n_v, n_m = counts
            p_ids = [f"p{i}" for i in range(n_p)]
            t_ids = [f"t{i}" for i in range(n_t)]
            f_ids = [f"flow{i}" for i in range(n_f)]
            v_ids = [f"valve{i}" for i in range(n_v)]
            m_ids = [f"module{i}" for i in range(n_m)]
        self.counts = (len(p_ids), len(t_ids), len(f_ids), len(v_ids), len(m_ids))
        cols = list(COMMON)
        types = list(_COMMON_TYPES)
        #: first column of each per-channel block: "pressure", "temperature", "flow" (value and
        #: status per channel), "valves" (cmd and fb per valve), "valve_status", "modules" (five
        #: per module), "valve_health"; only the blocks of the kinds asked for
        self.starts: dict[str, int] = {}

        def add(named: list[tuple[str, str]]) -> None:
            cols.extend(name for name, _ in named)
            types.extend(kind for _, kind in named)

        def block(key: str, ids: list[str], suffixes: tuple[tuple[str, str], ...]) -> None:
            self.starts[key] = len(cols)
            add([(f"{cid}{s}", kind) for cid in ids for s, kind in suffixes])

        if "raw_samples" in kinds or "housekeeping" in kinds:
            add([("cycle", INT)])
        if "raw_samples" in kinds:
            block("pressure", p_ids, (("_pa", FLOAT), ("_status", TEXT)))
            block("temperature", t_ids, (("_k", FLOAT), ("_status", TEXT)))
            block("flow", f_ids, (("_kg_s", FLOAT), ("_status", TEXT)))
        if "raw_samples" in kinds or "housekeeping" in kinds:
            block("valves", v_ids, ((".cmd", INT), (".fb", FLOAT)))
        if "raw_samples" in kinds:
            block("valve_status", v_ids, ((".status", TEXT),))
        if "housekeeping" in kinds:
            add([("mode", TEXT), ("isolation_state", TEXT), ("cycle_time_us", INT), ("max_cycle_time_us", INT),
                 ("overruns", INT), ("link_up", INT), ("link_errors", INT), ("sensors_failed", INT)])
            block("modules", m_ids, ((".pressure_pa", FLOAT), (".temperature_k", FLOAT), (".inventory_mol", FLOAT),
                                     (".leak_rate_kg_s", FLOAT), (".status", TEXT)))
            block("valve_health", v_ids, ((".health", TEXT),))
        if any(k.startswith("event_") for k in kinds):
            add([("event", TEXT), ("severity", TEXT), ("subject", TEXT), ("value1", FLOAT), ("value2", FLOAT),
                 ("value3", FLOAT), ("values", TEXT)])
        if "layout" in kinds:
            add([("epoch_utc_s", FLOAT), ("layout_json", TEXT)])
        if kinds & {"valve_command", "set_fdir_mode", "acknowledge", "load_fdir_params"}:
            add([("function", TEXT), ("valve", INT), ("open", INT), ("fdir_mode", TEXT), ("event_id", INT),
                 ("toml_text", TEXT)])
        if kinds & OTHER_COMMAND_KINDS:
            add([("command", TEXT)])
        if any(k.startswith("verification_") for k in kinds):
            add([("request_apid", INT), ("request_seq", INT), ("error_code", TEXT), ("error_detail", TEXT)])
        if "unknown" in kinds:
            add([("data_hex", TEXT)])
        self.columns = cols
        self.types = types
        self.index = {name: i for i, name in enumerate(cols)}
        self.mismatches = 0  #: packets whose channel counts did not fit the columns (left empty)
        self.first_mismatch = ""

    def _mismatch(self, message: str) -> None:
        if not self.mismatches:
            self.first_mismatch = message
        self.mismatches += 1

    def build(self, offset: int, packet: P.Packet, t_mission: float | None, name: str) -> list[Any]:
        row: list[Any] = [""] * len(self.columns)
        tm = packet.packet_type == P.PacketType.TM
        row[0] = offset
        row[1] = iso_utc(packet.time_utc) if tm else ""
        row[2] = packet.time_utc if tm else ""
        row[3] = "" if t_mission is None else round(t_mission, 4)  # CUC resolution is 15 us
        row[4] = name
        row[5] = packet.apid
        row[6] = "TM" if tm else "TC"
        row[7] = packet.service
        row[8] = packet.subtype
        row[9] = packet.seq
        row[10] = packet.msg_counter if tm else ""
        d = packet.data
        ix = self.index
        if isinstance(d, P.RawSamples):
            row[ix["cycle"]] = d.cycle
            shape = (len(d.pressure), len(d.temperature), len(d.flow), len(d.valve_cmd))
            if shape != self.counts[:4]:
                self._mismatch(f"raw samples at offset {offset} have {shape} channels (pressure, temperature, "
                               f"flow, valves); the layout report has {self.counts[:4]}")
                return row
            st = self.starts
            p, t, f, v, vs = st["pressure"], st["temperature"], st["flow"], st["valves"], st["valve_status"]
            n_p, n_t, n_f, n_v = self.counts[:4]
            row[p:p + 2 * n_p:2] = d.pressure
            row[p + 1:p + 2 * n_p:2] = [enum_name(SampleStatus, s) for s in d.pressure_status]
            row[t:t + 2 * n_t:2] = d.temperature
            row[t + 1:t + 2 * n_t:2] = [enum_name(SampleStatus, s) for s in d.temperature_status]
            row[f:f + 2 * n_f:2] = d.flow
            row[f + 1:f + 2 * n_f:2] = [enum_name(SampleStatus, s) for s in d.flow_status]
            row[v:v + 2 * n_v:2] = d.valve_cmd
            row[v + 1:v + 2 * n_v:2] = d.valve_fb
            row[vs:vs + n_v] = [enum_name(SampleStatus, s) for s in d.valve_status]
        elif isinstance(d, P.Housekeeping):
            row[ix["cycle"]] = d.cycle
            if (len(d.modules), len(d.valves)) != (self.counts[4], self.counts[3]):
                self._mismatch(f"housekeeping at offset {offset} has {len(d.modules)} modules and {len(d.valves)} "
                               f"valves; the layout report has {self.counts[4]} and {self.counts[3]}")
                return row
            for key in ("cycle_time_us", "max_cycle_time_us", "overruns", "link_errors", "sensors_failed"):
                row[ix[key]] = getattr(d, key)
            row[ix["mode"]] = enum_name(FdirMode, d.mode)
            row[ix["isolation_state"]] = enum_name(IsolationState, d.isolation_state)
            row[ix["link_up"]] = int(d.link_up)
            m = self.starts["modules"]
            for i, mod in enumerate(d.modules):
                j = m + 5 * i
                row[j:j + 5] = (mod.pressure_pa, mod.temperature_k, mod.inventory_mol, mod.leak_rate_kg_s,
                                enum_name(ModuleStatus, mod.status))
            v, vh = self.starts["valves"], self.starts["valve_health"]
            for i, valve in enumerate(d.valves):
                row[v + 2 * i] = valve.cmd
                row[v + 2 * i + 1] = valve.fb
                row[vh + i] = enum_name(ValveHealth, valve.health)
        elif isinstance(d, P.Event):
            row[ix["event"]] = d.event_id.name
            row[ix["severity"]] = d.severity.name
            row[ix["subject"]] = d.subject
            row[ix["value1"]:ix["value3"] + 1] = d.values
            row[ix["values"]] = " ".join(f"{k}={v:g}" for k, v in event_values(d).items())
        elif isinstance(d, P.LayoutReport):
            row[ix["epoch_utc_s"]] = d.epoch_utc
            row[ix["layout_json"]] = d.layout_json
        elif isinstance(d, P.ValveCommand):
            row[ix["function"]], row[ix["valve"]], row[ix["open"]] = name, d.valve, int(d.open)
        elif isinstance(d, P.SetFdirMode):
            row[ix["function"]], row[ix["fdir_mode"]] = name, enum_name(FdirMode, d.mode)
        elif isinstance(d, P.Acknowledge):
            row[ix["function"]], row[ix["event_id"]] = name, d.event_id
        elif isinstance(d, P.LoadFdirParams):
            row[ix["function"]], row[ix["toml_text"]] = name, d.toml_text
        elif isinstance(d, P.VerificationReport):
            row[ix["request_apid"]], row[ix["request_seq"]] = d.request_apid, d.request_seq
            row[ix["error_code"]] = enum_name(P.VerificationError, d.error_code)
            row[ix["error_detail"]] = d.detail
        elif isinstance(d, COMMAND_CLASSES) and "command" in ix:
            row[ix["command"]] = describe_command(d)
        elif isinstance(d, (bytes, bytearray)) and "data_hex" in ix:
            row[ix["data_hex"]] = bytes(d).hex()
        return row


class Selector:
    """The filters of ``hullwatch decode`` and the time state they need, one packet at a time.

    ``apids``, ``services`` ((service, subtype or None) pairs), ``event_ids``: None lets every
    packet through. ``since``/``until``: ``("mission", seconds)`` or ``("utc", seconds since
    1970)``. ``base_time`` is mission time 0 (UTC seconds) until a layout report says otherwise;
    a telecommand, which has no time stamp, takes the time of the last telemetry packet.
    """

    def __init__(self, apids: set[int] | None = None, services: list[tuple[int, int | None]] | None = None,
                 event_ids: set[int] | None = None, since: tuple[str, float] | None = None,
                 until: tuple[str, float] | None = None, base_time: float | None = None) -> None:
        self.apids = apids
        self.services = services
        self.event_ids = event_ids
        self.since = since
        self.until = until
        self.base_time = base_time
        self.last_tm_time: float | None = None

    def accept(self, packet: P.Packet) -> tuple[bool, float | None]:
        """Whether ``packet`` (the next one of the capture, decoded) passes the filters, and its
        mission time (None if unknown). Updates the time state either way."""
        if packet.packet_type == P.PacketType.TM:
            self.last_tm_time = packet.time_utc
            if isinstance(packet.data, P.LayoutReport):
                self.base_time = packet.data.epoch_utc
        t_utc = self.last_tm_time
        base_time = self.base_time
        t_mission = None if t_utc is None or base_time is None else t_utc - base_time
        if self.apids is not None and packet.apid not in self.apids:
            return False, t_mission
        if self.services is not None and not any(
                packet.service == s and (sub is None or packet.subtype == sub) for s, sub in self.services):
            return False, t_mission
        if self.event_ids is not None and not (
                isinstance(packet.data, P.Event) and int(packet.data.event_id) in self.event_ids):
            return False, t_mission
        if self.since is not None or self.until is not None:
            if t_utc is None:
                return False, t_mission
            since, until = self.since, self.until
            if since is not None and (t_mission if since[0] == "mission" else t_utc) < since[1]:  # type: ignore[operator]
                return False, t_mission
            if until is not None and (t_mission if until[0] == "mission" else t_utc) > until[1]:  # type: ignore[operator]
                return False, t_mission
        return True, t_mission


def event_values(event: P.Event) -> dict[str, float]:
    """The event's values named by the event table (unused ones left out)."""
    spec = EVENT_DEFS.get(event.event_id)
    if spec is None:
        return {f"value{i + 1}": v for i, v in enumerate(event.values)}
    return {s.name: v for s, v in zip(spec.values, event.values) if s.name != "unused"}


def event_values_text(event: P.Event) -> dict[str, str]:
    """The event's used values by field label, in display units (``hole_diameter`` -> ``1.40 mm``)
    for the readable table; CSV and JSON lines keep the SI values of :func:`event_values`."""
    spec = EVENT_DEFS.get(event.event_id)
    if spec is None:
        return {f"value{i + 1}": f"{v:g}" for i, v in enumerate(event.values)}
    return {field_label(s.name, s.unit): value_text(s.name, s.unit, v)
            for s, v in zip(spec.values, event.values) if s.name != "unused"}


def summary(packet: P.Packet, name: str, layout: Layout | None) -> str:
    """One readable line describing a packet's content."""
    d = packet.data
    if isinstance(d, P.RawSamples):
        bad = sum(1 for s in (*d.pressure_status, *d.temperature_status, *d.flow_status, *d.valve_status)
                  if s != SampleStatus.OK)
        p = f"p {min(d.pressure) / 1000:.3f}..{max(d.pressure) / 1000:.3f} kPa" if d.pressure else "no pressure"
        t = f", T {min(d.temperature):.2f}..{max(d.temperature):.2f} K" if d.temperature else ""
        opened = sum(1 for c in d.valve_cmd if c)
        return f"cycle {d.cycle}: {p}{t}, {opened}/{len(d.valve_cmd)} valves open" + (
            f", {bad} samples not OK" if bad else "")
    if isinstance(d, P.Housekeeping):
        names = [m.name for m in layout.modules] if layout and len(layout.modules) == len(d.modules) else [
            f"m{i}" for i in range(len(d.modules))]
        mods = "; ".join(f"{n} {m.pressure_pa / 1000:.3f} kPa {m.temperature_k:.2f} K {kg_day(m.leak_rate_kg_s)} "
                         f"{enum_name(ModuleStatus, m.status)}" for n, m in zip(names, d.modules))
        return (f"{enum_name(FdirMode, d.mode)} {enum_name(IsolationState, d.isolation_state)}, cycle {d.cycle}, "
                f"{d.cycle_time_us} us (max {d.max_cycle_time_us}), overruns {d.overruns}, "
                f"link {'up' if d.link_up else 'DOWN'}, {d.sensors_failed} sensors failed | {mods}")
    if isinstance(d, P.Event):
        values = " ".join(f"{k}={v}" for k, v in event_values_text(d).items())
        subject = subject_text(d.subject, [m.name for m in layout.modules] if layout else None)
        return f"{d.severity.name} {d.event_id.name} {subject} {values}".rstrip()
    if isinstance(d, P.LayoutReport):
        try:
            info = json.loads(d.layout_json)
            shape = (f"{len(info['modules'])} modules, {len(info['pressure'])} pressure, "
                     f"{len(info['temperature'])} temperature, {len(info['flow'])} flow, {len(info['valves'])} valves")
        except (ValueError, KeyError, TypeError):
            shape = "unreadable layout JSON"
        return f"layout: {shape}; epoch {iso_utc(d.epoch_utc)}"
    if isinstance(d, COMMAND_CLASSES):
        return describe_command(d, [v.id for v in layout.valves] if layout is not None else None)
    return f"{len(d)} bytes: {bytes(d[:16]).hex()}{'...' if len(d) > 16 else ''}"


class TableWriter:
    HEADER = f"{'offset':>10}  {'utc':24}  {'t_s':>10}  {'apid':>4}  {'seq':>5}  {'svc':>5}  {'packet':<16}  content"

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.rows = 0
        out.write(self.HEADER + "\n")

    def write(self, offset: int, packet: P.Packet, t_mission: float | None, name: str, layout: Layout | None) -> None:
        tm = packet.packet_type == P.PacketType.TM
        t = "" if t_mission is None else f"{t_mission:.3f}"
        self.out.write(f"{offset:>10}  {iso_utc(packet.time_utc) if tm else '(telecommand)':24}  {t:>10}  "
                       f"{packet.apid:>4}  {packet.seq:>5}  {f'{packet.service}/{packet.subtype}':>5}  "
                       f"{name:<16}  {summary(packet, name, layout)}\n")
        self.rows += 1

    def close(self) -> None:
        pass


class JsonlWriter:
    """One JSON object per line; empty columns are left out."""

    def __init__(self, out: IO[str], rows: RowBuilder) -> None:
        self.out = out
        self.rows_builder = rows
        self.rows = 0

    def write(self, offset: int, packet: P.Packet, t_mission: float | None, name: str, layout: Layout | None) -> None:
        values = self.rows_builder.build(offset, packet, t_mission, name)
        obj = {k: v for k, v in zip(self.rows_builder.columns, values) if v != ""}
        if isinstance(packet.data, P.Event):
            obj.update(event_values(packet.data))
        self.out.write(json.dumps(obj, allow_nan=True) + "\n")
        self.rows += 1

    def close(self) -> None:
        pass
