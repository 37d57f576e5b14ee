"""The plant: conservation, blowdown against the analytic choked solution, hatches, valves,
thermal cycle, crew oxygen and repress."""

from __future__ import annotations

import math

import pytest

from hullwatch.sim.gas import CRITICAL_RATIO, orifice_flow
from hullwatch.sim.plant import SEAT_TRAVEL, Plant
from hullwatch.sim.scenario import load_scenario, preset_dict, scenario_from_dict

GAMMA = 1.4
R = 287.05
QUIET = {"amplitude_k": 0.0, "drift_amplitude_k": 0.0}


def station(modules, connections=(), leaks=(), **extra):
    data = {
        "name": "test", "start_utc": "2018-08-29T20:00:00Z", "duration_s": 3600.0,
        "modules": [dict(m) for m in modules], "connections": [dict(c) for c in connections],
        "leaks": [dict(lk) for lk in leaks], "thermal": dict(QUIET),
    }
    data.update(extra)
    return scenario_from_dict(data, "test")


def choked_tau(volume, cd, diameter, temperature):
    """Independent oracle: dP/dt = -P Cd A sqrt(gamma R T) (2/(gamma+1))^((gamma+1)/(2(gamma-1))) / V."""
    a = math.pi * diameter ** 2 / 4
    k = cd * a * math.sqrt(GAMMA * R * temperature) * (2 / (GAMMA + 1)) ** ((GAMMA + 1) / (2 * (GAMMA - 1)))
    return volume / k


@pytest.mark.parametrize("step", [0.1, 1.0, 30.0])
def test_blowdown_of_2mm_hole_in_900m3_matches_analytic_choked_solution(step):
    sc = station([{"name": "iss", "volume_m3": 900.0, "pressure_pa": 101325.0}],
                 leaks=[{"module": "iss", "diameter_m": 0.002, "cd": 0.7}])
    plant = Plant(sc)
    tau = choked_tau(900.0, 0.7, 0.002, 295.0)
    for hours in (1, 6, 24):
        plant.advance_to(hours * 3600.0, max_step=step)
        expected = 101325.0 * math.exp(-hours * 3600.0 / tau)
        assert plant.pressure[0] == pytest.approx(expected, rel=0.01)
        assert plant.pressure[0] == pytest.approx(expected, rel=1e-9)  # the step is exact
    # And the rate is the one the record gives for a clean 2 mm hole: ~0.049 Pa/s at 1 atm.
    assert 101325.0 / tau == pytest.approx(0.049, rel=0.05)


def test_lumped_station_blows_down_like_one_volume():
    mods = [{"name": n, "volume_m3": v} for n, v in
            (("om", 6.0), ("dm", 4.0), ("mrm1", 17.0), ("fgb", 72.0), ("sm", 75.0), ("us", 726.0))]
    conns = [{"id": f"h{k}", "modules": [a, b]} for k, (a, b) in
             enumerate((("dm", "om"), ("om", "mrm1"), ("mrm1", "fgb"), ("fgb", "sm"), ("fgb", "us")))]
    sc = station(mods, conns, leaks=[{"module": "om", "diameter_m": 0.002, "cd": 0.7}])
    plant = Plant(sc)
    plant.advance_to(7200.0)
    expected = 101325.0 * math.exp(-7200.0 / choked_tau(900.0, 0.7, 0.002, 295.0))
    for p in plant.pressure:
        assert p == pytest.approx(expected, rel=1e-9)


def test_gas_is_conserved_over_a_day_with_leaks_repress_crew_and_hatches():
    data = preset_dict("nominal-24h")
    data["leaks"] = [{"module": "soyuz-om", "diameter_m": 0.002, "cd": 0.35, "start_s": 600.0}]
    data["repress"][0]["events"] = [[3000.0, 600.0], [50000.0, 900.0]]
    # a small equalisation valve across a closed hatch: orifice flow between two nodes
    data["connections"].append({"id": "mpev", "kind": "valve", "modules": ["soyuz-om", "rassvet"],
                                "diameter_m": 0.02, "open": False})
    plant = Plant(scenario_from_dict(data, "conservation"))
    start = plant.ledger_balance()
    hatch = plant.valve_ids.index("om-rassvet")
    mpev = plant.valve_ids.index("mpev")
    zvezda = plant.valve_ids.index("zarya-zvezda")
    for hour in range(24):
        if hour == 2:
            plant.command_valve(hatch, False)  # the leaking Soyuz is split off
            plant.command_valve(zvezda, False)
        if hour == 5:
            plant.command_valve(mpev, True)  # equalise it through a small valve
        if hour == 9:
            plant.command_valve(hatch, True)
            plant.command_valve(zvezda, True)
        plant.advance_to((hour + 1) * 3600.0, max_step=0.5)
    assert plant.leaked_kg > 1.0 and plant.added_kg > 5.0 and plant.consumed_kg > 4.0
    assert abs(plant.ledger_balance() - start) / plant.total_mass() < 1e-9


