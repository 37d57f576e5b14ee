"""Lost data: every sensor of the station silent for a minute (a bus, harness or ADC dropout).
Run through the real CLI on scenario files; the verdict must be right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hullwatch.tools.cli import main

DATA = Path(__file__).parent / "data" / "fdir_single_faults"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_station_blind_for_a_minute_sees_again_and_seals_the_leak(capsys, seed: int) -> None:
    """Every pressure and temperature channel stale from 100 to 160 s: all fail FAILED_STALE and
    every module is unobservable. With no voting sensor left in a module, sensors failed for
    losing their data are taken back once they read fresh, in range and agreeing for
    ``recover_s``: the modules are observable again at 220 s and the MS-09 hole (300 s) is sealed
    in the orbital module. Before, no module ever recovered and the leak was never detected."""
    code = main(["run", "--scenario", str(DATA / "bus-dropout-60s-then-leak.toml"), "--seed", str(seed),
                 "--until", "1h", "--no-capture", "--quiet"])
    verdict = re.search(r"^verdict: .*$", capsys.readouterr().out, re.M).group(0)
    assert code == 0 and verdict.startswith("verdict: LEAK SEALED in soyuz-om at") and "(correct)" in verdict, verdict
