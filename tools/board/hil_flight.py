"""The flight software under test: stepped in mission time by a HIL test, every wait bounded.

:class:`FlightUnderTest` is the ``flight`` fixture of the pytest plugin (docs/hil.md). It runs
:class:`~hullwatch.firmware.flight.FlightSoftware` on a device whose clock is a lockstep clock
(the plant's), so mission time advances only while a test method runs the loop:

- every wait has a **deadline in mission time**: ``run_for(2)`` from t=0 ends with ``now ==
  2.0``; ``await_event(..., within_s=600)`` either returns at the cycle the event was emitted in
  or fails with ``now == start + 600``; a missed deadline raises :class:`HilTimeout` (an
  AssertionError: the test fails) listing the events and telemetry seen so far;
- every wait also has a **guard in wall time**: the loop of one test may use at most
  ``wall_timeout_s`` wall seconds in total; past it the wait fails with
  :class:`WallClockTimeout`. The guard is checked after every cycle and, in the main thread, by
  a SIGALRM backstop ``ALARM_GRACE_S`` later for a cycle that blocks (a link that stops
  answering mid-write), so nothing hangs;
- everything the flight software sends is kept in :attr:`FlightUnderTest.tm`
  (:class:`~hullwatch.tools.board.hil_history.TelemetryHistory`) and, with ``capture=PATH``, written
  to a capture file that ``hullwatch decode/plot/rerun`` read.

Mission times the methods take and return are seconds, rounded to the microsecond.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from ...firmware.executive import RateGroup
from ...firmware.flight import FlightSoftware
from ...firmware.telemetry import packets as P
from ...firmware.telemetry.sinks import CallbackSink, CaptureSink, Sink
from ...firmware.types import EventId, FdirMode, ModuleStatus, Severity
from . import hil_commands
from .hil_report import DEFAULT_WALL_TIMEOUT_S
from .hil_history import RAW_HISTORY_PACKETS, SeenEvent, TelemetryHistory, TmPacket, TmSample, mission_time

#: Wall seconds after the budget at which the SIGALRM backstop interrupts a blocked cycle.
ALARM_GRACE_S = 2.0
#: Two mission times closer than this (s) are the same time on the cycle grid.
_GRID_EPS = 1e-6

Since = float | SeenEvent | None


class HilTimeout(AssertionError):
    """A wait's mission-time deadline passed without what it waited for (the test fails).

    Attributes: ``t`` (mission s when it gave up), ``history`` (what was seen), ``capture``
    (the capture file path, or None)."""

    def __init__(self, message: str, t: float, history: TelemetryHistory, capture: str | None) -> None:
        super().__init__(message)
        self.t = t
        self.history = history
        self.capture = capture


class WallClockTimeout(HilTimeout):
    """The test's flight loop used its whole wall-clock budget (a stalled link, a slow board)."""


class _WallAlarm(BaseException):
    """Raised by the SIGALRM backstop inside a blocked cycle. A BaseException so that the
    executive's per-cycle ``except Exception`` cannot swallow it."""