def test_closing_the_hatch_on_a_leaking_module_makes_it_fall_at_its_own_volume_rate():
    sc = station([{"name": "om", "volume_m3": 6.0, "pressure_pa": 100000.0},
                  {"name": "station", "volume_m3": 894.0, "pressure_pa": 100000.0}],
                 [{"id": "hatch", "modules": ["om", "station"], "actuation_s": 5.0}],
                 leaks=[{"module": "om", "diameter_m": 0.002, "cd": 0.35}])
    plant = Plant(sc)
    plant.advance_to(600.0)
    before = plant.pressure[0]
    plant.advance_to(700.0)
    rate_open = (before - plant.pressure[0]) / 100.0
    plant.command_valve(0, False)
    plant.advance_to(710.0)  # hatch shut after 5 s
    assert plant.valve_position[0] == 0.0
    p_om, p_st = plant.pressure
    plant.advance_to(740.0)
    rate_om = (p_om - plant.pressure[0]) / 30.0
    # expected: mdot R T / V_om with mdot the choked flow at the module's pressure
    mdot = 0.35 * math.pi * 0.002 ** 2 / 4 * p_om * math.sqrt(GAMMA / (R * 295.0)) * \
        (2 / (GAMMA + 1)) ** ((GAMMA + 1) / (2 * (GAMMA - 1)))
    assert rate_om == pytest.approx(mdot * R * 295.0 / 6.0, rel=0.01)
    assert rate_om == pytest.approx(rate_open * 900.0 / 6.0, rel=0.01)
    assert plant.pressure[1] == p_st  # the rest of the station holds


def test_an_opening_hatch_equalises_within_a_cycle_and_conserves_gas():
    sc = station([{"name": "a", "volume_m3": 10.0, "pressure_pa": 100000.0},
                  {"name": "b", "volume_m3": 20.0, "pressure_pa": 90000.0}],
                 [{"id": "hatch", "modules": ["a", "b"], "open": False, "actuation_s": 2.0}])
    plant = Plant(sc)
    m0 = plant.total_mass()
    plant.command_valve(0, True)
    plant.advance_to(0.5)  # a quarter open: orifice flow, limited, no overshoot
    assert plant.pressure[0] >= plant.pressure[1]
    plant.advance_to(2.1)  # fully open: one node
    assert plant.pressure[0] == pytest.approx(plant.pressure[1], abs=1e-9)
    assert plant.pressure[0] == pytest.approx((100000.0 * 10 + 90000.0 * 20) / 30, rel=1e-9)
    assert plant.total_mass() == pytest.approx(m0, rel=1e-12)


def test_a_valve_passes_no_gas_until_it_is_off_its_seat():
    """Below SEAT_TRAVEL of travel nothing flows, and the position feedback already reads the
    travel: a flight software counting a valve open above a lower threshold never sees gas move
    through a valve it counts closed."""
    sc = station([{"name": "a", "volume_m3": 10.0, "pressure_pa": 100000.0},
                  {"name": "b", "volume_m3": 20.0, "pressure_pa": 90000.0}],
                 [{"id": "hatch", "modules": ["a", "b"], "open": False, "actuation_s": 10.0}])
    plant = Plant(sc)
    plant.command_valve(0, True)
    seat_s = SEAT_TRAVEL * 10.0
    plant.advance_to(seat_s - 0.05, max_step=0.01)
    assert 0.02 < plant.valve_feedback[0] < SEAT_TRAVEL
    assert plant.pressure[0] == 100000.0 and plant.pressure[1] == 90000.0
    plant.advance_to(seat_s + 0.2, max_step=0.01)
    assert plant.pressure[0] < 100000.0 and plant.pressure[1] > 90000.0


def test_a_small_valve_equalises_monotonically_at_any_step():
    for step in (0.01, 0.1, 5.0):
        sc = station([{"name": "a", "volume_m3": 6.0, "pressure_pa": 100000.0},
                      {"name": "b", "volume_m3": 75.0, "pressure_pa": 95000.0}],
                     [{"id": "v", "kind": "valve", "modules": ["a", "b"], "diameter_m": 0.025}])
        plant = Plant(sc)
        diffs = []
        for k in range(1, 121):
            plant.advance_to(k * 1.0, max_step=step)
            diffs.append(plant.pressure[0] - plant.pressure[1])
        assert all(d >= -1e-6 for d in diffs), step
        assert all(b <= a + 1e-6 for a, b in zip(diffs, diffs[1:])), step
        assert diffs[0] < 5000.0 and diffs[-1] < 1.0


