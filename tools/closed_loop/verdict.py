"""The one-line verdict of a closed-loop run, judged against the scenario's truth: sealed (and
whether correctly), located, confirmed, suspected, missed, a false alarm, or no leak yet.

A false alarm is an alarm (:data:`ALARM_EVENTS`) before the scenario's leak begins, or in a
scenario without one; a LEAK_SUSPECTED there is counted in the verdict but is not an alarm.
"""

from __future__ import annotations

from ..units import equivalent_diameter, hours_minutes, millimetres, plural
from .result import RunEvent, RunResult

#: The leak events that are alarms (high severity, docs/telemetry.md). LEAK_SUSPECTED is low
#: severity and clears by itself: before a leak it is reported in the verdict, not counted as a
#: false alarm (as the campaigns count it, docs/detection.md).
ALARM_EVENTS = ("LEAK_CONFIRMED", "RAPID_DEPRESS")


def fmt_dt(seconds: float) -> str:
    """Seconds since an instant as ``T+M:SS`` or ``T+H:MM:SS`` (``T-...`` before it)."""
    s = int(round(seconds))
    h, rem = divmod(abs(s), 3600)
    m, sec = divmod(rem, 60)
    sign = "-" if s < 0 else "+"
    return f"T{sign}{h}:{m:02d}:{sec:02d}" if h else f"T{sign}{m}:{sec:02d}"


def fdir_cd(r: RunResult) -> float:
    """The discharge coefficient FDIR estimated the hole with (its parameter table's)."""
    return float(r.health.get("params", {}).get("isolation", {}).get("discharge_coefficient", 0.7))


def hole_text(r: RunResult) -> str:
    """``hole ~1.40 mm at Cd 0.7 (truth 2.00 mm at Cd 0.35 = 1.41 mm at Cd 0.7)``: the estimate and
    the scenario's hole at the same discharge coefficient, so the two numbers compare."""
    cd = fdir_cd(r)
    text = f"hole ~{millimetres(r.hole_diameter_m or 0.0)} at Cd {cd:g}"
    truth = [lk for lk in r.leaks if lk.module in set(r.sealed_modules or [r.located_module])] or r.leaks
    if len(truth) == 1:
        lk = truth[0]
        text += f" (truth {millimetres(lk.diameter_m)} at Cd {lk.cd:g}"
        if abs(lk.cd - cd) > 1e-9:
            text += f" = {millimetres(equivalent_diameter(lk.diameter_m, lk.cd, cd))} at Cd {cd:g}"
        text += ")"
    return text


def judge(r: RunResult) -> tuple[str, bool | None]:
    """(verdict line, correct): ``correct`` is True/False when the scenario is known (a sim
    device), None otherwise or when the run ended before the leak began."""
    leak_modules = {lk.module for lk in r.leaks}
    known = r.scenario is not None
    if r.leaks:
        def early(e: RunEvent) -> bool:
            return r.leak_start is not None and e.t < r.leak_start
    else:
        def early(e: RunEvent) -> bool:
            return True
    false_alarms = [e for e in r.events if e.name in ALARM_EVENTS and early(e)]
    suspicions = [e for e in r.events if e.name == "LEAK_SUSPECTED" and early(e)]
    # "0.5 h of mission time"; a run shorter than 3 min in minutes and seconds ("2 min")
    span = f"{r.simulated_s / 3600.0:.1f} h" if r.simulated_s >= 180.0 else hours_minutes(r.simulated_s)
    if not r.leaks and known:
        if false_alarms:
            return (f"FALSE ALARM: {false_alarms[0].name.lower().replace('_', ' ')} at "
                    f"{fmt_dt(false_alarms[0].t)} with no leak in the scenario", False)
        if suspicions:
            return (f"NOMINAL: no leak alarm in {span} of mission time; "
                    f"{plural(len(suspicions), 'leak suspicion')} (low severity, not an alarm), the first "
                    f"at {fmt_dt(suspicions[0].t)} (correct: no leak)", True)
        return f"NOMINAL: no leak event in {span} of mission time (correct: no leak)", True
    if known and r.leak_start is not None and r.leak_start >= r.end_s - 1e-9:
        # The run ended before the scenario's leak began: nothing to detect yet. Only an alarm
        # (a false alarm) makes this wrong.
        where = ", ".join(sorted(leak_modules))
        if false_alarms:
            return (f"FALSE ALARM: {false_alarms[0].name.lower().replace('_', ' ')} at "
                    f"{mission_text(false_alarms[0].t)} mission time, before the scenario's leak "
                    f"(in {where} at {mission_text(r.leak_start)})", False)
        raised = (f"no alarm ({plural(len(suspicions), 'low-severity leak suspicion')})"
                  if suspicions else "nothing raised")
        return (f"no leak yet (scenario leak at {mission_text(r.leak_start)} mission time in {where}; the "
                f"run ended at {mission_text(r.end_s)}); {raised}", None)
    if r.confirmed is None and r.detected is None:
        if known:
            since = r.end_s - (r.leak_start or 0.0)
            return (f"MISSED: no leak detected in the {hours_minutes(since)} after the leak began "
                    f"(leak in {', '.join(sorted(leak_modules))})", False)
        return f"NOMINAL: no leak event in {span} of mission time", None
    base = r.leak_start if r.leak_start is not None else 0.0
    parts = []
    if r.sealed is not None and r.sealed_modules:
        sealed = "+".join(r.sealed_modules)
        parts.append(f"LEAK SEALED in {sealed} at {fmt_dt(r.sealed - base)}")
    elif r.located is not None:
        parts.append(f"LEAK LOCATED in {r.located_module} at {fmt_dt(r.located - base)}")
    elif r.confirmed is not None:
        parts.append(f"LEAK CONFIRMED at {fmt_dt(r.confirmed - base)}"
                     + (" (passive: no valve commanded)" if r.mode == "passive" else ", not located"))
    else:
        parts.append(f"LEAK SUSPECTED at {fmt_dt(r.detected - base)}, not confirmed")
    if r.hole_diameter_m:
        parts.append(hole_text(r))
    if r.reserve_time_s:
        parts.append(f"reserve {hours_minutes(r.reserve_time_s)}")
    correct: bool | None = None
    if known:
        if false_alarms:
            correct = False
            parts.append(f"but a false alarm at {fmt_dt(false_alarms[0].t - base)}")
        elif r.mode == "active" and r.sealed_modules:
            sealed = set(r.sealed_modules)
            correct = leak_modules <= sealed
            if not correct:
                parts.append(f"(WRONG: the leak is in {', '.join(sorted(leak_modules))})")
            else:
                extra = sealed - set(r.must_seal or leak_modules)
                correct = not extra
                parts.append("(correct)" if correct else
                             f"(WRONG: also sealed {', '.join(sorted(extra))}, which could stay open)")
        elif r.mode == "active":
            correct = False
            parts.append("(not sealed)")
        else:
            correct = r.confirmed is not None and r.valves_commanded == 0
            parts.append("(correct)" if correct else "(not confirmed)")
        if suspicions and not false_alarms:
            parts.append(f"{plural(len(suspicions), 'leak suspicion')} before the leak (low severity, not an alarm)")
    return "; ".join(parts), correct


def mission_text(seconds: float) -> str:
    """Mission time as ``H:MM:SS``."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


