"""Sensor models: noise, quantisation, bias, offset drift with temperature, determinism, and
every injectable fault, read through the real sim:// device."""

from __future__ import annotations

import statistics

import pytest

from hullwatch.hal import SampleStatus
from hullwatch.sim.device import SimDevice, open_url
from hullwatch.sim.scenario import scenario_from_dict

OK, STALE, NO_DATA = int(SampleStatus.OK), int(SampleStatus.STALE), int(SampleStatus.NO_DATA)


def device(faults=(), sensors=None, thermal=None, seed=3, repress=()):
    data = {
        "name": "sensors", "start_utc": "2018-08-29T20:00:00Z", "duration_s": 600.0, "seed": seed,
        "modules": [{"name": "a", "volume_m3": 50.0, "pressure_pa": 100000.0},
                    {"name": "b", "volume_m3": 50.0, "pressure_pa": 100000.0}],
        "connections": [{"id": "ab", "modules": ["a", "b"]}],
        "repress": [dict(r) for r in repress],
        "sensor_faults": [dict(f) for f in faults],
        "thermal": thermal or {"amplitude_k": 0.0, "drift_amplitude_k": 0.0},
    }
    if sensors is not None:
        data["sensors"] = sensors
    return SimDevice(scenario_from_dict(data, "sensors-test"))


def run(dev, seconds, period=0.1):
    """Yield (t, frame copy as dict) every period."""
    frame = dev.layout.new_frame()
    n = int(round(seconds / period))
    start = dev.clock.now()
    for k in range(1, n + 1):
        dev.clock.sleep_until(start + k * period)
        dev.read(frame)
        yield frame.t, {
            "p": list(frame.pressure), "ps": list(frame.pressure_status),
            "pt": list(frame.pressure_time), "t": list(frame.temperature),
            "ts": list(frame.temperature_status), "f": list(frame.flow),
            "fs": list(frame.flow_status),
        }


def test_same_seed_bit_identical_different_seed_different():
    def samples(seed):
        dev = open_url(f"sim://soyuz-ms09?seed={seed}")
        return [(f["p"], f["t"], f["f"]) for _, f in run(dev, 30.0)]

    a, b, c = samples(5), samples(5), samples(6)
    assert a == b
    assert a != c
    assert all(x != y for (x, _, _), (y, _, _) in zip(a[:50], c[:50]))


def test_noise_rms_quantisation_and_unit_bias():
    dev = device(sensors={"pressure_noise_pa": 2.0, "pressure_quantum_pa": 0.25,
                          "temperature_noise_k": 0.01, "temperature_quantum_k": 0.002})
    truth_p = dev.plant.pressure[0]
    errors = [[] for _ in range(3)]
    temps = [[] for _ in range(2)]
    for _, f in run(dev, 300.0):
        for j in range(3):
            errors[j].append(f["p"][j] - truth_p)
            assert f["p"][j] / 0.25 == round(f["p"][j] / 0.25)
        for j in range(2):
            temps[j].append(f["t"][j])
        assert f["ps"] == [OK] * 6 and f["ts"] == [OK] * 4
    for j in range(3):
        assert statistics.pstdev(errors[j]) == pytest.approx(2.0, rel=0.1)
        assert abs(statistics.fmean(errors[j])) <= 50.5
        assert statistics.fmean(errors[j]) == pytest.approx(dev.sensors.p_bias[j], abs=0.3)
    for j in range(2):
        assert statistics.pstdev(temps[j]) == pytest.approx(0.01, rel=0.15)
        assert abs(statistics.fmean(temps[j]) - 295.0) <= 0.051
    # units differ from each other
    assert len({round(statistics.fmean(e), 1) for e in errors}) == 3


def test_pressure_offset_drifts_with_temperature():
    dev = device(sensors={"pressure_noise_pa": 0.0, "pressure_quantum_pa": 0.0,
                          "pressure_tempco_pa_per_k": 0.75},
                 thermal={"amplitude_k": 1.0, "drift_amplitude_k": 0.0, "orbit_period_s": 600.0})
    plant, sensors = dev.plant, dev.sensors
    spans = []
    offsets = []
    for _, f in run(dev, 600.0, period=1.0):
        dT = plant.temperature[0] - 295.0
        offsets.append((dT, f["p"][0] - plant.pressure[0] - sensors.p_bias[0]))
    coeff = sensors._p_tc[0]
    assert 0 < abs(coeff) <= 0.75
    for dT, off in offsets:
        spans.append(dT)
        assert off == pytest.approx(coeff * dT, abs=0.01)
    assert max(spans) - min(spans) > 1.0


