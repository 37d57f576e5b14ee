"""Slow leaks and converging estimates: false alarms on nominal days, detection and location time
of open-station leaks of 0.5-5 kg/day, and hole/reserve errors 10 minutes after sealing.
Prints each figure beside its target; asserts nothing.

    python bench/slowleak.py                     # all three parts, a few seeds each (~15 min)
    python bench/slowleak.py --parts c           # just the estimates (~1 min)
    python bench/slowleak.py --seeds 1 2 3 4 5   # more seeds

(a) ``nominal-24h`` (no leak) with the crew's O2 generation/use mismatch at 0.5 kg/day, one day per
    seed: every LEAK_SUSPECTED / LEAK_CONFIRMED / RAPID_DEPRESS is a false alarm.
(b) the open-PrK station (``tests/data/slowleak-prk-open.toml``: the PrK hatch open, the crew in
    Zvezda, mismatch 0.5 kg/day) with a hole sized for 0.5, 1, 2 and 5 kg/day at Cd 0.7, starting
    at ``--start`` s; location schedule commanded (``slowleak.locate = 2``): time from the leak
    start to detection (LEAK_CONFIRMED or RAPID_DEPRESS) and to LEAK_LOCATED, and the module located, within 24 h.
(c) holes of 1, 2 and 5 mm (Cd 0.7) in small modules of the 2018 station (soyuz-dm 4 m3,
    soyuz-om 6 m3, rassvet 17 m3, zarya 72 m3) and of ``tests/data/estimate-32m3.toml`` (lab
    32 m3, airlock 6 m3): the last ESTIMATE_UPDATED at or before 10 minutes
    after SEGMENT_SEALED (or LEAK_LOCATED's values when none) against the truth at that moment:
    the hole at the FDIR's Cd (``d sqrt(cd / cd_fdir)``) and the reserve time from the plant's
    true pressure and leak mass flow (``tau ln(P / P_floor)``, ``tau = P V / (m' R T)``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

from hullwatch.firmware.fdir.params import default_params
from hullwatch.sim.device import SimDevice
from hullwatch.sim.scenario import preset_dict, scenario_from_dict
from hullwatch.tools.closed_loop.runner import RunEvent, run_scenario

ROOT = Path(__file__).resolve().parents[1]
OPEN_PRK = ROOT / "tests" / "data" / "slowleak-prk-open.toml"
SMALL = ROOT / "tests" / "data" / "estimate-32m3.toml"
GAMMA, R_AIR = 1.4, 287.05
ALARMS = ("LEAK_SUSPECTED", "LEAK_CONFIRMED", "RAPID_DEPRESS")
CONFIRMS = ("LEAK_CONFIRMED", "RAPID_DEPRESS")  #: detection, as campaigns count it


def hole_for(kg_day: float, cd: float = 0.7, p: float = 100000.0, t: float = 295.0) -> float:
    """Diameter (m) of the hole that loses ``kg_day`` by choked flow at ``p``, ``t``."""
    flux = math.sqrt(GAMMA) * (2.0 / (GAMMA + 1.0)) ** ((GAMMA + 1.0) / (2.0 * (GAMMA - 1.0)))
    area = kg_day / 86400.0 * math.sqrt(R_AIR * t) / (cd * p * flux)
    return math.sqrt(4.0 * area / math.pi)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return math.nan
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _spent(t0: tuple[float, float]) -> str:
    wall, cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
    return f"wall {wall:.0f} s, CPU {cpu:.0f} s, load average {os.getloadavg()[0]:.1f}"


def part_a(seeds: list[int]) -> None:
    print(f"(a) nominal-24h, O2 mismatch 0.5 kg/day, {len(seeds)} days (seeds {seeds})")
    t0 = _clock()
    alarms = 0
    for seed in seeds:
        data = preset_dict("nominal-24h")
        data.setdefault("crew", {})["mismatch_kg_per_day"] = 0.5
        data["seed"] = seed
        r = run_scenario("sim://", scenario=scenario_from_dict(data, "nominal-24h"), seed=seed)
        found = [e for e in r.events if e.name in ALARMS]
        alarms += len(found)
        print(f"    seed {seed}: {len(found)} alarms {[(round(e.t), e.name) for e in found][:3]}, "
              f"{r.speedup:.0f} x real time")
    print(f"    false alarms: {alarms} in {len(seeds)} nominal days = {alarms / len(seeds):.2f} per day"
          f"   target 0   ({_spent(t0)})")


def part_b(seeds: list[int], rates: list[float], start: float) -> None:
    print(f"(b) open-PrK station, leak from {start:.0f} s, location commanded; 24 h per run")
    t0 = _clock()
    for kg_day in rates:
        det, loc, where = [], [], []
        for seed in seeds:
            data = _toml(OPEN_PRK)
            data["leaks"][0]["diameter_m"] = hole_for(kg_day)
            data["leaks"][0]["start_s"] = start
            data["duration_s"] = start + 86400.0
            data["seed"] = seed
            r = run_scenario("sim://", scenario=scenario_from_dict(data, "open-prk"), seed=seed,
                             fdir_params={"slowleak": {"locate": 2}})
            first = next((e for e in r.events if e.name in CONFIRMS and e.t >= start), None)
            early = [e for e in r.events if e.name in ALARMS and e.t < start]
            located = r.first("LEAK_LOCATED")
            det.append((first.t - start) / 3600.0 if first else math.inf)
            loc.append((located.t - start) / 3600.0 if located else math.inf)
            where.append((located.subject if located else "-") + ("" if not early else f" ({len(early)} early)"))
        found = sum(math.isfinite(x) for x in det)
        print(f"    {kg_day:4.1f} kg/day (hole {hole_for(kg_day) * 1e3:.2f} mm): detected {found}/{len(seeds)}, "
              f"detection h {[round(x, 1) for x in det]}, located h {[round(x, 1) for x in loc]}, "
              f"module {where}")
    print(f"    target: 1 kg/day and more detected and located within 24 h   ({_spent(t0)})")


def _toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def part_c(seeds: list[int]) -> None:
    print("(c) estimates 10 minutes after sealing (last ESTIMATE_UPDATED), truth at the FDIR's Cd")
    t0 = _clock()
    params = default_params()
    cd_fdir = params.isolation.discharge_coefficient
    floor = params.isolation.reserve_floor_pa
    hole_err: list[float] = []
    res_err: list[float] = []
    located_err: list[float] = []
    cases = [("soyuz-ms09", m) for m in ("soyuz-dm", "soyuz-om", "rassvet", "zarya")]
    cases += [("estimate-32m3", m) for m in ("lab", "airlock")]
    for source, module in cases:
        for d_mm in (1.0, 2.0, 5.0):
            for seed in seeds:
                data = preset_dict(source) if source == "soyuz-ms09" else _toml(SMALL)
                data["leaks"] = [{"module": module, "diameter_m": d_mm * 1e-3, "cd": 0.7, "start_s": 300.0}]
                data["seed"] = seed
                data["duration_s"] = 3600.0
                scenario = scenario_from_dict(data, "estimate")
                device = SimDevice(scenario)
                state: dict[str, Any] = {}

                def on_event(ev: RunEvent, state: dict[str, Any] = state, device: SimDevice = device) -> None:
                    # the truth is taken when each estimate is made: a reserve time counts from then
                    if ev.name == "SEGMENT_SEALED" and "sealed" not in state:
                        state["sealed"] = ev.t
                    if ev.name == "LEAK_LOCATED" and "located" not in state:
                        state["located"] = (ev.values, device.truth())
                    if ev.name == "ESTIMATE_UPDATED" and "sealed" in state and ev.t <= state["sealed"] + 600.0:
                        state["estimate"] = (ev.values, device.truth())

                try:
                    run_scenario(device, until=3600.0, on_event=on_event)
                finally:
                    device.close()
                if "located" not in state:
                    print(f"    {module} {d_mm} mm seed {seed}: not located")
                    continue
                vol = float(next(m["volume_m3"] for m in data["modules"] if m["name"] == module))
                d_true = d_mm * 1e-3 * math.sqrt(0.7 / cd_fdir)
                est, truth = state.get("estimate") or state["located"]
                reserve_true = _true_reserve(truth, module, vol, floor)
                hole_err.append(abs(est[0] / d_true - 1.0))
                res_err.append(abs(est[1] / reserve_true - 1.0))
                loc, loc_truth = state["located"]
                located_err.append(abs(loc[1] / _true_reserve(loc_truth, module, vol, floor) - 1.0))
    n = len(hole_err)
    print(f"    {n} sealed cases (6 modules of 4-72 m3 x 1, 2, 5 mm x {len(seeds)} seeds)")
    print(f"    hole error:    median {100 * statistics.median(hole_err):.2f} %, p95 {100 * pct(hole_err, 0.95):.2f} %, "
          f"max {100 * max(hole_err):.2f} %   target median <= 5 %, p95 <= 15 %")
    print(f"    reserve error: median {100 * statistics.median(res_err):.2f} %, p95 {100 * pct(res_err, 0.95):.2f} %, "
          f"max {100 * max(res_err):.2f} %   target median <= 5 %, p95 <= 10 %")
    print(f"    (LEAK_LOCATED's reserve against the same truth: median {100 * statistics.median(located_err):.1f} %, "
          f"p95 {100 * pct(located_err, 0.95):.1f} %)   ({_spent(t0)})")


def _true_reserve(truth: Any, module: str, volume: float, floor: float) -> float:
    """Time (s) for ``module``, sealed, to fall from its true state to ``floor``."""
    mdot = sum(lk.mass_flow_kg_s for lk in truth.leaks if lk.active and lk.module == module)
    p_true, t_true = truth.pressure_pa[module], truth.temperature_k[module]
    tau = p_true * volume / (mdot * R_AIR * t_true)
    return tau * math.log(p_true / floor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="abc", help="which parts to run (letters a, b, c)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.5, 1.0, 2.0, 5.0], help="kg/day for (b)")
    ap.add_argument("--start", type=float, default=600.0, help="leak start (s) for (b)")
    args = ap.parse_args()
    print(f"hullwatch slow-leak benchmark (one core; {os.cpu_count()} on this machine)")
    if "a" in args.parts:
        part_a(args.seeds)
    if "b" in args.parts:
        part_b(args.seeds, args.rates, args.start)
    if "c" in args.parts:
        part_c(args.seeds)


if __name__ == "__main__":
    main()
