"""``hullwatch scenarios``: list the built-in scenarios, or summarise/print one."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ...sim.gas import MMHG_PA, choked_flow, orifice_flow, area, pressure_rate
from ...sim.scenario import (
    Scenario,
    load_scenario,
    preset_description,
    preset_names,
    preset_text,
)
from ..units import kg_day
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch scenarios                      list the presets, one line each
  hullwatch scenarios soyuz-ms09           summary: station, leaks, faults, expected rates
  hullwatch scenarios soyuz-ms09 --toml    print the preset's TOML (a start for your own)
  hullwatch scenarios ./my-station.toml    validate and summarise a scenario file
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "scenarios",
        help=SUMMARIES["scenarios"],
        description="List the built-in scenario presets, or validate and summarise a preset or "
        "a scenario TOML file (the keys are documented in docs/scenarios.md).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", nargs="?", metavar="NAME-or-PATH",
                   help="a preset name or a scenario TOML file")
    p.add_argument("--toml", action="store_true",
                   help="print the scenario's TOML source instead of a summary")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    if args.scenario is None:
        names = preset_names()
        width = max(len(n) for n in names)
        for name in names:
            print(f"{name:<{width}}  {preset_description(name)}")
        return 0
    scenario = load_scenario(args.scenario)  # validates; raises ScenarioError (exit 2)
    if args.toml:
        if args.scenario in preset_names():
            print(preset_text(args.scenario), end="")
        else:
            print(Path(args.scenario).read_text(encoding="utf-8"), end="")
        return 0
    print("\n".join(summary_lines(scenario)))
    return 0


def _initial_segments(sc: Scenario) -> list[list[str]]:
    parent = {m.name: m.name for m in sc.modules}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for c in sc.connections:
        if c.open:
            parent[find(c.modules[0])] = find(c.modules[1])
    groups: dict[str, list[str]] = {}
    for m in sc.modules:
        groups.setdefault(find(m.name), []).append(m.name)
    return list(groups.values())


def _seconds(s: float) -> str:
    if math.isinf(s):
        return "for ever"
    return f"{s:g} s" if s < 3600 else f"{s:g} s ({s / 3600:.3g} h)"


def summary_lines(sc: Scenario) -> list[str]:
    """A human summary of ``sc`` with the rates its leaks and supplies give at the start."""
    lines = [f"{sc.name}: {sc.description}" if sc.description else sc.name,
             f"  source     {sc.source}",
             f"  start      {sc.start_datetime().isoformat().replace('+00:00', 'Z')}",
             f"  duration   {_seconds(sc.duration_s)}",
             f"  seed       {sc.seed}"]
    mods = {m.name: m for m in sc.modules}
    lines.append(f"modules ({len(sc.modules)}, {sc.total_volume_m3:g} m3 free volume):")
    for m in sc.modules:
        lines.append(f"  {m.name:<14} {m.volume_m3:8.1f} m3  {m.pressure_pa / 1000:6.1f} kPa "
                     f"({m.pressure_pa / MMHG_PA:5.1f} mmHg)"
                     f"  {m.temperature_k:6.2f} K  sensors {m.pressure_sensors} p, "
                     f"{m.temperature_sensors} t"
                     + (f"  swing +-{m.amplitude_k:g} K" if m.amplitude_k is not None else "")
                     + (f"  thermometers {m.sensor_offset_k:+g} K" if m.sensor_offset_k else ""))
    if sc.connections:
        lines.append("connections:")
        for c in sc.connections:
            lines.append(f"  {c.id:<14} {c.kind:<6} {c.modules[0]} <-> {c.modules[1]}  "
                         f"d {c.diameter_m:g} m  Cd {c.cd:g}  actuation {c.actuation_s:g} s  "
                         f"{'open' if c.open else 'closed'}")
    segments = _initial_segments(sc)
    seg_of = {name: seg for seg in segments for name in seg}
    for r in sc.repress:
        m = mods[r.module]
        flow = orifice_flow(r.cd * area(r.diameter_m), r.tank_pressure_pa, r.tank_temperature_k,
                            m.pressure_pa)
        events = ", ".join(f"{s:g} s for {d:g} s" for s, d in r.events) or "none"
        added = sum(d for _, d in r.events) * flow
        lines.append(f"repress {r.id} -> {r.module}: tank {r.tank_pressure_pa / 1e6:g} MPa, "
                     f"d {r.diameter_m * 1000:g} mm, {kg_day(flow)} when open; events: "
                     f"{events}" + (f" (~{added:.3g} kg)" if r.events else ""))
    for lk in sc.leaks:
        m = mods[lk.module]
        flow = choked_flow(lk.cd, lk.diameter_m, m.pressure_pa, m.temperature_k)
        seg = seg_of[lk.module]
        vol = sum(mods[n].volume_m3 for n in seg)
        rate = pressure_rate(flow, vol, m.temperature_k)
        end = "" if math.isinf(lk.duration_s) else f" until {lk.start_s + lk.duration_s:g} s"
        lines.append(f"leak in {lk.module}: d {lk.diameter_m * 1000:g} mm, Cd {lk.cd:g}, from "
                     f"{lk.start_s:g} s{end}: {kg_day(flow)}; "
                     f"its {vol:g} m3 segment falls {rate * 3600 / 1000:.3g} kPa/h "
                     f"({rate * 3600 / MMHG_PA:.3g} mmHg/h)")
    if not sc.leaks:
        lines.append("leaks: none")
    for f in sc.sensor_faults:
        dur = "one sample" if f.kind == "spike" and f.duration_s == 0 else _seconds(f.duration_s)
        mag = f", magnitude {f.magnitude:g}" if f.kind not in ("stuck", "dropout") else ""
        lines.append(f"sensor fault {f.sensor}: {f.kind} from {f.start_s:g} s, {dur}{mag}")
    for vf in sc.valve_faults:
        lines.append(f"valve fault {vf.valve}: {vf.kind} from {vf.start_s:g} s")
    for op in sc.hatch_ops:
        lines.append(f"crew {'opens' if op.open else 'closes'} {op.valve} at {op.at_s:g} s "
                     "(not commanded by the flight software)")
    cr = sc.crew
    if cr.count:
        lines.append(f"crew: {cr.count}, O2 use {cr.count * cr.o2_kg_per_person_day:g} kg/day in "
                     f"{', '.join(cr.modules)} (+-{cr.activity_fraction:.0%} over a day); "
                     f"generator in {cr.generator_module}, mismatch up to "
                     f"{cr.mismatch_kg_per_day:g} kg/day")
        for loc in cr.locations:
            lines.append(f"  crew in {', '.join(loc.modules)} from {loc.at_s:g} s")
    th = sc.thermal
    lines.append(f"thermal: orbit {th.orbit_period_s:g} s, up to +-{th.amplitude_k:g} K; drift "
                 f"up to +-{th.drift_amplitude_k:g} K over {th.drift_period_s:g} s")
    sp = sc.sensors
    lines.append(f"sensors: pressure noise {sp.pressure_noise_pa:g} Pa RMS, resolution "
                 f"{sp.pressure_quantum_pa:g} Pa, bias +-{sp.pressure_bias_pa:g} Pa, "
                 f"{sp.pressure_tempco_pa_per_k:g} Pa/K; temperature noise "
                 f"{sp.temperature_noise_k:g} K RMS")
    return lines
