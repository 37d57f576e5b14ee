"""FDIR stage 1 on hand-made frames: mid-value select, bias learning, each failure mode, recovery."""

from __future__ import annotations

import random

import pytest

from hullwatch.firmware.fdir.events import EventQueue
from hullwatch.firmware.fdir.outage import shift_stuck_timers
from hullwatch.firmware.fdir.params import default_params, params_from_dict
from hullwatch.firmware.fdir.sensors import SensorStage
from hullwatch.firmware.types import EventId, SensorHealth
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo

LAYOUT = Layout(
    modules=(ModuleInfo("a", 10.0), ModuleInfo("b", 20.0)),
    pressure=tuple(ChannelInfo(f"{m}.p{i}", ChannelKind.PRESSURE, m, 30000.0, 125000.0)
                   for m in "ab" for i in (1, 2, 3)),
    temperature=tuple(ChannelInfo(f"{m}.t{i}", ChannelKind.TEMPERATURE, m, 233.0, 358.0)
                      for m in "ab" for i in (1, 2)),
    flow=(), valves=(),
)
BIASES = [30.0, -20.0, -10.0, 5.0, 45.0, -50.0]


class Bench:
    """Drives a SensorStage with noisy readings of a true pressure per module."""

    def __init__(self, params=None, seed: int = 1) -> None:
        self.events = EventQueue(64)
        self.stage = SensorStage(LAYOUT, params or default_params(), self.events)
        self.frame = LAYOUT.new_frame()
        self.rng = random.Random(seed)
        self.t = 0.0
        self.truth = [100000.0, 99000.0]
        self.override: dict[int, float | None] = {}  # channel -> fixed value (None: stale)

    def step(self, n: int = 1) -> None:
        f = self.frame
        for _ in range(n):
            self.t += 0.1
            f.t = self.t
            for i, ch in enumerate(LAYOUT.pressure):
                m = 0 if ch.module == "a" else 1
                v = self.truth[m] + BIASES[i] + self.rng.gauss(0.0, 2.0)
                f.pressure_status[i] = 0
                f.pressure_time[i] = self.t
                if i in self.override:
                    fixed = self.override[i]
                    if fixed is None:
                        f.pressure_status[i] = 1
                        f.pressure_time[i] = 0.0
                        continue
                    v = fixed
                f.pressure[i] = v
            for j in range(len(LAYOUT.temperature)):
                f.temperature[j] = 295.0 + 0.1 * (j % 2) + self.rng.gauss(0.0, 0.01)
                f.temperature_status[j] = 0
            self.stage.step(f, self.t, True)
            if round(self.t * 10) % 10 == 0:
                self.stage.slow_checks(f, self.t)

    def drained(self):
        out = []
        while (rec := self.events.pop()) is not None:
            out.append(rec)
        return out


def test_mid_value_select_and_bias_learning():
    b = Bench()
    b.step(5)
    # before learning the vote is the raw mid value (biases +30, -20, -10: the -10 one)
    assert b.stage.pressure[0] == pytest.approx(100000.0 - 10.0, abs=8.0)
    b.step(300)  # past bias_learn_s = 20 s
    assert not b.stage.learning
    # learned biases are the unit biases minus their module mean, within the noise
    mean_a = sum(BIASES[:3]) / 3
    for i in range(3):
        assert b.stage.bias[i] == pytest.approx(BIASES[i] - mean_a, abs=1.0)
    assert b.stage.pressure[0] == pytest.approx(100000.0 + mean_a, abs=4.0)
    assert b.drained() == []


def test_a_dropped_sensor_does_not_step_the_vote():
    b = Bench()
    b.step(300)
    before = b.stage.pressure[0]
    b.override[0] = None  # a.p1 stale from now on
    b.step(30)
    after = b.stage.pressure[0]
    assert abs(after - before) < 6.0  # bias-corrected: no 40 Pa jump
    events = b.drained()
    assert [(EventId(e[1]).name, e[3], int(e[4])) for e in events] == [
        ("SENSOR_FAILED", "a.p1", int(SensorHealth.FAILED_STALE))]
    assert b.stage.n_voting[0] == 2
    assert events[0][0] == pytest.approx(30.0 + 1.0, abs=0.15)  # after stale_fail_s = 1 s


