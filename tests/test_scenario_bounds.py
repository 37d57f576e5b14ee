"""Every scenario value has bounds: each violation is refused naming the source and the key."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from hullwatch.sim.errors import ScenarioError
from hullwatch.sim.scenario import preset_dict, scenario_from_dict
from hullwatch.sim.scenario_bounds import BOUNDS, EXCLUSIVE_LOW, MAY_BE_INFINITE
from hullwatch.tools.cli import main

BASE = preset_dict("nominal-24h")


def edited(path: str, value: Any, base: dict[str, Any] = BASE) -> dict[str, Any]:
    """A copy of ``base`` with the key path ``a[0].b`` set to ``value``."""
    data = copy.deepcopy(base)
    node: Any = data
    parts = path.replace("]", "").replace("[", ".").split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if part.isdigit():
            node = node[int(part)]
        else:
            node = node.setdefault(part, [{}] if nxt.isdigit() else {})
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return data


def refused(data: dict[str, Any], key: str, match: str = "") -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, "station.toml")
    assert info.value.source == "station.toml" and info.value.key == key, str(info.value)
    assert match in str(info.value)


def _path(section: str | None, name: str) -> str:
    if section is None:
        return name
    if section in ("sensors", "thermal", "crew"):
        return f"{section}.{name}"
    return f"{section}[0].{name}"


def _base_for(section: str | None) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.setdefault("leaks", [])[:0] = [{"module": data["modules"][0]["name"], "diameter_m": 0.002}]
    data.setdefault("sensor_faults", [])[:0] = [{"sensor": f"{data['modules'][0]['name']}.p1", "kind": "bias"}]
    data.setdefault("valve_faults", [])[:0] = [{"valve": data["connections"][0]["id"], "kind": "stuck_open"}]
    data.setdefault("hatch_ops", [])[:0] = [{"valve": data["connections"][-1]["id"], "at_s": 10.0, "open": False}]
    return data


@pytest.mark.parametrize("section, name", sorted(BOUNDS, key=str))
def test_every_bound_is_enforced_above(section: str | None, name: str) -> None:
    lo, hi, _ = BOUNDS[(section, name)]
    base = _base_for(section)
    if math.isinf(hi):
        pytest.skip("no upper bound")
    over = hi * 10 + 10 if isinstance(hi, float) else hi + 1
    if (section, name) == ("crew", "count"):
        base = edited("crew.modules", [base["modules"][0]["name"]], base)
        base = edited("crew.generator_module", base["modules"][0]["name"], base)
    refused(edited(_path(section, name), over, base), _path(section, name))


@pytest.mark.parametrize("section, name", sorted(BOUNDS, key=str))
def test_every_bound_is_enforced_below(section: str | None, name: str) -> None:
    lo, hi, _ = BOUNDS[(section, name)]
    base = _base_for(section)
    below = lo if (section, name) in EXCLUSIVE_LOW else (lo - 1 if isinstance(lo, int) else lo - abs(lo) * 0.5 - 1e-3)
    try:
        scenario_from_dict(edited(_path(section, name), below, base), "station.toml")
    except ScenarioError as exc:
        assert exc.key == _path(section, name), str(exc)
    else:
        pytest.fail(f"{_path(section, name)} = {below!r} accepted")


@pytest.mark.parametrize("path", ["modules[0].volume_m3", "connections[0].cd", "leaks[0].diameter_m"])
def test_nan_and_infinity_are_refused(path: str) -> None:
    base = _base_for(None)
    for value in (math.nan, math.inf):
        if value == math.inf and ("leaks", "diameter_m") in MAY_BE_INFINITE:
            continue
        with pytest.raises(ScenarioError):
            scenario_from_dict(edited(path, value, base), "station.toml")


def test_the_issue_cases() -> None:
    refused(edited("connections[0].cd", 50.0), "connections[0].cd")
    refused(edited("modules[0].volume_m3", 1e308), "modules[0].volume_m3")
    refused(edited("modules[0].temperature_k", 1e-300), "modules[0].temperature_k")
    crew = edited("crew.count", 10**9)
    refused(crew, "crew.count")
    refused(edited("modules[0].pressure_sensors", 300), "modules[0].pressure_sensors")


def test_cuc_time_range() -> None:
    refused(edited("start_utc", dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)), "start_utc", "CUC")
    refused(edited("start_utc", dt.datetime(1969, 12, 31, tzinfo=dt.timezone.utc)), "start_utc")
    late = edited("start_utc", dt.datetime(2106, 2, 7, tzinfo=dt.timezone.utc))
    refused(late, "duration_s", "2106-02-07T06:28:15Z")


def with_module(name: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["modules"].append({"name": name, "volume_m3": 1.0})
    return data


def test_name_rules() -> None:
    last = f"modules[{len(BASE['modules'])}].name"
    refused(with_module("zvëzda"), last, "ASCII")
    refused(with_module("a-very-long-module"), last, "1-12")
    refused(with_module("-dash"), last)
    refused(edited("connections[0].id", "x" * 17), "connections[0].id", "1-16")
    refused(edited("name", "bad\nname"), "name")


def test_counts_within_packet_limits() -> None:
    many = copy.deepcopy(BASE)
    many["modules"] = [{"name": f"m{i}", "volume_m3": 1.0} for i in range(10_000)]
    many["connections"] = []
    many.pop("repress", None)
    many["crew"] = {}
    refused(many, "modules", "at most 64 modules")
    wide = copy.deepcopy(many)
    wide["modules"] = [{"name": f"m{i}", "volume_m3": 1.0, "pressure_sensors": 16,
                        "temperature_sensors": 1} for i in range(17)]
    refused(wide, "modules", "pressure channels")


def test_cross_field_checks() -> None:
    refused(edited("thermal.amplitude_k", 49.0, edited("modules[0].temperature_k", 180.0)),
            "modules[0].temperature_k", "below 150 K")
    repress = BASE["repress"][0]
    module = next(i for i, m in enumerate(BASE["modules"]) if m["name"] == repress["module"])
    data = edited(f"modules[{module}].pressure_pa", 150_000.0)
    refused(edited("repress[0].tank_pressure_pa", 120_000.0, data), "repress[0].tank_pressure_pa")


def test_cli_names_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "station.toml"
    path.write_text('name = "two"\nstart_utc = 2018-08-29T20:00:00Z\nduration_s = 60.0\n'
                    '[[modules]]\nname = "a"\nvolume_m3 = 10.0\n[[modules]]\nname = "b"\n'
                    'volume_m3 = 10.0\n[[connections]]\nid = "ab"\nmodules = ["a", "b"]\ncd = 50.0\n')
    assert main(["scenarios", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: connections[0].cd: expected a value > 0 and <= 1, got 50.0" in err
    assert main(["run", "--scenario", str(path), "--quiet"]) == 2


def test_presets_are_inside_the_bounds() -> None:
    from hullwatch.sim.scenario import load_scenario, preset_names

    for name in preset_names():
        load_scenario(name)


def test_a_modules_own_amplitude_is_bounded_and_kept_above_150_k() -> None:
    base = _base_for(None)
    refused(edited("modules[0].amplitude_k", 1e300, base), "modules[0].amplitude_k")
    refused(edited("modules[0].sensor_offset_k", -400.0, base), "modules[0].sensor_offset_k")
    cold = edited("modules[0].temperature_k", 155.0, edited("modules[0].amplitude_k", 40.0, base))
    refused(cold, "modules[0].temperature_k")
