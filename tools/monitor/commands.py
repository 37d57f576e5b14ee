"""Commanding from the page: telecommands sent to the flight software's TC link, each followed by
its service 1 verification reports as they come back in the telemetry the monitor receives.

Two actions (docs/monitor.md): acknowledge alarms (8/1 function 3, an event id or 0 for all) and
set the FDIR mode (8/1 function 2). Each is encoded through the packet declarations
(:func:`~hullwatch.firmware.telemetry.make_packet`, :func:`~hullwatch.firmware.telemetry.encode`;
APID 100, all acknowledgement flags, source id :data:`MONITOR_SOURCE_ID`) and sent as one UDP
datagram. The action's record lists every report about its request (matched by APID and sequence
count) with the time since sending; it ends at completion (1/7), at a failure report (1/2, 1/4,
1/8), or, if nothing about it arrives for :data:`REPORT_TIMEOUT_S`, as ``no report``: an action
is never silent.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from ...firmware.errors import TelemetryError
from ...firmware.telemetry import (
    Acknowledge,
    EventId,
    FdirMode,
    SetFdirMode,
    VerificationError,
    VerificationReport,
    VerificationStage,
    encode,
    make_packet,
)
from ..errors import InputError
from .eventlog import iso_utc

#: source id of the monitor's telecommands (``hullwatch command`` uses 16)
MONITOR_SOURCE_ID = 17

#: an action with no report about it for this long ends as ``no report``
REPORT_TIMEOUT_S = 5.0

#: actions kept on the page (oldest dropped first)
KEEP = 50

# record keys for bookkeeping only (not in /api/state)
_PRIVATE = ("sent_s", "last_s", "events_before", "event_id")

def _stage_name(stage: int) -> str:
    try:
        return VerificationStage(stage).name.lower().replace("_", " ")
    except ValueError:
        return f"stage {stage}"


def _error_name(code: int) -> str:
    try:
        return VerificationError(code).name
    except ValueError:
        return str(code)


def build(action: dict[str, Any]) -> tuple[Any, str]:
    """The telecommand dataclass and a line describing it for an action from the page:
    ``{"command": "ack", "event": 0 | id | "NAME"}`` or ``{"command": "mode", "mode":
    "active" | "passive" | "off"}``, and no other key. Raises InputError naming the field that is
    wrong."""
    kind = action.get("command")
    allowed = {"ack": {"command", "event"}, "mode": {"command", "mode"}}.get(kind)
    extra = sorted(set(action) - allowed) if allowed is not None else []
    if extra:  # (the record keeps the action: nothing else may ride along in it)
        raise InputError(f"{extra[0][:40]}: not a key of a \"{kind}\" action; expected "
                         + ", ".join(sorted(allowed)))  # type: ignore[arg-type]
    if kind == "ack":
        event = action.get("event", 0)
        if isinstance(event, str) and not event.isdigit():
            try:
                event_id = int(EventId[event.upper()])
            except KeyError:
                raise InputError(f"event: no event named {event[:40]!r}") from None
        elif isinstance(event, int) and not isinstance(event, bool) or isinstance(event, str):
            event_id = int(event)
        else:
            raise InputError(f"event: expected an event id, a name or 0, got {str(event)[:40]}")
        if not 0 <= event_id <= 0xFFFF:
            raise InputError(f"event: expected an event id 0..65535 (0: all), got {event_id}")
        what = "all alarms" if event_id == 0 else (EventId(event_id).name if event_id in EventId._value2member_map_
                                                   else f"event {event_id}")
        return Acknowledge(event_id), f"acknowledge {what}"
    if kind == "mode":
        name = str(action.get("mode", "")).upper()
        if name not in FdirMode.__members__:
            raise InputError(f"mode: expected active, passive or off, got {action.get('mode')!r}")
        return SetFdirMode(FdirMode[name]), f"set FDIR mode {name}"
    raise InputError(f"command: expected \"ack\" or \"mode\", got {kind!r}")


class Commander:
    """Sends the page's actions to ``(host, port)`` and keeps their records. Not thread-safe:
    the caller holds the state's lock around :meth:`send`, :meth:`report` and :meth:`records`."""

    def __init__(self, host: str, port: int, source_id: int = MONITOR_SOURCE_ID) -> None:
        self.address = (host, port)
        self.url = f"udp://{host}:{port}"
        self.source_id = source_id
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        # from the clock, so that a restarted monitor does not reuse request ids still in flight
        self.seq = (time.time_ns() // 1_000_000) & 0x3FFF
        self._records: list[dict[str, Any]] = []
        self._by_request: dict[tuple[int, int], dict[str, Any]] = {}
        self.count = 0

    def send(self, action: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        """Send one action; its record (``id``, ``text``, ``apid``, ``seq``, ``sent_utc``,
        ``stages``, ``outcome``). Raises InputError for a bad action. A send that the operating
        system refuses is recorded as outcome ``not sent`` with the reason."""
        command, text = build(action)
        now = time.time() if now is None else now
        seq = self.seq
        self.seq = (seq + 1) & 0x3FFF
        try:
            packet = make_packet(command, seq=seq, dest_id=self.source_id, ack_flags=0b1111)
            raw = encode(packet)
        except TelemetryError as exc:
            raise InputError(f"cannot encode {text}: {exc}") from exc
        record: dict[str, Any] = {"id": self.count, "text": text, "apid": packet.apid, "seq": seq,
                                  "to": self.url, "sent_utc": iso_utc(now), "sent_s": now, "last_s": now,
                                  "stages": [], "outcome": "sent", "action": dict(action)}
        self.count += 1
        try:
            self._sock.sendto(raw, self.address)
        except OSError as exc:
            record["outcome"] = "not sent"
            record["error"] = f"{exc.strerror or exc}"
        if isinstance(command, Acknowledge):
            record["event_id"] = command.event_id
        self._records.append(record)
        self._by_request[(packet.apid, seq)] = record
        while len(self._records) > KEEP:
            old = self._records.pop(0)
            self._by_request.pop((old["apid"], old["seq"]), None)
        return record

    def report(self, report: VerificationReport, now: float | None = None) -> dict[str, Any] | None:
        """Attach a service 1 report to the action it is about; that action's record, or None
        when it is about a request this monitor did not send."""
        record = self._by_request.get((report.request_apid, report.request_seq))
        if record is None:
            return None
        now = time.time() if now is None else now
        stage = int(report.stage)
        failed = stage in (2, 4, 8)
        entry: dict[str, Any] = {"stage": f"1/{stage}", "text": _stage_name(stage),
                                 "rtt_s": round(now - record["sent_s"], 4), "failed": failed}
        if failed:
            entry["error_code"] = report.error_code
            entry["error"] = _error_name(report.error_code)
            detail = getattr(report, "detail", "")
            if detail:
                entry["detail"] = detail
            entry["text"] += f": {entry['error']}" + (f" ({detail})" if detail else "")
        record["stages"].append(entry)
        record["last_s"] = now
        if failed:
            record["outcome"] = "failed"
        elif stage == int(VerificationStage.COMPLETION_SUCCESS):
            record["outcome"] = "completed"
        elif record["outcome"] == "sent":
            record["outcome"] = "in progress"
        return record

    @staticmethod
    def public(record: dict[str, Any]) -> dict[str, Any]:
        """``record`` without the keys kept for bookkeeping."""
        return {k: v for k, v in record.items() if k not in _PRIVATE}

    def records(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every kept action, newest last; one still open with no report for
        :data:`REPORT_TIMEOUT_S` is closed as ``no report``."""
        now = time.time() if now is None else now
        for r in self._records:
            if r["outcome"] in ("sent", "in progress") and now - r["last_s"] > REPORT_TIMEOUT_S:
                r["outcome"] = "no report"
        return [self.public(r) for r in self._records]

    def close(self) -> None:
        self._sock.close()
