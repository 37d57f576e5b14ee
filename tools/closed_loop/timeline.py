"""The console timeline of a run: one readable line per event, as it happens.

Each line shows the mission time as UTC and as time since the leak began (when the scenario says
when that was), then what happened in words, with SI values turned into the units people use
(mm, g/s, mmHg, hours). Library code: :class:`Timeline` writes to the text stream it is given; only
``cmd_run`` gives it stdout.
"""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from ...firmware.fdir.topology import segment_modules
from .runner import RunEvent, RunResult

MMHG_PA = 133.322387415

#: Events not shown unless ``verbose`` (frequent, and not part of the leak story).
QUIET_EVENTS = frozenset({"CYCLE_OVERRUN"})


def utc_text(utc: float) -> str:
    t = dt.datetime.fromtimestamp(utc, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 100000}Z"


def rel_text(seconds: float | None) -> str:
    """``T+1:05`` / ``T-0:30`` / ``T+2:01:05`` (time since the leak began); blank if unknown."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    tenth = int((s - int(s)) * 10)
    return f"T{sign}{h}:{m:02d}:{sec:02d}.{tenth}" if h else f"T{sign}{m}:{sec:02d}.{tenth}"


def _g_s(kg_s: float) -> str:
    g = kg_s * 1000.0
    return f"{g:.3g} g/s ({kg_s * 86400:.3g} kg/day)"


def _dur(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def subject_text(subject: str, module_names: list[str] | None) -> str:
    """A segment subject (``station``, ``seg:0x6``, a module name) as module names joined by
    ``+``; any other subject as it is."""
    mods = segment_modules(subject, module_names) if module_names else None
    if mods is None:
        return subject
    return "+".join(mods)


def describe(ev: RunEvent, total_volume_m3: float | None = None, module_names: list[str] | None = None) -> str:
    """What an event means, in words. ``module_names`` (layout order) expands segment subjects."""
    v1, v2, v3 = ev.values
    n = ev.name
    subj = subject_text(ev.subject, module_names)

    def segment(volume: float) -> str:
        if ev.subject == "station" or (total_volume_m3 and abs(volume - total_volume_m3) < 1e-6 * total_volume_m3):
            return f"the whole station ({volume:.0f} m3)"
        if "+" in subj:
            return f"the segment {subj} ({volume:.0f} m3)"
        return f"{subj} ({volume:.0f} m3)"

    if n == "LEAK_SUSPECTED":
        return f"leak suspected in {segment(v3)}: losing {_g_s(v1)}, test statistic {v2:.1f}"
    if n == "LEAK_CONFIRMED":
        stat = f", test statistic {v2:.1f}" if v2 else ""
        return f"leak CONFIRMED in {segment(v3)}: losing {_g_s(v1)}{stat}"
    if n == "LEAK_CLEARED":
        return f"leak alarm cleared in {segment(v3)}"
    if n == "RAPID_DEPRESS":
        return (f"RAPID DEPRESSURISATION at {subj}: {v1 * 60 / MMHG_PA:.2f} mmHg/min "
                f"({v1:.1f} Pa/s, alarm at -{v2:.1f} Pa/s), {v3 / MMHG_PA:.0f} mmHg")
    if n == "ISOLATION_STARTED":
        return f"isolation started: closing {v2:.0f} hatches/valves between {v1:.0f} modules"
    if n == "ISOLATION_STEP":
        return f"isolation step {v2:.0f}: split into {v1:.0f} segments, watching which one still loses gas"
    if n == "LEAK_LOCATED":
        return (f"leak LOCATED in {subj}: losing {_g_s(v3)}; equivalent hole {v1 * 1000:.2f} mm; "
                f"reserve {_dur(v2)} to 520 mmHg")
    if n == "VALVE_REOPENED":
        return f"reopened {subj} (healthy side)"
    if n == "SEGMENT_SEALED":
        return f"SEALED {subj} ({v2:.0f} m3); the hatches to its healthy neighbours are open again"
    if n == "SEGMENT_CUT_OFF":
        return (f"CUT OFF {subj} ({v2:.0f} m3): reached only through the sealed module(s), "
                f"now watched on {'its' if v1 <= 1 else 'their'} own")
    if n == "MODULE_UNOBSERVABLE":
        return (f"{subj} UNOBSERVABLE: none of its {v1:.0f} pressure sensors is usable "
                f"(last {v2 / 1000:.2f} kPa); not taken as a leak")
    if n == "MODULE_OBSERVABLE":
        return f"{subj} observable again ({v1:.0f} pressure sensor(s), {v2 / 1000:.2f} kPa) after {_dur(v3)}"
    if n == "VALVE_MOVED":
        return f"hatch {subj} {'opened' if v1 > 0.5 else 'closed'} by the crew; station re-segmented"
    if n == "ISOLATION_FAILED":
        reason = {1: "no valve could be closed", 2: "no decision in time", 3: "no segment loses gas"}.get(int(v2), "?")
        return f"isolation FAILED ({reason}); the leak stays reported"
    if n == "SENSOR_FAILED":
        how = {1: "out of range", 2: "stale", 3: "stuck", 4: "disagrees", 5: "changes faster than gas can"}.get(int(v1), "?")
        return f"sensor {subj} failed ({how}; last reading {v2:.6g}), left out of the vote"
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
                 module_names: list[str] | None = None) -> None:
        self.out = out
        self.epoch = epoch_utc
        self.leaks = sorted(leaks or [], key=lambda lk: lk[1])  # (module, start_s, diameter_m, cd)
        self.leak_t0 = self.leaks[0][1] if self.leaks else None
        self.total_volume = total_volume_m3
        self.verbose = verbose
        self.module_names = module_names
        self._pending = list(self.leaks)
        self._header = False

    def _line(self, t: float, text: str) -> None:
        if not self._header:
            self._header = True
            self.out.write(f"  {'UTC':<23} {'since leak':<11} event\n")
        rel = rel_text(t - self.leak_t0) if self.leak_t0 is not None else ""
        self.out.write(f"  {utc_text(self.epoch + t):<23} {rel:<11} {text}\n")
        self.out.flush()

    def _leaks_before(self, t: float) -> None:
        while self._pending and self._pending[0][1] <= t:
            module, start, d, cd = self._pending.pop(0)
            self._line(start, f"leak starts in {module} (scenario truth: {d * 1000:.2f} mm hole, Cd {cd:g})")

    def event(self, ev: RunEvent) -> None:
        self._leaks_before(ev.t)
        if ev.name in QUIET_EVENTS and not self.verbose:
            return
        self._line(ev.t, describe(ev, self.total_volume, self.module_names))

    def finish(self, result: RunResult) -> None:
        self._leaks_before(result.simulated_s + 1e9 if result.leaks else 0.0)
        self.out.flush()
