"""The flight loop's own telemetry encoders: one ``struct.pack`` call per packet.

:class:`RawSampleEncoder` encodes the raw-samples packet (3/25 SID 2) every cycle straight from
the hal Frame; :class:`HousekeepingEncoder` encodes the 1 Hz housekeeping report (3/25 SID 1)
straight from flat value lists the flight software keeps. Both pack the whole packet (primary
header, PUS-C TM secondary header, application data) with one precompiled ``struct.Struct``
whose format is derived from the construct declarations in packets.py by
:func:`~hullwatch.firmware.telemetry.fields.flatten` (never typed by hand), then append the
CRC-16/CCITT-FALSE from :data:`packets.crc16` (anycrc, C). The
value order each encoder passes is checked against the declaration's field paths when it is
built, so a change to a declaration fails loudly at start-up instead of writing wrong bytes, and
tests prove byte equality with :func:`packets.encode` (construct).

Cost (2-core test machine, loaded): about 2 us per raw-samples packet of 18 pressure, 12
temperature, 1 flow channel and 6 valves, of which the CRC is 1.2 us; about 4 us per
housekeeping packet.

Counters: both take the emitter's :class:`SequenceCounters` and :class:`MessageCounters`, and
advance them only for a packet actually encoded (no gaps in the sequence count).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Sequence

import construct as cs

from ...hal.interfaces import Frame, Layout
from ..errors import TelemetryError
from . import packets as P
from .fastcodec import MessageCounters, SequenceCounters
from .fields import FlatField, flatten, struct_format

__all__ = ["HousekeepingEncoder", "RawSampleEncoder", "tm_packet_fields"]

_HEADER_PATHS = ["primary.packet_id", "primary.seq_ctrl", "primary.data_length",
                 "secondary.version_status", "secondary.service", "secondary.subtype",
                 "secondary.msg_counter", "secondary.dest_id", "secondary.cuc_seconds",
                 "secondary.cuc_fraction"]

_RAW_PATHS = ["data.sid", "data.cycle", "data.n_pressure", "data.n_temperature", "data.n_flow",
              "data.n_valves", "data.pressure", "data.pressure_status", "data.temperature",
              "data.temperature_status", "data.flow", "data.flow_status", "data.valve_cmd",
              "data.valve_fb", "data.valve_status"]

_MODULE_FIELDS = ("pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s", "status")
_VALVE_FIELDS = ("cmd", "fb", "health")
_HK_HEAD = ("sid", "mode", "isolation_state", "cycle", "cycle_time_us", "max_cycle_time_us", "overruns",
            "link_up", "link_errors", "sensors_failed", "n_modules")


def tm_packet_fields(body: cs.Construct, counts: dict[str, int]) -> list[FlatField]:
    """The flattened fields of a whole TM packet carrying ``body`` (headers and data, no CRC)."""
    decl = cs.Struct("primary" / P.PRIMARY_HEADER, "secondary" / P.TM_SECONDARY_HEADER, "data" / body)
    return flatten(decl, counts)


def _bits_word(field: FlatField, **values: int) -> int:
    """Pack a bit-field word: Const sub-fields take their declared value, the others ``values``."""
    word = 0
    for name, shift, width, const in field.bits:
        value = const if const is not None else values[name]
        if value < 0 or value >> width:
            raise TelemetryError(f"{field.path}.{name}={value} does not fit in {width} bits")
        word |= value << shift
    return word


class _Template:
    """The constant header words of one packet kind, and its struct with u8 arrays as bytes."""

    def __init__(self, fields: list[FlatField], expected_paths: list[str], apid: int, service: int,
                 subtype: int, dest_id: int, time_ref_status: int) -> None:
        paths = [f.path for f in fields]
        if paths != expected_paths:
            raise AssertionError(f"packet declaration changed: fields {paths} (rawencode expects "
                                 f"{expected_paths}); update rawencode.py")
        # u8 arrays (statuses, valve commands) are packed from one bytes value: "18s", not "18B".
        self.struct = struct.Struct(struct_format(
            [FlatField(f.path, "s", f.count, is_array=True) if f.is_array and f.code == "B" else f
             for f in fields]))
        self.size = self.struct.size + P.PEC_SIZE
        by_path = {f.path: f for f in fields}
        if not 0 <= apid < 2048 or not 0 <= dest_id < 65536:
            raise TelemetryError(f"apid {apid} / dest_id {dest_id} out of range")
        self.packet_id = _bits_word(by_path["primary.packet_id"], packet_type=int(P.PacketType.TM), apid=apid)
        self.seq_flags = _bits_word(by_path["primary.seq_ctrl"], seq_flags=P.SEQ_UNSEGMENTED, seq_count=0)
        self.data_length = self.size - P.PRIMARY_HEADER_SIZE - 1
        self.version_status = _bits_word(by_path["secondary.version_status"], time_ref_status=time_ref_status)
        self.service = service
        self.subtype = subtype
        self.dest_id = dest_id


class RawSampleEncoder:
    """Encodes the raw-samples packet (3/25, SID 2) of one layout straight from a hal Frame.

    ``encode(frame, cycle, time_utc) -> bytes`` gives the same bytes as :func:`packets.encode`
    (construct) and raises TelemetryError (and
    advances no counter) when ``time_utc`` is outside the CUC range or NaN, ``cycle`` does not fit
    a u32 or a status is not 0..255.
    """

    def __init__(self, layout: Layout | Sequence[int], *, apid: int = P.APID_RAW, dest_id: int = 0,
                 seq_counters: SequenceCounters | None = None,
                 msg_counters: MessageCounters | None = None, time_ref_status: int = 0) -> None:
        if isinstance(layout, Layout):
            counts = (len(layout.pressure), len(layout.temperature), len(layout.flow), len(layout.valves))
        else:
            counts = tuple(int(c) for c in layout)
        if len(counts) != 4 or any(not 0 <= c <= 255 for c in counts):
            raise TelemetryError(f"raw samples: channel counts {counts} must be four numbers 0..255")
        self.counts = counts
        self.apid = apid
        self._seq = seq_counters if seq_counters is not None else SequenceCounters()
        self._msg = msg_counters if msg_counters is not None else MessageCounters()
        fields = tm_packet_fields(P.RAW_SAMPLES_BODY, dict(zip(
            ("n_pressure", "n_temperature", "n_flow", "n_valves"), counts)))
        self._tpl = _Template(fields, _HEADER_PATHS + _RAW_PATHS, apid, 3, 25, dest_id, time_ref_status)
        self.size = self._tpl.size
        self.encode: Callable[[Frame, int, float], bytes] = self._make_encoder()

    def _make_encoder(self) -> Callable[[Frame, int, float], bytes]:
        # A closure: constants are cell variables (cheaper than attribute look-ups), and the
        # status arrays are turned into bytes only when they change, which is rare.
        tpl = self._tpl
        pack = tpl.struct.pack
        crc16 = P.crc16
        seq_counts = self._seq._counts
        msg_counts = self._msg._counts
        apid = self.apid
        msg_key = (3 << 8) | 25
        w_id, flags, dlen, w_vs, dest = tpl.packet_id, tpl.seq_flags, tpl.data_length, tpl.version_status, tpl.dest_id
        n_p, n_t, n_f, n_v = self.counts
        sid = P.SID_RAW_SAMPLES
        # The u8 arrays last seen (copies) and their bytes: [(lists...), (bytes...)]. One tuple
        # compare per packet checks all five (they rarely change).
        cache: list[tuple[Any, ...]] = [(), ()]

        def encode(frame: Frame, cycle: int, time_utc: float) -> bytes:
            """The packet for this cycle; ``time_utc`` in UTC seconds since 1970 (CUC, 1/65536 s)."""
            seq = seq_counts[apid]
            counter = msg_counts[msg_key]
            u8 = (frame.pressure_status, frame.temperature_status, frame.flow_status, frame.valve_cmd,
                  frame.valve_status)
            try:
                if u8 != cache[0]:
                    cache[1] = tuple(bytes(x) for x in u8)
                    cache[0] = tuple(list(x) for x in u8)
                ps, ts, fs, vc, vs = cache[1]
                secs = int(time_utc // 1.0)
                frac = int((time_utc - secs) * 65536.0)  # < 65536: the product is exact
                body = pack(w_id, flags | seq, dlen, w_vs, 3, 25, counter, dest, secs, frac,
                            sid, cycle, n_p, n_t, n_f, n_v,
                            *frame.pressure, ps, *frame.temperature, ts, *frame.flow, fs, vc,
                            *frame.valve_fb, vs)
            except (struct.error, ValueError, TypeError, OverflowError) as exc:
                raise TelemetryError(f"raw samples, cycle {cycle}, time {time_utc}: {exc}") from exc
            seq_counts[apid] = (seq + 1) & 0x3FFF
            msg_counts[msg_key] = (counter + 1) & 0xFFFF
            return body + crc16(body).to_bytes(2, "big")

        return encode


class HousekeepingEncoder:
    """Encodes the housekeeping report (3/25, SID 1) for ``n_modules`` modules and ``n_valves``
    valves from flat values, with the emitter's counters.

    ``encode(head, modules, valves, time_utc) -> bytes``:

    - ``head``: ``(mode, isolation_state, cycle, cycle_time_us, max_cycle_time_us, overruns,
      link_up (0/1), link_errors, sensors_failed)``, integers;
    - ``modules``: ``5 * n_modules`` values, per module ``pressure_pa, temperature_k,
      inventory_mol, leak_rate_kg_s, status``;
    - ``valves``: ``3 * n_valves`` values, per valve ``cmd, fb, health``.

    Raises TelemetryError (advancing no counter) when a value does not fit its field or a list
    has the wrong length. :meth:`encode_report` takes a :class:`packets.Housekeeping` instead.
    """

    def __init__(self, n_modules: int, n_valves: int, *, apid: int = P.APID_HOUSEKEEPING, dest_id: int = 0,
                 seq_counters: SequenceCounters | None = None,
                 msg_counters: MessageCounters | None = None, time_ref_status: int = 0) -> None:
        if not (0 <= n_modules <= 255 and 0 <= n_valves <= 255):
            raise TelemetryError(f"housekeeping: {n_modules} modules / {n_valves} valves must be 0..255")
        self.n_modules = n_modules
        self.n_valves = n_valves
        self.apid = apid
        self._seq = seq_counters if seq_counters is not None else SequenceCounters()
        self._msg = msg_counters if msg_counters is not None else MessageCounters()
        fields = tm_packet_fields(P.HOUSEKEEPING_BODY, {"n_modules": n_modules, "n_valves": n_valves})
        expected = _HEADER_PATHS + [f"data.{n}" for n in _HK_HEAD] + [
            f"data.modules[{i}].{n}" for i in range(n_modules) for n in _MODULE_FIELDS] + [
            "data.n_valves"] + [f"data.valves[{i}].{n}" for i in range(n_valves) for n in _VALVE_FIELDS]
        self._tpl = _Template(fields, expected, apid, 3, 25, dest_id, time_ref_status)
        self.size = self._tpl.size
        self.encode: Callable[[Sequence[int], Sequence[Any], Sequence[Any], float], bytes] = self._make_encoder()

    def _make_encoder(self) -> Callable[[Sequence[int], Sequence[Any], Sequence[Any], float], bytes]:
        tpl = self._tpl
        pack = tpl.struct.pack
        crc16 = P.crc16
        seq_counts = self._seq._counts
        msg_counts = self._msg._counts
        apid = self.apid
        msg_key = (3 << 8) | 25
        w_id, flags, dlen, w_vs, dest = tpl.packet_id, tpl.seq_flags, tpl.data_length, tpl.version_status, tpl.dest_id
        n_m, n_v = self.n_modules, self.n_valves
        nm5, nv3 = 5 * n_m, 3 * n_v
        sid = P.SID_HOUSEKEEPING

        def encode(head: Sequence[int], modules: Sequence[Any], valves: Sequence[Any], time_utc: float) -> bytes:
            if len(head) != 9 or len(modules) != nm5 or len(valves) != nv3:
                raise TelemetryError(f"housekeeping: expected 9 head values, {nm5} module values and "
                                     f"{nv3} valve values, got {len(head)}, {len(modules)}, {len(valves)}")
            seq = seq_counts[apid]
            counter = msg_counts[msg_key]
            try:
                secs = int(time_utc // 1.0)
                frac = int((time_utc - secs) * 65536.0)
                body = pack(w_id, flags | seq, dlen, w_vs, 3, 25, counter, dest, secs, frac,
                            sid, *head, n_m, *modules, n_v, *valves)
            except (struct.error, ValueError, TypeError, OverflowError) as exc:
                raise TelemetryError(f"housekeeping, time {time_utc}: cannot encode: {exc}") from exc
            seq_counts[apid] = (seq + 1) & 0x3FFF
            msg_counts[msg_key] = (counter + 1) & 0xFFFF
            return body + crc16(body).to_bytes(2, "big")

        return encode

    def encode_report(self, hk: P.Housekeeping, time_utc: float) -> bytes:
        """The packet of a :class:`packets.Housekeeping` (its module and valve counts must match)."""
        modules: list[Any] = []
        for m in hk.modules:
            modules += (m.pressure_pa, m.temperature_k, m.inventory_mol, m.leak_rate_kg_s, int(m.status))
        valves: list[Any] = []
        for v in hk.valves:
            valves += (int(v.cmd), v.fb, int(v.health))
        head = (int(hk.mode), int(hk.isolation_state), hk.cycle, hk.cycle_time_us, hk.max_cycle_time_us,
                hk.overruns, 1 if hk.link_up else 0, hk.link_errors, hk.sensors_failed)
        return self.encode(head, modules, valves, time_utc)
