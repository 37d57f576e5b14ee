"""The fixed-rate executive on injected clocks: deadlines, rate groups, timing, error containment."""

from __future__ import annotations

import gc
import math
import time

import pytest

from hullwatch.firmware.executive import Executive, RateGroup
from hullwatch.hal.clock import Clock, VirtualClock, WallClock


class RecordingClock(VirtualClock):
    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self.sleeps: list[float] = []

    def sleep_until(self, t: float) -> None:
        self.sleeps.append(t)
        super().sleep_until(t)


def test_deadlines_are_absolute_and_groups_run_at_their_rates():
    clock = RecordingClock(start=1000.0)
    fast, slow = [], []
    ex = Executive(clock, 0.1, [RateGroup("fdir", 1, lambda k, t: fast.append((k, t))),
                                RateGroup("hk", 10, lambda k, t: slow.append((k, t)))])
    ex.run(1000.0 + 10.0)
    assert ex.cycles == 100
    assert len(fast) == 100 and len(slow) == 10
    # deadlines computed as t0 + k*period, not accumulated: no drift even after many cycles
    assert clock.sleeps == [1000.0 + k * 0.1 for k in range(100)]
    assert [k for k, _ in slow] == list(range(0, 100, 10))
    # a second call continues on the same grid
    ex.run(1000.0 + 20.0)
    assert ex.cycles == 200 and clock.sleeps[100] == 1000.0 + 100 * 0.1


def test_group_order_within_a_cycle():
    order = []
    ex = Executive(VirtualClock(), 0.1, [RateGroup("a", 1, lambda k, t: order.append("a")),
                                         RateGroup("b", 2, lambda k, t: order.append("b"))])
    ex.run(0.25)
    assert order == ["a", "b", "a", "a", "b"]


def test_an_exception_in_a_group_is_counted_not_fatal():
    calls = []

    def bad(k: int, t: float) -> None:
        calls.append(k)
        if k == 3:
            raise ZeroDivisionError("boom")

    ex = Executive(VirtualClock(), 0.1, [RateGroup("fdir", 1, bad)])
    ex.run(1.0)
    assert calls == list(range(10))
    assert ex.errors == 1 and ex.groups[0].errors == 1
    assert "ZeroDivisionError: boom" in ex.last_error


def test_overrun_counted_and_reported_with_cycle_time():
    seen = []

    def slow(k: int, t: float) -> None:
        if k == 2:
            time.sleep(0.03)

    ex = Executive(VirtualClock(), 0.01, [RateGroup("fdir", 1, slow)],
                   on_overrun=lambda t, took, n: seen.append((t, took, n)))
    ex.run(0.05)
    assert ex.overruns == 1
    assert seen[0][0] == pytest.approx(0.02) and seen[0][1] >= 0.03 and seen[0][2] == 1
    assert ex.max_cycle_time_s >= 0.03 > ex.cycle_time_s


def test_stop_from_a_group():
    ex = Executive(VirtualClock(), 0.1, [])
    ex.groups.append(RateGroup("stopper", 1, lambda k, t: ex.stop() if k == 4 else None))
    ex.run(100.0)
    assert ex.cycles == 5


def test_wall_clock_holds_the_rate_and_skips_missed_deadlines():
    # 100x speed: a 0.1 s mission period is 1 ms of wall time.
    clock = WallClock(speed=100.0)
    ticks = []
    slept = []

    def group(k: int, t: float) -> None:
        ticks.append(k)
        if k >= 5 and not slept:
            slept.append(k)
            time.sleep(0.0045)  # 4.5 periods late

    ex = Executive(clock, 0.1, [RateGroup("fdir", 1, group)])
    # (20 mission seconds, 0.2 s of wall time: on a loaded machine the first deadlines may all be
    # missed and skipped, so give the loop time to reach k >= 5 and run past it.)
    ex.run(clock.now() + 20.0)
    k0 = slept[0]
    after = ticks[ticks.index(k0) + 1]
    assert after >= k0 + 4  # missed deadlines are skipped, not burst through
    # every deadline on the grid was either run or counted as skipped (the machine may add more)
    assert len(ticks) + ex.skipped == ex.k
    assert ex.skipped >= 3 and ex.overruns >= ex.skipped
    assert ex.lateness_n == ex.cycles and len(ex.lateness()) == ex.cycles


class NeverVirtual(Clock):
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


def test_non_virtual_clock_records_lateness():
    ex = Executive(NeverVirtual(), 0.5, [RateGroup("g", 1, lambda k, t: None)])
    ex.run(2.0)
    assert ex.cycles == 4 and ex.lateness() == [0.0] * 4


def test_a_wall_clock_run_freezes_the_start_up_heap_and_close_gives_it_back():
    # A full collection in a cycle scans every start-up object: milliseconds, a missed 100 Hz
    # deadline. The wall-clock executive freezes the heap before its first deadline.
    gc.unfreeze()
    seen = []
    ex = Executive(NeverVirtual(), 0.5, [RateGroup("g", 1, lambda k, t: seen.append(gc.get_freeze_count()))])
    ex.run(1.0)
    ex.run(2.0)  # a second call does not collect again
    assert seen and min(seen) > 1000
    ex.close()
    assert gc.get_freeze_count() == 0
    ex.close()  # idempotent

    # A lockstep run has no deadline to miss, but the same scans cost it time: frozen too.
    lockstep = Executive(VirtualClock(), 0.1, [RateGroup("g", 1, lambda k, t: seen.append(gc.get_freeze_count()))])
    lockstep.run(0.5)
    assert seen[-1] > 1000
    lockstep.close()
    assert gc.get_freeze_count() == 0


def test_flight_loop_survives_a_device_that_raises_and_nan_readings():
    from hullwatch import hal
    from hullwatch.firmware.flight import FlightSoftware

    dev = hal.open("sim://soyuz-ms09")
    fs = FlightSoftware(dev)
    calls = {"n": 0}
    real_read = dev.read

    def flaky(frame):
        calls["n"] += 1
        if calls["n"] % 7 == 0:
            raise RuntimeError("bus glitch")
        real_read(frame)
        if calls["n"] > 300:
            frame.pressure[4] = float("nan")  # soyuz-om.p2 reads NaN with an OK status

    dev.read = flaky
    fs.run(60.0)
    ex = fs.executive
    assert ex.cycles == 600
    assert ex.errors == 600 // 7
    assert "RuntimeError: bus glitch" in ex.last_error
    assert fs.fdir.sensors.health[4] != 0  # the NaN sensor was failed (out of range)
    assert not math.isnan(fs.fdir.sensors.pressure[1])  # the vote never became NaN
    dev.close()
