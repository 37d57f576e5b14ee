"""Telecommand handling in the flight loop: acceptance, execution, verification reports.

At the start of a cycle (before the device is read) :meth:`Commanding.service` releases the
stored commands that are due, takes every packet from the bounded queue and, for each one, in
arrival order:

1. records it in the capture (when it is a well-formed TC: header plausible and CRC good);
2. checks it (:func:`.accept.parse`, then the checks that need the state: valve index, event
   id, structure id, interval, parameter, mode) and sends 1/1 or 1/2 with the error code;
3. executes it. Immediate commands end with 1/7 (or 1/8). Commands that take time send 1/3 (or
   1/4) first: a valve command completes (1/7) when the valve's feedback is within
   ``valves.feedback_tolerance`` of the command, checked after every device read, or fails (1/8)
   after its actuation timeout plus ``valves.timeout_margin_s``; a parameter load or set is
   validated as a whole table (1/3, or 1/4 ``PARAMETERS_INVALID`` with the reason), activated,
   and completes (1/7).

Refusals (queue full) are reported with 1/2 ``QUEUE_FULL``; packets lost beyond the refusal ring
raise ``TELECOMMANDS_LOST``. Nothing here raises into the loop.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import tomllib
from typing import Any

from ..errors import ParameterError, TelemetryError
from ..fdir.params import FdirParams, params_from_dict
from ..telemetry import packets as P
from ..telemetry.fastcodec import fast_decode
from ..telemetry.tc_packets import MAX_ITEMS, MAX_VALUES
from ..types import EventId, FdirMode, IsolationState
from . import parameters as params20
from .accept import Rejection, Request, parse
from .queue import COMMAND_QUEUE, REFUSED_RING, Refusal, TcQueue
from .reports import Reporter

_E = P.VerificationError
_S = P.VerificationStage
_EVENT_IDS = frozenset(int(e) for e in EventId)
#: isolation states in which FDIR owns the valves: manual valve commands are refused in ACTIVE mode
_ISOLATING = frozenset((IsolationState.SPLITTING, IsolationState.OBSERVING, IsolationState.LOCATED))
#: longest housekeeping period a telecommand may set (ms)
MAX_INTERVAL_MS = 3_600_000
#: source ids of the telecommands the flight software builds itself
SOURCE_IN_PROCESS = 1
SOURCE_SEQUENCE = 2
LOAD_SOURCE = "telecommand 8/1 load_fdir_params"


class _PendingValve:
    __slots__ = ("word", "open", "target", "deadline", "t0")

    def __init__(self, word: int, open_: bool, t0: float, deadline: float) -> None:
        self.word = word
        self.open = open_
        self.target = 1.0 if open_ else 0.0
        self.t0 = t0
        self.deadline = deadline


class Commanding:
    """The telecommand service of one :class:`~hullwatch.firmware.flight.FlightSoftware` (the
    ``host``: its layout, FDIR, device, parameters, telemetry and report switches)."""

    def __init__(self, host: Any, capacity: int = COMMAND_QUEUE, refused_capacity: int = REFUSED_RING) -> None:
        self.host = host
        self.queue = TcQueue(capacity, refused_capacity)
        self.reporter = Reporter(host.tm)
        self._schedule: list[tuple[float, int, bytes]] = []
        self._next = 0
        self._order = itertools.count()
        #: called at the start of every cycle before the queue is taken (links that the loop
        #: reads itself: :meth:`UdpTcLink.poll`)
        self.pollers: list[Any] = []
        self._pending: list[_PendingValve | None] = [None] * len(host.layout.valves)
        self.n_pending = 0
        self._seq = 0
        self._seq_lock = threading.Lock()  # encode() may be called from other threads
        self.accepted = 0
        self.rejected = 0
        self.completed = 0
        self.failed = 0
        self.lost_total = 0

    # -- producers ---------------------------------------------------------------------------

    def encode(self, command: Any, source_id: int) -> bytes:
        """A TC packet carrying ``command`` with this service's own sequence count.
        Raises TelemetryError when a field cannot be encoded."""
        with self._seq_lock:
            seq = self._seq
            self._seq = (seq + 1) & 0x3FFF
        try:
            return P.encode(P.make_packet(command, seq=seq, dest_id=source_id, ack_flags=0b1111))
        except Exception as exc:  # noqa: BLE001 - anything a caller passes is turned into one error
            error = exc if isinstance(exc, TelemetryError) else TelemetryError(f"{type(command).__name__}: {exc}")
            error.seq = seq  # type: ignore[attr-defined] - the request id it was given
            if error is exc:
                raise
            raise error from exc

    def refuse_unencodable(self, command: Any, exc: Exception) -> int:
        """Report (1/2 BAD_ARGUMENT at the next cycle) a command that could not be encoded;
        returns the request id it was given (``exc.seq``, set by :meth:`encode`)."""
        word = P.request_word(P.APID_COMMAND, getattr(exc, "seq", 0))
        self.queue.refuse(Refusal(word, _E.BAD_ARGUMENT, " ".join(str(exc).split())))
        return word

    def schedule(self, at_s: float, raw: bytes) -> None:
        """Offer packet ``raw`` to the queue at the first cycle due at or after mission time
        ``at_s`` (stored sequences, re-runs). Several at the same time keep their order."""
        bisect.insort(self._schedule, (float(at_s), next(self._order), bytes(raw)))

    def precheck(self, raw: bytes) -> tuple[int, str]:
        """The acceptance verdict ``(code, detail)`` the loop would give ``raw`` now (code 0:
        accepted). Sends nothing."""
        try:
            self._check(parse(raw))
        except Rejection as rej:
            return rej.code, rej.detail
        return 0, ""

    # -- the loop ----------------------------------------------------------------------------

    def due(self, t: float) -> bool:
        """Anything to do at the start of the cycle at mission time ``t`` (polls the links)."""
        for poll in self.pollers:
            poll()
        return self.queue.pending or (self._next < len(self._schedule)
                                      and self._schedule[self._next][0] <= t + 1e-9)

    def service(self, t: float) -> None:
        """Release due stored commands, then accept and execute everything queued."""
        sched = self._schedule
        while self._next < len(sched) and sched[self._next][0] <= t + 1e-9:
            self.queue.offer(sched[self._next][2])
            self._next += 1
        items, refusals, lost = self.queue.take()
        verify = self.reporter.verify
        for r in refusals:
            self.rejected += 1
            verify(_S.ACCEPTANCE_FAILURE, r.word, t, r.code, r.detail)
        if lost:
            self.lost_total += lost
            self.host.fdir.events.push(t, EventId.TELECOMMANDS_LOST, "tc-link", float(lost),
                                       float(self.lost_total), 0.0)
        for raw in items:
            try:
                self._one(raw, t)
            except Exception as exc:  # noqa: BLE001 - one bad packet never costs the others their reports
                self.rejected += 1
                verify(_S.ACCEPTANCE_FAILURE, int.from_bytes(raw[:4].ljust(4, b"\0"), "big"), t,
                       _E.EXECUTION_FAILED, f"internal error: {type(exc).__name__}: {exc}")

    def _one(self, raw: bytes, t: float) -> None:
        if _recordable(raw):
            self.host.tm.record_telecommand(raw)
        try:
            req = parse(raw)
            self._check(req)
        except Rejection as rej:
            self.rejected += 1
            self.reporter.verify(_S.ACCEPTANCE_FAILURE, int.from_bytes(raw[:4].ljust(4, b"\0"), "big"),
                                 t, rej.code, rej.detail)
            return
        self.accepted += 1
        self.reporter.verify(_S.ACCEPTANCE_SUCCESS, req.word, t)
        try:
            self._execute(req, t)
        except Exception as exc:  # noqa: BLE001 - a command never takes the loop down
            self._fail(req.word, t, _E.EXECUTION_FAILED, f"{type(exc).__name__}: {exc}")

    def check_valves(self, frame: Any, t: float) -> None:
        """After a device read: complete (1/7) or fail (1/8) the valve commands in progress."""
        tol = self.host.params.valves.feedback_tolerance
        fb = frame.valve_fb
        for i, p in enumerate(self._pending):
            if p is None:
                continue
            if abs(fb[i] - p.target) <= tol:
                self._pending[i] = None
                self.n_pending -= 1
                self._complete(p.word, t)
            elif t >= p.deadline - 1e-9:
                self._pending[i] = None
                self.n_pending -= 1
                self._fail(p.word, t, _E.EXECUTION_FAILED,
                           f"valve {self.host.layout.valves[i].id}: feedback {fb[i]:.2f}, commanded "
                           f"{'open' if p.open else 'closed'}, after {t - p.t0:.1f} s")

    # -- checks ------------------------------------------------------------------------------

    def _check(self, req: Request) -> None:
        c = req.command
        host = self.host
        items = getattr(c, "sids", None) or getattr(c, "event_ids", None) or getattr(c, "intervals", None)
        if items is not None and len(items) > MAX_ITEMS:
            raise Rejection(_E.BAD_ARGUMENT, f"{len(items)} items; at most {MAX_ITEMS} in one telecommand")
        if isinstance(c, P.ValveCommand):
            n = len(host.layout.valves)
            if not 0 <= c.valve < n:
                raise Rejection(_E.BAD_ARGUMENT, f"valve index {c.valve}; this station has valves 0..{n - 1}")
            if host.fdir.mode == FdirMode.ACTIVE and host.fdir.isolator.state in _ISOLATING:
                raise Rejection(_E.NOT_ALLOWED_IN_MODE, "FDIR is isolating a leak (mode active): it owns the "
                                "valves; set mode passive first")
        elif isinstance(c, P.Acknowledge):
            if c.event_id and c.event_id not in _EVENT_IDS:
                raise Rejection(_E.BAD_ARGUMENT, f"unknown event id {c.event_id}")
        elif isinstance(c, (P.EnableHousekeeping, P.DisableHousekeeping)):
            _check_sids(c.sids)
        elif isinstance(c, P.OneShotHousekeeping):
            if not c.sids or any(sid not in (P.SID_HOUSEKEEPING, P.SID_LAYOUT) for sid in c.sids):
                raise Rejection(_E.BAD_ARGUMENT, f"structure ids {c.sids}; expected 1 housekeeping or 3 layout")
        elif isinstance(c, P.SetHousekeepingPeriod):
            _check_sids([sid for sid, _ in c.intervals])
            period_ms = round(host.executive.period * 1000)
            for sid, ms in c.intervals:
                if not period_ms <= ms <= MAX_INTERVAL_MS or ms % period_ms:
                    raise Rejection(_E.BAD_ARGUMENT, f"SID {sid}: interval {ms} ms; expected a whole multiple of "
                                    f"the {period_ms} ms cycle, at most {MAX_INTERVAL_MS} ms")
        elif isinstance(c, (P.EnableEvents, P.DisableEvents)):
            if not c.event_ids:
                raise Rejection(_E.BAD_ARGUMENT, "no event id given")
            for e in c.event_ids:
                if e not in _EVENT_IDS:
                    raise Rejection(_E.BAD_ARGUMENT, f"unknown event id {e}")
        elif isinstance(c, (P.ReportParameter, P.SetParameter)):
            try:
                _pid, name = params20.resolve(c.parameter_id, c.name, host.params)
            except params20.UnknownParameter as exc:
                raise Rejection(_E.UNKNOWN_PARAMETER, str(exc)) from exc
            if isinstance(c, P.SetParameter):
                if not 1 <= len(c.values) <= MAX_VALUES:
                    raise Rejection(_E.BAD_ARGUMENT, f"{len(c.values)} values; expected 1..{MAX_VALUES}")
                if len(c.values) != 1 and not params20.takes_list(host.params, name):
                    raise Rejection(_E.BAD_ARGUMENT, f"{name}: {len(c.values)} values; it takes one")

    # -- execution ---------------------------------------------------------------------------

    def _execute(self, req: Request, t: float) -> None:
        c = req.command
        host = self.host
        word = req.word
        if isinstance(c, P.ValveCommand):
            self._valve(word, c.valve, bool(c.open), t)
            return
        if isinstance(c, P.SetFdirMode):
            host.fdir.set_mode(FdirMode(int(c.mode)), t)
        elif isinstance(c, P.Acknowledge):
            host.fdir.acknowledge(t)
        elif isinstance(c, P.LoadFdirParams):
            crc = P.crc16(c.toml_text.encode("utf-8"))
            try:
                params = params_from_dict(tomllib.loads(c.toml_text), LOAD_SOURCE)
            except tomllib.TOMLDecodeError as exc:
                self._start_failed(word, t, f"{LOAD_SOURCE}: not valid TOML: {exc}")
                return
            except ParameterError as exc:
                self._start_failed(word, t, str(exc))
                return
            if not self._activate(word, params, t, crc):
                return
        elif isinstance(c, P.AreYouAlive):
            self.reporter.report(P.AliveReport(), t)
        elif isinstance(c, (P.EnableHousekeeping, P.DisableHousekeeping)):
            on = isinstance(c, P.EnableHousekeeping)
            for sid in c.sids:
                host.set_report_enabled(sid, on)
        elif isinstance(c, P.OneShotHousekeeping):
            for sid in c.sids:
                host.report_now(sid, t)
        elif isinstance(c, P.SetHousekeepingPeriod):
            period_ms = round(host.executive.period * 1000)
            for sid, ms in c.intervals:
                host.set_report_every(sid, ms // period_ms)
        elif isinstance(c, (P.EnableEvents, P.DisableEvents)):
            for e in c.event_ids:
                host.set_event_enabled(e, isinstance(c, P.EnableEvents))
        elif isinstance(c, P.ReportParameter):
            pid, name = params20.resolve(c.parameter_id, c.name, host.params)
            self.reporter.report(P.ParameterReport(pid, name, params20.value_of(host.params, name)), t)
        elif isinstance(c, P.SetParameter):
            pid, name = params20.resolve(c.parameter_id, c.name, host.params)
            try:
                params = params20.with_value(host.params, name, list(c.values))
            except ParameterError as exc:
                self._start_failed(word, t, str(exc))
                return
            if not self._activate(word, params, t, 0):
                return
            self.reporter.report(P.ParameterReport(pid, name, params20.value_of(host.params, name)), t)
        self._complete(word, t)

    def _valve(self, word: int, i: int, open_: bool, t: float) -> None:
        host = self.host
        host.fdir.valves.commanded(i, open_, t)
        host.device.command_valve(i, open_)
        self.reporter.verify(_S.START_SUCCESS, word, t)
        old = self._pending[i]
        if old is not None:
            self.n_pending -= 1
            self._fail(old.word, t, _E.EXECUTION_FAILED,
                       f"valve {host.layout.valves[i].id}: superseded by request {word & 0x3FFF}")
        timeout = host.layout.valves[i].actuation_timeout_s + host.params.valves.timeout_margin_s
        self._pending[i] = _PendingValve(word, open_, t, t + timeout)
        self.n_pending += 1

    def _activate(self, word: int, params: FdirParams, t: float, crc: int) -> bool:
        host = self.host
        period = host.executive.period
        if abs(params.executive.period_s - period) > 1e-12:
            self._start_failed(word, t, f"executive.period_s: cannot change while running "
                               f"(running at {period:g} s; restart with --fdir)")
            return False
        self.reporter.verify(_S.START_SUCCESS, word, t)
        host.activate_params(params, t, crc)
        return True

    def _complete(self, word: int, t: float) -> None:
        self.completed += 1
        self.reporter.verify(_S.COMPLETION_SUCCESS, word, t)

    def _fail(self, word: int, t: float, code: int, detail: str) -> None:
        self.failed += 1
        self.reporter.verify(_S.COMPLETION_FAILURE, word, t, code, detail)

    def _start_failed(self, word: int, t: float, detail: str) -> None:
        self.failed += 1
        self.reporter.verify(_S.START_FAILURE, word, t, _E.PARAMETERS_INVALID, detail)

    def health(self) -> dict[str, int]:
        # "applied" is the name this count had before the service existed (kept for readers).
        return {**self.queue.health(), "accepted": self.accepted, "rejected": self.rejected,
                "applied": self.accepted,
                "completed": self.completed, "failed": self.failed, "in_progress": self.n_pending,
                "scheduled": len(self._schedule) - self._next}


def _check_sids(sids: list[int]) -> None:
    if not sids:
        raise Rejection(_E.BAD_ARGUMENT, "no structure id given")
    for sid in sids:
        if sid not in (P.SID_HOUSEKEEPING, P.SID_RAW_SAMPLES):
            raise Rejection(_E.BAD_ARGUMENT, f"structure id {sid}; expected 1 housekeeping or 2 raw samples")


def _recordable(raw: bytes) -> bool:
    """A TC a capture reader will take back: header plausible, length and CRC right, and its
    application data decodable with the reader's own decoder (a refused ``open flag 2`` or an
    unknown mode would otherwise count as a damaged stretch of the capture)."""
    n = len(raw)
    if n < P.MIN_TC_SIZE:
        return False
    if not (raw[0] & 0xF8 == 0x18 and raw[2] >> 6 == 3 and raw[6] >> 4 == 2
            and ((raw[4] << 8) | raw[5]) + 7 == n and P.crc16(raw) == 0):
        return False
    try:
        fast_decode(raw, verify_crc=False)
    except TelemetryError:
        return False
    return True


class Receipt:
    """What :meth:`FlightSoftware.telecommand` returns: true when the command passed the
    acceptance checks at the time of the call (it is then applied at the start of the next
    cycle, where the same checks run again and the reports are sent).

    Attributes: ``apid``, ``seq`` (the request id's parts; the reports carry them), ``word``
    (the request id as a u32), ``accepted``, ``error`` (VerificationError code, 0 when accepted),
    ``detail`` (the reason of a refusal), ``packet`` (the TC packet's bytes, empty if it could
    not be encoded).
    """

    __slots__ = ("apid", "seq", "word", "accepted", "error", "detail", "packet")

    def __init__(self, word: int, accepted: bool, error: int = 0, detail: str = "", packet: bytes = b"") -> None:
        self.word = word
        self.apid = word >> 16 & 0x7FF
        self.seq = word & 0x3FFF
        self.accepted = accepted
        self.error = error
        self.detail = detail
        self.packet = packet

    def __bool__(self) -> bool:
        return self.accepted

    def __repr__(self) -> str:
        state = "accepted" if self.accepted else f"refused {P.VerificationError(self.error).name}: {self.detail}"
        return f"Receipt(apid={self.apid}, seq={self.seq}, {state})"
