"""The telemetry emitter the executive calls each cycle.

It owns the per-APID sequence counters and PUS message type counters, stamps CUC time
(``time_utc = epoch_utc + t_mission``), encodes, and hands the bytes to every sink. Nothing here
raises into the flight loop: an encoding failure (a value out of range) is counted in
``encode_errors`` and the packet dropped; sinks count their own failures.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ...hal.interfaces import Frame, Layout
from ..errors import TelemetryError
from . import packets as P
from .fastcodec import MessageCounters, SequenceCounters, build_tm, fast_encode
from .layoutjson import layout_to_json
from .rawencode import HousekeepingEncoder, RawSampleEncoder
from .sinks import Sink

#: mission seconds between two layout reports (docs/architecture.md, Telemetry: "repeated every 60 s")
LAYOUT_PERIOD_S = 60.0


class TelemetryEmitter:
    """Encodes reports and sends them to ``sinks``.

    Args:
        sinks: where packets go (see sinks.py); more can be added with :meth:`add_sink`.
        layout: the device layout (sizes the raw-samples encoder once).
        epoch_utc: UTC seconds since 1970 at mission time 0.
        dest_id: PUS destination id in TM secondary headers.

    Each ``emit_*`` returns the packet bytes (``b""`` if it could not be encoded).
    """

    def __init__(self, sinks: Iterable[Sink], layout: Layout, epoch_utc: float, dest_id: int = 0) -> None:
        self.sinks: list[Sink] = list(sinks)
        self.layout = layout
        self.epoch_utc = float(epoch_utc)
        self.dest_id = dest_id
        self.seq = SequenceCounters()
        self.msg = MessageCounters()
        self._raw = RawSampleEncoder(layout, dest_id=dest_id, seq_counters=self.seq, msg_counters=self.msg)
        self._hk = HousekeepingEncoder(len(layout.modules), len(layout.valves), dest_id=dest_id,
                                       seq_counters=self.seq, msg_counters=self.msg)
        self._layout_json = layout_to_json(layout)
        self.next_layout_t = 0.0  #: mission time at which :meth:`emit_layout_if_due` sends again
        self.packets = 0
        self.bytes = 0
        self.encode_errors = 0
        self.sink_errors = 0
        self.last_error = ""

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def _send(self, packet: bytes) -> bytes:
        self.packets += 1
        self.bytes += len(packet)
        for sink in self.sinks:
            try:
                sink.write(packet)
            except Exception as exc:  # noqa: BLE001 - a third-party sink must not stop the loop
                self.sink_errors += 1
                self.last_error = f"sink {type(sink).__name__}: {exc}"
        return packet

    def _encode_error(self, what: str, exc: Exception) -> bytes:
        self.encode_errors += 1
        self.last_error = f"{what}: {exc}"
        return b""

    def emit_raw(self, frame: Frame, cycle: int, t_mission: float) -> bytes:
        """The raw-samples packet of this cycle (3/25 SID 2), from the hal Frame."""
        try:
            packet = self._raw.encode(frame, cycle, self.epoch_utc + t_mission)
        except TelemetryError as exc:
            return self._encode_error("raw samples", exc)
        return self._send(packet)

    def emit_hk_values(self, head: Sequence[int], modules: Sequence[Any], valves: Sequence[Any],
                       t_mission: float) -> bytes:
        """The housekeeping report from flat values (see :class:`rawencode.HousekeepingEncoder`):
        what the flight loop calls at 1 Hz, without building report objects."""
        try:
            packet = self._hk.encode(head, modules, valves, self.epoch_utc + t_mission)
        except TelemetryError as exc:
            return self._encode_error("Housekeeping", exc)
        return self._send(packet)

    def emit(self, data: Any, t_mission: float) -> bytes:
        """Any TM report dataclass (Housekeeping, Event, LayoutReport, VerificationReport,
        AliveReport) with the next sequence and message counters."""
        if type(data) is P.Housekeeping and len(data.modules) == self._hk.n_modules \
                and len(data.valves) == self._hk.n_valves:
            try:
                packet = self._hk.encode_report(data, self.epoch_utc + t_mission)
            except TelemetryError as exc:
                return self._encode_error("Housekeeping", exc)
            return self._send(packet)
        try:
            pdef = P.definition_for(data)
            packet = P.Packet(pdef.apid, self.seq.peek(pdef.apid), pdef.packet_type, pdef.service,
                              pdef.subtype, self.epoch_utc + t_mission,
                              self.msg.next(pdef.service, pdef.subtype), self.dest_id, data)
            raw = fast_encode(packet)
        except TelemetryError as exc:
            return self._encode_error(type(data).__name__, exc)
        self.seq.next(pdef.apid)  # consumed only by a packet actually sent: no gaps in the count
        return self._send(raw)

    def emit_body(self, apid: int, service: int, subtype: int, body: bytes, t_mission: float) -> bytes:
        """A TM packet around application data ``body`` already built (the verification
        reports' fast path, :mod:`hullwatch.firmware.commanding.reports`), with the next
        sequence and message counters."""
        try:
            packet = build_tm(apid, self.seq.peek(apid), service, subtype, self.msg.next(service, subtype),
                              self.dest_id, self.epoch_utc + t_mission, body)
        except TelemetryError as exc:
            return self._encode_error(f"TM {service}/{subtype}", exc)
        self.seq.next(apid)
        return self._send(packet)

    def record_telecommand(self, packet: bytes) -> None:
        """Write a received telecommand packet to the sinks that keep telecommands (those with a
        true ``records_telecommands`` attribute: capture files), so a capture holds the commands
        in the order they were applied."""
        for sink in self.sinks:
            if getattr(sink, "records_telecommands", False):
                try:
                    sink.write(packet)
                except Exception as exc:  # noqa: BLE001 - a third-party sink must not stop the loop
                    self.sink_errors += 1
                    self.last_error = f"sink {type(sink).__name__}: {exc}"

    def emit_hk(self, hk: P.Housekeeping, t_mission: float) -> bytes:
        return self.emit(hk, t_mission)

    def emit_event(self, event: P.Event, t_mission: float) -> bytes:
        return self.emit(event, t_mission)

    def emit_layout(self, layout: Layout | None, t_mission: float) -> bytes:
        """The layout report (3/25 SID 3) of ``layout`` (None: the emitter's own); schedules the
        next one :data:`LAYOUT_PERIOD_S` later."""
        text = self._layout_json if layout is None else layout_to_json(layout)
        self.next_layout_t = t_mission + LAYOUT_PERIOD_S
        return self.emit(P.LayoutReport(self.epoch_utc, text), t_mission)

    def emit_layout_if_due(self, t_mission: float) -> bytes:
        """Send the layout report at the first call and every 60 s of mission time after."""
        if t_mission >= self.next_layout_t:
            return self.emit_layout(None, t_mission)
        return b""

    def health(self) -> dict[str, int]:
        return {"packets": self.packets, "bytes": self.bytes, "encode_errors": self.encode_errors,
                "sink_errors": self.sink_errors + sum(getattr(s, "errors", 0) for s in self.sinks)}

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                self.sink_errors += 1
                self.last_error = f"closing {type(sink).__name__}: {exc}"