def test_bias_step_and_drift_start_on_time():
    dev = device(faults=[{"sensor": "a.p1", "kind": "bias", "start_s": 10.0, "magnitude": 300.0},
                         {"sensor": "a.t2", "kind": "drift", "start_s": 20.0, "magnitude": 0.01}],
                 sensors={"pressure_noise_pa": 0.0, "temperature_noise_k": 0.0})
    base_p, base_t = None, None
    for t, f in run(dev, 60.0):
        if base_p is None:
            base_p, base_t = f["p"][0], f["t"][1]
        if t < 10.0 - 1e-9:
            assert f["p"][0] == base_p
        else:
            assert f["p"][0] == pytest.approx(base_p + 300.0, abs=0.25)
        expected_t = base_t + (0.01 * (t - 20.0) if t >= 20.0 - 1e-9 else 0.0)
        assert f["t"][1] == pytest.approx(expected_t, abs=0.0011)
        assert f["ps"][0] == OK


def test_stuck_sensor_holds_its_value_with_status_ok():
    dev = device(faults=[{"sensor": "b.p2", "kind": "stuck", "start_s": 5.0}])
    values = [(t, f["p"][4], f["ps"][4]) for t, f in run(dev, 30.0)]
    before = {v for t, v, _ in values if t < 5.0 - 1e-9}
    after = {v for t, v, _ in values if t >= 5.0 - 1e-9}
    assert len(before) > 10 and len(after) == 1
    assert all(s == OK for _, _, s in values)


def test_noise_burst_spike_and_their_ends():
    dev = device(faults=[{"sensor": "a.p2", "kind": "noise", "start_s": 10.0, "duration_s": 10.0,
                          "magnitude": 40.0},
                         {"sensor": "a.p3", "kind": "spike", "start_s": 15.0, "magnitude": 5000.0}])
    burst, quiet, spikes = [], [], []
    for t, f in run(dev, 30.0):
        (burst if 10.0 - 1e-9 <= t < 20.0 - 1e-9 else quiet).append(f["p"][1])
        if f["p"][2] > 103000.0:
            spikes.append(t)
    assert statistics.pstdev(burst) > 25.0 > 5.0 > statistics.pstdev(quiet)
    assert spikes == [pytest.approx(15.0)]


def test_dropout_is_stale_with_frozen_timestamp_then_recovers_and_dead_is_no_data():
    dev = device(faults=[{"sensor": "a.p1", "kind": "dropout", "start_s": 5.0, "duration_s": 5.0},
                         {"sensor": "b.t1", "kind": "dropout", "start_s": 0.0}])
    for t, f in run(dev, 15.0):
        assert f["ts"][2] == NO_DATA
        if 5.0 - 1e-9 <= t < 10.0 - 1e-9:
            assert f["ps"][0] == STALE
            assert f["pt"][0] == pytest.approx(4.9)
        else:
            assert f["ps"][0] == OK
            assert f["pt"][0] == pytest.approx(t)
        assert f["ps"][1] == OK and f["pt"][1] == pytest.approx(t)


def test_flow_meter_reads_repress_flow_and_can_fail():
    dev = device(repress=[{"id": "tank", "module": "a", "events": [[10.0, 20.0]]}],
                 faults=[{"sensor": "tank.flow", "kind": "bias", "start_s": 40.0,
                          "magnitude": 0.01}])
    assert [c.id for c in dev.layout.flow] == ["tank.flow"]
    closed, opened, biased = [], [], []
    for t, f in run(dev, 50.0):
        if 12.0 < t < 29.0:
            opened.append(f["f"][0] - dev.plant.repress_flow[0])
        elif t < 9.0 or 32.0 < t < 39.0:
            closed.append(f["f"][0])
        elif t > 40.0:
            biased.append(f["f"][0])
    assert abs(statistics.fmean(closed)) < 1e-5
    assert abs(statistics.fmean(opened)) < 1e-5 and dev.plant.repress_flow[0] == 0.0
    assert statistics.fmean(biased) == pytest.approx(0.01, abs=1e-4)


def test_reading_twice_at_one_time_gives_the_same_sample():
    dev = open_url("sim://sensor-faults?seed=1")
    f1, f2 = dev.layout.new_frame(), dev.layout.new_frame()
    dev.clock.sleep_until(1.0)
    dev.read(f1)
    dev.read(f2)
    assert f1.pressure == f2.pressure and f1.pressure_status == f2.pressure_status
    dev.clock.sleep_until(1.1)
    dev.read(f2)
    assert f1.pressure != f2.pressure
