"""Plant valve faults reach the flight software through the board (HIL_INJECT's valve block).

The ``valve-fault`` preset: a 2 mm leak in the Soyuz orbital module (from 300 s) with the
om-rassvet hatch stuck open. On sim:// FDIR reports the hatch failed when it does not close, then
seals the orbital module together with Rassvet (23 m3). Through the board, the plant's valve
position sensors are stimulated each cycle, so the same must happen; before they were, the board
reported its own healthy hatch, FDIR located the leak in Rassvet and sealed the wrong module.

Runs on the emulator by default and on a real board with ``--hil-device URL`` (a board speaking
protocol 1.1 or later; a 1.0 board cannot take valve stimulus, and the test says so).
"""

from __future__ import annotations

import pytest

from hullwatch.firmware.telemetry import Housekeeping
from hullwatch.firmware.types import ModuleStatus
from hullwatch.tools.board.pytest_plugin import FlightUnderTest

#: The events that make the outcome: which valve failed, where the leak is, what was sealed.
OUTCOME = ("VALVE_FAILED", "LEAK_LOCATED", "SEGMENT_SEALED")


def outcome(flight: FlightUnderTest) -> list[tuple[str, str]]:
    return [(e.name, e.subject) for e in flight.events if e.name in OUTCOME]


def run_to_seal(flight: FlightUnderTest):
    flight.await_event("SEGMENT_SEALED", within_s=900)
    flight.run_for(10.0)  # a later second sealing (the wrong module first) would show here


@pytest.fixture
def on_sim(scenario):
    """The same scenario and seed on sim://, run to the seal: the reference outcome."""
    from hullwatch.sim.device import open_url

    with open_url("sim://", scenario=scenario) as device:
        flight = FlightUnderTest(device)
        run_to_seal(flight)
        yield flight, device.truth()
        flight.close()


@pytest.mark.scenario("valve-fault")
def test_stuck_open_hatch_is_failed_and_a_larger_segment_sealed(flight, plant, on_sim):
    assert flight.device.stimulates_valves, (
        "the board speaks protocol 1.0: it cannot take valve-feedback stimulus (HIL_INJECT's valve "
        "block, protocol 1.1), so plant valve faults cannot reach FDIR through it")
    sim_flight, sim_truth = on_sim
    run_to_seal(flight)

    failed = flight.await_event("VALVE_FAILED", within_s=0, subject="om-rassvet")
    located = flight.await_event("LEAK_LOCATED", within_s=0)
    sealed = flight.await_event("SEGMENT_SEALED", within_s=0)
    assert located.subject == "seg:0x6"  # soyuz-om + rassvet (module mask)
    assert failed.t < sealed.t
    assert sealed.subject == "seg:0x6" and sealed.values[:2] == (2.0, 23.0)  # om + rassvet, 23 m3
    # The same outcome as sim://, event for event, at nearly the same mission times (the board
    # adds at most a cycle of latency to a valve command).
    assert outcome(flight) == outcome(sim_flight)
    for name in OUTCOME:
        hil_t = next(e.t for e in flight.events if e.name == name)
        sim_t = next(e.t for e in sim_flight.events if e.name == name)
        assert hil_t == pytest.approx(sim_t, abs=1.0), name

    # The plant really is split that way, and housekeeping says so.
    assert ("soyuz-om", "rassvet") in plant.truth().segments
    assert plant.truth().segments == sim_truth.segments
    hk = flight.await_telemetry(lambda r: isinstance(r, Housekeeping), within_s=2)
    names = [m.name for m in flight.device.layout.modules]
    for module in ("soyuz-om", "rassvet"):
        assert hk.modules[names.index(module)].status == ModuleStatus.SEALED, module
    hatch = flight.device.layout.valve_index("om-rassvet")
    assert hk.valves[hatch].cmd == 0 and hk.valves[hatch].fb == pytest.approx(1.0)
