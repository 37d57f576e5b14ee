"""Fast codecs derived from the construct declarations in packets.py.

construct costs about 100 us per packet; the per-cycle raw-samples packet and bulk decoding need
1-2 us (docs/architecture.md, "Reference figures"). The ``struct`` formats used here are computed from the declarations by
:func:`~hullwatch.firmware.telemetry.fields.flatten`, never typed a second time, and tests prove
that these codecs and :func:`~hullwatch.firmware.telemetry.packets.decode`/``encode`` agree
byte for byte on every packet type. The CRC is :data:`packets.crc16` (CRC-16/CCITT-FALSE in C,
anycrc; crcmod, the declaration's, may silently fall back to pure Python).
"""

from __future__ import annotations

import struct
from typing import Any

import construct as cs

from ..errors import PacketDecodeError, TelemetryError
from . import packets as P
from ..types import EventId, Severity
from .fields import FlatField, field_offsets, flatten, struct_format

_TM_HEADERS = cs.Struct("primary" / P.PRIMARY_HEADER, "secondary" / P.TM_SECONDARY_HEADER)
_TC_HEADERS = cs.Struct("primary" / P.PRIMARY_HEADER, "secondary" / P.TC_SECONDARY_HEADER)


def _bits(fields: list[FlatField], path: str) -> dict[str, tuple[int, int, Any]]:
    for f in fields:
        if f.path == path:
            return {name: (shift, (1 << width) - 1, const) for name, shift, width, const in f.bits}
    raise KeyError(path)


def _pack_bits(spec: dict[str, tuple[int, int, Any]], **values: int) -> int:
    """Pack bit sub-fields: Const ones take their declared value, the others come from ``values``."""
    word = 0
    for name, (shift, mask, const) in spec.items():
        value = const if const is not None else values[name]
        if value & ~mask:
            raise TelemetryError(f"{name}={value} does not fit in {mask.bit_length()} bits")
        word |= value << shift
    return word


_TM_FIELDS = flatten(_TM_HEADERS)
_TC_FIELDS = flatten(_TC_HEADERS)
TM_HEADER_FIELDS = _TM_FIELDS  #: the flattened primary + TM secondary header (ground readers use it)
TC_HEADER_FIELDS = _TC_FIELDS  #: the flattened primary + TC secondary header
TM_HEADER = struct.Struct(struct_format(_TM_FIELDS))  #: primary + TM secondary header, 19 bytes
TC_HEADER = struct.Struct(struct_format(_TC_FIELDS))  #: primary + TC secondary header, 11 bytes
_PACKET_ID = _bits(_TM_FIELDS, "primary.packet_id")
_SEQ_CTRL = _bits(_TM_FIELDS, "primary.seq_ctrl")
_VERSION_STATUS = _bits(_TM_FIELDS, "secondary.version_status")
_VERSION_ACK = _bits(_TC_FIELDS, "secondary.version_ack")
assert TM_HEADER.size == P.PRIMARY_HEADER_SIZE + P.TM_SECONDARY_HEADER_SIZE
assert TC_HEADER.size == P.PRIMARY_HEADER_SIZE + P.TC_SECONDARY_HEADER_SIZE

_APID_SHIFT, _APID_MASK, _ = _PACKET_ID["apid"]
_TYPE_SHIFT, _TYPE_MASK, _ = _PACKET_ID["packet_type"]
_SEQ_SHIFT, _SEQ_MASK, _ = _SEQ_CTRL["seq_count"]
_FLAGS_SHIFT, _FLAGS_MASK, _ = _SEQ_CTRL["seq_flags"]
_TRS_SHIFT, _TRS_MASK, _ = _VERSION_STATUS["time_ref_status"]
_PUS_SHIFT, _PUS_MASK, _ = _VERSION_STATUS["pus_version"]
_ACK_SHIFT, _ACK_MASK, _ = _VERSION_ACK["ack_flags"]

