"""Hardware-in-the-loop tests. They run unchanged against the board emulator (default, on a real
pseudo-terminal) and against a real board: ``pytest tests/hil --hil-device /dev/ttyACM0``.

The board must carry a configuration for the scenario's station with HIL allowed (the emulator's
factory configuration is soyuz-ms09's).
"""

from __future__ import annotations

import pytest

from hullwatch.firmware.telemetry import Housekeeping, ValveCommand
from hullwatch.firmware.types import ModuleStatus
from hullwatch.hal.interfaces import SampleStatus


def test_board_reports_what_the_plant_stimulates(flight, plant):
    """Calibration and link in the loop: the board's readings equal the plant's sensors to
    within the ADC step and binary32 rounding."""
    flight.run_for(5.0)
    frame = flight.software.frame
    truth = plant.truth()
    layout = flight.device.layout
    for i, ch in enumerate(layout.pressure):
        assert frame.pressure_status[i] == SampleStatus.OK, ch.id
        assert frame.pressure[i] == pytest.approx(truth.pressure_pa[ch.module], abs=200.0), ch.id
    for i, ch in enumerate(layout.temperature):
        assert frame.temperature[i] == pytest.approx(truth.temperature_k[ch.module], abs=2.0), ch.id
    assert frame.pressure_time[0] == pytest.approx(flight.now, abs=0.11)


def test_soyuz_leak_is_located_through_the_board(flight, plant):
    """The 2018 MS-09 leak (starts at 300 s) is detected, located in the Soyuz orbital module
    and sealed, with the board's calibration, valve drivers and link in the loop."""
    confirmed = flight.await_event("LEAK_CONFIRMED", within_s=900)
    assert confirmed.t > 300.0
    located = flight.await_event("LEAK_LOCATED", within_s=300)
    assert located.subject == "soyuz-om"
    flight.await_event("SEGMENT_SEALED", within_s=60, subject="soyuz-om")
    hk = flight.await_telemetry(lambda r: isinstance(r, Housekeeping), within_s=2)
    names = [m.name for m in flight.device.layout.modules]
    assert hk.modules[names.index("soyuz-om")].status == ModuleStatus.SEALED
    # The plant really is split: the orbital module is on its own.
    assert ("soyuz-om",) in plant.truth().segments


@pytest.mark.scenario("nominal-24h", seed=3)
def test_nominal_station_raises_no_alarm(flight):
    hk = flight.await_telemetry(lambda r: isinstance(r, Housekeeping) and r.cycle >= 100, within_s=20)
    assert hk.link_up and hk.sensors_failed == 0
    flight.run_for(600.0)
    assert [e for e in flight.events if e.name.startswith("LEAK") or e.name == "RAPID_DEPRESS"] == []


def test_valve_telecommand_moves_the_plant_valve(flight, plant):
    layout = flight.device.layout
    index = layout.valve_index("dm-om")
    flight.run_for(1.0)
    flight.telecommand(ValveCommand(index, False))
    hk = flight.await_telemetry(lambda r: isinstance(r, Housekeeping) and r.valves[index].fb == 0.0,
                                within_s=30)
    assert hk.valves[index].cmd == 0
    assert plant.truth().valve_position["dm-om"] == pytest.approx(0.0, abs=0.05)
