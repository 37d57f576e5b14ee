"""In process, through the HIL pytest plugin's ``flight`` fixture: a telecommand is checked,
applied and verified with service 1 reports like one from the link (docs/commanding.md, "Library")."""

from __future__ import annotations

from hullwatch.firmware.telemetry import ValveCommand, VerificationError, VerificationReport, VerificationStage


def test_in_process_telecommand_is_verified_through_the_board(flight):
    """The HIL plugin's ``flight.telecommand`` goes through the same checks and reports: a bad
    valve index is refused (1/2), a good one completes (1/7) when the board's feedback arrives."""
    def ended(receipt):
        return lambda r: (isinstance(r, VerificationReport) and r.request_seq == receipt.seq
                          and r.stage in (2, 4, 7, 8))

    flight.run_for(2.0)
    bad = flight.telecommand(ValveCommand(99, False))
    assert not bad
    assert flight.await_telemetry(ended(bad), within_s=1.0).error_code == VerificationError.BAD_ARGUMENT
    good = flight.telecommand(ValveCommand(4, False))
    assert good
    report = flight.await_telemetry(ended(good), within_s=30.0)
    assert report.stage == VerificationStage.COMPLETION_SUCCESS
    assert flight.software.frame.valve_fb[4] < 0.1


def test_stored_sequence_runs_hardware_in_the_loop(board, capsys, tmp_path):
    """``hullwatch run --device BOARD --scenario ... --commands FILE``: the same sequence, through
    the board: each command completes, and the capture reruns with no difference."""
    from hullwatch.tools import cli

    seq = tmp_path / "seq.toml"
    seq.write_text('[[commands]]\nat_s = 5\ncommand = "valve"\nvalve = "zarya-usos"\nopen = false\n\n'
                   '[[commands]]\nat_s = 15\ncommand = "valve"\nvalve = "zarya-usos"\nopen = true\n\n'
                   '[[commands]]\nat_s = 20\ncommand = "mode"\nmode = "passive"\n')
    cap = tmp_path / "hil.tm"
    cli.main(["run", "--device", board.url, "--scenario", "soyuz-ms09", "--until", "40",
              "--commands", str(seq), "--capture", str(cap)])
    out = capsys.readouterr().out
    done = [line for line in out.splitlines() if "telecommand " in line]
    assert len(done) == 3 and all(line.endswith(": completed") for line in done), out
    assert "zarya-usos" in done[0]
    assert cli.main(["rerun", str(cap)]) == 0
    assert "no difference" in capsys.readouterr().out
