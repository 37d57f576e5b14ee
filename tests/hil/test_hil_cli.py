"""``hullwatch run --device BOARD --scenario NAME`` runs hardware in the loop and reaches the same
verdict as the same scenario and seed on sim://."""

from __future__ import annotations

from hullwatch.tools import cli


def verdict(capsys, *argv: str) -> str:
    code = cli.main(["run", *argv, "--scenario", "soyuz-ms09", "--until", "600", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    return next(line for line in out.splitlines() if line.startswith("verdict:"))


def test_hil_run_reaches_the_sim_verdict(board, capsys, tmp_path):
    on_board = verdict(capsys, "--device", board.url, "--capture", str(tmp_path / "hil.tm"))
    on_sim = verdict(capsys, "--device", "sim://", "--capture", str(tmp_path / "sim.tm"))
    assert "LEAK SEALED in soyuz-om" in on_board and "(correct)" in on_board
    assert on_board.split(" at T+")[0] == on_sim.split(" at T+")[0]
