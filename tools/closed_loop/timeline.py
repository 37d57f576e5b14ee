"""The console timeline of a run: one readable line per event, as it happens.

Each line shows the mission time as UTC and as time since the leak began (when the scenario says
when that was), then what happened in words, with SI values turned into the units people use
(:mod:`hullwatch.tools.units`: kPa and mmHg, kg/day, hours and minutes, mm). Library code: :class:`Timeline` writes to the text stream it is given; only
``cmd_run`` gives it stdout.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TextIO

from ..units import (equivalent_diameter, hours_minutes, kg_day, kpa_mmhg, millimetres, plural, pressure_rate,
                     subject_text)
from .result import RunEvent, RunResult

#: Events not shown unless ``verbose`` (frequent, and not part of the leak story).
QUIET_EVENTS = frozenset({"CYCLE_OVERRUN", "ESTIMATE_UPDATED"})  # (shown with --verbose: an update every 10 s after sealing)


def utc_text(utc: float) -> str:
    t = dt.datetime.fromtimestamp(utc, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 100000}Z"


def rel_text(seconds: float | None) -> str:
    """``T+1:05.0`` / ``T-0:30.0`` / ``T+2:01:05.0`` (time since the leak began); blank if unknown."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    tenth = int((s - int(s)) * 10)
    return f"T{sign}{h}:{m:02d}:{sec:02d}.{tenth}" if h else f"T{sign}{m}:{sec:02d}.{tenth}"


def segment_text(subject: str, volume_m3: float, total_volume_m3: float | None = None,
                 module_volumes: dict[str, float] | None = None) -> str:
    """A station segment as people say it, from an event's subject and volume.

    The whole station's volume reads ``the whole station (900 m3)`` whatever the subject; a
    subject naming several modules (``a+b+c``) reads ``the segment a+b+c (180 m3)``; one module
    reads ``prk (10 m3)``. The subject is rendered as the event carries it, never narrowed to its
    first module; when it names one module (``module_volumes`` known) whose volume is not the
    segment's, it reads ``a 174 m3 segment with zvezda``, so a module is never given the
    segment's volume."""
    if total_volume_m3 and abs(volume_m3 - total_volume_m3) < 1e-6 * total_volume_m3:
        return f"the whole station ({volume_m3:.0f} m3)"
    if not subject:
        return f"a segment of {volume_m3:.0f} m3"
    if "+" in subject or "," in subject or " " in subject:
        return f"the segment {subject} ({volume_m3:.0f} m3)"
    own = (module_volumes or {}).get(subject)
    if own is not None and abs(own - volume_m3) > 1e-6 * max(volume_m3, 1.0):
        return f"a {volume_m3:.0f} m3 segment with {subject}"
    return f"{subject} ({volume_m3:.0f} m3)"


def _reading(sensor: str, value: float) -> str:
    """A sensor's reading in display units: thermometers (``<module>.t1``) in K, the rest as pressure."""
    if re.search(r"\.t\d+$", sensor):
        return f"{value:.2f} K"
    return kpa_mmhg(value)


