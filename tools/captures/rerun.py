"""Re-run the flight software on a capture's recorded samples and compare its events.

:func:`rerun_capture` opens ``replay://CAPTURE``, runs the flight software on it through
:func:`hullwatch.tools.closed_loop.runner.run_scenario` (optionally with other FDIR parameters or another
mode) and compares the events it raises with the event packets in the capture
(:func:`diff_events`). With unchanged parameters there is no difference: the replay device gives
the flight software the recorded float64 samples, statuses and valve states cycle for cycle.

Matching rule: a recorded and a re-run event are the same event when their name and subject are
equal and their mission times differ by at most ``time_tolerance_s`` (default 1 ms: CUC time
stamps have 1/65536 s resolution). Matched events whose values differ (beyond ``value_rtol``)
are listed as changed. Events that depend on the host rather than on the samples (cycle overruns,
link loss and restoration, board configuration loads) are left out of the comparison unless
``compare_all``.

Library only: never prints; :func:`format_diff` makes the text the CLI prints.
"""

from __future__ import annotations

import collections
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ...firmware.telemetry.packets import (APID_EVENT, APID_HOUSEKEEPING, SID_HOUSEKEEPING, SID_LAYOUT, Event,
                                           Housekeeping, LayoutReport)
from ...firmware.telemetry.events import EVENT_DEFS
from ...firmware.types import EventId, FdirMode
from ...hal.errors import DeviceOpenError
from ..closed_loop.runner import run_scenario
from ..commanding.recorded import recorded_commands
from ..errors import InputError
from ..ground.capture import iter_packet_batches
from ..units import field_label as _label
from ..units import subject_text, value_text
from .replay_device import ReplayDevice, mission_time

#: Event names whose occurrence depends on the host (timing, link), not on the recorded samples.
HOST_EVENTS = frozenset({"CYCLE_OVERRUN", "LINK_LOST", "LINK_RESTORED", "CONFIG_LOADED", "TELECOMMANDS_LOST"})

