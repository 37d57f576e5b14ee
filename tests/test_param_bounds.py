"""The FDIR parameter table as a whole: a cost bound and consistency checks, each naming the
file and the key (exit 2 from the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hullwatch.firmware.errors import ParameterError
from hullwatch.firmware.fdir.leak import WindowPlan
from hullwatch.firmware.fdir.params import params_from_dict
from hullwatch.tools.cli import main


@pytest.mark.parametrize("table, key, text", [
    ({"executive": {"period_s": 0.001}, "leak": {"windows_s": [2.0, 86400.0]}}, "leak.windows_s",
     "86,400,000 samples"),
    ({"executive": {"period_s": 0.001}, "leak": {"windows_s": [2.0, 4.0], "rapid_window_s": 2.0, "warmup_s": 3600.0}},
     "leak.warmup_s", "samples per series"),
    # (the fast series also holds one slow-test decimation interval: its mean is the slow sample)
    ({"executive": {"period_s": 0.001}, "leak": {"windows_s": [2.0, 4.0], "rapid_window_s": 2.0, "warmup_s": 10.0},
      "slowleak": {"decimation_s": 3600.0, "windows_s": [14400.0, 28800.0]}},
     "slowleak.decimation_s", "3,600,000 samples"),
    ({"leak": {"windows_s": [float(i + 2) for i in range(40)]}}, "leak.windows_s", "at most 32 windows"),
    ({"isolation": {"observe_min_s": 30.0, "observe_timeout_s": 20.0}}, "isolation.observe_timeout_s",
     "at least isolation.observe_min_s"),
    ({"sensors": {"stale_fail_s": 0.05}}, "sensors.stale_fail_s", "at least one FDIR period"),
    ({"leak": {"rapid_window_s": 60.0, "windows_s": [2.0, 4.0]}}, "leak.rapid_window_s", "longest leak window"),
    ({"executive": {"layout_period_s": 1.0, "housekeeping_period_s": 2.0}}, "executive.layout_period_s",
     "housekeeping_period_s"),
])
def test_table_bounds(table: dict, key: str, text: str) -> None:
    with pytest.raises(ParameterError) as info:
        params_from_dict(table, "tuned.toml")
    assert info.value.key == key and text in str(info.value) and str(info.value).startswith("tuned.toml: ")


@pytest.mark.parametrize("table", [
    {"executive": {"period_s": 0.5, "housekeeping_period_s": 1.0}},  # the default windows
    {"executive": {"period_s": 0.25}},
    {"leak": {"windows_s": [2.0, 2.2, 2.6, 3.4, 5.8, 7.0, 9.4, 11.0, 13.4, 17.0, 19.4, 23.0, 29.8]}},
])
def test_any_windows_at_any_period_have_a_short_schedule(table: dict) -> None:
    """Strides are powers of two: the schedule repeats after the longest (it used to be the
    least common multiple of tenths, which refused the default windows at 0.25 or 0.5 s)."""
    plan = WindowPlan(params_from_dict(table, "tuned.toml"))
    assert plan.period == max(plan.stride) <= max(plan.n) // 10
    assert all(s & (s - 1) == 0 and s <= max(1, n // 10) for s, n in zip(plan.stride, plan.n))


def test_the_default_windows_keep_their_strides() -> None:
    plan = WindowPlan(params_from_dict({}, "defaults"))
    assert plan.stride == [max(1, n // 10) for n in plan.n]  # 0.1 s: tenths are powers of two


def test_defaults_and_a_100_hz_table_pass() -> None:
    params_from_dict({}, "defaults")
    params_from_dict({"executive": {"period_s": 0.01}}, "100 Hz")


def test_cli_exits_2_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tuned.toml"
    path.write_text("[executive]\nperiod_s = 0.001\n[leak]\nwindows_s = [2.0, 86400.0]\n")
    assert main(["run", "--fdir", str(path), "--quiet"]) == 2
    assert f"{path}: leak.windows_s:" in capsys.readouterr().err
