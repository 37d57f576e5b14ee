"""The closed loop as a library call: :func:`run_scenario` -> :class:`RunResult`.

Used by ``hullwatch run``, the HIL plugin (which passes a Device wrapping a serial board and a
plant), the capture re-runner (a ``replay://`` device) and Monte Carlo campaigns (one call per case
in worker processes: quiet, no printing, everything in the result is plain data and picklable).

Ground truth: when the device is a simulated one (it has a ``scenario``), the result carries the
scheduled leak starts and a verdict that compares FDIR's decisions with the truth.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from ...firmware.commanding.service import SOURCE_SEQUENCE
from ...firmware.commanding.udp_link import UdpTcLink
from ...firmware.errors import CommandLinkError, TelemetryError
from ...firmware.fdir.params import FdirParams, default_params, load_params, params_from_dict
from ...firmware.flight import FlightSoftware
from ...firmware.telemetry.sinks import CaptureSink, Sink, UdpSink
from ...firmware.types import EventId, FdirMode, Severity
from ...hal import open as open_device
from ...hal.clock import Clock, WallClock
from ...hal.interfaces import Device
from ...sim.scenario import Scenario, load_scenario, scenario_from_dict
from ..errors import DeviceProblem, InputError
from .result import LeakTruth, RunEvent, RunResult
from .verdict import fmt_dt, judge

#: Mission seconds between two progress callbacks.
PROGRESS_EVERY_S = 60.0

#: Events that mean "a leak is suspected or confirmed".
LEAK_EVENTS = ("LEAK_SUSPECTED", "LEAK_CONFIRMED", "RAPID_DEPRESS")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) during :func:`run_scenario`. ``result`` holds what the run did
    up to there (events, cycles, ``simulated_s``); the capture was closed, every packet in it whole."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"interrupted at mission time {result.simulated_s:.1f} s")
        self.result = result


class PacedClock(Clock):
    """A lockstep device clock paced by a wall clock: ``sleep_until(t)`` waits until wall time
    reaches ``t`` (times ``speed``) and then advances the device (the plant) to ``t``."""

    #: Wall seconds before a deadline at which sleeping stops and spinning starts. A sleep may
    #: overshoot by a scheduler tick, and yielding (``sleep(0)``) on a busy machine can give the
    #: core away for a whole time slice, so the last stretch is a plain spin on perf_counter.
    SPIN_S = 0.002

    def __init__(self, device_clock: Clock, speed: float = 1.0) -> None:
        start = device_clock.now()
        self.inner = device_clock
        self.wall = WallClock(speed, start=start)
        self.speed = speed

    def now(self) -> float:
        return self.wall.now()

    def sleep_until(self, t: float) -> None:
        # Advance the plant first (its cost then falls in the wait, not in the lateness).
        self.inner.sleep_until(t)
        wall = self.wall
        remaining = (t - wall.now()) / self.speed
        if remaining > self.SPIN_S:
            time.sleep(remaining - self.SPIN_S)
        while wall.now() < t:
            pass


def _resolve_params(fdir_params: Any) -> FdirParams:
    if fdir_params is None:
        return default_params()
    if isinstance(fdir_params, FdirParams):
        return fdir_params
    if isinstance(fdir_params, Mapping):
        return params_from_dict(fdir_params, "<fdir_params>")
    if isinstance(fdir_params, (str, os.PathLike)):
        return load_params(fdir_params)
    raise InputError(f"fdir_params: expected a TOML path, a dict or FdirParams, got {type(fdir_params).__name__}")


def _resolve_mode(mode: Any) -> FdirMode:
    if isinstance(mode, FdirMode):
        return mode
    if isinstance(mode, str):
        try:
            return FdirMode[mode.upper()]
        except KeyError:
            raise InputError(f"mode: expected active, passive or off, got {mode!r}") from None
    return FdirMode(int(mode))


def _open(device_or_url: Device | str, scenario: Any, seed: int | None) -> tuple[Device, bool]:
    """(device, opened_here)."""
    if isinstance(device_or_url, Device):
        return device_or_url, False
    url = str(device_or_url)
    options: dict[str, Any] = {}
    if seed is not None:
        options["seed"] = seed
    if url.lower().startswith("sim://"):
        if scenario is not None:
            if isinstance(scenario, Mapping):
                scenario = scenario_from_dict(dict(scenario), "<scenario>")
            elif not isinstance(scenario, Scenario):
                scenario = load_scenario(os.fspath(scenario))
            options["scenario"] = scenario
        elif url.lower() in ("sim://", "sim:"):
            url = "sim://soyuz-ms09"
        return open_device(url, **options), True
    if scenario is not None:
        # A board (or any non-sim device) with a scenario: hardware in the loop.
        # deferred: the board link and codecs (~25 ms); sim runs and campaign workers do without
        from ..board.hil_device import open_hil_device

        return open_hil_device(url, scenario=scenario, seed=seed), True
    return open_device(url, **options), True


def open_run_device(device_url: str, scenario: Any = None, seed: int | None = None) -> Device:
    """Open the device :func:`run_scenario` would run on for ``device_url``: ``sim://`` (with
    ``scenario``, a name, path, mapping or Scenario, if given; ``sim://`` alone is soyuz-ms09), a
    board URL with a scenario (the HIL device: the board stimulated by the simulated plant), or any
    other device URL. The caller closes it.

    Raises what :func:`hullwatch.hal.open`, the scenario loader and
    :func:`hullwatch.tools.board.hil_device.open_hil_device` raise.
    """
    return _open(device_url, scenario, seed)[0]


def _sinks(capture: str | os.PathLike[str] | None, tm_url: str | None, extra: list[Sink]) -> list[Sink]:
    sinks: list[Sink] = list(extra)
    if capture is not None:
        sinks.append(CaptureSink(capture))
    if tm_url:
        parts = urlsplit(tm_url)
        if parts.scheme != "udp" or not parts.hostname or not parts.port:
            raise InputError(f"--tm {tm_url!r}: expected udp://HOST:PORT")
        sinks.append(UdpSink(parts.hostname, parts.port))
    return sinks


def _truth(device: Device) -> tuple[str | None, int | None, list[LeakTruth], float | None]:
    scenario = getattr(device, "scenario", None)
    if scenario is None:
        return None, getattr(device, "seed", None), [], None
    leaks = [LeakTruth(lk.module, float(lk.start_s), float(lk.diameter_m), float(lk.cd))
             for lk in getattr(scenario, "leaks", ())]
    duration = getattr(scenario, "duration_s", None)
    return getattr(scenario, "name", None), getattr(device, "seed", None), leaks, duration


def run_scenario(device_url_or_device: Device | str = "sim://soyuz-ms09", *, scenario: Any = None,
                 seed: int | None = None, until: float | None = None, fdir_params: Any = None,
                 mode: Any = FdirMode.ACTIVE, capture: str | os.PathLike[str] | None = None,
                 tm_url: str | None = None, clock: Clock | str | None = None, speed: float | None = None,
                 sinks: list[Sink] | None = None,
                 on_event: Callable[[RunEvent], None] | None = None,
                 on_progress: Callable[[float, float], None] | None = None,
                 progress: Callable[[float, float], None] | None = None,
                 progress_every_s: float = PROGRESS_EVERY_S,
                 tc_url: str | None = None, commands: Any = None,
                 on_start: Callable[[FlightSoftware], None] | None = None) -> RunResult:
    """Run the flight software in closed loop on a device until mission time ``until``.

    Args:
        device_url_or_device: a Device, or a URL (``sim://NAME?seed=N``, ``replay://FILE``, a
            serial port...). A URL opened here is closed here; a Device passed in is not.
        scenario: for ``sim://``: a preset name, a TOML path, a Scenario or a scenario dict
            (overrides the URL's target). For a board URL: run hardware-in-the-loop.
        seed: noise seed (sim).
        until: mission seconds to stop at; default: the scenario's duration, a replay device's
            end time, or else required.
        fdir_params: FdirParams, a dict of overrides, or a TOML path.
        mode: FdirMode or "active" / "passive" / "off".
        capture: write every telemetry packet to this file (.tm).
        tm_url: also send telemetry to ``udp://HOST:PORT``.
        clock: None: the device's clock (lockstep for sim: as fast as possible); "wall", or
            ``speed``: pace the device by a wall clock (``speed`` times real time); or a Clock.
        sinks: further telemetry sinks.
        on_event: called with each :class:`RunEvent` as it happens.
        on_progress / progress: ``(mission_time_done, until)`` every ``progress_every_s`` of
            mission time (default 60 s; a paced run wants 1 s).
        tc_url: receive telecommands on ``udp://HOST:PORT`` (``udp://:PORT``: 127.0.0.1) for
            the length of the run (docs/commanding.md).
        commands: a stored sequence: ``(at_s, command)`` pairs or objects with ``at_s`` and
            ``command`` (a telecommand dataclass, or a whole TC packet as bytes, e.g. one
            recorded in a capture), applied at the first cycle due at or after ``at_s``.
        on_start: called with the FlightSoftware before the first cycle (to keep a handle).

    Ctrl-C raises :class:`RunInterrupted` (a KeyboardInterrupt) carrying the partial result.

    Raises:
        InputError: bad arguments (mode, tm or tc URL, no ``until`` for an open-ended device,
            a command that cannot be encoded).
        DeviceProblem: the TC link's address cannot be bound (in use).
        ParameterError: a bad parameter table (names file and key).
        ScenarioError, HalError: from opening the device.
    """
    params = _resolve_params(fdir_params)
    fdir_mode = _resolve_mode(mode)
    progress_cb = on_progress or progress
    device, opened = _open(device_url_or_device, scenario, seed)
    try:
        name, dev_seed, leaks, duration = _truth(device)
        # A recording (a replay device) ends the run when it ends (its on_end); its end_time is
        # an estimate from the end of the file, for progress only.
        recording = until is None and hasattr(device, "on_end")
        progress_end = until
        if recording:
            until = math.inf
            progress_end = max(float(device.end_time), float(device.start_time)) \
                + params.executive.period_s / 2  # type: ignore[attr-defined]
        elif until is None:
            until = duration
        if until is None:
            raise InputError("until: this device has no natural end; give a duration")
        epoch = float(device.epoch_utc)
        result = RunResult(device=device.info.kind + "://" + device.info.name, scenario=name,
                           seed=dev_seed, mode=fdir_mode.name.lower(), epoch_utc=epoch, leaks=leaks,
                           leak_start=min((lk.start_s for lk in leaks), default=None),
                           capture=os.fspath(capture) if capture is not None else None)
        truth_scenario = getattr(device, "scenario", None)
        if truth_scenario is not None and leaks:
            result.must_seal = sorted(smallest_sealable(truth_scenario, {lk.module for lk in leaks}))

        def record(rec: tuple[float, int, int, str, float, float, float]) -> None:
            t, eid, sev, subject, v1, v2, v3 = rec
            ev = RunEvent(t, EventId(eid).name, subject, (v1, v2, v3), Severity(sev).name, epoch + t,
                          flight.event_enabled(eid))
            result.events.append(ev)
            if on_event is not None:
                on_event(ev)

        loop_clock = _choose_clock(device, clock, speed)
        all_sinks = _sinks(capture, tm_url, list(sinks or ()))
        flight = FlightSoftware(device, params, fdir_mode, all_sinks, on_event=record, clock=loop_clock)
        if hasattr(device, "on_end"):  # a recording: the run ends with it, after that cycle
            device.on_end = flight.stop
        if progress_end is None:
            progress_end = until
        try:
            _schedule(flight, commands)
            link = _open_link(tc_url, flight, tm_url)
        except BaseException:
            flight.close()
            raise
        if on_start is not None:
            on_start(flight)
        wall0 = time.perf_counter()
        t_start = loop_clock.now()
        step = max(float(progress_every_s), 1e-3)
        interrupted = False
        try:
            t = t_start
            while t < until - 1e-9:
                t = min(until, t + step) if progress_cb is not None else until
                flight.run(t)
                if progress_cb is not None:
                    progress_cb(t - t_start, max(progress_end, t) - t_start)
                if getattr(device, "exhausted", False):
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if link is not None:
                link.close()
            flight.close()
        result.wall_s = time.perf_counter() - wall0
        ex = flight.executive
        # mission time reached: a paced loop that fell behind skips deadlines (counted, not run)
        result.simulated_s = (ex.cycles + getattr(ex, "skipped", 0)) * ex.period
        t0 = getattr(ex, "t0", 0.0)
        result.end_s = (t0 if t0 == t0 else 0.0) + result.simulated_s  # t0 is NaN if no cycle ran
        result.cycles = ex.cycles
        result.overruns = ex.overruns
        result.max_cycle_time_s = ex.max_cycle_time_s
        result.mean_cycle_time_s = ex.mean_cycle_time_s
        result.valves_commanded = flight.fdir.valves.commands
        result.health = flight.health()
        if not getattr(device, "link_up", True):
            result.stale_data = True
            lost = [e.t for e in result.events if e.name == "LINK_LOST"]
            result.link_lost_at = lost[-1] if lost else None
        _summarise(result, flight)
        if interrupted:
            raise RunInterrupted(result)
        return result
    finally:
        if opened:
            device.close()


def _schedule(flight: FlightSoftware, commands: Any) -> None:
    for entry in commands or ():
        at_s, command = (entry.at_s, entry.command) if hasattr(entry, "at_s") else entry
        try:
            flight.schedule(float(at_s), command, SOURCE_SEQUENCE)
        except TelemetryError as exc:
            raise InputError(f"commands: at {at_s} s: {exc}") from exc


def _open_link(tc_url: str | None, flight: FlightSoftware, tm_url: str | None) -> UdpTcLink | None:
    if not tc_url:
        return None
    if tm_url:
        tc, tm = urlsplit(tc_url), urlsplit(tm_url)
        if tc.port is not None and tc.port == tm.port and (tc.hostname or "127.0.0.1") == (tm.hostname or "127.0.0.1"):
            # Telemetry sent to our own TC socket would come back as telecommands, refused, reported...
            raise InputError(f"--tc {tc_url} and --tm {tm_url}: the same address; telemetry would come "
                             "back in as telecommands")
    try:
        link = UdpTcLink(tc_url, flight.commanding.queue)
    except CommandLinkError as exc:
        if exc.bad_url:
            raise InputError(str(exc)) from exc
        raise DeviceProblem(str(exc)) from exc
    flight.commanding.pollers.append(link.poll)
    return link


def _choose_clock(device: Device, clock: Clock | str | None, speed: float | None) -> Clock:
    if isinstance(clock, Clock):
        return clock
    if clock in (None, "device") and speed is None:
        return device.clock
    if clock not in (None, "wall", "device"):
        raise InputError(f"clock: expected None, 'wall' or a Clock, got {clock!r}")
    rate = 1.0 if speed is None else float(speed)
    if not rate > 0:
        raise InputError(f"speed: expected a number > 0, got {speed!r}")
    if getattr(device.clock, "virtual", False):
        return PacedClock(device.clock, rate)
    return device.clock  # a real device already runs in real time


def _summarise(result: RunResult, flight: FlightSoftware) -> None:
    """Fill the decision fields from the events and the FDIR state, and write the verdict."""
    ev = result.events
    start = result.leak_start
    after = (lambda e: e.t >= start) if start is not None else (lambda e: True)
    for e in ev:
        if e.name in LEAK_EVENTS and result.detected is None and after(e):
            result.detected = e.t
        if e.name == "LEAK_CONFIRMED" and result.confirmed is None and after(e):
            result.confirmed = e.t
            result.leak_rate_kg_s = e.values[0]
        if e.name == "RAPID_DEPRESS" and result.rapid is None and after(e):
            result.rapid = e.t
        if e.name == "LEAK_LOCATED" and result.located is None:
            result.located = e.t
            result.located_module = e.subject
            result.hole_diameter_m = e.values[0]
            result.reserve_time_s = e.values[1]
            result.leak_rate_kg_s = e.values[2]
        if e.name == "SEGMENT_SEALED" and result.sealed is None:
            result.sealed = e.t
    fdir = flight.fdir
    result.sealed_modules = [fdir.module_names[m] for m in range(fdir.n_modules) if fdir.sealed_mask >> m & 1]
    if result.located_module is not None and result.sealed_modules and \
            result.located_module not in result.sealed_modules:
        result.located_module = result.sealed_modules[0]
    result.verdict, result.correct = judge(result)
    if result.stale_data:
        when = f" at {fmt_dt(result.link_lost_at)}" if result.link_lost_at is not None else ""
        result.verdict = (f"STALE DATA: the device link was lost{when} and not restored by the end "
                          f"of the run; made on stale data: {result.verdict}")


def smallest_sealable(scenario: Any, leak_modules: set[str]) -> set[str]:
    """The smallest set of modules that can be sealed around ``leak_modules``: each leaking module
    plus every module joined to it through a connection that cannot close (a valve fault
    ``stuck_open`` in the scenario). This is what a correct isolation seals."""
    stuck = {vf.valve for vf in getattr(scenario, "valve_faults", ()) if vf.kind == "stuck_open"}
    joined: dict[str, set[str]] = {}
    for c in scenario.connections:
        if c.id in stuck:
            a, b = c.modules
            joined.setdefault(a, set()).add(b)
            joined.setdefault(b, set()).add(a)
    seen = set(leak_modules)
    todo = list(leak_modules)
    while todo:
        for other in joined.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def default_capture_name(scenario: str | None, seed: int | None) -> str:
    """``<scenario>-seed<N>.tm`` (the CLI's default capture file, in the current directory)."""
    stem = Path(scenario or "run").stem
    return f"{stem}-seed{seed}.tm" if seed is not None else f"{stem}.tm"