class FlightUnderTest:
    """The flight software running on ``device``, stepped by the test (see the module docstring).

    Args:
        device: a hal Device with a lockstep clock (the HIL device, or sim://).
        params, mode: FDIR table and initial mode (defaults: built-in table, ACTIVE).
        capture: path of a capture file to write every packet to (None: none).
        wall_timeout_s: wall-clock budget of this test's loop, s (None: unbounded).
        raw_history: raw-sample packets kept in :attr:`tm` (a ring).

    Attributes: ``device``, ``software`` (the FlightSoftware), ``tm`` (the history),
    ``capture_path``, ``wall_timeout_s``, ``wall_s`` (wall time used by the loop so far),
    ``mission_s`` (mission time run so far), ``cycle_hooks`` (callables run after every cycle).
    """

    def __init__(self, device: Any, params: Any = None, mode: Any = None, *,
                 capture: str | os.PathLike[str] | None = None,
                 wall_timeout_s: float | None = DEFAULT_WALL_TIMEOUT_S,
                 raw_history: int = RAW_HISTORY_PACKETS) -> None:
        self.device = device
        self.tm = TelemetryHistory(device.layout, raw_history)
        self.capture_path = os.fspath(capture) if capture is not None else None
        sinks: list[Sink] = [CallbackSink(self._on_packet)]
        if self.capture_path is not None:
            sinks.append(CaptureSink(self.capture_path))
        self.software = FlightSoftware(device, params, mode if mode is not None else FdirMode.ACTIVE,
                                       sinks=sinks, on_event=self._on_event)
        self._clock = self.software.executive.clock
        self.software.executive.groups.append(RateGroup("hil-guard", 1, self._guard))
        self.wall_timeout_s = wall_timeout_s
        #: Callables run after every cycle, in the loop's thread (a relay's ``sync``...).
        self.cycle_hooks: list[Callable[[], None]] = []
        self.wall_s = 0.0
        self.mission_s = 0.0
        self._closed = False
        self._watch: Callable[[Any], bool] | None = None
        self._matched: Any = None
        self._watch_error: BaseException | None = None
        self._wall_deadline = float("inf")
        self._wall_hit = False

    # -- what the test reads -----------------------------------------------------------------

    @property
    def now(self) -> float:
        """Mission time, s (microsecond resolution)."""
        return mission_time(self._clock.now())

    @property
    def events(self) -> list[SeenEvent]:
        """Every FDIR event seen since the start (or :meth:`clear_history`), oldest first."""
        return self.tm.events

    @property
    def cycles(self) -> int:
        """Cycles the flight software has run."""
        return self.software.executive.cycles

    def module_status(self, module: str) -> ModuleStatus:
        """``module``'s status in the latest housekeeping. Raises KeyError, LookupError."""
        return self.tm.module_status(module)

    def clear_history(self) -> None:
        """Forget the packets and events seen so far: later ``assert_*`` calls look only at
        what comes after (numbering and the capture file go on)."""
        self.tm.clear()

    def telecommand(self, command: Any) -> bool:
        """Queue a telecommand (``ValveCommand``, ``SetFdirMode``, ``Acknowledge``,
        ``LoadFdirParams``) for the next cycle. False if the bounded queue is full."""
        return self.software.telecommand(command)

    # -- running -----------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        """Run the loop for ``seconds`` of mission time: afterwards ``now`` is exactly the
        start plus ``seconds``. Raises ValueError for a time that is negative or not finite,
        TypeError for one that is not a number, WallClockTimeout."""
        seconds = _duration("run_for", "seconds", seconds)
        self._advance(self._clock.now() + seconds, None, f"run_for({seconds:g})")

    def run_until(self, t: float) -> None:
        """Run the loop until mission time ``t`` (s); nothing if ``t`` has passed. Raises as
        :meth:`run_for` for a ``t`` that is not a finite number."""
        t = _duration("run_until", "t", t, negative=True)
        if t > self._clock.now():
            self._advance(t, None, f"run_until({t:g})")

    def await_event(self, name: str | EventId, within_s: float, subject: str | None = None, *,
                    since: Since = None) -> SeenEvent:
        """Run until the FDIR event ``name`` (an EventId name: ``"LEAK_LOCATED"``...), with
        ``subject`` if given, is emitted; return it. The loop stops at the end of the cycle it
        was emitted in (``now == event.t``).

        Only events emitted after this call count, or with ``since`` those from mission time
        ``since`` (s) on, or after the event ``since``. Raises :class:`HilTimeout` after
        ``within_s`` mission seconds without it, ValueError for an unknown event name."""
        match = _event_matcher(name, subject)
        found = self._find_events(match, since)
        if found:
            return found[0]
        return self._wait(within_s, lambda x: isinstance(x, SeenEvent) and match(x),
                          f"no {_describe(name, subject)}")

    def assert_event(self, name: str | EventId, subject: str | None = None, within_s: float = 0.0,
                     since: Since = None) -> SeenEvent:
        """The first event ``name`` (with ``subject``) in the history (since ``since``, default
        everything kept); if there is none yet, run up to ``within_s`` mission seconds for it.
        Raises :class:`HilTimeout` listing the events seen."""
        match = _event_matcher(name, subject)
        found = self._find_events(match, 0.0 if since is None else since)
        if found:
            return found[0]
        return self._wait(within_s, lambda x: isinstance(x, SeenEvent) and match(x),
                          f"no {_describe(name, subject)}")

    def assert_no_event(self, name: str | EventId | Iterable[str | EventId], during_s: float = 0.0,
                        subject: str | None = None, since: Since = None) -> None:
        """Run ``during_s`` mission seconds and fail (AssertionError naming the event, the loop
        stopped at its cycle) if the event ``name`` (or any of several names) is emitted. With
        ``since`` the events already seen from then on count too."""
        during_s = _duration("assert_no_event", "during_s", during_s)
        names = [name] if isinstance(name, (str, EventId)) else list(name)
        matchers = [_event_matcher(n, subject) for n in names]

        def match(e: SeenEvent) -> bool:
            return any(m(e) for m in matchers)

        what = " or ".join(_describe(n, subject) for n in names)
        if since is not None:
            seen = self._find_events(match, since)
            if seen:
                raise self._failure(f"unexpected {seen[0]} ({what} since {_since_text(since)})")
        start = self.now
        hit = self._advance(self._clock.now() + during_s,
                            lambda x: isinstance(x, SeenEvent) and match(x), f"assert_no_event({what})")
        if hit is not None:
            raise self._failure(f"unexpected {hit} within {during_s:g} s of mission time from "
                                f"t={start:g} (asserted no {what})")

    def assert_event_sequence(self, items: Iterable[str | EventId | tuple[str | EventId, str]],
                              within_s: float = 0.0, since: Since = None) -> list[SeenEvent]:
        """The events ``items`` (names, or ``(name, subject)`` pairs) in this order, others
        allowed between them, in the history since ``since`` (default everything kept), running
        up to ``within_s`` mission seconds for the rest. Returns the matched events."""
        specs = []
        for i in items:
            if isinstance(i, (str, EventId)):
                specs.append((i, None))
            elif isinstance(i, tuple) and len(i) == 2:
                specs.append((i[0], i[1]))
            else:
                raise ValueError(f"assert_event_sequence: expected event names or (name, subject) "
                                 f"pairs, got {i!r}")
        if not specs:
            raise ValueError("assert_event_sequence: expected at least one event")
        matchers = [_event_matcher(n, s) for n, s in specs]
        got: list[SeenEvent] = []
        for e in self._find_events(lambda e: True, 0.0 if since is None else since):
            if len(got) < len(matchers) and matchers[len(got)](e):
                got.append(e)
        if len(got) == len(matchers):
            return got

        def step(x: Any) -> bool:
            if isinstance(x, SeenEvent) and matchers[len(got)](x):
                got.append(x)
            return len(got) == len(matchers)

        done = ", ".join(str(e) for e in got) or "none of them"
        try:
            self._wait(within_s, step, "")
        except HilTimeout as exc:
            if isinstance(exc, WallClockTimeout):
                raise
            want = " -> ".join(_describe(n, s) for n, s in specs)
            missing = _describe(*specs[len(got)])
            raise self._failure(f"event sequence {want} incomplete: matched {done}; no {missing} "
                                f"within {within_s:g} s of mission time") from exc
        return got

    def assert_telemetry(self, channel: str, predicate: Any, within_s: float = 0.0,
                         since: float | None = None) -> TmSample:
        """The first sample of the named ``channel`` (``"soyuz-om.p1"``, ``"soyuz-om.status"``,
        ``"dm-om.fb"``...; see docs/hil.md) whose value satisfies ``predicate`` (a callable, or a
        value compared with ``==``), in the history since ``since`` (default everything kept),
        running up to ``within_s`` mission seconds for it. Raises KeyError for an unknown
        channel, :class:`HilTimeout` with the channel's latest values."""
        ch = self.tm.channel(channel)
        test = predicate if callable(predicate) else (lambda v: v == predicate)
        for s in self.tm.samples(channel, since):
            if test(s.value):
                return s
        sid = ch.sid

        def watch(x: Any) -> bool:
            return isinstance(x, TmPacket) and x.apid != P.APID_EVENT and _sid_of(x) == sid \
                and test(ch.sample(x).value)

        what = f"no {channel} sample with {_predicate_text(predicate)}"
        try:
            packet = self._wait(within_s, watch, what)
        except HilTimeout as exc:
            if isinstance(exc, WallClockTimeout):
                raise
            recent = self.tm.samples(channel)[-5:]
            shown = ", ".join(f"{_value_text(s.value)}@{s.t:g}" for s in recent) or "none"
            raise self._failure(f"{what} within {within_s:g} s of mission time; latest {channel}: "
                                f"{shown}") from exc
        return ch.sample(packet)

    def await_telemetry(self, predicate: Callable[[Any], bool], within_s: float, *,
                        include_raw: bool = False) -> Any:
        """Run until ``predicate(report)`` is true for a telemetry report sent after this call
        (the decoded application data: Housekeeping, Event, LayoutReport; RawSamples with
        ``include_raw``) and return that report; the loop stops at the end of that cycle.
        Raises :class:`HilTimeout` after ``within_s`` mission seconds."""
        def watch(x: Any) -> bool:
            return isinstance(x, TmPacket) and (include_raw or x.apid != P.APID_RAW) and predicate(x.data)

        return self._wait(within_s, watch, "no telemetry report matched").data

    def send_and_assert_command(self, command: Any, within_s: float = 10.0, *, error: Any = None,
                                stage: str | None = None) -> Any:
        """Send ``command`` through the telecommand path and run until its final service 1 report;
        assert it completed (or, with ``error``, failed with that code, at ``stage`` if given).
        Returns a CommandOutcome (see hullwatch.tools.board.hil_commands)."""
        return hil_commands.send_and_assert_command(self, command, within_s, error=error, stage=stage)

    def wait_for(self, predicate: Callable[[Any], bool], within_s: float,
                 what: str = "no match") -> Any:
        """Run until ``predicate(item)`` is true for a new item of the history: each
        :class:`SeenEvent` and each :class:`TmPacket` as it is sent; return that item (the loop
        stops at the end of its cycle). Raises :class:`HilTimeout` (message: ``what``, then what
        was seen) after ``within_s`` mission seconds."""
        return self._wait(within_s, predicate, what)

    # -- the loop ----------------------------------------------------------------------------

    def _find_events(self, match: Callable[[SeenEvent], bool], since: Since) -> list[SeenEvent]:
        if since is None:
            return []
        if isinstance(since, SeenEvent):
            return [e for e in self.tm.events if e.n > since.n and match(e)]
        return [e for e in self.tm.events if e.t >= mission_time(since) and match(e)]

    def _wait(self, within_s: float, watch: Callable[[Any], bool], what: str) -> Any:
        within_s = _duration("wait", "within_s", within_s)
        start = self.now
        hit = self._advance(self._clock.now() + within_s, watch, what)
        if hit is None:
            raise self._failure(f"{what} within {within_s:g} s of mission time (from t={start:g} "
                                f"to t={self.now:g})")
        return hit

    def _advance(self, until: float, watch: Callable[[Any], bool] | None, what: str) -> Any:
        """Run cycles with deadlines before ``until`` (s). With ``watch``, stop after the cycle
        in which it first returned True for a new event or packet and return that item;
        otherwise put the clock exactly on ``until`` and return None."""
        if self._closed:
            raise RuntimeError("this flight has ended (its test is over): use the flight fixture "
                               "of the test that is running")
        budget = float("inf") if self.wall_timeout_s is None else self.wall_timeout_s - self.wall_s
        if budget <= 0:
            raise self._wall_failure(what)
        t_start = self._clock.now()
        self._watch, self._matched, self._watch_error = watch, None, None
        self._wall_hit = False
        wall0 = time.perf_counter()
        self._wall_deadline = wall0 + budget
        try:
            with _alarm(budget + ALARM_GRACE_S):
                self.software.run(until)
        except _WallAlarm:
            self._wall_hit = True
        finally:
            self._watch = None
            self.wall_s += time.perf_counter() - wall0
            self.mission_s += self._clock.now() - t_start  # (what ran, also when it failed)
        if self._watch_error is not None:
            raise self._watch_error
        if self._wall_hit:
            raise self._wall_failure(what)
        if self._matched is None:
            t_run = self._clock.now()
            self._settle(until)
            self.mission_s += self._clock.now() - t_run
        return self._matched

    def _settle(self, until: float) -> None:
        """Put the clock on ``until``: on the executive's next deadline when that is ``until``
        (so a later run continues exactly on the grid), else on ``until`` itself."""
        ex = self.software.executive
        nxt = ex.t0 + ex.k * ex.period
        self._clock.sleep_until(nxt if abs(nxt - until) <= _GRID_EPS else until)

    def _guard(self, k: int, t: float) -> None:
        for hook in self.cycle_hooks:
            hook()
        if time.perf_counter() > self._wall_deadline:
            self._wall_hit = True
            self.software.executive.stop()

    def _on_packet(self, raw: bytes) -> None:
        packet = self.tm.add_packet(mission_time(self._clock.now()), raw)
        if self._watch is not None and self._matched is None:
            self._check(packet)

    def _on_event(self, rec: tuple) -> None:
        t, eid, sev, subject, v1, v2, v3 = rec
        event = self.tm.add_event(mission_time(t), EventId(eid).name, subject, (v1, v2, v3),
                                  Severity(sev).name)
        if self._watch is not None and self._matched is None:
            self._check(event)

    def _check(self, item: Any) -> None:
        try:
            hit = self._watch(item)  # type: ignore[misc]
        except Exception as exc:  # a test's predicate failed: stop and raise it in the test
            self._watch_error = exc
            self.software.executive.stop()
            return
        if hit:
            self._matched = item
            self.software.executive.stop()

    def _failure(self, message: str) -> HilTimeout:
        text = f"{message}\n{self.tm.summary()}"
        if self.capture_path:
            text += f"\ncapture: {self.capture_path}"
        return HilTimeout(text, self.now, self.tm, self.capture_path)

    def _wall_failure(self, what: str) -> WallClockTimeout:
        health = self.device.health() if hasattr(self.device, "health") else {}
        link = ", ".join(f"{k} {v}" for k, v in health.items()
                         if k in ("link_lost", "reconnects", "failed_reads", "timeouts") and v)
        text = (f"{what}: the test's flight loop used its wall-clock budget of "
                f"{self.wall_timeout_s:g} s (mission time t={self.now:g}, {self.cycles} cycles; "
                f"raise it with @pytest.mark.hil_timeout(S) or --hil-timeout S)"
                + (f"; link: {link}" if link else "") + f"\n{self.tm.summary()}")
        if self.capture_path:
            text += f"\ncapture: {self.capture_path}"
        return WallClockTimeout(text, self.now, self.tm, self.capture_path)

    def close(self) -> None:
        """Close the telemetry sinks (the capture file); the flight runs no more (RuntimeError).
        Idempotent."""
        self._closed = True
        self.software.close()


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise _WallAlarm in this thread after ``seconds`` wall seconds (main thread only; a
    no-op elsewhere or for an unbounded time). Restores any timer that was set before."""
    usable = (seconds != float("inf") and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _WallAlarm()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:
            left = old_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), old_interval)


def _duration(func: str, arg: str, value: Any, negative: bool = False) -> float:
    """``value`` as a float of seconds: TypeError unless a real number, ValueError unless finite
    (and >= 0 unless ``negative``), both naming ``func`` and ``arg``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{func}: expected {arg} as a number of seconds, got {value!r}")
    if not math.isfinite(value) or (value < 0 and not negative):
        raise ValueError(f"{func}: expected {arg} {'finite' if negative else '>= 0 and finite'}, "
                         f"got {value!r}")
    return float(value)


