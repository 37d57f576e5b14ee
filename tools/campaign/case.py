"""One campaign case: build its scenario, run the real closed loop, measure the outcome.

A case is the plain dict :func:`hullwatch.tools.campaign.spec.draw_case` returns. This module
turns it into a scenario dict (:func:`build_scenario_dict`: the base scenario with the drawn leak,
faults and varied keys), runs the flight software against it through
:func:`hullwatch.tools.closed_loop.runner.run_scenario` (:func:`run_case`) and measures the result against the
truth it knows (:func:`measure`):

- ``detected``: a leak was confirmed (or rapid depressurisation raised) at or after the leak start;
  ``latency_s`` from the leak start to that event.
- ``floor_s``: the statistical floor for detecting the leak's slope (docs/architecture.md):
  ``T = (12 k^2 sigma^2 / (f s^2))^(1/3)``, ``k = z(1-alpha) + z(1-beta)``; ``s`` is the
  station's dP/dt from the choked-orifice flow of the hole into the connected volume, ``sigma``
  the scenario's pressure sensor noise, ``f`` the FDIR cycle rate, alpha and beta the FDIR's
  false-alarm and miss probabilities. ``latency_ratio = latency_s / floor_s``.
- ``located_module``, ``isolation_correct``; hole-diameter and reserve-time estimate errors
  (relative: estimate / truth - 1).
- ``false_alarms``: leak alarms (confirmed or rapid depressurisation) raised while there was no
  leak: in a nominal case any, in a leak case those before the leak start. ``suspicions`` counts
  the "leak suspected" events the same way (not alarms, but worth watching).
- seals, false seals, the sensor faults present and the estimates 10 min after sealing
  (:func:`seal_measures`).

Also: :func:`case_summary` (the flat, CSV-friendly description of a case) and
:func:`write_case_scenario` (the case's scenario as a TOML file ``hullwatch run --scenario``
replays).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
import tomllib
from pathlib import Path
from statistics import NormalDist
from typing import Any

from .faults import blind_dropouts, fault_types, module_sensors

GAMMA = 1.4
R_AIR = 287.05  # J/(kg K)
MMHG = 133.322387415  # Pa
RESERVE_FLOOR_PA = 520 * MMHG  # physiological floor for the reserve time (docs/architecture.md, "Defaults")
DEFAULT_RATE_HZ = 10.0
DEFAULT_SIGMA_PA = 3.0

#: events that count as a leak alarm (false when raised without a leak)
ALARM_EVENTS = ("LEAK_CONFIRMED", "RAPID_DEPRESS")
#: events carrying a hole-diameter (values[0], m) and reserve-time (values[1], s) estimate
ESTIMATE_EVENTS = ("LEAK_LOCATED", "ESTIMATE_UPDATED")
#: the estimates after sealing are read this long after SEGMENT_SEALED (s)
ESTIMATE_DELAY_S = 600.0


# --------------------------------------------------------------------------------------------
# scenario


def base_scenario_dict(ref: str) -> dict[str, Any]:
    """The scenario dict of a preset name or a scenario file path."""
    import tomllib

    from ...sim import scenario as sc

    if ref in sc.preset_names():
        return sc.preset_dict(ref)
    with open(ref, "rb") as fh:
        return tomllib.load(fh)


def build_scenario_dict(case: dict[str, Any]) -> dict[str, Any]:
    """The full scenario dict of a case: its base scenario with the case's seed, duration, leak,
    faults and varied keys. A drawn leak replaces the base scenario's leaks; drawn fault lists
    replace its faults (None keeps them); a blind module adds a dropout of each of its pressure
    sensors to the sensor faults; drawn crew hatch operations are added to the base's."""
    data = copy.deepcopy(base_scenario_dict(case["scenario"]))
    data["name"] = f"{case.get('campaign', 'campaign')}/{case['id']}"
    data["description"] = _describe(case)
    data["seed"] = int(case["seed"])
    if case.get("duration_s") is not None:
        data["duration_s"] = float(case["duration_s"])
    if case.get("leak") is not None:
        data["leaks"] = [dict(case["leak"])]
    if case.get("sensor_faults") is not None:
        data["sensor_faults"] = [dict(f) for f in case["sensor_faults"]]
    if case.get("valve_faults") is not None:
        data["valve_faults"] = [dict(f) for f in case["valve_faults"]]
    if case.get("blind_modules"):
        data["sensor_faults"] = list(data.get("sensor_faults", [])) + blind_dropouts(
            case["blind_modules"], module_sensors(data))
    if case.get("hatch_ops"):
        data["hatch_ops"] = list(data.get("hatch_ops", [])) + [dict(op) for op in case["hatch_ops"]]
    for key, value in (case.get("vary") or {}).items():
        _set_dotted(data, key, value)
    return data


