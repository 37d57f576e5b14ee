"""HIL through a faulty line (a fault-injecting pty relay between host and board): the run goes
on, retries absorb the damage, and no leak event comes from link faults."""

from __future__ import annotations

from hullwatch.sim.board_emulator import BoardEmulator, PtyBoard, hardware_for_scenario, open_flash
from hullwatch.sim.board_flash import config_for_scenario
from hullwatch.sim.pty_relay import PtyRelay, RelayFaults
from hullwatch.sim.scenario import load_scenario
from hullwatch.tools.board.hil_device import open_hil_device
from hullwatch.tools.closed_loop.runner import run_scenario


def test_hil_through_a_faulty_relay_raises_no_leak() -> None:
    scenario = load_scenario("nominal-24h")
    flash = open_flash(None, config=config_for_scenario(scenario))
    board = BoardEmulator(flash, **hardware_for_scenario(scenario))
    # The degraded line of bench/hil.py, bursts more frequent: 2e-5 bit errors, lost bytes, garbage.
    faults = RelayFaults(ber=2e-5, drop=1e-5, burst_rate=5.0, burst=64, seed=3)
    with PtyBoard(board) as pty, PtyRelay(pty.path, faults) as relay:
        with open_hil_device(f"serial://{relay.path}", scenario=scenario) as dev:
            result = run_scenario(dev, until=120.0)
            health = dev.health()
    line = relay.line
    assert line is not None and line.flipped > 0
    assert health["crc_errors"] + health["cobs_errors"] > 0 and health["retries"] > 0
    assert result.cycles >= 1190
    assert health["failed_reads"] < result.cycles * 0.02
    leaks = [e for e in result.events if e.name.startswith("LEAK") or e.name == "RAPID_DEPRESS"]
    assert not leaks, leaks
    assert not result.stale_data
