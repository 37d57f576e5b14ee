"""The simulator's speed-ups must not change a single bit: lookahead tables (plant open-loop
terms, temperature channels) against the scalar formulas, and noise independent of the numpy
block size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hullwatch import hal
import hullwatch.sim.sensors as sensors_mod

FIELDS = ("pressure", "pressure_status", "temperature", "temperature_status", "flow", "flow_status",
          "valve_cmd", "valve_fb", "valve_status", "pressure_time", "temperature_time", "flow_time")


def _frames(dev, times, command_at=None):
    """Read a frame at each time; optionally close a hatch (index 1) at ``command_at``."""
    frame = dev.layout.new_frame()
    out = []
    for t in times:
        if command_at is not None and t == command_at:
            dev.command_valve(1, False)
        dev.clock.sleep_until(t)
        dev.read(frame)
        out.append((frame.t, tuple(tuple(getattr(frame, f)) for f in FIELDS),
                    tuple(dev.plant.pressure), tuple(dev.plant.temperature), dev.plant.added_kg,
                    dev.plant.consumed_kg, dev.plant.leaked_kg))
    return out


def _scalar_device(url: str):
    dev = hal.open(url)
    dev.plant._table.enabled = False  # no tables: every step and sample by the scalar formulas
    return dev


def test_numpy_sin_cos_are_the_c_library_here():
    # The tables rely on it (and fall back when a table's first row disagrees).
    x = np.linspace(0.0, 200.0, 20001)
    assert np.sin(x).tolist() == [math.sin(v) for v in x.tolist()]
    assert np.cos(x).tolist() == [math.cos(v) for v in x.tolist()]


def test_grid_steps_with_tables_are_bit_identical_to_the_scalar_formulas():
    # 420 s of soyuz-ms09: the leak opens at 300 s; a hatch closes at 350 s (two pressure nodes)
    times = [k * 0.1 for k in range(1, 4200)]
    fast = hal.open("sim://soyuz-ms09?seed=3")
    slow = _scalar_device("sim://soyuz-ms09?seed=3")
    a = _frames(fast, times, command_at=times[3499])
    b = _frames(slow, times, command_at=times[3499])
    assert fast.plant._table.tables >= 4 and fast.plant._table.enabled
    assert slow.plant._table.tables == 0
    assert len(fast.sensors._tpre_times) > 0  # temperature channels came from their table too
    assert a == b


def test_off_grid_steps_use_the_formulas_and_build_no_table():
    times = [0.0731 + k * 0.1003 for k in range(1, 600)]  # a paced clock: never k * period
    dev = hal.open("sim://soyuz-ms09")
    ref = _scalar_device("sim://soyuz-ms09")
    assert _frames(dev, times) == _frames(ref, times)
    # (the first advance, 0 -> 0.1734 s, is split into two equal substeps: a two-step "grid"
    # whose table is built once and never matches again)
    assert dev.plant._table.tables <= 1


def test_a_table_whose_first_row_disagrees_with_the_formulas_is_never_used():
    # (as on a platform whose numpy sin/cos were not the C library's)
    dev = hal.open("sim://soyuz-ms09")
    table = dev.plant._table
    table._wo *= 1.01  # the table now computes a different orbit phase
    ref = _scalar_device("sim://soyuz-ms09")
    times = [k * 0.1 for k in range(1, 300)]
    assert _frames(dev, times) == _frames(ref, times)
    assert not table.enabled and table.tables == 0


def test_skipped_grid_cycles_resynchronise_the_tables():
    times = [k * 0.1 for k in range(1, 3000) if not 1500 <= k < 1510]  # ten cycles skipped
    dev = hal.open("sim://soyuz-ms09")
    ref = _scalar_device("sim://soyuz-ms09")
    assert _frames(dev, times) == _frames(ref, times)
    assert dev.plant._table.tables >= 3


@pytest.mark.parametrize("block", [64, 1000])
def test_noise_does_not_depend_on_the_block_size(monkeypatch, block):
    times = [k * 0.1 for k in range(1, 2200)]
    ref = _frames(hal.open("sim://sensor-faults?seed=11"), times)
    monkeypatch.setattr(sensors_mod, "_BLOCK", block)
    assert _frames(hal.open("sim://sensor-faults?seed=11"), times) == ref
