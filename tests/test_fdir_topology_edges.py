"""Stations at the edges of what docs/scenarios.md allows, run through the real CLI: a station
without valves, modules that start below their pressure sensors' range, modules whose pressure
sits on the range's edge. A leak must still be found where the pressure is measured, and a
pressure that is not measured must never be evidence of one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hullwatch.tools.cli import main


def _station(path: Path, *, pressures: tuple[float, float] | None, connection: str | None,
             leak: str | None = None, duration_s: float = 600.0) -> Path:
    """A two-module station (a, b; 10 m3 each) or, with ``pressures`` None and no connection, a
    single module a at the nominal pressure."""
    lines = ['name = "edge"', "start_utc = 2020-01-01T00:00:00Z", f"duration_s = {duration_s}"]
    names = ("a",) if pressures is None else ("a", "b")
    for i, m in enumerate(names):
        lines += ["[[modules]]", f'name = "{m}"', "volume_m3 = 10.0"]
        if pressures is not None:
            lines.append(f"pressure_pa = {pressures[i]}")
    if connection is not None:
        lines += ["[[connections]]", 'id = "ab"', 'modules = ["a", "b"]', f"open = {connection}"]
    if leak is not None:
        lines += ["[[leaks]]", f'module = "{leak}"', "diameter_m = 0.002", "start_s = 60.0"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _verdict(capsys, scenario: Path, seed: int = 0) -> tuple[int, str]:
    code = main(["run", "--scenario", str(scenario), "--seed", str(seed), "--no-capture"])
    out = capsys.readouterr().out
    return code, re.search(r"^verdict: .*$", out, re.M).group(0)


def test_a_station_without_valves_still_detects_a_leak(tmp_path, capsys) -> None:
    code, verdict = _verdict(capsys, _station(tmp_path / "one.toml", pressures=None, connection=None,
                                              leak="a", duration_s=300.0))
    assert code == 0 and verdict.startswith("verdict: LEAK SEALED in a") and "(correct)" in verdict


def test_two_modules_without_a_connection_each_tested(tmp_path, capsys) -> None:
    code, verdict = _verdict(capsys, _station(tmp_path / "two.toml", pressures=(101325.0, 101325.0),
                                              connection=None, leak="b", duration_s=300.0))
    assert code == 0 and verdict.startswith("verdict: LEAK SEALED in b")


@pytest.mark.parametrize("pressure_a", [1.0, 10_000.0, 29_950.0])
def test_a_module_below_its_sensors_range_is_not_a_leak(tmp_path, capsys, pressure_a: float) -> None:
    """Module a starts depressurised behind a closed hatch: its pressure is not measured (the
    readings lie below the sensors' 30 kPa), so it is not tested, and its thermal swing, read
    against a pressure no sensor gave, must not become a leak."""
    scenario = _station(tmp_path / "low.toml", pressures=(pressure_a, 101325.0), connection="false")
    code, verdict = _verdict(capsys, scenario)
    assert code == 0 and verdict.startswith("verdict: NOMINAL"), verdict


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_modules_on_the_edge_of_the_range_raise_nothing(tmp_path, capsys, seed: int) -> None:
    """Both modules at 30 kPa, the sensors' lower limit: readings flicker in and out of range."""
    scenario = _station(tmp_path / "edge.toml", pressures=(30_000.0, 30_000.0), connection="false")
    code, verdict = _verdict(capsys, scenario, seed)
    assert code == 0 and verdict.startswith("verdict: NOMINAL"), verdict


def test_a_leak_in_a_low_pressure_station_is_still_found(tmp_path, capsys) -> None:
    scenario = _station(tmp_path / "leak40.toml", pressures=(40_000.0, 40_000.0), connection="true",
                        leak="b", duration_s=400.0)
    code, verdict = _verdict(capsys, scenario)
    assert code == 0 and verdict.startswith("verdict: LEAK SEALED in b"), verdict