#: offset of the raw-samples counts (n_pressure ...): after the headers, the SID and the cycle.
_RAW_PREFIX = flatten(P.RAW_SAMPLES_BODY.subcons[0]) + flatten(P.RAW_SAMPLES_BODY.subcons[1])
_RAW_COUNTS_OFFSET = TM_HEADER.size + struct.calcsize(struct_format(_RAW_PREFIX))
_RAW_COUNTS = struct.Struct(struct_format(flatten(cs.Struct(*P.RAW_SAMPLES_BODY.subcons[2:6]))))


class SequenceCounters:
    """Per-APID 14-bit packet sequence counters that wrap at 16384. Sized once (2048 APIDs)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts = [0] * 2048

    def next(self, apid: int) -> int:
        """The count for the next packet of ``apid``; then advances it."""
        count = self._counts[apid]
        self._counts[apid] = (count + 1) & 0x3FFF
        return count

    def peek(self, apid: int) -> int:
        return self._counts[apid]


class MessageCounters:
    """PUS-C message type counters (u16, wrap), one per (service, subtype)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        # Indexed by service << 8 | subtype: sized once, never grows, no hashing in the loop.
        self._counts = [0] * 65536

    def next(self, service: int, subtype: int) -> int:
        key = (service << 8) | subtype
        count = self._counts[key]
        self._counts[key] = (count + 1) & 0xFFFF
        return count


_RAW_BODY_CACHE: dict[tuple[int, int, int, int], tuple[struct.Struct, tuple[slice, ...]]] = {}


def _raw_body_struct(counts: tuple[int, int, int, int]) -> tuple[struct.Struct, tuple[slice, ...]]:
    cached = _RAW_BODY_CACHE.get(counts)
    if cached is None:
        fields = flatten(P.RAW_SAMPLES_BODY, dict(zip(("n_pressure", "n_temperature", "n_flow", "n_valves"), counts)))
        slices: list[slice] = []
        i = 0
        for f in fields:
            slices.append(slice(i, i + f.count))
            i += f.count
        cached = (struct.Struct(struct_format(fields)), tuple(slices[6:]))
        if len(_RAW_BODY_CACHE) < 64:  # bounded: a capture holds one or a few layouts
            _RAW_BODY_CACHE[counts] = cached
    return cached


def decode_raw_samples_body(buf: bytes | memoryview, offset: int, end: int) -> P.RawSamples:
    """The raw-samples application data at ``buf[offset:end]`` (``end`` excludes the CRC)."""
    if end - offset < 10:
        raise PacketDecodeError("raw samples: application data too short", offset)
    counts = _RAW_COUNTS.unpack_from(buf, offset + 6)
    body, s = _raw_body_struct(counts)
    if body.size != end - offset:
        raise PacketDecodeError(
            f"raw samples: counts {counts} need {body.size} bytes of data, packet has {end - offset}", offset)
    v = body.unpack_from(buf, offset)
    return P.RawSamples(v[1], list(v[s[0]]), list(v[s[1]]), list(v[s[2]]), list(v[s[3]]), list(v[s[4]]),
                        list(v[s[5]]), list(v[s[6]]), list(v[s[7]]), list(v[s[8]]))


# ----------------------------------------------------------------------------------------------
# Housekeeping and events: struct formats from the declarations; the value order is checked
# against the declaration's field paths, so a change to the declaration fails loudly here.

_MODULE_FIELDS = ("pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s", "status")
_VALVE_FIELDS = ("cmd", "fb", "health")
_HK_HEAD = ("sid", "mode", "isolation_state", "cycle", "cycle_time_us", "max_cycle_time_us", "overruns",
            "link_up", "link_errors", "sensors_failed", "n_modules")
_HK_CACHE: dict[tuple[int, int], struct.Struct] = {}


