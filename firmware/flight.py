"""The flight software: executive + FDIR + telemetry wired to one device.

Rate groups (on the device's clock, see :mod:`.executive`):

- every cycle (FDIR period, 10 Hz by default): apply queued telecommands, ``device.read(frame)``,
  FDIR step (voting, detection, isolation, valve monitoring; valve commands go to the device),
  the raw-samples packet, and an event packet for every FDIR transition;
- every ``housekeeping_period_s`` (1 Hz): the housekeeping packet (per module voted pressure,
  temperature, inventory, leak rate, status; valves; mode; executive cycle statistics), and the
  layout report at start and every 60 s of mission time.

Telecommands (:meth:`FlightSoftware.telecommand`) go through a bounded queue and are applied at the
start of the next cycle: valve command, FDIR mode, acknowledge, load FDIR parameters (validated
before activation; a bad table is refused and the old one stays).
"""

from __future__ import annotations

import binascii
import tomllib
from collections import deque
from typing import Any, Callable, Iterable

from ..hal.clock import Clock
from ..hal.interfaces import Device
from .errors import ParameterError
from .executive import Executive, RateGroup
from .fdir.core import Fdir
from .fdir.events import EventRecord
from .fdir.params import FdirParams, default_params, describe, params_from_dict
from .telemetry import packets as P
from .telemetry.emitter import TelemetryEmitter
from .telemetry.sinks import Sink
from .types import EventId, FdirMode, Severity

#: Telecommands waiting for the next cycle; more are refused (counted).
COMMAND_QUEUE = 16
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
            RateGroup("housekeeping", self.hk_every, self._housekeeping),
        ], on_overrun=self._overrun)
        self.host_timing = (not self.executive.virtual) if host_timing is None else host_timing
        self._commands: deque[Any] = deque()
        self.commands_refused = 0
        self.commands_applied = 0
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
        self.tm.close()

    def telecommand(self, command: Any) -> bool:
        """Queue a telecommand (ValveCommand, SetFdirMode, Acknowledge, LoadFdirParams, or a
        ready :class:`FdirParams`). False if the bounded queue is full (counted)."""
        if len(self._commands) >= COMMAND_QUEUE:
            self.commands_refused += 1
            return False
        self._commands.append(command)
        return True

    # -- rate groups ------------------------------------------------------------------------

    def _cycle(self, k: int, t: float) -> None:
        if self._commands:
            self._apply_commands(t)
        frame = self.frame
        self.device.read(frame)
        fdir = self.fdir
        fdir.step(frame, self.device.link_up)
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
            self.tm.emit_event(P.Event(EventId(eid), _ascii(subject), (v1, v2, v3), Severity(sev)), t)
            if on_event is not None:
                on_event(rec)

    def _housekeeping(self, k: int, t: float) -> None:
        tm_t = self.frame.t
        if tm_t >= self._next_layout:
            self.tm.emit_layout(None, tm_t)
            self._next_layout = tm_t + self.layout_period_s
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

    # -- telecommands -----------------------------------------------------------------------

    def _apply_commands(self, t: float) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            self.commands_applied += 1
            if isinstance(cmd, P.ValveCommand):
                if 0 <= cmd.valve < len(self.layout.valves):
                    self.fdir.valves.commanded(cmd.valve, bool(cmd.open), t)
                    self.device.command_valve(cmd.valve, bool(cmd.open))
                else:
                    self.commands_refused += 1
            elif isinstance(cmd, P.SetFdirMode):
                self.fdir.set_mode(FdirMode(int(cmd.mode)), t)
            elif isinstance(cmd, P.Acknowledge):
                self.fdir.acknowledge(t)
            elif isinstance(cmd, P.LoadFdirParams):
                try:
                    params = params_from_dict(tomllib.loads(cmd.toml_text), "telecommand")
                except (ParameterError, tomllib.TOMLDecodeError):
                    self.commands_refused += 1
                    continue
                self._activate(params, t, binascii.crc_hqx(cmd.toml_text.encode(), 0xFFFF))
            elif isinstance(cmd, FdirParams):
                self._activate(cmd, t, 0)
            else:
                self.commands_refused += 1

    def _activate(self, params: FdirParams, t: float, crc: int) -> None:
        self.params = params
        self.fdir.load_params(params, t, crc)
        self.layout_period_s = params.executive.layout_period_s

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
            "telecommands": {"applied": self.commands_applied, "refused": self.commands_refused},
            "params": describe(self.params),
        }


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")[:SUBJECT_MAX]