def _set_dotted(data: Any, key: str, value: Any) -> None:
    """Set a dotted key, creating a missing table on the way (``thermal`` left at its defaults)."""
    parts = key.split(".")
    parent = data
    for part in parts[:-1]:
        if isinstance(parent, list):
            parent = parent[int(part)]
        else:
            parent = parent.setdefault(part, {})
    last = parts[-1]
    if isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[last] = value


def _describe(case: dict[str, Any]) -> str:
    bits = [f"campaign case {case['id']}"]
    leak = case.get("leak")
    if leak:
        bits.append(f"{leak['diameter_m'] * 1e3:.2f} mm hole in {leak['module']} at {leak['start_s']:.0f} s")
    for f in case.get("sensor_faults") or []:
        bits.append(f"{f['kind']} on {f['sensor']} at {f['start_s']:.0f} s")
    for f in case.get("valve_faults") or []:
        bits.append(f"{f['kind']} on {f['valve']} at {f['start_s']:.0f} s")
    for b in case.get("blind_modules") or []:
        bits.append(f"{b['module']} blind at {b['start_s']:.0f} s")
    for op in case.get("hatch_ops") or []:
        bits.append(f"crew {'opens' if op['open'] else 'closes'} {op['valve']} at {op['at_s']:.0f} s")
    return "; ".join(bits)


def case_summary(case: dict[str, Any]) -> dict[str, Any]:
    """The flat description of a case that goes into every record (and the CSV), also for
    failed cases."""
    leak = case.get("leak")
    sf = case.get("sensor_faults") or []
    vf = case.get("valve_faults") or []
    return {
        "id": case["id"],
        "group": case["group"],
        "index": case["index"],
        "scenario": case["scenario"],
        "seed": case["seed"],
        "kind": "leak" if leak else "nominal",
        "leak_module": leak["module"] if leak else "",
        "diameter_mm": round(leak["diameter_m"] * 1e3, 6) if leak else None,
        "cd": leak["cd"] if leak else None,
        "leak_start_s": leak["start_s"] if leak else None,
        "sensor_faults": " ".join(f"{f['kind']}@{f['sensor']}" for f in sf),
        "valve_faults": " ".join(f"{f['kind']}@{f['valve']}" for f in vf),
        "blind_modules": " ".join(f"{b['module']}@{b['start_s']:.0f}" for b in case.get("blind_modules") or []),
        "hatch_ops": " ".join(f"{'open' if op['open'] else 'close'}@{op['valve']}@{op['at_s']:.0f}"
                              for op in case.get("hatch_ops") or []),
        "leak_rate_kg_day": case.get("leak_rate_kg_day"),
        "vary": json.dumps(case.get("vary") or {}, sort_keys=True) if case.get("vary") else "",
    }


