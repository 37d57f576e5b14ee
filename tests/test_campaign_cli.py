"""``hullwatch campaign`` end to end on the real closed loop (the built-in ``smoke`` spec)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hullwatch.tools.cli import main


@pytest.mark.slow
def test_campaign_smoke_writes_the_report_and_cases_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "smoke"
    assert main(["campaign", "smoke", "-o", str(out), "--workers", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "4 cases run" in printed and "report:" in printed
    for name in ("cases.jsonl", "cases.csv", "summary.md", "summary.json", "detection.png", "latency.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "cases.csv").open()))
    assert [r["id"] for r in rows] == ["leak-00000", "leak-00001", "nominal-00000", "nominal-00001"]
    leaks = [r for r in rows if r["kind"] == "leak"]
    assert all(r["status"] == "ok" and r["detected"] == "True" for r in leaks)
    assert all(float(r["latency_s"]) > 0 and float(r["floor_s"]) > 0 for r in leaks)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 4 and summary["nominal"]["cases"] == 2
    assert summary["by_diameter"][0]["diameter_mm"] == "5"

    # a case replays from its saved scenario with `hullwatch run` to the same verdict
    rec = next(json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()
               if json.loads(line)["id"] == "leak-00001")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--scenario", str(out / "cases" / "leak-00001.toml"), "--seed", str(rec["seed"]),
                 "--quiet"]) in (0, 1)
    assert rec["verdict"] in capsys.readouterr().out

    # re-running the same command finds everything done; report re-renders
    assert main(["campaign", "smoke", "-o", str(out), "--no-progress", "--workers", "1"]) == 0
    assert "0 cases run" in capsys.readouterr().out
    (out / "summary.md").unlink()
    assert main(["campaign", "report", str(out)]) == 0
    assert (out / "summary.md").read_text().startswith("# Campaign smoke")


def test_campaign_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "smoke"]) == 2
    assert "missing -o DIR" in capsys.readouterr().err
    assert main(["campaign", "report", str(tmp_path)]) == 2
    assert "no campaign results here" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = 1\n[[groups]]\nname = "g"\nscenario = "soyuz-ms09"\ncases = "many"\n')
    assert main(["campaign", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert f"{bad}: groups[0].cases: expected an integer" in capsys.readouterr().err
    assert main(["campaign", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "fdir-acceptance" in listed and "smoke" in listed


def test_a_real_case_is_deterministic_and_measured_against_the_truth() -> None:
    from hullwatch.tools.campaign.case import run_case
    from hullwatch.tools.campaign.spec import draw_case, load_spec

    spec = load_spec("smoke")
    case = dict(draw_case(spec, spec.groups[0], 0), duration_s=400.0)
    a, b = run_case(case), run_case(case)
    a.pop("loop_wall_s"), b.pop("loop_wall_s")
    assert a == b
    assert a["detected"] and a["leak_module"] == case["leak"]["module"] and a["isolation_correct"]
    assert 0 < a["latency_s"] < 400 - case["leak"]["start_s"]
    assert a["latency_ratio"] == pytest.approx(a["latency_s"] / a["floor_s"])
    assert a["false_alarms"] == 0 and a["sim_s"] == pytest.approx(400.0)
    # FDIR's estimates are close to the truth the campaign computes independently
    assert abs(a["diameter_error"]) < 0.2 and abs(a["reserve_error"]) < 0.3


@pytest.mark.slow
def test_smoke_targets_read_at_a_glance_and_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """smoke has too few nominal days to judge false alarms: that target is n/a, not MISSED, and
    --check passes; the others show percentages and ratios, not bare numbers; the run time is
    announced before the cases run."""
    out = tmp_path / "smoke"
    assert main(["campaign", "smoke", "-o", str(out), "--workers", "2", "--no-progress", "--check"]) == 0
    printed, err = capsys.readouterr()
    assert "h of mission time to simulate; expect about" in err
    lines = [line.strip() for line in printed.splitlines() if line.strip().startswith("[")]
    assert lines[0] == "[met] detection >= 99% for every hole >= 1 mm: 100.0% (worst hole size)"
    assert lines[2].startswith("[n/a] zero false alarms") and "of the 100 nominal days needed" in lines[2]
    assert "x the floor (worst hole size)" in lines[3]
    assert lines[4] == "[met] no failed case: 0 failed of 4"
    summary = json.loads((out / "summary.json").read_text())
    assert [t["status"] for t in summary["targets"]] == ["met", "met", "n/a", "met", "met"]
    assert "| n/a |" in (out / "summary.md").read_text()