def describe(ev: RunEvent, total_volume_m3: float | None = None, module_names: list[str] | None = None,
             valves_closed: int | None = None, module_volumes: dict[str, float] | None = None) -> str:
    """What an event means, in words and display units (:mod:`hullwatch.tools.units`).

    ``module_names`` (layout order) expands segment subjects (``station``, ``seg:0x6``) into module
    names. ``valves_closed``: how many hatches/valves the isolation closed (from
    ISOLATION_STARTED), so that SEGMENT_SEALED says whether the segment was already closed off.
    ``module_volumes``: the layout's module volumes (m3), for :func:`segment_text`."""
    v1, v2, v3 = ev.values
    n = ev.name
    subj = subject_text(ev.subject, module_names)

    def segment(volume: float) -> str:
        if ev.subject == "station":
            return f"the whole station ({volume:.0f} m3)"
        return segment_text(subj, volume, total_volume_m3, module_volumes)

    if n == "LEAK_SUSPECTED":
        return f"leak suspected in {segment(v3)}: losing {kg_day(v1)}, test statistic {v2:.1f}"
    if n == "LEAK_CONFIRMED":
        stat = f", test statistic {v2:.1f}" if v2 else ""
        return f"leak CONFIRMED in {segment(v3)}: losing {kg_day(v1)}{stat}"
    if n == "LEAK_CLEARED":
        return f"leak alarm cleared in {segment(v3)}"
    if n == "RAPID_DEPRESS":
        return (f"RAPID DEPRESSURISATION at {subj}: falling {pressure_rate(-v1)}, alarm threshold "
                f"{pressure_rate(v2).split(' (')[0]}; now {kpa_mmhg(v3)}")
    if n == "ISOLATION_STARTED":
        if v2 < 0.5:
            return (f"isolation started: {plural(v1, 'candidate module')}, already closed off "
                    "(no hatch or valve to close)")
        return (f"isolation started: closing {plural(v2, 'hatch/valve', 'hatches/valves')} between "
                f"{plural(v1, 'candidate module')}")
    if n == "ISOLATION_STEP":
        if v1 < 1.5:
            return f"isolation step {v2:.0f}: watching whether the segment still loses gas"
        return (f"isolation step {v2:.0f}: {plural(v1, 'segment')} observed apart, watching which one "
                "still loses gas")
    if n == "LEAK_LOCATED":
        return (f"leak LOCATED in {subj}: losing {kg_day(v3)}; equivalent hole {millimetres(v1)}; "
                f"reserve {hours_minutes(v2)} to 69.3 kPa (520 mmHg)")
    if n == "VALVE_REOPENED":
        return f"reopened {subj} (healthy side)"
    if n == "SEGMENT_SEALED":
        rest = "the hatches to its healthy neighbours are open again" if valves_closed != 0 else \
            "it was already closed off from the rest of the station"
        return f"SEALED {subj} ({v2:.0f} m3); {rest}"
    if n == "SEGMENT_CUT_OFF":
        return (f"CUT OFF {subj} ({v2:.0f} m3): reached only through the sealed module(s), "
                f"now watched on {'its' if v1 <= 1 else 'their'} own")
    if n == "MODULE_UNOBSERVABLE":
        return (f"{subj} UNOBSERVABLE: none of its {plural(v1, 'pressure sensor')} is usable "
                f"(last {kpa_mmhg(v2)}); not taken as a leak")
    if n == "MODULE_OBSERVABLE":
        return (f"{subj} observable again ({plural(v1, 'pressure sensor')}, {kpa_mmhg(v2)}) "
                f"after {hours_minutes(v3)}")
    if n == "VALVE_MOVED":
        # (FDIR cannot tell a crew member's hand from a valve that moved by itself.)
        return (f"hatch {subj} {'opened' if v1 > 0.5 else 'closed'} without a command (the crew, "
                f"or a valve fault); station re-segmented")
    if n == "ISOLATION_FAILED":
        reason = {1: "no valve could be closed", 2: "no decision in time", 3: "no segment loses gas",
                  4: "a branch undecided in time", 5: "an advised hatch was not moved"}.get(int(v2), "?")
        return f"isolation FAILED ({reason}); the leak stays reported"
    if n == "LOCATE_ADVICE":
        if v1:
            return f"slow-leak schedule step {v3:.0f}: reopen {subj}"
        watch = f", watch the branch it cuts off for {hours_minutes(v2)}" if v2 else ""
        return f"slow-leak schedule step {v3:.0f}: close {subj}{watch}"
    if n == "ESTIMATE_UPDATED":
        return (f"estimate for {subj}: equivalent hole {v1 * 1000:.3f} mm (1-sigma {v3 * 100:.2g} %); "
                f"reserve {hours_minutes(v2)} to 520 mmHg")
    if n == "SENSOR_FAILED":
        how = {1: "out of range", 2: "stale", 3: "stuck", 4: "disagrees",
               5: "changes faster than gas can"}.get(int(v1), "?")
        return f"sensor {subj} failed ({how}; last reading {_reading(subj, v2)}), left out of the vote"
    if n == "SENSOR_RECOVERED":
        return f"sensor {subj} recovered, back in the vote"
    if n == "VALVE_FAILED":
        return f"valve {subj} FAILED: commanded {'open' if v1 else 'closed'}, reads {v2:.2f} open"
    if n == "CYCLE_OVERRUN":
        return f"cycle overrun: {v1 * 1000:.1f} ms for a {v2 * 1000:.0f} ms period ({v3:.0f} so far)"
    if n == "LINK_LOST":
        return "link to the device lost"
    if n == "LINK_RESTORED":
        return f"link restored after {v2:.1f} s"
    if n == "MODE_CHANGED":
        return f"FDIR mode {int(v1)} -> {int(v2)}"
    if n == "PARAMS_LOADED":
        return f"FDIR parameters loaded ({v1:.0f} keys)"
    return f"{n.lower()} {subj} {v1:g} {v2:g} {v3:g}"