def case_fdir_dict(case: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The case's FDIR parameters as a parameter-file table: the spec's ``fdir_params`` file
    with the group's ``fdir`` table laid over it; None when the group has none (the file, or the
    defaults, apply as they are). Raises OSError or tomllib.TOMLDecodeError for an unreadable
    file."""
    over = case.get("fdir") or {}
    if not over:
        return None
    base: dict[str, Any] = {}
    if case.get("fdir_params"):
        base = tomllib.loads(Path(case["fdir_params"]).read_text(encoding="utf-8"))
    return {sec: {**base.get(sec, {}), **over.get(sec, {})} for sec in sorted(set(base) | set(over))}


def case_params(case: dict[str, Any]) -> Any:
    """The case's validated FDIR table (:class:`FdirParams`): see :func:`case_fdir_dict`.
    Raises ParameterError for an invalid one."""
    from ...firmware.fdir.params import default_params, load_params, params_from_dict

    merged = case_fdir_dict(case)
    if merged is not None:
        return params_from_dict(merged, f"{case.get('fdir_params') or 'defaults'} + {case['group']}.fdir")
    return load_params(case["fdir_params"]) if case.get("fdir_params") else default_params()


def write_case_scenario(case: dict[str, Any], path: str | Path) -> Path:
    """Write the case's scenario as TOML (replay: ``hullwatch run --scenario PATH --seed S``),
    and beside it, when the group sets FDIR parameters, its table as ``<stem>.fdir.toml``
    (``--fdir``)."""
    path = Path(path)
    fdir = f" --fdir {case['fdir_params']}" if case.get("fdir_params") else ""
    merged = case_fdir_dict(case)
    if merged is not None:
        fdir_path = path.with_name(f"{path.stem}.fdir.toml")
        tmp = fdir_path.with_suffix(".tmp")
        tmp.write_text(f"# FDIR parameters of {case.get('campaign', '')} case {case['id']}\n"
                       + dumps_toml(merged), encoding="utf-8")
        tmp.replace(fdir_path)
        fdir = f" --fdir {fdir_path.name}"
    text = (f"# {case.get('campaign', '')} case {case['id']}: replay with\n"
            f"#   hullwatch run --scenario {path.name} --seed {case['seed']}{fdir}\n")
    text += dumps_toml(build_scenario_dict(case))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------------
# TOML writing (tomllib only reads)

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        if isinstance(v, dt.datetime) and v.tzinfo is not None and v.utcoffset() == dt.timedelta(0):
            return v.replace(tzinfo=None).isoformat() + "Z"
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for ``data`` (dicts, arrays of tables, scalars, lists, datetimes)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for k, v in data.items():
        if v is None:
            continue  # TOML has no null: absent means default
        if isinstance(v, dict) or _is_table_array(v):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_scalar(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{_key(k)}"
        if isinstance(v, dict):
            out += f"\n[{name}]\n" + dumps_toml(v, prefix=name + ".")
        else:
            for item in v:
                out += f"\n[[{name}]]\n" + dumps_toml(item, prefix=name + ".")
    return out


# --------------------------------------------------------------------------------------------
# physics of the truth


def choked_mass_flow(diameter_m: float, cd: float, pressure_pa: float, temperature_k: float) -> float:
    """Mass flow (kg/s) of air through a hole to vacuum (choked orifice)."""
    area = math.pi * diameter_m**2 / 4.0
    crit = (2.0 / (GAMMA + 1.0)) ** ((GAMMA + 1.0) / (2.0 * (GAMMA - 1.0)))
    return cd * area * pressure_pa * math.sqrt(GAMMA / (R_AIR * temperature_k)) * crit


def connected_modules(scenario: dict[str, Any], module: str) -> list[dict[str, Any]]:
    """The modules joined to ``module`` by connections open at the start."""
    modules = {m["name"]: m for m in scenario.get("modules", [])}
    links: dict[str, set[str]] = {name: set() for name in modules}
    for c in scenario.get("connections", []):
        a, b = (list(c.get("modules", [])) + [None, None])[:2]
        if c.get("open", True) and a in links and b in links:
            links[a].add(b)
            links[b].add(a)
    seen, stack = {module}, [module]
    while stack:
        for nxt in links.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return [modules[n] for n in modules if n in seen]


def leak_slope(scenario: dict[str, Any], leak: dict[str, Any], modules: list[dict[str, Any]] | None = None) -> float:
    """dP/dt magnitude (Pa/s) of the leak at the start pressure, spread over ``modules`` (default:
    the leak module's connected segment), isothermal."""
    by_name = {m["name"]: m for m in scenario.get("modules", [])}
    home = by_name[leak["module"]]
    segment = modules if modules is not None else connected_modules(scenario, leak["module"])
    volume = sum(float(m["volume_m3"]) for m in segment)
    temp = sum(float(m.get("temperature_k", 295.0)) * float(m["volume_m3"]) for m in segment) / volume
    mdot = choked_mass_flow(float(leak["diameter_m"]), float(leak.get("cd", 0.7)),
                            float(home.get("pressure_pa", 101300.0)), float(home.get("temperature_k", 295.0)))
    return mdot * R_AIR * temp / volume


def detection_floor_s(slope_pa_s: float, sigma_pa: float, rate_hz: float, alpha: float, beta: float) -> float:
    """The statistical floor (docs/architecture.md): the window over which a slope ``slope_pa_s`` in white noise
    ``sigma_pa`` sampled at ``rate_hz`` is detected with false-alarm ``alpha`` and miss ``beta``."""
    k = NormalDist().inv_cdf(1.0 - alpha) + NormalDist().inv_cdf(1.0 - beta)
    return (12.0 * k * k * sigma_pa * sigma_pa / (rate_hz * slope_pa_s * slope_pa_s)) ** (1.0 / 3.0)


# --------------------------------------------------------------------------------------------
# running and measuring


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case through the real closed loop and measure it (see the module doc).

    Raises whatever the loop raises (the executor records it as a failed case)."""
    from ...sim.device import SimDevice
    from ...sim.scenario import scenario_from_dict
    from ..closed_loop.runner import RunEvent, run_scenario

    data = build_scenario_dict(case)
    scenario = scenario_from_dict(data, f"{case.get('campaign', 'campaign')}:{case['id']}")
    params = case_params(case)
    device = SimDevice(scenario)
    located_truth: list[Any] = []
    estimate_truth: dict[tuple[str, float], Any] = {}

    def on_event(ev: RunEvent) -> None:
        # the plant's true state when FDIR locates the leak or updates its estimate: the
        # reference for the reserve time it reports then
        if ev.name in ESTIMATE_EVENTS:
            truth = device.truth()
            estimate_truth[(ev.name, ev.t)] = truth
            if ev.name == "LEAK_LOCATED" and not located_truth:
                located_truth.append(truth)

    try:
        result = run_scenario(device, fdir_params=params, on_event=on_event)
    finally:
        device.close()
    return measure(data, scenario, params, result, located_truth[0] if located_truth else None,
                   estimate_truth)


def measure(data: dict[str, Any], scenario: Any, params: Any, result: Any, located_truth: Any,
            estimate_truth: dict[tuple[str, float], Any] | None = None) -> dict[str, Any]:
    """The case record's measurements from a :class:`~hullwatch.tools.closed_loop.runner.RunResult` and the
    truth: the scenario dict and validated Scenario, the FDIR parameters, the device's
    :class:`~hullwatch.sim.device.Truth` at the time the leak was located (or None), and the
    truth at each LEAK_LOCATED / ESTIMATE_UPDATED event by (event name, mission time)."""
    rec = _measure(data, scenario, params, result, located_truth)
    rec.update(seal_measures(data, result, rec, params, estimate_truth or {}))
    return rec


def _measure(data: dict[str, Any], scenario: Any, params: Any, result: Any, located_truth: Any) -> dict[str, Any]:
    events = result.events
    leak = data["leaks"][0] if data.get("leaks") else None
    start = float(leak.get("start_s", 0.0)) if leak else math.inf
    alarms = [e for e in events if e.name in ALARM_EVENTS]
    suspected = [e for e in events if e.name == "LEAK_SUSPECTED"]
    rec: dict[str, Any] = {
        "kind": "leak" if leak else "nominal",
        "false_alarms": sum(e.t < start for e in alarms),
        "suspicions": sum(e.t < start for e in suspected),
        "sim_s": float(result.simulated_s),
        "loop_wall_s": float(result.wall_s),
        "verdict": result.verdict,
        "sigma_pa": float(scenario.sensors.pressure_noise_pa),
    }
    if leak is None:
        rec["detected"] = False
        return rec
    first = next((e for e in alarms if e.t >= start), None)
    slope = leak_slope(data, leak)
    sigma = rec["sigma_pa"]
    floor = detection_floor_s(slope, sigma, 1.0 / params.executive.period_s, params.leak.false_alarm_prob,
                              params.leak.miss_prob) if slope > 0 and sigma > 0 else None
    latency = first.t - start if first is not None else None
    cd_fdir = params.isolation.discharge_coefficient
    d_equiv = float(leak["diameter_m"]) * math.sqrt(float(leak.get("cd", 0.7)) / cd_fdir)
    rec.update({
        "leak_module": leak["module"],
        "diameter_mm": round(float(leak["diameter_m"]) * 1e3, 6),
        "cd": float(leak.get("cd", 0.7)),
        "leak_start_s": start,
        "slope_pa_s": slope,
        "detected": first is not None,
        "detected_s": first.t if first is not None else None,
        "detected_by": first.name if first is not None else "",
        "latency_s": latency,
        "floor_s": floor,
        "latency_ratio": latency / floor if latency is not None and floor else None,
        "located_module": result.located_module or "",
        "isolation_correct": result.located_module == leak["module"],
        "sealed_modules": " ".join(result.sealed_modules),
        "diameter_est_mm": result.hole_diameter_m * 1e3 if result.hole_diameter_m else None,
        "diameter_error": result.hole_diameter_m / d_equiv - 1.0 if result.hole_diameter_m else None,
        "reserve_est_s": result.reserve_time_s,
    })
    reserve_true = _true_reserve(data, leak["module"], result.sealed_modules, located_truth,
                                 params.isolation.reserve_floor_pa)
    rec["reserve_true_s"] = reserve_true
    rec["reserve_error"] = (result.reserve_time_s / reserve_true - 1.0
                            if result.reserve_time_s and reserve_true else None)
    return rec


def _true_reserve(data: dict[str, Any], module: str, sealed: list[str], truth: Any, floor_pa: float) -> float | None:
    """Time (s) for the located segment to fall to ``floor_pa`` from its true state at the moment
    of location. A choked leak's mass flow is proportional to pressure, so a sealed segment at
    constant temperature decays exponentially: ``t = tau ln(P / P_floor)`` with
    ``tau = P / (dP/dt)``. None without truth or without a leak in the segment."""
    if truth is None:
        return None
    segment = sealed if module in sealed else [module]
    volumes = {m["name"]: float(m["volume_m3"]) for m in data["modules"]}
    volume = sum(volumes[m] for m in segment)
    mdot = sum(lk.mass_flow_kg_s for lk in truth.leaks if lk.active and lk.module in segment)
    if mdot <= 0:
        return None
    temp = sum(truth.temperature_k[m] * volumes[m] for m in segment) / volume
    pressure = sum(truth.pressure_pa[m] * volumes[m] for m in segment) / volume
    rate = mdot * R_AIR * temp / volume
    if pressure <= floor_pa:
        return 0.0
    return pressure / rate * math.log(pressure / floor_pa)


def seal_measures(data: dict[str, Any], result: Any, rec: dict[str, Any], params: Any,
                  estimate_truth: dict[tuple[str, float], Any]) -> dict[str, Any]:
    """Seals and the estimates after sealing:

    - ``seals``: SEGMENT_SEALED events; ``false_seals``: every seal of a nominal case, and in a
      leak case every seal but the first correct one after the leak start (sealing a module
      cut off by the first isolation is a second, false isolation);
    - ``fault_types``: the sensor faults of the scenario (:func:`.faults.fault_types`);
    - ``located_s``, ``sealed_s``: mission times of location and sealing (None if not);
    - ``leak_kg_day``: the leak's true mass rate at its module's initial pressure;
    - ``diameter_error_10min``, ``reserve_error_10min`` (relative: estimate / truth - 1) from the
      last ESTIMATE_UPDATED event at or before 10 min after the first seal after the leak
      start, else from the last LEAK_LOCATED event then (``estimate_event`` names which).
    """
    seals = [e for e in result.events if e.name == "SEGMENT_SEALED"]
    out: dict[str, Any] = {"seals": len(seals), "fault_types": fault_types(data),
                           "located_s": result.located, "sealed_s": result.sealed}
    leak = data["leaks"][0] if data.get("leaks") else None
    if leak is None:
        out["false_seals"] = len(seals)
        return out
    start = float(leak.get("start_s", 0.0))
    home = next(m for m in data["modules"] if m["name"] == leak["module"])
    out["leak_kg_day"] = 86400.0 * choked_mass_flow(
        float(leak["diameter_m"]), float(leak.get("cd", 0.7)), float(home.get("pressure_pa", 101325.0)),
        float(home.get("temperature_k", 295.0)))
    first = next((e for e in seals if e.t >= start), None)
    out["false_seals"] = len(seals) - (1 if first is not None and rec.get("isolation_correct") else 0)
    if first is None:
        return out
    horizon = first.t + ESTIMATE_DELAY_S
    chosen = None
    for name in ("ESTIMATE_UPDATED", "LEAK_LOCATED"):
        cands = [e for e in result.events if e.name == name and start <= e.t <= horizon]
        if cands:
            chosen = cands[-1]
            break
    if chosen is None or len(chosen.values) < 2:
        return out
    d_est, reserve_est = float(chosen.values[0]), float(chosen.values[1])
    cd_fdir = params.isolation.discharge_coefficient
    d_equiv = float(leak["diameter_m"]) * math.sqrt(float(leak.get("cd", 0.7)) / cd_fdir)
    out["estimate_event"] = chosen.name
    out["estimate_s"] = chosen.t
    out["diameter_est_10min_mm"] = d_est * 1e3
    out["diameter_error_10min"] = d_est / d_equiv - 1.0 if d_est > 0 else None
    truth = estimate_truth.get((chosen.name, chosen.t))
    reserve_true = _true_reserve(data, leak["module"], result.sealed_modules, truth,
                                 params.isolation.reserve_floor_pa)
    out["reserve_true_10min_s"] = reserve_true
    out["reserve_error_10min"] = (reserve_est / reserve_true - 1.0
                                  if reserve_est > 0 and reserve_true else None)
    return out
