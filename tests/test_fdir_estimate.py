"""Estimates that converge after sealing: ESTIMATE_UPDATED on a hand-made station (fast) and end to
end on a scenario file against the plant's truth."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fdir_fakes import R, T, ChainStation, of, run
from hullwatch.firmware.fdir.params import params_from_dict
from hullwatch.firmware.fdir.physics import choked_mass_flux_factor
from hullwatch.firmware.telemetry.events import EVENT_DEFS
from hullwatch.firmware.types import EventId, Severity

DATA = Path(__file__).parent / "data"
FLOOR = 69327.6


def true_hole(k_hole: float, cd: float = 0.7) -> float:
    """The diameter whose choked flow is ``k_hole * P`` (kg/s per Pa) at T."""
    area = k_hole * math.sqrt(R * T) / (cd * choked_mass_flux_factor(1.4))
    return math.sqrt(4.0 * area / math.pi)


def true_reserve(k_hole: float, volume: float, pressure: float) -> float:
    tau = volume / (k_hole * R * T)
    return tau * math.log(pressure / FLOOR)


def test_event_is_defined_for_the_dictionary():
    d = EVENT_DEFS[EventId.ESTIMATE_UPDATED]
    assert int(EventId.ESTIMATE_UPDATED) == 11 and d.severity == Severity.INFO and d.subject == "module"
    assert [v.name for v in d.values] == ["hole_diameter_m", "reserve_time_s", "hole_rel_sd"]


def test_estimates_converge_after_sealing_and_stop_within_target():
    k = 2e-3 / 101300.0  # 2 g/s at 1 atm from the 6 m3 module b: sealed in about a minute
    station = ChainStation(["a", "b", "c"], [50.0, 6.0, 100.0], holes={"b": k}, seed=4)
    truth: list[tuple[float, float]] = []

    def note(rec: tuple) -> None:
        if rec[1] == EventId.ESTIMATE_UPDATED:
            truth.append((rec[0], station.pressure(1)))

    fdir, events = run(station, params_from_dict({}, "test"), 400.0, on_event=note)
    sealed = of(events, "SEGMENT_SEALED")[0][0]
    updates = of(events, "ESTIMATE_UPDATED")
    assert updates and all(e[3] == "b" for e in updates)
    times = [e[0] for e in updates]
    # Every estimate.period_s from sealing (on the 1 Hz housekeeping tick), until within target
    # after estimate.min_s.
    assert sealed + 10.0 <= times[0] <= sealed + 11.0
    assert all(b - a == pytest.approx(10.0, abs=1.01) for a, b in zip(times, times[1:]))
    assert sealed + 120.0 <= times[-1] <= sealed + 131.0
    last = updates[-1]
    assert 2.0 * last[6] <= 0.05 and 2.0 * 2.0 * last[6] <= 0.05  # hole and reserve within target
    assert last[4] == pytest.approx(true_hole(k), rel=0.01)
    assert last[5] == pytest.approx(true_reserve(k, 6.0, truth[-1][1]), rel=0.02)
    # The uncertainty shrinks as the window grows.
    assert updates[-1][6] < updates[0][6]
    assert fdir.estimator.updates == len(updates) and not fdir.estimator.active


def test_updates_stop_at_max_s_when_the_target_is_out_of_reach():
    k = 2e-3 / 101300.0
    station = ChainStation(["a", "b", "c"], [50.0, 6.0, 100.0], holes={"b": k}, seed=4)
    p = params_from_dict({"estimate": {"hole_target": 1e-9, "reserve_target": 1e-9, "min_s": 0.0,
                                       "max_s": 60.0, "period_s": 5.0}}, "test")
    fdir, events = run(station, p, 400.0)
    sealed = of(events, "SEGMENT_SEALED")[0][0]
    times = [e[0] for e in of(events, "ESTIMATE_UPDATED")]
    assert len(times) == pytest.approx(12, abs=1)
    assert times[-1] <= sealed + 60.0 + 5.2


def test_small_module_estimates_meet_their_targets_ten_minutes_after_sealing():
    from hullwatch.sim.device import SimDevice
    from hullwatch.sim.scenario import load_scenario
    from hullwatch.tools.closed_loop.runner import run_scenario

    errors = []
    for seed in (1, 2):
        device = SimDevice(load_scenario(str(DATA / "estimate-32m3.toml")), seed=seed)
        seen: dict = {}

        def on_event(ev, seen=seen, device=device) -> None:
            if ev.name == "SEGMENT_SEALED":
                seen["sealed"] = ev.t
            elif ev.name == "LEAK_LOCATED":
                seen["located"] = ev.values
            elif ev.name == "ESTIMATE_UPDATED" and ev.t <= seen["sealed"] + 600.0:
                seen["estimate"] = (ev.values, device.truth())

        try:
            run_scenario(device, until=1100.0, on_event=on_event)
        finally:
            device.close()
        (hole, reserve, rel), truth = seen["estimate"]
        mdot = sum(lk.mass_flow_kg_s for lk in truth.leaks if lk.active)
        p, t = truth.pressure_pa["lab"], truth.temperature_k["lab"]
        reserve_true = p * 32.0 / (mdot * 287.05 * t) * math.log(p / FLOOR)
        errors.append((hole / 0.001 - 1.0, reserve / reserve_true - 1.0, rel))
    for hole_err, reserve_err, rel in errors:
        assert abs(hole_err) <= 0.05 and abs(reserve_err) <= 0.05
        assert rel <= 0.025
