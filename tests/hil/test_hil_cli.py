"""``hullwatch run --device BOARD --scenario NAME`` runs hardware in the loop and reaches the same
verdict as the same scenario and seed on sim://."""

from __future__ import annotations

import re

from hullwatch.tools import cli


def run(capsys, *argv: str, scenario: str = "soyuz-ms09", quiet: bool = True) -> str:
    code = cli.main(["run", *argv, "--scenario", scenario, "--until", "600"] + (["--quiet"] if quiet else []))
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def verdict(capsys, *argv: str) -> str:
    return next(line for line in run(capsys, *argv).splitlines() if line.startswith("verdict:"))


def test_hil_run_reaches_the_sim_verdict(board, capsys, tmp_path):
    on_board = verdict(capsys, "--device", board.url, "--capture", str(tmp_path / "hil.tm"))
    on_sim = verdict(capsys, "--device", "sim://", "--capture", str(tmp_path / "sim.tm"))
    assert "LEAK SEALED in soyuz-om" in on_board and "(correct)" in on_board
    assert on_board.split(" at T+")[0] == on_sim.split(" at T+")[0]


def test_hil_valve_fault_is_reported_as_on_sim(board, capsys, tmp_path):
    """The plant's stuck hatch reaches FDIR through the board (its position sensor is stimulated):
    the run prints the same failed valve, located leak and sealed segment as on sim://."""
    def story(out: str) -> list[str]:
        # Event heads without times and estimates (the board's quantisation moves the third
        # digit of a rate); the verdict without its time.
        lines = [line.split("    ")[-1] for line in out.splitlines()]
        events = [re.split(r"[:;]", x)[0] for x in lines
                  if re.search(r"FAILED|LOCATED|SEALED ", x) and not x.startswith("verdict:")]
        return events + [x.split(" at T+")[0] for x in lines if x.startswith("verdict:")]

    out = run(capsys, "--device", board.url, "--capture", str(tmp_path / "hil.tm"),
              scenario="valve-fault", quiet=False)
    assert "valve om-rassvet FAILED: commanded closed, reads 1.00 open" in out
    on_board = story(out)
    on_sim = story(run(capsys, "--device", "sim://", "--capture", str(tmp_path / "sim.tm"),
                       scenario="valve-fault", quiet=False))
    assert on_board[0] == "valve om-rassvet FAILED"
    assert "SEALED soyuz-om+rassvet (23 m3)" in on_board
    assert "verdict: LEAK SEALED in soyuz-om+rassvet" in on_board
    assert on_board == on_sim
