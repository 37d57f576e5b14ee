"""Board control for HIL tests on real pseudo-terminals: the emulator process behind a stable
link name across power cycles, and the pty relay that injects line faults into any serial port."""

from __future__ import annotations

import os

import pytest

from hullwatch.tools.board.hil_board import BoardControlError, HilBoard
from hullwatch.tools.board.hil_device import open_hil_device
from hullwatch.tools.board.hil_relay import PtyRelay
from hullwatch.tools.board.pytest_plugin import FlightUnderTest


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    where = tmp_path_factory.mktemp("board")
    board = HilBoard("", emulator_args=["--flash", str(where / "board.flash")], link_path=where / "link")
    yield board
    board.stop()


def test_power_cycle_keeps_the_link_name_and_the_run_recovers(emulated):
    url = emulated.url
    assert emulated.board_id == "hwb-emu-0001" and emulated.protocol == "1.2"
    with open_hil_device(url, scenario="soyuz-ms09") as device:
        flight = FlightUnderTest(device)
        flight.run_for(5)
        emulated.power_off()
        assert not os.path.lexists(emulated.link_path)
        lost = flight.await_event("LINK_LOST", within_s=2)
        flight.run_for(3)
        emulated.power_on()
        restored = flight.await_event("LINK_RESTORED", within_s=5)
        assert lost.t < restored.t
        assert emulated.url == url and os.path.exists(emulated.link_path)
        flight.run_for(5)
        assert flight.tm["link_up"].latest.value is True
        assert flight.tm["soyuz-om.p1"].latest.status == 0
        flight.close()


def test_reset_puts_the_board_back_in_hil(emulated):
    with open_hil_device(emulated.url, scenario="soyuz-ms09") as device:
        emulated.active_device = device
        try:
            flight = FlightUnderTest(device)
            flight.run_for(2)
            emulated.reset("soft")
            flight.run_for(2)
            assert device.stats["inject_failed"] == 0
            with pytest.raises(ValueError, match="expected 'soft' or 'boot'"):
                emulated.reset("hard")
            flight.close()
        finally:
            emulated.active_device = None


def test_a_real_board_has_no_power_control(emulated):
    real = HilBoard(emulated.url)  # any serial URL that is not an emulator this plugin started
    assert not real.emulated and real.board_id == "hwb-emu-0001"
    with pytest.raises(BoardControlError, match="power control needs the emulator"):
        real.power_cycle()


def test_relay_faults_on_a_serial_port(emulated, tmp_path):
    """Noise, a garbage burst and a 3 s unplug between the host and the emulator's pty."""
    with PtyRelay(emulated.url, tmp_path / "relay") as relay:
        with open_hil_device(relay.url, scenario="soyuz-ms09") as device:
            flight = FlightUnderTest(device)
            flight.cycle_hooks.append(relay.sync)  # as the plugin does: plugs on mission time
            flight.run_for(2)
            relay.faults.burst(300)
            relay.faults.noise = 1e-4
            flight.run_for(3)
            relay.faults.noise = 0.0
            t = flight.now
            relay.faults.unplug_until(t + 3.0, clock=device.clock.now)
            lost = flight.await_event("LINK_LOST", within_s=1)
            restored = flight.await_event("LINK_RESTORED", within_s=10)
            # Back at the first reconnect attempt after the replug (a few more on a loaded machine:
            # each waits 50 ms of wall time for the relay thread).
            assert lost.t - t <= 0.5 and t + 3.0 <= restored.t <= t + 5.0
            flight.run_for(2)
            assert flight.tm["link_up"].latest.value is True
            health = device.health()
            assert health["link_lost"] == 1 and health["reconnects"] == 1
            assert relay.faults.garbage == 300 and relay.faults.unplugs == 1
            flight.close()
    assert not os.path.lexists(tmp_path / "relay")
