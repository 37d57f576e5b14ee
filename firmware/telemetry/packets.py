"""Telemetry and telecommand packets: CCSDS Space Packets with the PUS-C secondary headers.

This module is the single source of every packet layout. Each one is declared once with construct;
:func:`encode` and :func:`decode` go through those declarations and take or return plain
dataclasses. The fast codecs (fastcodec.py) and the dictionary (dictionary.py) are derived from
the same declarations.

Packet on the wire (CCSDS 133.0-B-2, ECSS-E-ST-70-41C), all fields big-endian::

    primary header (6 bytes)
      bits 0-2   packet version number     0
      bit  3     packet type               0 TM, 1 TC
      bit  4     secondary header flag     1
      bits 5-15  APID                      0..2047
      bits 16-17 sequence flags            3 (unsegmented)
      bits 18-31 sequence count            0..16383, per APID, wraps
      bits 32-47 packet data length        octets after the primary header, minus 1
    TM secondary header (13 bytes)                 TC secondary header (5 bytes)
      u4  PUS version 2 | u4 time reference status   u4 PUS version 2 | u4 acknowledgement flags
      u8  service type                               u8 service type
      u8  service subtype                            u8 service subtype
      u16 message type counter                       u16 source id
      u16 destination id
      u32 CUC seconds since 1970-01-01T00:00:00Z
      u16 CUC fraction, 1/65536 s
    application data (see the *_BODY declarations)
    u16 packet error control: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over all bytes before it

Services: 3/25 housekeeping reports, discriminated by the SID (first u16 of the application
data: 1 housekeeping, 2 raw samples, 3 layout); 5/1..4 events, subtype = severity. Telecommands
and their reports (services 1, 3/5, 3/6, 3/31, 5/5, 5/6, 8/1, 17, 20) are declared in
:mod:`.tc_packets` and listed in the same table; docs/commanding.md gives their layouts.

Raises: :class:`~hullwatch.firmware.errors.TelemetryError` when a packet cannot be built,
:class:`~hullwatch.firmware.errors.PacketDecodeError` (with the byte offset) when bytes are not a
valid packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any, Callable

import construct as cs
from construct import this

from ..errors import PacketDecodeError, TelemetryError
from ..types import EventId, Severity
from .fields import field
from .headers import (  # noqa: F401 - re-exported: callers import packets
    PacketType, PACKET_VERSION, PUS_VERSION, SEQ_UNSEGMENTED, SEQ_COUNT_MODULO, APID_HOUSEKEEPING,
    APID_RAW, APID_EVENT, SID_HOUSEKEEPING, SID_RAW_SAMPLES, SID_LAYOUT, PRIMARY_HEADER_SIZE,
    TM_SECONDARY_HEADER_SIZE, TC_SECONDARY_HEADER_SIZE, PEC_SIZE, MIN_TM_SIZE, MIN_TC_SIZE,
    MAX_PACKET_SIZE, SUBJECT_SIZE, _SECONDARY_SIZE, crc16_ccitt_false, crc16, PRIMARY_HEADER,
    TM_SECONDARY_HEADER, TC_SECONDARY_HEADER, FRAME)
from .tc_packets import (  # noqa: F401 - re-exported: packets is the one place callers import from
    ACKNOWLEDGE_BODY, APID_COMMAND, COMMAND_ROWS, EMPTY_BODY, EVENT_IDS_BODY, FUNCTION_ACKNOWLEDGE,
    FUNCTION_LOAD_FDIR_PARAMS, FUNCTION_SET_FDIR_MODE, FUNCTION_VALVE_COMMAND, HK_INTERVALS_BODY,
    HK_SIDS_BODY, LOAD_FDIR_PARAMS_BODY, PARAM_REF_BODY, PARAM_VALUE_BODY, REQUEST_ID,
    SET_FDIR_MODE_BODY, VALVE_COMMAND_BODY, VERIFY_FAILURE_BODY, VERIFY_SUCCESS_BODY, Acknowledge,
    AliveReport, AreYouAlive, DisableEvents, DisableHousekeeping, EnableEvents, EnableHousekeeping,
    LoadFdirParams, OneShotHousekeeping, ParameterReport, ReportParameter, SetFdirMode, SetHousekeepingPeriod,
    SetParameter, ValveCommand, VerificationError, VerificationReport, VerificationStage, request_word)

# ----------------------------------------------------------------------------------------------
# Application data: declarations


def _sid(value: int) -> cs.Renamed:
    return field("sid", cs.Const(value, cs.Int16ub), doc=f"housekeeping structure id, {value}")


RAW_SAMPLES_BODY = cs.Struct(
    _sid(SID_RAW_SAMPLES),
    field("cycle", cs.Int32ub, doc="executive cycle number"),
    field("n_pressure", cs.Rebuild(cs.Int8ub, cs.len_(this.pressure)), doc="pressure channels"),
    field("n_temperature", cs.Rebuild(cs.Int8ub, cs.len_(this.temperature)), doc="temperature channels"),
    field("n_flow", cs.Rebuild(cs.Int8ub, cs.len_(this.flow)), doc="flow channels"),
    field("n_valves", cs.Rebuild(cs.Int8ub, cs.len_(this.valve_cmd)), doc="valves"),
    field("pressure", cs.Array(this.n_pressure, cs.Float64b), "Pa", "pressure readings, layout order"),
    field("pressure_status", cs.Array(this.n_pressure, cs.Int8ub), doc="SampleStatus per pressure channel"),
    field("temperature", cs.Array(this.n_temperature, cs.Float64b), "K", "temperature readings"),
    field("temperature_status", cs.Array(this.n_temperature, cs.Int8ub), doc="SampleStatus per temperature channel"),
    field("flow", cs.Array(this.n_flow, cs.Float64b), "kg/s", "flow into the module"),
    field("flow_status", cs.Array(this.n_flow, cs.Int8ub), doc="SampleStatus per flow channel"),
    field("valve_cmd", cs.Array(this.n_valves, cs.Int8ub), doc="commanded position, 0 closed 1 open"),
    field("valve_fb", cs.Array(this.n_valves, cs.Float64b), "1", "feedback position 0.0 .. 1.0"),
    field("valve_status", cs.Array(this.n_valves, cs.Int8ub), doc="SampleStatus per valve feedback"),
    cs.Terminated,
)

MODULE_HK = cs.Struct(
    field("pressure_pa", cs.Float64b, "Pa", "voted pressure"),
    field("temperature_k", cs.Float64b, "K", "voted gas temperature"),
    field("inventory_mol", cs.Float64b, "mol", "gas inventory n = P V / (R T)"),
    field("leak_rate_kg_s", cs.Float64b, "kg/s", "estimated leak rate of its segment, positive = loss"),
    field("status", cs.Int8ub, doc="ModuleStatus code"),
)

VALVE_HK = cs.Struct(
    field("cmd", cs.Int8ub, doc="commanded position, 0 closed 1 open"),
    field("fb", cs.Float64b, "1", "feedback position 0.0 .. 1.0"),
    field("health", cs.Int8ub, doc="ValveHealth code"),
)

HOUSEKEEPING_BODY = cs.Struct(
    _sid(SID_HOUSEKEEPING),
    field("mode", cs.Int8ub, doc="FdirMode code"),
    field("isolation_state", cs.Int8ub, doc="IsolationState code"),
    field("cycle", cs.Int32ub, doc="executive cycle number"),
    field("cycle_time_us", cs.Int32ub, "us", "duration of the last cycle"),
    field("max_cycle_time_us", cs.Int32ub, "us", "longest cycle since start"),
    field("overruns", cs.Int32ub, doc="cycles that overran their period"),
    field("link_up", cs.Int8ub, doc="1 while the device link is up"),
    field("link_errors", cs.Int32ub, doc="device link error counter"),
    field("sensors_failed", cs.Int16ub, doc="sensors currently failed"),
    field("n_modules", cs.Rebuild(cs.Int8ub, cs.len_(this.modules)), doc="modules"),
    field("modules", cs.Array(this.n_modules, MODULE_HK), doc="per module, layout order"),
    field("n_valves", cs.Rebuild(cs.Int8ub, cs.len_(this.valves)), doc="valves"),
    field("valves", cs.Array(this.n_valves, VALVE_HK), doc="per valve, layout order"),
    cs.Terminated,
)

LAYOUT_BODY = cs.Struct(
    _sid(SID_LAYOUT),
    field("epoch_utc", cs.Float64b, "s", "UTC seconds since 1970-01-01 at mission time 0"),
    field("layout_json", cs.PascalString(cs.Int16ub, "utf8"), doc="the device Layout as JSON (layoutjson.py)"),
    cs.Terminated,
)

EVENT_BODY = cs.Struct(
    field("event_id", cs.Int16ub, doc="EventId code"),
    field("subject", cs.PaddedString(SUBJECT_SIZE, "ascii"), doc="module, sensor or valve id"),
    field("values", cs.Array(3, cs.Float64b), "see event table", "meaning per event id"),
    cs.Terminated,
)

# ----------------------------------------------------------------------------------------------
# Application data: the plain objects callers see


@dataclass(slots=True)
class RawSamples:
    """Every sensor reading of one cycle, with its status (3/25, SID 2). float64 so a replay
    re-runs FDIR bit-exactly. Lists are in layout order (hal Layout)."""

    cycle: int
    pressure: list[float]
    pressure_status: list[int]
    temperature: list[float]
    temperature_status: list[int]
    flow: list[float]
    flow_status: list[int]
    valve_cmd: list[int]
    valve_fb: list[float]
    valve_status: list[int]


@dataclass(slots=True)
class ModuleHk:
    pressure_pa: float
    temperature_k: float
    inventory_mol: float
    leak_rate_kg_s: float
    status: int  #: ModuleStatus


@dataclass(slots=True)
class ValveHk:
    cmd: int  #: 0 closed, 1 open
    fb: float  #: feedback position 0.0 .. 1.0
    health: int  #: ValveHealth


@dataclass(slots=True)
class Housekeeping:
    """The 1 Hz summary (3/25, SID 1)."""

    mode: int  #: FdirMode
    isolation_state: int  #: IsolationState
    cycle: int
    cycle_time_us: int
    max_cycle_time_us: int
    overruns: int
    link_up: bool
    link_errors: int
    sensors_failed: int
    modules: list[ModuleHk]
    valves: list[ValveHk]


@dataclass(slots=True)
class Event:
    """An FDIR/executive event (service 5, subtype = severity). The meaning and unit of each value
    per ``event_id`` is in :data:`hullwatch.firmware.telemetry.events.EVENT_DEFS`."""

    event_id: EventId
    subject: str  #: <= 16 ASCII characters: a module, sensor or valve id
    values: tuple[float, float, float]
    severity: Severity


@dataclass(slots=True)
class LayoutReport:
    """The device layout and epoch (3/25, SID 3): makes a capture self-describing."""

    epoch_utc: float
    layout_json: str


@dataclass(slots=True)
class Packet:
    """One packet. ``data`` is one of the dataclasses above, or ``bytes`` for an unknown
    service/subtype. For TC packets ``dest_id`` is the source id and the time fields are unused."""

    apid: int
    seq: int
    packet_type: PacketType
    service: int
    subtype: int
    time_utc: float = 0.0  #: CUC time, UTC seconds since 1970 (TM)
    msg_counter: int = 0  #: message type counter (TM)
    dest_id: int = 0  #: destination id (TM) or source id (TC)
    data: Any = b""
    seq_flags: int = SEQ_UNSEGMENTED
    ack_flags: int = 0  #: TC acknowledgement flags
    time_ref_status: int = 0  #: TM spacecraft time reference status

    @property
    def name(self) -> str:
        """The dictionary name of this packet kind (``raw_samples``...), or ``unknown``."""
        defs = _BY_CLASS.get(type(self.data))
        if defs is not None and len(defs) == 1:  # most kinds: one class, one definition
            return defs[0].name
        pdef = find_definition(self.packet_type, self.service, self.subtype, _key_of(self.data))
        return pdef.name if pdef else "unknown"


# ----------------------------------------------------------------------------------------------
# Conversions between containers and dataclasses


def _raw_to(d: RawSamples) -> dict:
    return {
        "cycle": d.cycle, "pressure": d.pressure, "pressure_status": d.pressure_status,
        "temperature": d.temperature, "temperature_status": d.temperature_status,
        "flow": d.flow, "flow_status": d.flow_status, "valve_cmd": d.valve_cmd,
        "valve_fb": d.valve_fb, "valve_status": d.valve_status,
    }


def _raw_from(c: Any) -> RawSamples:
    return RawSamples(
        c.cycle, list(c.pressure), list(c.pressure_status), list(c.temperature),
        list(c.temperature_status), list(c.flow), list(c.flow_status), list(c.valve_cmd),
        list(c.valve_fb), list(c.valve_status),
    )


def _hk_to(d: Housekeeping) -> dict:
    return {
        "mode": int(d.mode), "isolation_state": int(d.isolation_state), "cycle": d.cycle,
        "cycle_time_us": d.cycle_time_us, "max_cycle_time_us": d.max_cycle_time_us,
        "overruns": d.overruns, "link_up": 1 if d.link_up else 0, "link_errors": d.link_errors,
        "sensors_failed": d.sensors_failed,
        "modules": [{"pressure_pa": m.pressure_pa, "temperature_k": m.temperature_k,
                     "inventory_mol": m.inventory_mol, "leak_rate_kg_s": m.leak_rate_kg_s,
                     "status": int(m.status)} for m in d.modules],
        "valves": [{"cmd": int(v.cmd), "fb": v.fb, "health": int(v.health)} for v in d.valves],
    }


def _hk_from(c: Any) -> Housekeeping:
    return Housekeeping(
        c.mode, c.isolation_state, c.cycle, c.cycle_time_us, c.max_cycle_time_us, c.overruns,
        bool(c.link_up), c.link_errors, c.sensors_failed,
        [ModuleHk(m.pressure_pa, m.temperature_k, m.inventory_mol, m.leak_rate_kg_s, m.status)
         for m in c.modules],
        [ValveHk(v.cmd, v.fb, v.health) for v in c.valves],
    )


def _event_to(d: Event) -> dict:
    if len(d.values) != 3:
        raise TelemetryError(f"event {d.event_id!r}: expected 3 values, got {len(d.values)}")
    return {"event_id": int(d.event_id), "subject": d.subject, "values": [float(v) for v in d.values]}


def _event_from(c: Any, subtype: int) -> Event:
    try:
        event_id = EventId(c.event_id)
    except ValueError as exc:
        raise TelemetryError(f"unknown event id {c.event_id}") from exc
    return Event(event_id, c.subject, (c["values"][0], c["values"][1], c["values"][2]), Severity(subtype))


# ----------------------------------------------------------------------------------------------
# The packet definitions: the table encode, decode and the dictionary work from


@dataclass(frozen=True, slots=True)
class PacketDef:
    """One kind of packet. ``key`` is the SID (service 3) or function id (service 8) that the
    application data starts with (u16), or None."""

    name: str
    apid: int
    packet_type: PacketType
    service: int
    subtype: int
    key: int | None
    body: cs.Construct
    cls: type
    to_container: Callable[[Any], dict]
    from_container: Callable[[Any, int], Any]
    doc: str
    periodic: str = dc_field(default="")


def _layout_to(d: LayoutReport) -> dict:
    return {"epoch_utc": d.epoch_utc, "layout_json": d.layout_json}


def _layout_from(c: Any, subtype: int) -> LayoutReport:
    return LayoutReport(c.epoch_utc, c.layout_json)


TM, TC = PacketType.TM, PacketType.TC

PACKET_DEFS: tuple[PacketDef, ...] = (
    PacketDef("housekeeping", APID_HOUSEKEEPING, TM, 3, 25, SID_HOUSEKEEPING, HOUSEKEEPING_BODY,
              Housekeeping, _hk_to, lambda c, s: _hk_from(c),
              "summary: FDIR mode, executive statistics, per-module pressure, temperature, "
              "inventory, leak rate and status, valve states", "1 Hz"),
    PacketDef("raw_samples", APID_RAW, TM, 3, 25, SID_RAW_SAMPLES, RAW_SAMPLES_BODY,
              RawSamples, _raw_to, lambda c, s: _raw_from(c),
              "every sensor reading and valve state of one cycle, with status (replay input)",
              "every cycle"),
    PacketDef("layout", APID_HOUSEKEEPING, TM, 3, 25, SID_LAYOUT, LAYOUT_BODY,
              LayoutReport, _layout_to, _layout_from,
              "device layout (modules, channels, valves) as JSON and the epoch",
              "start of a capture, then every 60 s"),
    *(PacketDef(f"event_{sev.name.lower()}", APID_EVENT, TM, 5, int(sev), None, EVENT_BODY,
                Event, _event_to, _event_from,
                f"event report, severity {sev.name.lower()}", "on event")
      for sev in Severity),
    *(PacketDef(name, apid, PacketType(ptype), service, subtype, key, body, cls, to, from_, doc, periodic)
      for name, apid, ptype, service, subtype, key, body, cls, to, from_, doc, periodic in COMMAND_ROWS),
)

_BY_TYPE: dict[tuple[int, int, int], list[PacketDef]] = {}
for _d in PACKET_DEFS:
    _BY_TYPE.setdefault((int(_d.packet_type), _d.service, _d.subtype), []).append(_d)
_BY_CLASS: dict[type, list[PacketDef]] = {}
for _d in PACKET_DEFS:
    _BY_CLASS.setdefault(_d.cls, []).append(_d)
del _d


def _key_of(data: Any) -> int | None:
    for pdef in _BY_CLASS.get(type(data), ()):
        return pdef.key
    return None


def find_definition(packet_type: int, service: int, subtype: int, key: int | None = None,
                    apid: int | None = None) -> PacketDef | None:
    """The definition of a packet kind, or None. ``key`` is the SID/function id where one applies;
    ``apid`` (None: any), when given, must be the kind's (a 3/25 SID 1 on another APID is not
    housekeeping: every kind is defined on one APID, docs/telemetry.md)."""
    defs = _BY_TYPE.get((int(packet_type), service, subtype))
    if not defs:
        return None
    for pdef in defs:
        if (pdef.key is None or pdef.key == key) and (apid is None or pdef.apid == apid):
            return pdef
    return None


def definition_for(data: Any) -> PacketDef:
    """The definition that encodes ``data`` (a report or command dataclass). Raises TelemetryError."""
    defs = _BY_CLASS.get(type(data))
    if not defs:
        raise TelemetryError(f"no packet carries a {type(data).__name__}")
    if isinstance(data, Event):
        return find_definition(TM, 5, int(data.severity))  # type: ignore[return-value]
    if isinstance(data, VerificationReport):
        return find_definition(TM, 1, int(data.stage))  # type: ignore[return-value]
    return defs[0]


def make_packet(data: Any, *, seq: int = 0, time_utc: float = 0.0, msg_counter: int = 0,
                dest_id: int = 0, apid: int | None = None, ack_flags: int = 0) -> Packet:
    """A Packet carrying ``data`` with APID, type, service and subtype from the definition table.
    For a telecommand the TM-only fields (``time_utc``, ``msg_counter``) are ignored."""
    pdef = definition_for(data)
    if pdef.packet_type == PacketType.TC:
        time_utc, msg_counter = 0.0, 0
    return Packet(pdef.apid if apid is None else apid, seq, pdef.packet_type, pdef.service, pdef.subtype,
                  time_utc, msg_counter, dest_id, data, ack_flags=ack_flags)


# ----------------------------------------------------------------------------------------------
# Time


def utc_to_cuc(time_utc: float) -> tuple[int, int]:
    """UTC seconds since 1970 -> (CUC seconds, CUC fraction in 1/65536 s), fraction truncated."""
    seconds = int(time_utc // 1.0)
    if not 0 <= seconds < 1 << 32:
        raise TelemetryError(f"time {time_utc!r} s is outside the 4-byte CUC range (1970..2106)")
    fraction = int((time_utc - seconds) * 65536.0)
    return seconds, min(fraction, 0xFFFF)


def cuc_to_utc(seconds: int, fraction: int) -> float:
    return seconds + fraction / 65536.0


# ----------------------------------------------------------------------------------------------
# encode / decode


def encode(packet: Packet) -> bytes:
    """The bytes of ``packet`` (headers, application data, CRC). Raises TelemetryError when a
    field is out of range or ``data`` does not fit the service/subtype."""
    data = packet.data
    if isinstance(data, (bytes, bytearray)):
        body = bytes(data)
        name = f"packet {packet.service}/{packet.subtype}"
    else:
        pdef = find_definition(packet.packet_type, packet.service, packet.subtype, _key_of(data))
        if pdef is None or not isinstance(data, pdef.cls):
            raise TelemetryError(
                f"{type(data).__name__} cannot be sent as {PacketType(packet.packet_type).name} "
                f"{packet.service}/{packet.subtype}")
        name = pdef.name
        try:
            body = pdef.body.build(pdef.to_container(data))
        except (cs.ConstructError, ValueError, TypeError, UnicodeError, OverflowError) as exc:
            raise TelemetryError(f"{name}: cannot encode {type(data).__name__}: {exc}") from exc
    if packet.packet_type == PacketType.TM:
        cuc_s, cuc_f = utc_to_cuc(packet.time_utc)
        secondary = {"version_status": {"time_ref_status": packet.time_ref_status},
                     "service": packet.service, "subtype": packet.subtype,
                     "msg_counter": packet.msg_counter, "dest_id": packet.dest_id,
                     "cuc_seconds": cuc_s, "cuc_fraction": cuc_f}
    else:
        secondary = {"version_ack": {"ack_flags": packet.ack_flags}, "service": packet.service,
                     "subtype": packet.subtype, "source_id": packet.dest_id}
    if len(body) + _SECONDARY_SIZE[PacketType(packet.packet_type)] + PEC_SIZE > 65536:
        raise TelemetryError(f"{name}: application data of {len(body)} bytes does not fit a packet")
    try:
        return FRAME.build({"frame": {"value": {
            "primary": {"packet_id": {"packet_type": int(packet.packet_type), "apid": packet.apid},
                        "seq_ctrl": {"seq_flags": packet.seq_flags, "seq_count": packet.seq}},
            "secondary": secondary,
            "data": body,
        }}})
    except (cs.ConstructError, ValueError, TypeError, OverflowError) as exc:
        raise TelemetryError(f"{name}: cannot encode header (apid {packet.apid}, seq {packet.seq}, "
                             f"seq flags {packet.seq_flags}): {exc}") from exc


def check_header(buf: bytes | memoryview, offset: int = 0) -> int:
    """Validate the primary header at ``buf[offset:]`` and return the packet's total length.

    Raises PacketDecodeError (offset relative to ``buf``) if it cannot start a packet of ours:
    packet version not 0, no secondary header, or a length too small for its secondary header.
    """
    if len(buf) - offset < PRIMARY_HEADER_SIZE:
        raise PacketDecodeError(
            f"{len(buf) - offset} bytes, too short for a primary header ({PRIMARY_HEADER_SIZE})", offset)
    b0 = buf[offset]
    if b0 >> 5 != PACKET_VERSION:
        raise PacketDecodeError(f"packet version {b0 >> 5}, expected {PACKET_VERSION}", offset)
    if not b0 & 0x08:
        raise PacketDecodeError("secondary header flag is 0, expected 1 (PUS)", offset)
    total = ((buf[offset + 4] << 8) | buf[offset + 5]) + 7
    minimum = MIN_TC_SIZE if b0 & 0x10 else MIN_TM_SIZE
    if total < minimum:
        raise PacketDecodeError(f"length field gives {total} bytes, below the minimum {minimum}", offset + 4)
    return total


def decode(buf: bytes | bytearray | memoryview) -> Packet:
    """Decode one whole packet (exactly ``len(buf)`` bytes) through the construct declarations.

    Raises PacketDecodeError with the byte offset of the problem: header (0), length field (4),
    secondary header (6), application data (its first byte), CRC (its first byte).
    """
    buf = bytes(buf)
    total = check_header(buf)
    if total != len(buf):
        raise PacketDecodeError(f"length field says {total} bytes, the buffer holds {len(buf)}", 4)
    crc = crc16(buf[:-PEC_SIZE])
    got = int.from_bytes(buf[-PEC_SIZE:], "big")
    if crc != got:
        raise PacketDecodeError(f"CRC mismatch: packet says {got:#06x}, computed {crc:#06x}", total - PEC_SIZE)
    try:
        parsed = FRAME.parse(buf)
    except cs.ConstructError as exc:
        raise PacketDecodeError(f"bad secondary header: {exc}", PRIMARY_HEADER_SIZE) from exc
    frame = parsed.frame.value
    ptype = PacketType(frame.primary.packet_id.packet_type)
    sec = frame.secondary
    data_offset = PRIMARY_HEADER_SIZE + _SECONDARY_SIZE[ptype]
    body = frame.data
    key = int.from_bytes(body[:2], "big") if len(body) >= 2 else None
    pdef = find_definition(ptype, sec.service, sec.subtype, key, frame.primary.packet_id.apid)
    if pdef is None:
        data: Any = body
    else:
        try:
            data = pdef.from_container(pdef.body.parse(body), sec.subtype)
        except (cs.ConstructError, TelemetryError, ValueError, UnicodeError) as exc:
            raise PacketDecodeError(f"{pdef.name}: bad application data: {exc}", data_offset) from exc
    seq_ctrl = frame.primary.seq_ctrl
    if ptype == PacketType.TM:
        return Packet(frame.primary.packet_id.apid, seq_ctrl.seq_count, ptype, sec.service, sec.subtype,
                      cuc_to_utc(sec.cuc_seconds, sec.cuc_fraction), sec.msg_counter, sec.dest_id, data,
                      seq_ctrl.seq_flags, 0, sec.version_status.time_ref_status)
    return Packet(frame.primary.packet_id.apid, seq_ctrl.seq_count, ptype, sec.service, sec.subtype,
                  0.0, 0, sec.source_id, data, seq_ctrl.seq_flags, sec.version_ack.ack_flags, 0)