def test_orifice_law_is_continuous_at_the_critical_ratio_and_zero_at_equal_pressure():
    p_up = 100000.0
    below = orifice_flow(1e-4, p_up, 295.0, p_up * CRITICAL_RATIO * (1 - 1e-9))
    above = orifice_flow(1e-4, p_up, 295.0, p_up * CRITICAL_RATIO * (1 + 1e-9))
    assert below == pytest.approx(above, rel=1e-6)
    assert orifice_flow(1e-4, p_up, 295.0, p_up) == 0.0
    assert orifice_flow(1e-4, p_up, 295.0, p_up * 0.99) < below


def test_gas_temperature_stays_within_1_1_K_and_pressure_follows_it():
    sc = load_scenario("nominal-24h")
    plant = Plant(sc)
    worst = 0.0
    for k in range(1, 97):
        plant.advance_to(k * 900.0, max_step=10.0)
        for tk, m in zip(plant.temperature, sc.modules):
            worst = max(worst, abs(tk - m.temperature_k))
    assert 0.3 < worst <= 1.1
    # isolated constant-mass volume: P/T constant
    sc2 = station([{"name": "a", "volume_m3": 10.0}], thermal={"amplitude_k": 1.0})
    p2 = Plant(sc2)
    ratios, temps = [], []
    for k in range(20):
        p2.advance_to(k * 300.0 + 1.0)
        ratios.append(p2.pressure[0] / p2.temperature[0])
        temps.append(p2.temperature[0])
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-12)
    assert max(temps) - min(temps) > 1.0


def test_crew_oxygen_is_balanced_within_1_kg_per_day():
    sc = load_scenario("nominal-24h")
    plant = Plant(sc)
    plant.advance_to(86400.0, max_step=5.0)
    repress = 3.0  # kg, at least: the scheduled Progress repress
    o2_net = plant.added_kg - plant.consumed_kg
    assert plant.consumed_kg == pytest.approx(6 * 0.84, rel=0.05)
    assert repress < o2_net < repress + 1.0 + 3.6  # repress ~3.5 kg plus |mismatch| < 1 kg/day
    assert abs((plant.added_kg - 3.49) - plant.consumed_kg) < 1.0


def test_repress_adds_what_its_flow_meter_truth_says_only_while_scheduled():
    data = preset_dict("soyuz-ms09")
    data["leaks"] = []
    data["crew"] = {"count": 0}
    data["repress"][0]["events"] = [[100.0, 300.0]]
    plant = Plant(scenario_from_dict(data, "repress"))
    total = 0.0
    flows = []
    for k in range(1, 6001):
        plant.advance_to(k * 0.1)
        total += plant.repress_flow[0] * 0.1
        flows.append(plant.repress_flow[0])
    assert plant.added_kg == pytest.approx(total, rel=1e-9)
    assert plant.added_kg == pytest.approx(300.0 * 5.82e-3, rel=0.02)
    assert flows[500] == 0.0 and flows[2000] > 5e-3 and flows[5000] == 0.0


def test_valve_faults_stuck_open_stuck_closed_and_feedback_mismatch():
    sc = station([{"name": n, "volume_m3": 10.0} for n in "abcd"],
                 [{"id": "ab", "modules": ["a", "b"]},
                  {"id": "bc", "modules": ["b", "c"], "open": False},
                  {"id": "cd", "modules": ["c", "d"]}],
                 valve_faults=[{"valve": "ab", "kind": "stuck_open", "start_s": 10.0},
                               {"valve": "bc", "kind": "stuck_closed", "start_s": 0.0},
                               {"valve": "cd", "kind": "feedback_mismatch", "start_s": 1.0}])
    plant = Plant(sc)
    plant.advance_to(20.0)
    for v, open_ in enumerate((False, True, False)):  # close ab, open bc, close cd
        plant.command_valve(v, open_)
    plant.advance_to(40.0)
    assert plant.valve_position == [1.0, 0.0, 0.0]
    assert plant.valve_command == [0, 1, 0]
    assert plant.valve_feedback == [1.0, 0.0, 1.0]  # cd really closed, its switch says open


def test_a_stuck_open_fault_reopens_a_closed_valve():
    sc = station([{"name": "a", "volume_m3": 10.0}, {"name": "b", "volume_m3": 10.0}],
                 [{"id": "ab", "modules": ["a", "b"], "open": False, "actuation_s": 4.0}],
                 valve_faults=[{"valve": "ab", "kind": "stuck_open", "start_s": 5.0}])
    plant = Plant(sc)
    plant.advance_to(7.0)
    assert 0.0 < plant.valve_position[0] < 1.0
    plant.advance_to(10.0)
    assert plant.valve_position[0] == 1.0 and plant.valve_feedback[0] == 1.0
