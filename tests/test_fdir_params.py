"""The FDIR parameter table: defaults, overrides, validation naming file and key, docs coverage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hullwatch.firmware.errors import ParameterError
from hullwatch.firmware.fdir.params import default_params, describe, load_params, params_from_dict, units

DOCS = Path(__file__).resolve().parents[1] / "docs" / "fdir.md"


def test_defaults_are_valid_and_frozen():
    p = default_params()
    assert p.executive.period_s == 0.1
    assert p.leak.rapid_dpdt_pa_s == 9.2
    assert p.isolation.discharge_coefficient == 0.7
    assert p.isolation.reserve_floor_pa == pytest.approx(520 * 133.322387415, rel=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.leak.miss_prob = 0.2  # type: ignore[misc]


def test_override_a_subset(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[leak]\nmiss_prob = 0.05\nwindows_s = [4.0, 40.0]\n[isolation]\nmax_attempts = 1\n")
    p = load_params(f)
    assert p.leak.miss_prob == 0.05 and p.leak.windows_s == (4.0, 40.0)
    assert p.isolation.max_attempts == 1
    assert p.leak.false_alarm_prob == default_params().leak.false_alarm_prob
    assert p.source == str(f)


@pytest.mark.parametrize("text, key, expect", [
    ("[leak]\nmiss_prob = 0.7\n", "leak.miss_prob", "(0, 0.5)"),
    ("[leak]\nmiss_prob = 'x'\n", "leak.miss_prob", "expected a number"),
    ("[leak]\nwindows_s = [8.0, 4.0]\n", "leak.windows_s", "increasing"),
    ("[leak]\nwindows_s = [0.1]\n", "leak.windows_s[0]", "0.2"),
    ("[isolation]\nmax_attempts = 1.5\n", "isolation.max_attempts", "integer"),
    ("[sensors]\nnope = 1\n", "sensors.nope", "unknown key"),
    ("[nope]\nx = 1\n", "nope", "unknown section"),
    ("[sensors]\npressure_min_pa = 90000.0\npressure_max_pa = 80000.0\n", "sensors.pressure_max_pa", "more than"),
    ("[executive]\nhousekeeping_period_s = 0.25\n", "executive.housekeeping_period_s", "multiple"),
    ("[leak]\nfalse_alarm_prob = nan\n", "leak.false_alarm_prob", "finite"),
])
def test_bad_values_name_file_and_key(tmp_path, text, key, expect):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ParameterError) as info:
        load_params(f)
    msg = str(info.value)
    assert msg.startswith(f"{f}: {key}: "), msg
    assert expect in msg
    assert info.value.key == key and info.value.source == str(f)


def test_invalid_toml_names_the_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[leak\n")
    with pytest.raises(ParameterError, match="broken.toml: not valid TOML"):
        load_params(f)


def test_params_from_dict_source_in_message():
    with pytest.raises(ParameterError, match="^campaign: leak.rapid_dpdt_pa_s: "):
        params_from_dict({"leak": {"rapid_dpdt_pa_s": -1.0}}, "campaign")


def test_every_parameter_is_documented_with_its_unit():
    text = DOCS.read_text(encoding="utf-8")
    for section, table in describe(default_params()).items():
        for key in table:
            row = next((line for line in text.splitlines() if line.startswith(f"| `{section}.{key}`")), None)
            assert row is not None, f"{section}.{key} missing from docs/fdir.md"
            unit = units()[f"{section}.{key}"]
            if unit:
                assert unit in row, f"{section}.{key}: unit {unit} not in its docs row"
