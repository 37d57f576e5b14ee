"""FDIR stages 2-4 on hand-made data and a small fake station: slopes, thresholds, detection,
isolation around a failed valve, passive mode."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from hullwatch.firmware.fdir.core import Fdir, hole_diameter_m, reserve_time_s
from hullwatch.firmware.fdir.leak import statistical_floor_s, thresholds
from hullwatch.firmware.fdir.params import default_params
from hullwatch.firmware.fdir.slope import SlopeBank
from hullwatch.firmware.types import FdirMode, IsolationState
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind


def test_slope_bank_matches_least_squares_exactly():
    rng = random.Random(3)
    bank = SlopeBank(max_samples=50, rate_hz=10.0, noise_tau_s=10.0, noise_min=0.01)
    ys = [1000.0 + 0.3 * k / 10.0 + rng.gauss(0, 2.0) for k in range(400)]
    bank.reset(ys[0])
    for y in ys:
        bank.push(y)
    t = np.arange(400) / 10.0
    # The sums are exact integers of values quantised to 1e-4 Pa: a window's slope differs from
    # the float least-squares one by at most sum(|weights|) * 1e-4 Pa.
    for n in (2, 7, 20, 50):
        expect = np.polyfit(t[-n:], ys[-n:], 1)[0]
        weights = np.abs(t[-n:] - t[-n:].mean()) / ((t[-n:] - t[-n:].mean()) ** 2).sum()
        assert abs(bank.slope(n) - expect) <= weights.sum() * 1e-4 * 1.0001
    assert bank.slope_all() == pytest.approx(np.polyfit(t, ys, 1)[0], abs=1e-5)
    assert bank.sigma() == pytest.approx(2.0, rel=0.2)


def test_a_bridged_gap_is_held_samples_that_leave_the_noise_estimate_alone():
    """SlopeBank.bridge: the windows see n samples at the held level, as if pushed, on the same
    time base; the noise estimate is the one before the gap (they are not measurements)."""
    rng = random.Random(5)
    ys = [1000.0 + rng.gauss(0, 2.0) for _ in range(300)]
    bridged = SlopeBank(max_samples=50, rate_hz=10.0, noise_tau_s=10.0, noise_min=0.01)
    pushed = SlopeBank(max_samples=50, rate_hz=10.0, noise_tau_s=10.0, noise_min=0.01)
    for bank in (bridged, pushed):
        bank.reset(ys[0])
        for y in ys:
            bank.push(y)
    sigma = bridged.sigma()
    bridged.bridge(1000.5, 30)
    for _ in range(30):
        pushed.push(1000.5)
    assert bridged.k == pushed.k == 330 and bridged.level() == 1000.5
    for n in (2, 20, 50):
        assert bridged.slope(n) == pushed.slope(n) and bridged.mean(n) == pushed.mean(n)
    assert bridged.sigma() == sigma and pushed.sigma() < sigma


def test_thresholds_and_floor():
    p = default_params()
    zs, zc = thresholds(p)
    assert zs == pytest.approx(5.199, abs=1e-3)
    assert zc == pytest.approx(5.199 + 2.326, abs=1e-3)
    # the statistical floor (docs/architecture.md): 2 mm hole in 900 m3, s = 0.049 Pa/s, sigma 3 Pa, 10 Hz, alpha 1e-3, beta 1 %: ~50 s
    assert statistical_floor_s(0.049, 3.0, 10.0, 1e-3, 0.01) == pytest.approx(50.0, rel=0.05)


def test_hole_and_reserve():
    # a 2 mm hole at Cd 0.7 in air at 101.3 kPa, 295 K loses ~0.52 g/s
    mdot = 0.7 * math.pi * 0.001 ** 2 * 101300 * math.sqrt(1.4 / (287.05 * 295)) * (2 / 2.4) ** 3
    assert mdot == pytest.approx(5.2e-4, rel=0.02)
    assert hole_diameter_m(mdot, 101300, 295, 0.7, 1.4, 287.05) == pytest.approx(0.002, rel=1e-9)
    assert hole_diameter_m(mdot, 101300, 295, 0.35, 1.4, 287.05) == pytest.approx(0.002 * 2 ** 0.5, rel=1e-9)
    assert reserve_time_s(101300, -0.05, 69327.6) == pytest.approx(101300 / 0.05 * math.log(101300 / 69327.6))
    assert reserve_time_s(60000, -0.05, 69327.6) == 0.0
    assert reserve_time_s(101300, 0.01, 69327.6) == math.inf


class FakeStation:
    """Three modules in a row, a - b - c, joined by two valves; gas in each connected group shares
    one pressure at once; valves travel in 1 s; a leak takes ``leak`` kg/s from one module."""

    R = 287.05
    T = 295.0

    def __init__(self, leak_module: int, leak: float, stuck: int | None = None, seed: int = 2) -> None:
        self.layout = Layout(
            modules=(ModuleInfo("a", 50.0), ModuleInfo("b", 5.0), ModuleInfo("c", 100.0)),
            pressure=tuple(ChannelInfo(f"{m}.p{i}", ChannelKind.PRESSURE, m, 30000.0, 125000.0)
                           for m in "abc" for i in (1, 2, 3)),
            temperature=tuple(ChannelInfo(f"{m}.t1", ChannelKind.TEMPERATURE, m, 233.0, 358.0) for m in "abc"),
            flow=(),
            valves=(ValveInfo("ab", ValveKind.HATCH, "a", "b", 2.0),
                    ValveInfo("bc", ValveKind.HATCH, "b", "c", 2.0)),
        )
        vols = [50.0, 5.0, 100.0]
        self.vol = vols
        self.mass = [101300.0 * v / (self.R * self.T) for v in vols]
        self.pos = [1.0, 1.0]
        self.cmd = [1, 1]
        self.stuck = stuck
        self.leak_module = leak_module
        self.leak = leak
        self.t = 0.0
        self.rng = random.Random(seed)
        self.commands: list[tuple[float, int, bool]] = []

    def command_valve(self, i: int, open_: bool) -> None:
        self.commands.append((self.t, i, open_))
        self.cmd[i] = int(open_)

    def groups(self) -> list[list[int]]:
        g = [[0]]
        for i, m in ((0, 1), (1, 2)):
            if self.pos[i] > 0.02:
                g[-1].append(m)
            else:
                g.append([m])
        return g

    def advance(self, dt: float = 0.1) -> None:
        self.t += dt
        for i in range(2):
            if i != self.stuck:
                step = dt / 1.0
                self.pos[i] = min(self.pos[i] + step, 1.0) if self.cmd[i] else max(self.pos[i] - step, 0.0)
        self.mass[self.leak_module] -= self.leak * dt
        for g in self.groups():
            total = sum(self.mass[m] for m in g)
            vol = sum(self.vol[m] for m in g)
            for m in g:
                self.mass[m] = total * self.vol[m] / vol

    def read(self, f) -> None:
        f.t = self.t
        for i in range(9):
            m = i // 3
            f.pressure[i] = self.mass[m] * self.R * self.T / self.vol[m] + self.rng.gauss(0, 2.0)
            f.pressure_status[i] = 0
            f.pressure_time[i] = self.t
        for j in range(3):
            f.temperature[j] = self.T + self.rng.gauss(0, 0.005)
            f.temperature_status[j] = 0
        f.valve_cmd[:] = self.cmd
        f.valve_fb[:] = self.pos
        f.valve_status[:] = [0, 0]


def run_fake(station: FakeStation, mode: FdirMode, seconds: float) -> tuple[Fdir, list]:
    fdir = Fdir(station.layout, default_params(), station.command_valve, mode)
    frame = station.layout.new_frame()
    events = []
    for _ in range(int(seconds * 10)):
        station.read(frame)
        fdir.step(frame)
        while (rec := fdir.events.pop()) is not None:
            events.append(rec)
        station.advance()
    return fdir, events


def names(events):
    from hullwatch.firmware.types import EventId

    return [(EventId(e[1]).name, e[3]) for e in events]


def test_fake_station_leak_in_b_is_located_and_sealed():
    # 2e-3 kg/s from b in 155 m3: about 1.1 Pa/s station-wide
    station = FakeStation(leak_module=1, leak=2e-3)
    fdir, events = run_fake(station, FdirMode.ACTIVE, 120)
    seq = names(events)
    assert ("LEAK_CONFIRMED", "station") in seq  # the whole station: all three modules
    assert ("LEAK_LOCATED", "b") in seq
    assert ("SEGMENT_SEALED", "b") in seq
    assert fdir.isolator.state == IsolationState.SEALED
    assert station.cmd == [0, 0]  # both of b's valves stay closed
    assert fdir.sealed_mask == 0b010


def test_fake_station_stuck_valve_seals_the_larger_segment():
    station = FakeStation(leak_module=1, leak=2e-3, stuck=1)  # b-c stuck open
    fdir, events = run_fake(station, FdirMode.ACTIVE, 120)
    seq = names(events)
    assert ("VALVE_FAILED", "bc") in seq
    assert ("SEGMENT_SEALED", "seg:0x6") in seq  # b and c, by module mask
    assert fdir.sealed_mask == 0b110  # b and c: the smallest segment that holds the leak
    assert station.cmd[0] == 0


def test_fake_station_passive_and_no_leak():
    station = FakeStation(leak_module=1, leak=2e-3)
    fdir, events = run_fake(station, FdirMode.PASSIVE, 120)
    assert ("LEAK_CONFIRMED", "station") in names(events)
    assert station.commands == []
    quiet = FakeStation(leak_module=1, leak=0.0)
    fdir, events = run_fake(quiet, FdirMode.ACTIVE, 300)
    assert events == [] and quiet.commands == []