class Timeline:
    """Writes timeline lines to ``out``. Call :meth:`event` for each event as it happens (the
    scenario's leak start is inserted in time order) and :meth:`finish` with the result."""

    def __init__(self, out: TextIO, epoch_utc: float, leaks: list[tuple[str, float, float, float]] | None = None,
                 total_volume_m3: float | None = None, verbose: bool = False,
                 module_names: list[str] | None = None, fdir_cd: float | None = None,
                 module_volumes: dict[str, float] | None = None) -> None:
        """``leaks``: the scenario's truth as (module, start_s, diameter_m, cd); ``module_names``
        (layout order) expands segment subjects; ``fdir_cd``: the discharge coefficient FDIR sizes
        holes with, so the truth is also given at that Cd."""
        self.out = out
        self.epoch = epoch_utc
        self.leaks = sorted(leaks or [], key=lambda lk: lk[1])
        self.leak_t0 = self.leaks[0][1] if self.leaks else None
        self.total_volume = total_volume_m3
        self.verbose = verbose
        self.module_names = module_names
        self.fdir_cd = fdir_cd
        self.module_volumes = module_volumes
        self._pending = list(self.leaks)
        self._header = False
        self._valves_closed: int | None = None

    def _line(self, t: float, text: str) -> None:
        if not self._header:
            self._header = True
            self.out.write(f"  {'UTC':<23} {'since leak':<11} event\n")
        rel = rel_text(t - self.leak_t0) if self.leak_t0 is not None else ""
        self.out.write(f"  {utc_text(self.epoch + t):<23} {rel:<11} {text}\n")
        self.out.flush()

    def _truth(self, d: float, cd: float) -> str:
        text = f"{millimetres(d)} hole at Cd {cd:g}"
        if self.fdir_cd is not None and abs(cd - self.fdir_cd) > 1e-9:
            text += f", i.e. {millimetres(equivalent_diameter(d, cd, self.fdir_cd))} at FDIR's Cd {self.fdir_cd:g}"
        return text

    def _leaks_before(self, t: float) -> None:
        while self._pending and self._pending[0][1] <= t:
            module, start, d, cd = self._pending.pop(0)
            self._line(start, f"leak starts in {module} (scenario truth: {self._truth(d, cd)})")

    def event(self, ev: RunEvent) -> None:
        self._leaks_before(ev.t)
        if ev.name == "ISOLATION_STARTED":
            self._valves_closed = int(round(ev.values[1]))
        if ev.name in QUIET_EVENTS and not self.verbose:
            return
        self._line(ev.t, describe(ev, self.total_volume, self.module_names, self._valves_closed,
                                  self.module_volumes))

    def note(self, t: float, text: str) -> None:
        """A line that is not an FDIR event (a telecommand's outcome) at mission time ``t``."""
        self._leaks_before(t)
        self._line(t, text)

    def finish(self, result: RunResult) -> None:
        """Add the leak starts the run reached after the last event; a leak scheduled after the
        end of the run is not shown (it never happened; the verdict says so)."""
        self._leaks_before(result.end_s)
        self.out.flush()