def _event_matcher(name: str | EventId, subject: str | None) -> Callable[[SeenEvent], bool]:
    key = _event_name(name)
    if subject is None:
        return lambda e: e.name == key
    return lambda e: e.name == key and e.subject == subject


def _event_name(name: str | EventId) -> str:
    if isinstance(name, EventId):
        return name.name
    if name not in EventId.__members__:
        near = difflib.get_close_matches(str(name), EventId.__members__, n=3)
        raise ValueError(f"unknown event {name!r}" + (f"; did you mean {', '.join(near)}?" if near else
                         f"; events are {', '.join(EventId.__members__)}"))
    return name


def _describe(name: str | EventId, subject: str | None = None) -> str:
    text = name.name if isinstance(name, EventId) else str(name)
    return f"{text}({subject})" if subject is not None else text


def _since_text(since: Since) -> str:
    return str(since) if isinstance(since, SeenEvent) else f"t={since:g}"


def _sid_of(packet: TmPacket) -> int:
    raw = packet.raw
    return (raw[19] << 8) | raw[20] if packet.service == 3 and len(raw) > 20 else -1


def _predicate_text(predicate: Any) -> str:
    if callable(predicate):
        return f"predicate {getattr(predicate, '__name__', type(predicate).__name__)}"
    return f"value == {_value_text(predicate)}"


def _value_text(value: Any) -> str:
    if hasattr(value, "name") and isinstance(getattr(value, "name"), str) and isinstance(value, int):
        return value.name
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


__all__ = ["ALARM_GRACE_S", "DEFAULT_WALL_TIMEOUT_S", "FlightUnderTest", "HilTimeout", "WallClockTimeout"]
