"""The sim:// device through hal.open: URL grammar, layout, lockstep clock, valves, truth, and
what a detector can see in the readings."""

from __future__ import annotations

import statistics

import pytest

from hullwatch import hal
from hullwatch.hal import ChannelKind, DeviceUrlError, SampleStatus, ValveKind
from hullwatch.sim.device import SimDevice
from hullwatch.sim.errors import ScenarioError
from hullwatch.sim.gas import MMHG_PA, R_AIR
from hullwatch.sim.scenario import preset_text


def test_open_soyuz_ms09_layout_epoch_and_info():
    dev = hal.open("sim://soyuz-ms09?seed=7")
    assert isinstance(dev, SimDevice) and isinstance(dev, hal.Device)
    lay = dev.layout
    names = [m.name for m in lay.modules]
    assert names == ["soyuz-dm", "soyuz-om", "rassvet", "zarya", "zvezda", "usos"]
    assert [c.id for c in lay.pressure[:4]] == ["soyuz-dm.p1", "soyuz-dm.p2", "soyuz-dm.p3",
                                                "soyuz-om.p1"]
    assert len(lay.pressure) == 18 and len(lay.temperature) == 12
    assert all(c.kind == ChannelKind.PRESSURE and c.id.startswith(c.module + ".p")
               for c in lay.pressure)
    assert [c.id for c in lay.flow] == ["progress-air.flow"]
    repress = lay.valves[lay.valve_index("progress-air")]
    assert repress.kind == ValveKind.REPRESS and repress.module_b is None
    hatch = lay.valves[lay.valve_index("om-rassvet")]
    assert (hatch.kind, hatch.module_a, hatch.module_b) == (ValveKind.HATCH, "soyuz-om", "rassvet")
    assert dev.epoch_utc == 1535572800.0  # 2018-08-29T20:00:00Z
    assert dev.info.kind == "sim" and dev.info.details["seed"] == 7
    assert dev.clock.virtual and dev.clock.now() == 0.0
    dev.close()
    dev.close()


@pytest.mark.parametrize("url, message", [
    ("sim://soyuz-ms09?sed=7", "unknown query key 'sed'"),
    ("sim://soyuz-ms09?seed=x", "seed must be an integer >= 0"),
    ("sim://soyuz-ms09?seed=-1", "seed must be an integer >= 0"),
    ("sim://soyuz-ms09?duration=0", "duration must be a number of seconds > 0"),
    ("sim://soyuz-ms09?seed=1&seed=2", "given twice"),
    ("sim://", "expected sim://NAME-or-PATH"),
])
def test_bad_urls_are_device_url_errors(url, message):
    with pytest.raises(DeviceUrlError, match=message):
        hal.open(url)


def test_unknown_scenario_and_options():
    with pytest.raises(ScenarioError, match="no such preset or file"):
        hal.open("sim://no-such-station")
    with pytest.raises(DeviceUrlError, match="unknown option 'speed'"):
        hal.open("sim://soyuz-ms09", speed=2)
    dev = hal.open("sim://soyuz-ms09?duration=60", seed=4)
    assert dev.seed == 4 and dev.scenario.duration_s == 60.0


def test_a_scenario_file_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(preset_text("prk-slow").replace('name = "prk-slow"', 'name = "mine"'))
    dev = hal.open(f"sim://{path}?seed=2")
    assert dev.info.name == "mine" and "prk.p3" in [c.id for c in dev.layout.pressure]


def test_lockstep_clock_reads_and_valve_commands():
    dev = hal.open("sim://soyuz-ms09?seed=1")
    frame = dev.layout.new_frame()
    vi = dev.layout.valve_index("om-rassvet")
    for k in range(1, 101):
        dev.clock.sleep_until(k * 0.1)
        dev.read(frame)
        if k == 10:
            dev.command_valve(vi, False)
    assert dev.clock.now() == pytest.approx(10.0) and frame.t == pytest.approx(10.0)
    assert frame.pressure_status == [int(SampleStatus.OK)] * 18
    assert frame.pressure_time == [pytest.approx(10.0)] * 18
    assert frame.valve_cmd[vi] == 0 and frame.valve_fb[vi] == 0.0
    assert frame.valve_cmd[0] == 1 and frame.valve_fb[0] == 1.0
    assert ("soyuz-dm", "soyuz-om") in dev.truth().segments
    dev.command_valve(99, True)  # never raises
    dev.command_valve(-1, True)
    assert dev.health()["bad_commands"] == 2
    dev.clock.sleep_until(5.0)  # the past: nothing happens
    assert dev.clock.now() == pytest.approx(10.0)


def test_truth_reports_the_leak():
    dev = hal.open("sim://soyuz-ms09")
    dev.clock.sleep_until(200.0)
    (leak,) = dev.truth().leaks
    assert not leak.active and leak.mass_flow_kg_s == 0.0
    dev.clock.sleep_until(400.0)
    truth = dev.truth()
    (leak,) = truth.leaks
    assert leak.active and leak.module == "soyuz-om" and leak.mass_flow_kg_s == pytest.approx(
        2.6e-4, rel=0.05)
    assert truth.leaked_kg == pytest.approx(100.0 * leak.mass_flow_kg_s, rel=0.02)
    assert dev.leak_modules() == ["soyuz-om"]
    assert 749.0 < dev.mean_pressure_mmhg() < 751.0


def _inventory_slope(url: str, seconds: float, start: float = 0.0) -> tuple[float, float]:
    """Least-squares slope (kg/s) of the gas inventory a detector would compute from the
    readings (median pressure and mean temperature per module), and the true leak rate."""
    dev = hal.open(url)
    lay = dev.layout
    vols = [m.volume_m3 for m in lay.modules]
    p_idx = [[j for j, c in enumerate(lay.pressure) if c.module == m.name] for m in lay.modules]
    t_idx = [[j for j, c in enumerate(lay.temperature) if c.module == m.name] for m in lay.modules]
    frame = lay.new_frame()
    dev.clock.sleep_until(start)
    ts, inv = [], []
    for k in range(1, int(seconds) + 1):
        dev.clock.sleep_until(start + k)
        dev.read(frame)
        n = 0.0
        for v, pj, tj in zip(vols, p_idx, t_idx):
            p = statistics.median(frame.pressure[j] for j in pj)
            t = statistics.fmean(frame.temperature[j] for j in tj)
            n += p * v / (R_AIR * t)
        ts.append(frame.t)
        inv.append(n)
    truth = -sum(lk.mass_flow_kg_s for lk in dev.truth().leaks)
    tm, im = statistics.fmean(ts), statistics.fmean(inv)
    slope = sum((a - tm) * (b - im) for a, b in zip(ts, inv)) / sum((a - tm) ** 2 for a in ts)
    return slope, truth


def test_the_ms09_leak_is_visible_in_the_temperature_compensated_readings():
    slope, truth = _inventory_slope("sim://soyuz-ms09?seed=3&step=1", 1800.0, start=300.0)
    assert truth == pytest.approx(-2.6e-4, rel=0.05)
    assert slope == pytest.approx(truth, rel=0.15)
    # the same slope as a whole-station pressure rate is the reported 0.6-0.8 mmHg/h
    assert 0.6 < -slope * R_AIR * 295.0 / 900.0 * 3600.0 / MMHG_PA < 0.8


def test_nominal_day_inventory_drifts_less_than_a_kilogram_per_day():
    slope, truth = _inventory_slope("sim://nominal-24h?seed=3&step=1", 3 * 3600.0)
    assert truth == 0.0
    assert abs(slope) * 86400.0 < 1.0
