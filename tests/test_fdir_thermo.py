"""FDIR stage 1b on hand-made frames: gas temperature channels voted, bias-learned and failed
for each reason; a module with no trusted channel keeps its last temperature."""

from __future__ import annotations

import math
import random

import pytest

from hullwatch.firmware.fdir.events import EventQueue
from hullwatch.firmware.fdir.outage import shift_stuck_timers
from hullwatch.firmware.fdir.params import default_params
from hullwatch.firmware.fdir.thermo import TemperatureStage
from hullwatch.firmware.types import EventId, SensorHealth
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo

LAYOUT = Layout(
    modules=(ModuleInfo("a", 10.0), ModuleInfo("b", 20.0)),
    pressure=(),
    temperature=tuple(ChannelInfo(f"{m}.t{i}", ChannelKind.TEMPERATURE, m, 233.0, 358.0)
                      for m in "ab" for i in (1, 2)),
    flow=(), valves=(),
)
BIASES = [0.04, -0.03, 0.0, 0.05]


class Bench:
    """Drives a TemperatureStage with noisy readings of a slowly swinging gas temperature."""

    def __init__(self, seed: int = 1) -> None:
        self.events = EventQueue(64)
        self.stage = TemperatureStage(LAYOUT, default_params(), self.events)
        self.frame = LAYOUT.new_frame()
        self.rng = random.Random(seed)
        self.t = 0.0
        self.fault: dict[int, object] = {}  # channel -> callable(t, v) -> v, or None for stale
        self.manage = True  # False: as the FDIR steps the stage while the link is down

    def truth(self, m: int) -> float:
        return 295.0 + m + 0.5 * __import__("math").sin(self.t / 860.0)

    def step(self, seconds: float) -> None:
        f = self.frame
        for _ in range(round(seconds * 10)):
            self.t += 0.1
            f.t = self.t
            for j in range(4):
                v = self.truth(j // 2) + BIASES[j] + self.rng.gauss(0.0, 0.01)
                f.temperature_status[j] = 0
                fault = self.fault.get(j, "none")
                if fault is None:
                    f.temperature_status[j] = 1
                    continue
                if fault != "none":
                    v = fault(self.t, v)
                f.temperature[j] = v
            self.stage.step(f, self.t, self.manage)
            if round(self.t * 10) % 10 == 0:
                self.stage.slow_checks(f, self.t)

    def failed(self) -> list[tuple[str, int]]:
        out = []
        while (rec := self.events.pop()) is not None:
            if rec[1] == EventId.SENSOR_FAILED:
                out.append((rec[3], int(rec[4])))
        return out


def test_vote_is_the_bias_corrected_mean_after_learning() -> None:
    b = Bench()
    b.step(60.0)
    assert not b.stage.learning
    assert b.stage.bias[0] - b.stage.bias[1] == pytest.approx(BIASES[0] - BIASES[1], abs=0.005)
    # bias-corrected: the module reads the mean of its channels' true temperature plus their mean bias
    assert b.stage.temperature[0] == pytest.approx(b.truth(0) + 0.005, abs=0.02)
    assert b.stage.n_trusted == [2, 2] and b.failed() == []


@pytest.mark.parametrize("fault,code", [
    (lambda t, v: v + 0.8, SensorHealth.FAILED_RATE),        # a step
    (lambda t, v: v + 20.0, SensorHealth.FAILED_RATE),       # a jump still in range
    (lambda t, v: 500.0, SensorHealth.FAILED_RANGE),         # out of range
    (lambda t, v: float("nan"), SensorHealth.FAILED_RANGE),  # NaN with an OK status
    (None, SensorHealth.FAILED_STALE),                       # no fresh sample
    ("freeze", SensorHealth.FAILED_STUCK),                   # frozen reading
])
def test_each_failure_reason(fault, code) -> None:
    b = Bench()
    b.step(60.0)
    if fault == "freeze":
        frozen: list[float] = []
        fault = lambda t, v: (frozen or frozen.append(v) or frozen)[0]  # noqa: E731
    b.fault[1] = fault
    b.step(90.0)
    assert b.failed() == [("a.t2", int(code))]
    assert b.stage.n_trusted[0] == 1
    # the module now reads its healthy channel alone, within the noise
    assert b.stage.temperature[0] == pytest.approx(b.truth(0) + BIASES[0] - b.stage.bias[0], abs=0.04)


def test_a_step_is_failed_before_the_vote_sees_it() -> None:
    b = Bench()
    b.step(60.0)
    before = b.stage.temperature[0]
    b.fault[0] = lambda t, v: v + 0.8
    b.step(0.1)
    assert b.failed() == [("a.t1", int(SensorHealth.FAILED_RATE))]
    assert abs(b.stage.temperature[0] - before) < 0.05


def test_slow_drift_is_not_a_rate_failure_but_a_disagreement() -> None:
    """A thermistor drifting 0.36 K/h moves slower than gas can: no channel check catches it;
    the pair disagrees (the FDIR arbitrates, tested end to end)."""
    b = Bench()
    b.step(60.0)
    b.fault[0] = lambda t, v: v + (t - 60.0) * 1e-4
    b.step(3600.0)
    assert b.failed() == []
    assert b.stage.disagreeing(0) and not b.stage.disagreeing(1)


def test_recovery_after_a_noise_burst() -> None:
    b = Bench()
    b.step(60.0)
    b.fault[1] = lambda t, v: v + (0.5 if int(t * 10) % 2 else -0.5)
    b.step(5.0)
    assert b.failed() == [("a.t2", int(SensorHealth.FAILED_RATE))]
    del b.fault[1]
    b.step(90.0)
    assert b.stage.health[1] == SensorHealth.OK and b.stage.n_trusted[0] == 2


def test_no_trusted_channel_holds_the_last_temperature() -> None:
    b = Bench()
    b.step(60.0)
    held = b.stage.temperature[1]
    b.fault[2] = None
    b.fault[3] = None
    b.step(5.0)
    assert sorted(b.failed()) == [("b.t1", 2), ("b.t2", 2)]
    assert b.stage.n_trusted[1] == 0 and b.stage.temperature[1] == held


def test_usual_and_checked_cycles_vote_alike() -> None:
    # One vote for both paths: module a's temperature must not depend on whether this cycle
    # took the usual path (every reading fresh) or the checked one (b.t2 stale this cycle).
    b = Bench()
    b.step(120.0)  # biases learned
    frame = b.frame
    readings = list(frame.temperature)
    b.stage.step(frame, b.t + 0.1, True)
    usual = list(b.stage.temperature)
    frame.temperature_status[3] = 1  # b.t2 stale: the checked path
    b.stage.step(frame, b.t + 0.2, True)
    assert frame.temperature == readings
    assert b.stage.temperature[0] == usual[0]  # bit for bit
    # b now votes on b.t1 alone: its reading less its own bias.
    assert b.stage.temperature[1] == readings[2] - b.stage.bias[2]


@pytest.mark.parametrize("checked", [False, True], ids=["usual-cycle", "checked-cycle"])
def test_the_rate_band_edge_is_the_same_on_both_paths(checked: bool) -> None:
    # A reading exactly at its last block mean + jump is gas; one ulp beyond is the sensor,
    # whichever path the cycle takes (every reading fresh, or b.t2 stale this cycle).
    for beyond, expect in ((False, []), (True, [("a.t1", int(SensorHealth.FAILED_RATE))])):
        b = Bench()
        b.step(120.0)  # biases learned, references known
        b.failed()
        frame = b.frame
        edge = b.stage.mean[0] + b.stage.jump
        frame.temperature[0] = math.nextafter(edge, math.inf) if beyond else edge
        if checked:
            frame.temperature_status[3] = 1
        b.stage.step(frame, b.t + 0.1, True)
        assert b.failed() == expect


def test_after_a_lost_link_the_gas_may_have_moved() -> None:
    """Nine minutes without data (the link down): the gas temperature swung 0.29 K meanwhile,
    more than the rate band of one block (0.1 K) but less than gas can move in 550 s. Every
    channel comes back healthy and the vote follows the gas at once."""
    b = Bench()
    b.step(60.0)
    b.fault = {j: None for j in range(4)}
    b.manage = False
    b.step(550.0)
    assert abs(b.truth(0) - (295.0 + 0.5 * math.sin(60.0 / 860.0))) > 0.25  # the gas moved
    b.fault, b.manage = {}, True
    b.step(90.0)
    assert b.failed() == []
    assert b.stage.n_trusted == [2, 2]
    assert b.stage.temperature[0] == pytest.approx(b.truth(0) + 0.005, abs=0.03)


def test_a_jump_beyond_what_gas_can_move_in_the_gap_still_fails() -> None:
    """The band widens by temperature_rate_max_k_s per second without data, no more: after a
    5 s gap (0.1 + 0.25 K) a channel back 20 K off is the sensor."""
    b = Bench()
    b.step(60.0)
    b.fault = {j: None for j in range(4)}
    b.manage = False
    b.step(5.0)
    b.fault, b.manage = {1: lambda t, v: v + 20.0}, True
    b.step(1.0)
    assert b.failed() == [("a.t2", int(SensorHealth.FAILED_RATE))]


def test_the_stuck_timer_stops_while_the_link_is_down() -> None:
    """A channel unchanged for 30 s, out of sight for 60 s (the FDIR shifts its stuck timers on restore),
    unchanged 20 s more: 50 s seen unchanged, not stuck (60 s); 15 s later it is."""
    b = Bench()
    b.step(60.0)
    frozen = b.frame.temperature[1]
    b.fault = {1: lambda t, v: frozen}
    b.step(30.0)
    b.fault = {j: None for j in range(4)}
    b.manage = False
    b.step(60.0)
    shift_stuck_timers(b.stage.stuck_since, 60.0)
    b.fault, b.manage = {1: lambda t, v: frozen}, True
    b.step(20.0)
    assert b.failed() == []
    b.step(15.0)
    assert b.failed() == [("a.t2", int(SensorHealth.FAILED_STUCK))]
