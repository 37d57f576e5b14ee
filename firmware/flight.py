"""The flight software: executive + FDIR + telemetry wired to one device.

Rate groups (on the device's clock, see :mod:`.executive`):

- every cycle (FDIR period, 10 Hz by default): apply queued telecommands, ``device.read(frame)``,
  FDIR step (voting, detection, isolation, valve monitoring; valve commands go to the device),
  the raw-samples packet, and an event packet for every FDIR transition;
- every ``housekeeping_period_s`` (1 Hz): the housekeeping packet (per module voted pressure,
  temperature, inventory, leak rate, status; valves; mode; executive cycle statistics), and the
  layout report at start and every 60 s of mission time.

Telecommands go through a bounded queue and are checked, applied and verified (service 1) at the
start of the next cycle by :class:`~hullwatch.firmware.commanding.Commanding`: from a link
(:meth:`FlightSoftware.submit`, thread-safe, whole TC packets), in process
(:meth:`FlightSoftware.telecommand`) or from a stored sequence (:meth:`FlightSoftware.schedule`).
docs/commanding.md lists the services.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable

from ..hal.clock import Clock
from ..hal.interfaces import Device
from .commanding.queue import COMMAND_QUEUE, Refusal
from .commanding.service import SOURCE_IN_PROCESS, Commanding, Receipt
from .errors import TelemetryError
from .executive import Executive, RateGroup
from .fdir.core import Fdir
from .fdir.events import EventRecord
from .fdir.params import FdirParams, default_params, describe
from .telemetry import packets as P
from .telemetry.emitter import TelemetryEmitter
from .telemetry.sinks import Sink
from .types import EventId, FdirMode, Severity

#: Event subjects are at most this many ASCII characters on the wire.
SUBJECT_MAX = 16


class FlightSoftware:
    """One flight software instance on one device.

    Args:
        device: any hal Device (sim://, serial board, replay://, a HIL device).
        params: the FDIR table (default: the built-in one).
        mode: initial FDIR mode.
        sinks: telemetry sinks (capture file, UDP, callback...).
        on_event: called with every event record ``(t, event_id, severity, subject, v1, v2, v3)``
            as it is sent (the console timeline, the runner). Must not block.
        clock: the executive's clock (default: the device's; a paced clock for real time).
        host_timing: put the host's cycle times and overruns into telemetry (housekeeping
            fields, CYCLE_OVERRUN events). Default: only on a wall clock. On a lockstep clock the
            run is virtual and its telemetry must depend on the scenario and seed alone (same
            seed, byte-identical capture), so the host's timing stays in :meth:`health`.
    """

    def __init__(self, device: Device, params: FdirParams | None = None,
                 mode: FdirMode = FdirMode.ACTIVE, sinks: Iterable[Sink] = (),
                 on_event: Callable[[EventRecord], None] | None = None,
                 clock: Clock | None = None, host_timing: bool | None = None) -> None:
        self.device = device
        self.params = params or default_params()
        self.layout = device.layout
        self.frame = self.layout.new_frame()
        self.on_event = on_event
        self.fdir = Fdir(self.layout, self.params, device.command_valve, mode)
        self.tm = TelemetryEmitter(sinks, self.layout, device.epoch_utc)
        ex = self.params.executive
        self.hk_every = max(1, round(ex.housekeeping_period_s / ex.period_s))
        self.executive = Executive(clock or device.clock, ex.period_s, [
            RateGroup("fdir", 1, self._cycle),
            # Every cycle, so that a telecommand can change the housekeeping period at run
            # time; the group itself skips the cycles that are not due (k % hk_every).
            RateGroup("housekeeping", 1, self._housekeeping),
        ], on_overrun=self._overrun)
        self.host_timing = (not self.executive.virtual) if host_timing is None else host_timing
        #: report switches and periods (service 3) and disabled event ids (service 5)
        self.hk_enabled = True
        self.raw_enabled = True
        self.raw_every = 1
        self._events_off: set[int] = set()
        self.commanding = Commanding(self)
        self._direct_params: deque[FdirParams] = deque(maxlen=COMMAND_QUEUE)
        self._last_overrun_event = -float("inf")
        self.layout_period_s = ex.layout_period_s
        self._next_layout = -float("inf")
        self._hk_modules: list[float | int] = [0.0] * (5 * len(self.layout.modules))
        self._hk_valves: list[float | int] = [0] * (3 * len(self.layout.valves))

    # -- running ----------------------------------------------------------------------------

    def run(self, until_s: float) -> None:
        """Run until mission time ``until_s`` (s). May be called repeatedly to continue."""
        if self._next_layout == -float("inf"):
            # A capture starts with the layout report: it says which channel is which.
            t = self.executive.clock.now()
            self.tm.emit_layout(None, t)
            self._next_layout = t + self.layout_period_s
        self.executive.run(until_s)

    def stop(self) -> None:
        self.executive.stop()

    def close(self) -> None:
        """Close the telemetry sinks and hand the heap back to the collector (see
        :meth:`Executive.close`). Idempotent."""
        self.tm.close()
        self.executive.close()

    def telecommand(self, command: Any) -> Receipt | bool:
        """Send a telecommand in process: any telecommand dataclass of
        :mod:`hullwatch.firmware.telemetry` (ValveCommand, SetFdirMode, Acknowledge,
        LoadFdirParams, AreYouAlive, EnableHousekeeping, SetParameter, ...).

        It is encoded as a TC packet (APID 100, source id 1, this flight software's own sequence
        count), recorded and verified exactly as one from the link: checked and applied at the
        start of the next cycle, with its service 1 reports in telemetry. Returns a
        :class:`~hullwatch.firmware.commanding.Receipt`, true when the command passes the
        acceptance checks now; a refused one (a bad valve index, a full queue...) is false and
        its 1/2 report goes out at the next cycle. Thread-safe; called from another thread while
        the loop runs, the verdict is that of the state at the call (the loop checks again when
        it applies the command, and its reports are what counts).

        A ready :class:`FdirParams` object (no packet form) is activated at the next cycle
        without verification reports; returns False if too many wait.
        """
        if isinstance(command, FdirParams):
            if len(self._direct_params) >= COMMAND_QUEUE:
                return False
            self._direct_params.append(command)
            return True
        cmd = self.commanding
        try:
            raw = cmd.encode(command, SOURCE_IN_PROCESS)
        except TelemetryError as exc:
            word = cmd.refuse_unencodable(command, exc)
            return Receipt(word, False, int(P.VerificationError.BAD_ARGUMENT), str(exc))
        word = int.from_bytes(raw[:4], "big")
        code, detail = cmd.precheck(raw)
        if not cmd.queue.offer(raw):
            return Receipt(word, False, int(P.VerificationError.QUEUE_FULL), "telecommand queue full", raw)
        return Receipt(word, code == 0, code, detail, raw)

    def submit(self, packet: bytes) -> bool:
        """Queue one whole TC packet as received from a link. Thread-safe. False when the queue
        is full (a 1/2 QUEUE_FULL report follows)."""
        return self.commanding.queue.offer(bytes(packet))

    def schedule(self, at_s: float, command: Any, source_id: int = SOURCE_IN_PROCESS) -> None:
        """Apply ``command`` (a telecommand dataclass, or a whole TC packet as bytes) at the
        first cycle due at or after mission time ``at_s``, through the same queue and checks.
        Raises TelemetryError when a dataclass cannot be encoded."""
        raw = bytes(command) if isinstance(command, (bytes, bytearray, memoryview)) \
            else self.commanding.encode(command, source_id)
        self.commanding.schedule(at_s, raw)

    # -- report switches (service 3 and 5) ---------------------------------------------------

    def set_report_enabled(self, sid: int, on: bool) -> None:
        """Enable or disable the periodic report with structure id ``sid`` (1 or 2)."""
        if sid == P.SID_HOUSEKEEPING:
            self.hk_enabled = on
        elif sid == P.SID_RAW_SAMPLES:
            self.raw_enabled = on

    def set_report_every(self, sid: int, cycles: int) -> None:
        """Send the report with structure id ``sid`` every ``cycles`` executive cycles."""
        if sid == P.SID_HOUSEKEEPING:
            self.hk_every = max(1, int(cycles))
        elif sid == P.SID_RAW_SAMPLES:
            self.raw_every = max(1, int(cycles))

    def set_event_enabled(self, event_id: int, on: bool) -> None:
        """Enable or disable the telemetry report of ``event_id`` (FDIR still acts on it)."""
        if on:
            self._events_off.discard(int(event_id))
        else:
            self._events_off.add(int(event_id))

    def event_enabled(self, event_id: int) -> bool:
        return int(event_id) not in self._events_off

    # -- rate groups ------------------------------------------------------------------------

    def _cycle(self, k: int, t: float) -> None:
        cmd = self.commanding
        if cmd.due(t):
            cmd.service(t)
        if self._direct_params:
            while self._direct_params:
                self.activate_params(self._direct_params.popleft(), t, 0)
        frame = self.frame
        self.device.read(frame)
        if cmd.n_pending:
            cmd.check_valves(frame, t)
        fdir = self.fdir
        fdir.step(frame, self.device.link_up)
        if self.raw_enabled and (self.raw_every == 1 or k % self.raw_every == 0):
            self.tm.emit_raw(frame, k, frame.t)
        if fdir.events._count:
            self._drain_events()

    def _drain_events(self) -> None:
        q = self.fdir.events
        on_event = self.on_event
        while True:
            rec = q.pop()
            if rec is None:
                return
            t, eid, sev, subject, v1, v2, v3 = rec
            if not self._events_off or eid not in self._events_off:
                self.tm.emit_event(P.Event(EventId(eid), _ascii(subject), (v1, v2, v3), Severity(sev)), t)
            if on_event is not None:
                on_event(rec)

    def _housekeeping(self, k: int, t: float) -> None:
        if k % self.hk_every:
            return
        tm_t = self.frame.t
        if tm_t >= self._next_layout:
            self.tm.emit_layout(None, tm_t)
            self._next_layout = tm_t + self.layout_period_s
        if not self.hk_enabled:
            if self.fdir.events._count:
                self._drain_events()
            return
        self._emit_housekeeping(k, tm_t)

    def report_now(self, sid: int, t: float) -> None:
        """Send the report with structure id ``sid`` (1 housekeeping, 3 layout) now (TC 3/27)."""
        if sid == P.SID_LAYOUT:
            self.tm.emit_layout(None, t)
        elif sid == P.SID_HOUSEKEEPING:
            self._emit_housekeeping(self.executive.cycles, t)

    def _emit_housekeeping(self, k: int, tm_t: float) -> None:
        fdir = self.fdir
        ex = self.executive
        # Flat value lists sized at start-up, filled in place (no report objects per packet).
        mod = self._hk_modules
        fdir.module_report(mod)
        frame = self.frame
        valves = self._hk_valves
        health = fdir.valves.health
        j = 0
        for i, fb in enumerate(frame.valve_fb):
            valves[j] = frame.valve_cmd[i]
            valves[j + 1] = fb
            valves[j + 2] = health[i]
            j += 3
        link_errors = 0
        for key, v in self.device.health().items():
            if "error" in key or "timeout" in key:
                link_errors += v
        if self.host_timing:
            head = (fdir.mode, fdir.isolator.state, k, min(int(ex.cycle_time_s * 1e6), 0xFFFFFFFF),
                    min(int(ex.max_cycle_time_s * 1e6), 0xFFFFFFFF), ex.overruns,
                    1 if self.device.link_up else 0, link_errors, fdir.sensors_failed())
        else:
            head = (fdir.mode, fdir.isolator.state, k, 0, 0, 0,
                    1 if self.device.link_up else 0, link_errors, fdir.sensors_failed())
        self.tm.emit_hk_values(head, mod, valves, tm_t)
        if fdir.events._count:
            self._drain_events()

    def _overrun(self, t: float, took: float, count: int) -> None:
        interval = self.params.executive.overrun_event_min_interval_s
        if self.host_timing and t - self._last_overrun_event >= interval:
            self._last_overrun_event = t
            self.fdir.events.push(t, EventId.CYCLE_OVERRUN, "executive", took, self.executive.period, float(count))

    # -- parameters ----------------------------------------------------------------------------

    def activate_params(self, params: FdirParams, t: float, crc: int) -> None:
        """Make ``params`` (validated) the active table at mission time ``t``: FDIR restarts its
        detectors (``PARAMS_LOADED`` with ``crc``); housekeeping and layout periods follow it."""
        self.params = params
        self.fdir.load_params(params, t, crc)
        self.layout_period_s = params.executive.layout_period_s
        self.hk_every = max(1, round(params.executive.housekeeping_period_s / self.executive.period))

    _activate = activate_params

    # -- summary ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        ex = self.executive
        return {
            "executive": {"cycles": ex.cycles, "overruns": ex.overruns, "skipped": ex.skipped,
                          "errors": ex.errors, "last_error": ex.last_error,
                          "max_cycle_time_us": int(ex.max_cycle_time_s * 1e6),
                          "mean_cycle_time_us": round(ex.mean_cycle_time_s * 1e6, 2)},
            "fdir": self.fdir.health(),
            "telemetry": self.tm.health(),
            "device": self.device.health(),
            "telecommands": self.commanding.health(),
            "params": describe(self.params),
        }


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")[:SUBJECT_MAX]
