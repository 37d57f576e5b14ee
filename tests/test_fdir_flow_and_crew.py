"""Single faults found by writing scenarios from docs/scenarios.md: a repress flow meter that is
biased on an idle supply or sticks after a repress, and a crew hatch move in a run's first
seconds. Run through the real CLI; the verdict must be right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hullwatch.tools.cli import main

DATA = Path(__file__).parent / "data" / "fdir_single_faults"


def _verdict(capsys: pytest.CaptureFixture[str], name: str, seed: int) -> tuple[int, str]:
    code = main(["run", "--scenario", str(DATA / name), "--seed", str(seed), "--until", "1h",
                 "--no-capture", "--quiet"])
    return code, re.search(r"^verdict: .*$", capsys.readouterr().out, re.M).group(0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", ["flow-meter-bias-idle-supply.toml", "flow-meter-stuck-after-repress.toml"])
def test_a_lying_flow_meter_on_a_closed_supply_is_not_gas_added(capsys, name: str, seed: int) -> None:
    """Gas enters only through an open repress valve: a meter read while its valve's feedback
    says closed is not gas added, so its bias cannot read as a leak (it sealed zvezda, or the
    726 m3 US segment with the crew inside)."""
    code, verdict = _verdict(capsys, name, seed)
    assert code == 0 and verdict.startswith("verdict: NOMINAL"), verdict


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_hatch_the_crew_moves_in_the_first_seconds_is_their_move(capsys, seed: int) -> None:
    """The initial state is nobody's command: closing zarya-usos at 3 s is a crew move, not a
    valve failing, so the later leak in zarya is sealed in zarya alone."""
    code, verdict = _verdict(capsys, "crew-closes-hatch-at-3s-then-leak.toml", seed)
    assert code == 0 and verdict.startswith("verdict: LEAK SEALED in zarya at") and "(correct)" in verdict, verdict