def _hk_struct(n_modules: int, n_valves: int) -> struct.Struct:
    key = (n_modules, n_valves)
    cached = _HK_CACHE.get(key)
    if cached is None:
        fields = flatten(P.HOUSEKEEPING_BODY, {"n_modules": n_modules, "n_valves": n_valves})
        expected = [*_HK_HEAD, *(f"modules[{i}].{n}" for i in range(n_modules) for n in _MODULE_FIELDS),
                    "n_valves", *(f"valves[{i}].{n}" for i in range(n_valves) for n in _VALVE_FIELDS)]
        if [f.path for f in fields] != expected:
            raise AssertionError("HOUSEKEEPING_BODY changed: update the value order in fastcodec")
        cached = struct.Struct(struct_format(fields))
        if len(_HK_CACHE) < 64:
            _HK_CACHE[key] = cached
    return cached


_HK_ZERO = field_offsets(flatten(P.HOUSEKEEPING_BODY, {"n_modules": 0, "n_valves": 0}))
_HK_N_MODULES_AT = _HK_ZERO["n_modules"]
_MODULE_SIZE = struct.calcsize(struct_format(flatten(P.MODULE_HK)))

_EVENT_FIELDS = flatten(P.EVENT_BODY)
assert [(f.path, f.count) for f in _EVENT_FIELDS] == [("event_id", 1), ("subject", P.SUBJECT_SIZE), ("values", 3)]
EVENT_STRUCT = struct.Struct(struct_format(_EVENT_FIELDS))


def encode_housekeeping_body(hk: P.Housekeeping) -> bytes:
    """The application data of a housekeeping report, same bytes as the construct declaration."""
    values: list[Any] = [P.SID_HOUSEKEEPING, int(hk.mode), int(hk.isolation_state), hk.cycle, hk.cycle_time_us,
                         hk.max_cycle_time_us, hk.overruns, 1 if hk.link_up else 0, hk.link_errors,
                         hk.sensors_failed, len(hk.modules)]
    for m in hk.modules:
        values += (m.pressure_pa, m.temperature_k, m.inventory_mol, m.leak_rate_kg_s, int(m.status))
    values.append(len(hk.valves))
    for v in hk.valves:
        values += (int(v.cmd), v.fb, int(v.health))
    try:
        return _hk_struct(len(hk.modules), len(hk.valves)).pack(*values)
    except (struct.error, TypeError, ValueError) as exc:
        raise TelemetryError(f"housekeeping: cannot encode: {exc}") from exc


def decode_housekeeping_body(buf: bytes | memoryview, offset: int, end: int) -> P.Housekeeping:
    if end - offset <= _HK_N_MODULES_AT:
        raise PacketDecodeError("housekeeping: application data too short", offset)
    n_modules = buf[offset + _HK_N_MODULES_AT]
    at_valves = offset + _HK_N_MODULES_AT + 1 + n_modules * _MODULE_SIZE
    if at_valves >= end:
        raise PacketDecodeError(f"housekeeping: {n_modules} modules do not fit the packet", offset)
    body = _hk_struct(n_modules, buf[at_valves])
    if body.size != end - offset:
        raise PacketDecodeError(f"housekeeping: {n_modules} modules and {buf[at_valves]} valves need "
                                f"{body.size} bytes of data, packet has {end - offset}", offset)
    v = body.unpack_from(buf, offset)
    m0 = len(_HK_HEAD)
    v0 = m0 + 5 * n_modules + 1
    return P.Housekeeping(
        v[1], v[2], v[3], v[4], v[5], v[6], bool(v[7]), v[8], v[9],
        [P.ModuleHk(*v[i:i + 5]) for i in range(m0, m0 + 5 * n_modules, 5)],
        [P.ValveHk(*v[i:i + 3]) for i in range(v0, len(v), 3)])