#: recorded events kept in memory at most (a capture's events are few; every list is bounded)
MAX_EVENTS = 200_000


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event: mission time (s), EventId name, subject, the three values (SI units)."""

    t: float
    name: str
    subject: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class EventDiff:
    """``kind`` is ``"recorded only"`` (the re-run did not raise it), ``"rerun only"`` (new in
    the re-run) or ``"changed"`` (same event, other values)."""

    kind: str
    recorded: EventRecord | None
    rerun: EventRecord | None

    @property
    def t(self) -> float:
        return (self.recorded or self.rerun).t  # type: ignore[union-attr]


@dataclass(slots=True)
class RerunReport:
    """The outcome of :func:`rerun_capture`."""

    capture: str
    recorded: int  #: recorded events compared
    rerun: int  #: re-run events compared
    diffs: list[EventDiff]
    ignored: int  #: host events left out of the comparison (both sides)
    cycles: int  #: cycles the flight software ran
    start_time: float
    end_time: float
    skipped_bytes: int = 0  #: damaged bytes the capture reader skipped
    result: Any = field(default=None, repr=False)  #: the runner's RunResult
    mode: str = ""  #: FDIR mode of the re-run
    module_names: list[str] = field(default_factory=list)  #: layout order, to name segment subjects
    time_jumps: int = 0  #: raw samples with a corrupt stamp, placed by their cycle counter
    commands: int = 0  #: recorded telecommands applied again
    timeline_ends: int = 0  #: 1 when another timeline (recording) followed and was not re-run
    layout_changes: int = 0  #: layout reports that differ from the first (the first one is used)

    @property
    def identical(self) -> bool:
        return not self.diffs


def event_record(event: Any) -> EventRecord:
    """An :class:`EventRecord` from a runner event: an object with ``t`` (or ``time``/
    ``mission_time``), ``name`` (or ``event_id``), ``subject`` and ``values``; or a tuple
    ``(t, name, subject, values)``."""
    if isinstance(event, EventRecord):
        return event
    if isinstance(event, tuple):
        t, name, subject, values = event[:4]
    else:
        t = _first_attr(event, ("t", "time", "mission_time", "t_mission"))
        name = getattr(event, "name", None)
        if name is None or not isinstance(name, str):
            name = _first_attr(event, ("event_id", "id"))
        subject = getattr(event, "subject", "")
        values = getattr(event, "values", ())
    name = getattr(name, "name", name)
    return EventRecord(float(t), str(name), str(subject).rstrip("\0"), tuple(float(v) for v in values))


def _first_attr(obj: Any, names: Sequence[str]) -> Any:
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
    raise TypeError(f"{type(obj).__name__} has none of the attributes {', '.join(names)}")


def recorded_events(path: str | os.PathLike[str], *, on_skip: Callable[[Any], None] | None = None
                    ) -> tuple[list[EventRecord], float | None]:
    """The event packets of a capture, in file order, with mission times from the first layout
    report's epoch; and that epoch (None if the capture has none). Streams the file and decodes
    only event and layout packets. Raises InputError when there are more than MAX_EVENTS."""
    epoch: float | None = None
    pending: list[tuple[float, Any]] = []
    out: list[EventRecord] = []
    for batch in iter_packet_batches(os.fspath(path), on_skip=on_skip):
        wanted = batch.select(apid=APID_EVENT, service=5)
        if epoch is None:
            wanted = np.union1d(wanted, batch.select(apid=APID_HOUSEKEEPING, service=3, key=SID_LAYOUT))
        for _i, packet in batch.packets(wanted, on_skip):
            if isinstance(packet.data, LayoutReport):
                if epoch is None:
                    epoch = packet.data.epoch_utc
                continue
            if len(out) + len(pending) >= MAX_EVENTS:
                raise InputError(f"{os.fspath(path)}: more than {MAX_EVENTS} events; cannot compare")
            ev = packet.data
            rec = (packet.time_utc, ev)
            if epoch is None:
                pending.append(rec)  # events before the layout report: timed once the epoch is known
                continue
            out.append(_record(rec, epoch, mission_time))
    if epoch is not None and pending:
        out[:0] = [_record(r, epoch, mission_time) for r in pending]
    return out, epoch


def _record(rec: tuple[float, Any], epoch: float, mission_time: Callable[[float, float], float]) -> EventRecord:
    time_utc, ev = rec
    return EventRecord(mission_time(time_utc, epoch), ev.event_id.name, ev.subject.rstrip("\0"),
                       tuple(float(v) for v in ev.values))


def _values_equal(a: Sequence[float], b: Sequence[float], rtol: float) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        if not math.isclose(x, y, rel_tol=rtol, abs_tol=0.0):
            return False
    return True


def diff_events(
    recorded: Iterable[EventRecord],
    rerun: Iterable[Any],
    *,
    time_tolerance_s: float = 1e-3,
    value_rtol: float = 1e-9,
    compare_all: bool = False,
    since: float | None = None,
    until: float | None = None,
) -> tuple[list[EventDiff], int, int, int]:
    """Compare two event lists (see the module docstring for the rule).

    Only events with ``since <= t <= until`` take part (the span the re-run covered).
    Returns ``(diffs sorted by mission time, recorded compared, rerun compared, ignored)``.
    """
    ignored = 0

    def keep(e: EventRecord) -> bool:
        nonlocal ignored
        if since is not None and e.t < since - time_tolerance_s:
            return False
        if until is not None and e.t > until + time_tolerance_s:
            return False
        if not compare_all and e.name in HOST_EVENTS:
            ignored += 1
            return False
        return True

    rec = [e for e in recorded if keep(e)]
    new = [e for e in (event_record(x) for x in rerun) if keep(e)]
    pool: dict[tuple[str, str], collections.deque[EventRecord]] = collections.defaultdict(collections.deque)
    for e in sorted(new, key=lambda e: e.t):
        pool[(e.name, e.subject)].append(e)
    diffs: list[EventDiff] = []
    for e in sorted(rec, key=lambda e: e.t):
        queue = pool.get((e.name, e.subject))
        # re-run events of this kind far earlier than e cannot match anything later either
        while queue and queue[0].t < e.t - time_tolerance_s:
            diffs.append(EventDiff("rerun only", None, queue.popleft()))
        if queue and abs(queue[0].t - e.t) <= time_tolerance_s:
            other = queue.popleft()
            if not _values_equal(e.values, other.values, value_rtol):
                diffs.append(EventDiff("changed", e, other))
        else:
            diffs.append(EventDiff("recorded only", e, None))
    for queue in pool.values():
        diffs.extend(EventDiff("rerun only", None, e) for e in queue)
    diffs.sort(key=lambda d: (d.t, d.kind))
    return diffs, len(rec), len(new), ignored


def rerun_capture(
    path: str | os.PathLike[str],
    *,
    fdir_params: Any = None,
    mode: Any = None,
    compare_all: bool = False,
    time_tolerance_s: float = 1e-3,
    on_skip: Callable[[Any], None] | None = None,
    progress: Callable[[float, float], None] | None = None,
    capture: str | os.PathLike[str] | None = None,
) -> RerunReport:
    """Run the flight software on the capture's samples and compare its events with the recorded ones.

    Args:
        path: the capture (made by ``hullwatch run --capture``, or any capture with a layout
            report and raw samples).
        fdir_params: FDIR parameters for the re-run (a path to a TOML file, or what
            ``run_scenario`` accepts); None: the defaults, as the recording used.
        mode: FDIR mode for the re-run (an ``FdirMode`` or its name); None: the mode recorded in
            the capture's first housekeeping packet, or the old mode of a ``MODE_CHANGED`` before
            it (active if there is neither).
        progress: ``progress(mission_time_done, mission_time_total)``, every 60 s of mission time.
        capture: also write the re-run's telemetry to this capture file (to plot or decode it).

    Raises:
        InputError: the capture has no layout report or raw samples; DeviceOpenError (hal) when
        it cannot be opened; FirmwareError (ParameterError) for bad parameters.
    """
    path = os.fspath(path)
    if capture is not None and os.path.exists(capture) and os.path.samefile(capture, path):
        raise InputError(f"{os.fspath(capture)}: is the capture being re-run; write the re-run elsewhere")
    try:
        device = ReplayDevice(path)
    except DeviceOpenError as exc:
        if os.path.exists(path):
            raise InputError(str(exc)) from exc
        raise
    if mode is None:
        mode = recorded_mode(path)
        if mode is None:
            mode = FdirMode.ACTIVE
    with device:
        # The telecommands the recording applied, at the cycles that applied them.
        commands = recorded_commands(path, device.epoch_utc)
        result = _run(run_scenario, device, fdir_params=fdir_params, mode=mode, progress=progress,
                      capture=capture, commands=commands)
        skipped = device.health().get("skipped_bytes", 0)
        health = device.health()
        jumps = health.get("time_jumps", 0)
        start = device.start_time
        end = device.last_time if device.last_time is not None else device.end_time
        names = [m.name for m in device.layout.modules]
    recorded, _epoch = recorded_events(path, on_skip=on_skip)
    # Events whose report was disabled by telecommand (service 5) are not in the capture either.
    rerun = [e for e in getattr(result, "events", ()) if getattr(e, "reported", True)]
    diffs, n_rec, n_new, ignored = diff_events(
        recorded, rerun, time_tolerance_s=time_tolerance_s, compare_all=compare_all,
        since=start, until=end)
    cycles = int(getattr(result, "cycles", 0) or 0)
    return RerunReport(path, n_rec, n_new, diffs, ignored, cycles, start, end, skipped, result,
                       getattr(mode, "name", str(mode)).lower(), names, jumps, len(commands),
                       health.get("timeline_ends", 0), health.get("layout_changes", 0))


def _run(run_scenario: Callable[..., Any], device: Any, *, fdir_params: Any, mode: Any,
         progress: Any, capture: Any = None, commands: Any = None) -> Any:
    # ``until`` is left to the runner: a replay device's end time plus half a period, so the
    # last recorded cycle runs too.
    kwargs: dict[str, Any] = {"mode": mode}
    if fdir_params is not None:
        kwargs["fdir_params"] = fdir_params
    if progress is not None:
        kwargs["on_progress"] = progress
    if capture is not None:
        kwargs["capture"] = capture
    if commands:
        kwargs["commands"] = commands
    return run_scenario(device, **kwargs)


def recorded_mode(path: str | os.PathLike[str], max_bytes: int = 64 << 20) -> Any:
    """The FDIR mode the recording started in (an ``FdirMode``): the mode in the capture's first
    housekeeping packet, or, when a telecommand changed the mode before that packet, the old mode
    of that ``MODE_CHANGED`` event. None if there is neither in its first ``max_bytes``."""
    for batch in iter_packet_batches(os.fspath(path)):
        wanted = np.union1d(batch.select(apid=APID_HOUSEKEEPING, service=3, key=SID_HOUSEKEEPING),
                            batch.select(apid=APID_EVENT, service=5))
        for _i, packet in batch.packets(wanted):
            d = packet.data
            try:
                if isinstance(d, Housekeeping):
                    return FdirMode(d.mode)
                if isinstance(d, Event) and d.event_id == EventId.MODE_CHANGED:
                    return FdirMode(int(d.values[0]))
            except ValueError:
                return None
        if batch.base + len(batch.buffer) >= max_bytes:
            break
    return None


def _fmt_t(t: float) -> str:
    sign = "-" if t < 0 else ""
    a = abs(t)
    h, rem = divmod(a, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{sign}{int(h)}:{int(m):02d}:{s:06.3f}"


def _value_defs(name: str) -> tuple[Any, ...]:
    try:
        return EVENT_DEFS[EventId[name]].values
    except KeyError:
        return ()


def _fmt_values(values: Sequence[float], name: str = "") -> str:
    """``leak_rate 16.5 kg/day, test_statistic 8.3, segment_volume 900.0 m3``: each used value
    with its field name (from the event dictionary) and in display units."""
    defs = _value_defs(name)
    if not defs:
        return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
    parts = [f"{_label(d.name, d.unit)} {value_text(d.name, d.unit, v)}"
             for d, v in zip(defs, values) if d.name != "unused"]
    return ", ".join(parts) or "(no values)"


def _fmt_changes(name: str, before: Sequence[float], after: Sequence[float], rtol: float = 1e-9) -> str:
    """``hole_diameter 1.40 mm -> 1.38 mm; reserve_time 2 h 52 min -> 2 h 50 min``: the changed
    values only; where display rounding hides the change, the SI values are shown."""
    defs = _value_defs(name)
    if not defs:
        return f"values {_fmt_values(before)} -> {_fmt_values(after)}"
    parts = []
    for d, a, b in zip(defs, before, after):
        if d.name == "unused" or _values_equal((a,), (b,), rtol):
            continue
        ta, tb = value_text(d.name, d.unit, a), value_text(d.name, d.unit, b)
        if ta == tb:
            ta, tb = value_text(d.name, d.unit, a, True), value_text(d.name, d.unit, b, True)
        parts.append(f"{_label(d.name, d.unit)} {ta} -> {tb}")
    return "; ".join(parts) or "values equal within display precision"


def format_diff(report: RerunReport) -> list[str]:
    """Lines describing the differences, one per event, in mission-time order::

        - 0:41:20.300  LEAK_CONFIRMED     zvezda           leak_rate 44.9 kg/day, test_statistic 14.2, segment_volume 75.0 m3   recorded only
        + 0:43:05.100  LEAK_CONFIRMED     zvezda           leak_rate 44.1 kg/day, test_statistic 13.9, segment_volume 75.0 m3   rerun only
        ~ 0:50:00.000  LEAK_LOCATED       soyuz-om         hole_diameter 2.10 mm -> 1.90 mm; reserve_time 2 h 52 min -> 3 h 10 min
    """
    lines = []
    names = report.module_names or None  # segment subjects (station, seg:0x6) read as module names
    for d in report.diffs:
        if d.kind == "changed":
            a, b = d.recorded, d.rerun
            assert a is not None and b is not None
            lines.append(f"~ {_fmt_t(a.t)}  {a.name:<18} {subject_text(a.subject, names):<16} "
                         f"{_fmt_changes(a.name, a.values, b.values)}")
        else:
            e = d.recorded if d.kind == "recorded only" else d.rerun
            assert e is not None
            sign = "-" if d.kind == "recorded only" else "+"
            lines.append(f"{sign} {_fmt_t(e.t)}  {e.name:<18} {subject_text(e.subject, names):<16} "
                         f"{_fmt_values(e.values, e.name)}   {d.kind}")
    return lines
