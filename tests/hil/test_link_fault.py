"""Link faults between the host and the board: a pulled cable and a noisy line. ``link_faults``
is the in-process emulator's line (``--hil-device emuboard://NAME``) or a pty relay the plugin puts
in front of any other board, so this runs against the emulator process and real hardware alike."""

import pytest


def test_cable_pulled_for_five_seconds(flight, link_faults):
    flight.run_for(10)
    t = flight.now
    link_faults.unplug_until(t + 5.0, clock=flight.device.clock.now)  # mission time
    lost = flight.await_event("LINK_LOST", within_s=1)
    restored = flight.await_event("LINK_RESTORED", within_s=10)
    assert lost.t - t <= 0.5 and restored.t >= t + 5.0
    flight.run_for(5)
    assert flight.tm["link_up"].latest.value is True
    flight.assert_no_event(["LEAK_SUSPECTED", "RAPID_DEPRESS"], since=0.0)


@pytest.mark.slow  # each corrupted reply costs a response timeout: about 20 s of wall time
@pytest.mark.hil_timeout(120)
def test_leak_sealed_through_a_noisy_line(flight, link_faults):
    link_faults.noise = 1e-4  # a flipped bit per 10,000 bytes, both ways
    link_faults.drop = 1e-4  # a lost byte per 10,000
    flight.await_event("SEGMENT_SEALED", within_s=900, subject="soyuz-om")
    health = flight.device.health()
    assert health["crc_errors"] + health["cobs_errors"] + health["timeouts"] > 0


def test_board_power_cycle(flight, board):
    if not board.emulated:
        pytest.skip("power control needs the emulator (a real board has no switched supply here)")
    url = board.url
    flight.run_for(5)
    board.power_cycle()  # the board boots again from its flash, behind the same link name
    lost = flight.await_event("LINK_LOST", within_s=1)
    restored = flight.await_event("LINK_RESTORED", within_s=5)
    assert board.url == url and lost.t < restored.t
    flight.run_for(5)
    assert flight.tm["soyuz-om.p1"].latest.status == 0  # SampleStatus.OK: stimulated again