def encode_event_body(event: P.Event) -> bytes:
    try:
        subject = event.subject.encode("ascii")
    except UnicodeEncodeError as exc:
        raise TelemetryError(f"event {event.event_id!r}: subject {event.subject!r} is not ASCII") from exc
    if len(subject) > P.SUBJECT_SIZE:
        raise TelemetryError(f"event {event.event_id!r}: subject {event.subject!r} is longer than "
                             f"{P.SUBJECT_SIZE} characters")
    try:
        return EVENT_STRUCT.pack(int(event.event_id), subject, *event.values)
    except (struct.error, TypeError, ValueError) as exc:
        raise TelemetryError(f"event {event.event_id!r}: cannot encode: {exc}") from exc


def decode_event_body(buf: bytes | memoryview, offset: int, end: int, subtype: int) -> P.Event:
    if end - offset != EVENT_STRUCT.size:
        raise PacketDecodeError(f"event: {end - offset} bytes of data, expected {EVENT_STRUCT.size}", offset)
    event_id, subject, v1, v2, v3 = EVENT_STRUCT.unpack_from(buf, offset)
    try:
        eid = EventId(event_id)
    except ValueError as exc:
        raise PacketDecodeError(f"event: unknown event id {event_id}", offset) from exc
    try:
        text = subject.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError as exc:
        raise PacketDecodeError(f"event: subject {subject!r} is not ASCII", offset + 2) from exc
    return P.Event(eid, text, (v1, v2, v3), Severity(subtype))


def fast_encode(packet: P.Packet) -> bytes:
    """Same bytes as :func:`packets.encode`; headers with struct, and housekeeping, event and
    raw-samples data with the derived struct codecs (other data through construct)."""
    if packet.packet_type != P.PacketType.TM:
        return P.encode(packet)
    data = packet.data
    pdef = P.find_definition(P.PacketType.TM, packet.service, packet.subtype, P._key_of(data))
    if pdef is None or not isinstance(data, pdef.cls):
        return P.encode(packet)  # raw bytes, or a mismatch that encode() reports
    if isinstance(data, P.Housekeeping):
        body = encode_housekeeping_body(data)
    elif isinstance(data, P.Event):
        body = encode_event_body(data)
    else:
        try:
            body = pdef.body.build(pdef.to_container(data))
        except (cs.ConstructError, ValueError, TypeError, UnicodeError, OverflowError) as exc:
            raise TelemetryError(f"{pdef.name}: cannot encode {type(data).__name__}: {exc}") from exc
    return build_tm(packet.apid, packet.seq, packet.service, packet.subtype, packet.msg_counter,
                    packet.dest_id, packet.time_utc, body, packet.seq_flags, packet.time_ref_status)


def build_tm(apid: int, seq: int, service: int, subtype: int, msg_counter: int, dest_id: int,
             time_utc: float, body: bytes, seq_flags: int = P.SEQ_UNSEGMENTED, time_ref_status: int = 0) -> bytes:
    """A whole TM packet around application data ``body``. Raises TelemetryError for a field out
    of range."""
    secs, frac = P.utc_to_cuc(time_utc)
    if len(body) + P.TM_SECONDARY_HEADER_SIZE + P.PEC_SIZE > 65536:
        raise TelemetryError(f"application data of {len(body)} bytes does not fit a packet")
    try:
        head = TM_HEADER.pack(
            _pack_bits(_PACKET_ID, packet_type=P.PacketType.TM, apid=apid),
            _pack_bits(_SEQ_CTRL, seq_flags=seq_flags, seq_count=seq),
            len(body) + P.TM_SECONDARY_HEADER_SIZE + P.PEC_SIZE - 1,
            _pack_bits(_VERSION_STATUS, time_ref_status=time_ref_status),
            service, subtype, msg_counter, dest_id, secs, frac)
    except struct.error as exc:
        raise TelemetryError(f"TM {service}/{subtype} apid {apid} seq {seq}: {exc}") from exc
    packet = head + body
    return packet + P.crc16(packet).to_bytes(2, "big")