@pytest.mark.parametrize("value, health, within_s", [
    (0.0, SensorHealth.FAILED_RANGE, 0.5),
    (100300.0, SensorHealth.FAILED_DISAGREE, 6.0),
])
def test_range_and_disagreement(value, health, within_s):
    b = Bench()
    b.step(300)
    b.override[4] = value  # b.p2
    t0 = b.t
    b.step(100)
    events = b.drained()
    assert [(e[3], int(e[4])) for e in events] == [("b.p2", int(health))]
    assert events[0][0] - t0 <= within_s
    # the vote never followed the bad sensor
    assert b.stage.pressure[1] == pytest.approx(99000.0 + sum(BIASES[3:]) / 3, abs=6.0)


def test_stuck_sensor_fails_after_stuck_time():
    b = Bench()
    b.step(300)
    b.override[2] = b.frame.pressure[2]  # a.p3 frozen at its last reading
    t0 = b.t
    b.step(400)
    events = b.drained()
    assert [(e[3], int(e[4])) for e in events] == [("a.p3", int(SensorHealth.FAILED_STUCK))]
    assert 30.0 <= events[0][0] - t0 <= 31.5


def test_a_single_spike_fails_nothing_and_is_outvoted():
    b = Bench()
    b.step(300)
    b.override[1] = 120000.0
    b.step(1)
    assert b.stage.pressure[0] == pytest.approx(100000.0 + sum(BIASES[:3]) / 3, abs=6.0)
    del b.override[1]
    b.step(100)
    assert b.drained() == []


def test_recovery_after_clean_time():
    params = params_from_dict({"sensors": {"recover_s": 5.0}}, "test")
    b = Bench(params)
    b.step(300)
    b.override[3] = None
    b.step(20)
    del b.override[3]
    b.step(80)
    names = [(EventId(e[1]).name, e[3]) for e in b.drained()]
    assert names == [("SENSOR_FAILED", "b.p1"), ("SENSOR_RECOVERED", "b.p1")]
    assert b.stage.n_voting[1] == 3 and b.stage.module_ok[1]


def test_two_left_cross_check_and_one_left_degraded():
    b = Bench()
    b.step(300)
    b.override[0] = None
    b.override[1] = b.truth[0] + BIASES[1] + 200.0  # two left, and they disagree
    b.step(30)
    assert b.stage.n_voting[0] == 2 and b.stage.disagree2[0]
    b.override[1] = None
    b.step(30)
    assert b.stage.n_voting[0] == 1


def test_a_whole_module_below_range_fails_no_sensor():
    b = Bench()
    b.step(300)
    b.truth[0] = 25000.0  # module a blown down below every sensor's range (e.g. sealed and leaking)
    b.step(50)
    assert b.drained() == []
    assert b.stage.n_voting[0] == 0


def test_the_stuck_timer_stops_while_the_link_is_down():
    """a.p3 frozen for 20 s, then the link down 30 s (the FDIR shifts its stuck timers on its return):
    20 s seen unchanged plus 5 s after the outage is not stuck (30 s); 10 s later it is."""
    b = Bench()
    b.step(300)
    frozen = b.frame.pressure[2]
    b.override[2] = frozen
    b.step(200)
    b.t += 30.0  # nothing seen for 30 s
    shift_stuck_timers(b.stage.stuck_since, 30.0)
    b.step(50)
    assert b.drained() == []
    b.step(100)
    events = b.drained()
    assert [(e[3], int(e[4])) for e in events] == [("a.p3", int(SensorHealth.FAILED_STUCK))]


def test_a_module_with_no_voter_left_takes_back_sensors_whose_data_returns():
    """Every sensor of module b stale for 10 s (all FAILED_STALE: no vote left). When their
    readings return fresh, in range and agreeing, they are recovered after recover_s; a sensor
    that returns 500 Pa off the others is not."""
    params = params_from_dict({"sensors": {"recover_s": 5.0}}, "test")
    b = Bench(params)
    b.step(300)
    for i in (3, 4, 5):
        b.override[i] = None
    b.step(100)
    assert b.stage.n_voting[1] == 0
    del b.override[3], b.override[4]
    b.override[5] = b.truth[1] + BIASES[5] + 500.0
    b.step(100)
    recovered = [e[3] for e in b.drained() if EventId(e[1]) == EventId.SENSOR_RECOVERED]
    assert recovered == ["b.p1", "b.p2"]
    assert b.stage.n_voting[1] == 2
