"""The same telecommands over the UDP TC link, with the flight software in the loop with the USB
sensor board (its emulator on a pseudo-terminal, through the real serial backend): every
verification report comes back, and a valve command completes when the board's valve feedback
reaches the commanded position."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("spacepackets")

from hullwatch.firmware.telemetry import packets as P  # noqa: E402
from hullwatch.tools import cli  # noqa: E402

from tc_live import END, LiveFlight, pus_tc, stages  # noqa: E402

E = P.VerificationError


@pytest.fixture(scope="module")
def hil_live(board):
    flight = LiveFlight(board.url, scenario="soyuz-ms09", until=600.0, speed=5.0)
    yield flight
    flight.stop()


def test_ping_mode_and_malformed_on_the_board(hil_live):
    hil_live.send(pus_tc(17, 1, seq=1))
    assert [p.name for p in hil_live.reports(seq=1, until_stage=END)] == [
        "verification_acceptance_success", "alive_report", "verification_completion_success"]
    hil_live.send(pus_tc(8, 1, struct.pack(">HB", 2, 1), seq=2))
    assert stages(hil_live.reports(seq=2, until_stage=END)) == [(1, 0), (7, 0)]
    hil_live.send(pus_tc(8, 1, struct.pack(">HBB", 1, 99, 0), seq=3))
    assert stages(hil_live.reports(seq=3, until_stage=END)) == [(2, E.BAD_ARGUMENT)]
    raw = pus_tc(17, 1, seq=4)
    hil_live.send(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    assert stages(hil_live.reports(seq=4, until_stage=END)) == [(2, E.BAD_CRC)]


def test_valve_command_completes_on_board_feedback(hil_live):
    hil_live.send(pus_tc(8, 1, struct.pack(">HBB", 1, 4, 0), seq=10))
    got = hil_live.reports(seq=10, until_stage=END, timeout=20)
    assert stages(got) == [(1, 0), (3, 0), (7, 0)]
    hil_live.send(pus_tc(8, 1, struct.pack(">HBB", 1, 4, 1), seq=11))
    assert stages(hil_live.reports(seq=11, until_stage=END, timeout=20)) == [(1, 0), (3, 0), (7, 0)]


def test_command_cli_against_the_hil_run(hil_live, capsys):
    hil_live.release_tm()  # the CLI listens on the telemetry address itself (the last test here)
    code = cli.main(["command", "--to", hil_live.tc_url, "--tm", hil_live.tm_url, "valve", "zarya-usos", "close"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1/3  start success" in out and "1/7  completion success" in out