def fast_decode(buf: bytes | bytearray | memoryview, verify_crc: bool = True) -> P.Packet:
    """Same result as :func:`packets.decode` for one whole packet, with struct instead of construct
    for the headers and the raw-samples, housekeeping and event data (other data goes through its
    construct declaration).
    Raises PacketDecodeError with the byte offset."""
    total = P.check_header(buf)
    if total != len(buf):
        raise PacketDecodeError(f"length field says {total} bytes, the buffer holds {len(buf)}", 4)
    if verify_crc and P.crc16(buf):
        got = int.from_bytes(buf[-2:], "big")
        raise PacketDecodeError(f"CRC mismatch: packet says {got:#06x}, computed "
                                f"{P.crc16(buf[:-2]):#06x}", total - 2)
    end = total - P.PEC_SIZE
    w0 = (buf[0] << 8) | buf[1]
    if (w0 >> _TYPE_SHIFT) & _TYPE_MASK == P.PacketType.TM:
        w0, w1, _, vs, service, subtype, counter, dest, secs, frac = TM_HEADER.unpack_from(buf, 0)
        if (vs >> _PUS_SHIFT) & _PUS_MASK != P.PUS_VERSION:
            raise PacketDecodeError(f"PUS version {(vs >> _PUS_SHIFT) & _PUS_MASK}, expected 2", 6)
        offset = TM_HEADER.size
        key = ((buf[offset] << 8) | buf[offset + 1]) if end - offset >= 2 else None
        apid = (w0 >> _APID_SHIFT) & _APID_MASK
        if service == 3 and subtype == 25 and key == P.SID_RAW_SAMPLES and apid == P.APID_RAW:
            data: Any = decode_raw_samples_body(buf, offset, end)
        elif service == 3 and subtype == 25 and key == P.SID_HOUSEKEEPING and apid == P.APID_HOUSEKEEPING:
            data = decode_housekeeping_body(buf, offset, end)
        elif service == 5 and 1 <= subtype <= 4 and apid == P.APID_EVENT:
            data = decode_event_body(buf, offset, end, subtype)
        else:
            data = _decode_body(buf, P.PacketType.TM, service, subtype, key, offset, end, apid)
        return P.Packet((w0 >> _APID_SHIFT) & _APID_MASK, (w1 >> _SEQ_SHIFT) & _SEQ_MASK, P.PacketType.TM,
                        service, subtype, secs + frac / 65536.0, counter, dest, data,
                        (w1 >> _FLAGS_SHIFT) & _FLAGS_MASK, 0, (vs >> _TRS_SHIFT) & _TRS_MASK)
    w0, w1, _, va, service, subtype, source = TC_HEADER.unpack_from(buf, 0)
    if (va >> _PUS_SHIFT) & _PUS_MASK != P.PUS_VERSION:
        raise PacketDecodeError(f"PUS version {(va >> _PUS_SHIFT) & _PUS_MASK}, expected 2", 6)
    offset = TC_HEADER.size
    key = ((buf[offset] << 8) | buf[offset + 1]) if end - offset >= 2 else None
    data = _decode_body(buf, P.PacketType.TC, service, subtype, key, offset, end,
                        (w0 >> _APID_SHIFT) & _APID_MASK)
    return P.Packet((w0 >> _APID_SHIFT) & _APID_MASK, (w1 >> _SEQ_SHIFT) & _SEQ_MASK, P.PacketType.TC,
                    service, subtype, 0.0, 0, source, data, (w1 >> _FLAGS_SHIFT) & _FLAGS_MASK,
                    (va >> _ACK_SHIFT) & _ACK_MASK, 0)


def _decode_body(buf: Any, ptype: P.PacketType, service: int, subtype: int, key: int | None,
                 offset: int, end: int, apid: int) -> Any:
    pdef = P.find_definition(ptype, service, subtype, key, apid)
    body = bytes(buf[offset:end])
    if pdef is None:
        return body
    try:
        return pdef.from_container(pdef.body.parse(body), subtype)
    except (cs.ConstructError, TelemetryError, ValueError, UnicodeError) as exc:
        raise PacketDecodeError(f"{pdef.name}: bad application data: {exc}", offset) from exc
