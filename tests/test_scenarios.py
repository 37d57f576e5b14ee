"""Scenarios: presets, validation errors a user sees, the `hullwatch scenarios` verb, the docs."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hullwatch.sim.errors import ScenarioError
from hullwatch.sim.gas import MMHG_PA, choked_flow, pressure_rate
from hullwatch.sim.scenario import (
    REQUIRED,
    SECTIONS,
    TOP_FIELDS,
    load_scenario,
    preset_description,
    preset_dict,
    preset_names,
    scenario_from_dict,
)
from hullwatch.tools.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"
PRESETS = ["nominal-24h", "prk-slow", "rapid-depress", "sensor-faults", "soyuz-ms09", "valve-fault"]


def test_presets_are_all_there_and_load():
    assert set(PRESETS) <= set(preset_names())
    for name in preset_names():
        sc = load_scenario(name)
        assert sc.name == name and sc.source == f"preset:{name}"
        assert preset_description(name) == sc.description and len(sc.description) < 110


def test_soyuz_ms09_matches_the_record():
    sc = load_scenario("soyuz-ms09")
    assert 880 <= sc.total_volume_m3 <= 920
    assert 5 <= sc.module("soyuz-om").volume_m3 <= 7
    assert 3 <= sc.module("soyuz-dm").volume_m3 <= 5
    assert sc.module("zvezda").volume_m3 == 75.0
    assert sc.start_datetime().isoformat() == "2018-08-29T20:00:00+00:00"
    (leak,) = sc.leaks
    assert (leak.module, leak.diameter_m) == ("soyuz-om", 0.002) and 60 <= leak.start_s <= 900
    om = sc.module("soyuz-om")
    rate = pressure_rate(choked_flow(leak.cd, leak.diameter_m, om.pressure_pa, om.temperature_k),
                         sc.total_volume_m3, om.temperature_k) * 3600 / MMHG_PA
    assert 0.6 <= rate <= 0.8
    assert all(m.pressure_sensors == 3 and m.temperature_sensors == 2 for m in sc.modules)
    assert all(c.open for c in sc.connections)


def test_other_presets_do_what_their_names_say():
    nominal = load_scenario("nominal-24h")
    assert not nominal.leaks and nominal.duration_s >= 86400 and nominal.crew.count > 0
    assert sum(len(r.events) for r in nominal.repress) == 1
    prk = load_scenario("prk-slow")
    (leak,) = prk.leaks
    vol = prk.module(leak.module).volume_m3
    assert 8 <= vol <= 12
    kg_day = choked_flow(leak.cd, leak.diameter_m, 100000.0, 295.0) * 86400
    assert 0.7 <= kg_day <= 1.3
    assert any(leak.module in c.modules and not c.open for c in prk.connections)
    assert load_scenario("rapid-depress").leaks[0].diameter_m == 0.025
    faults = load_scenario("sensor-faults")
    leaking = faults.leaks[0].module
    kinds = {f.kind for f in faults.sensor_faults if f.sensor.startswith(leaking + ".")}
    assert {"stuck", "dropout", "bias"} <= kinds
    assert {f.kind for f in faults.sensor_faults} == {"bias", "drift", "stuck", "noise", "spike",
                                                       "dropout"}
    vf = load_scenario("valve-fault")
    (fault,) = vf.valve_faults
    conn = next(c for c in vf.connections if c.id == fault.valve)
    assert fault.kind == "stuck_open" and vf.leaks[0].module in conn.modules


def test_campaigns_can_edit_a_preset_dict():
    data = preset_dict("soyuz-ms09")
    data["leaks"][0]["diameter_m"] = 0.004
    data["seed"] = 99
    sc = scenario_from_dict(data, "campaign case 3")
    assert sc.leaks[0].diameter_m == 0.004 and sc.seed == 99
    assert load_scenario("soyuz-ms09").leaks[0].diameter_m == 0.002  # preset untouched
    fresh = preset_dict("soyuz-ms09")  # each call a new copy: the edits above are not in it
    assert fresh is not data and fresh["leaks"][0]["diameter_m"] == 0.002 and fresh["seed"] != 99
    fresh["modules"].clear()
    assert preset_dict("soyuz-ms09")["modules"] and load_scenario("soyuz-ms09").modules


@pytest.mark.parametrize("edit, key, expected", [
    (lambda d: d["leaks"][0].update(diameter_m=-0.002), "leaks[0].diameter_m", "a number > 0 (m)"),
    (lambda d: d["leaks"][0].update(diameter_m="2mm"), "leaks[0].diameter_m", "got '2mm'"),
    (lambda d: d["leaks"][0].update(module="soyuz"), "leaks[0].module", "unknown module 'soyuz'"),
    (lambda d: d["leaks"][0].update(hole_mm=2), "leaks[0].hole_mm", "unknown key"),
    (lambda d: d.update(colour="red"), "colour", "unknown key"),
    (lambda d: d["modules"][1].pop("volume_m3"), "modules[1].volume_m3", "missing"),
    (lambda d: d["modules"][1].update(name="soyuz-dm"), "modules[1].name", "duplicate"),
    (lambda d: d["connections"][0].update(kind="door"), "connections[0].kind", '"hatch", "valve"'),
    (lambda d: d["connections"][0].update(modules=["zvezda"]), "connections[0].modules",
     "two module names"),
    (lambda d: d["connections"][1].update(id="dm-om"), "connections[1].id", "duplicate valve id"),
    (lambda d: d.update(start_utc="2018-08-29 20:00"), "start_utc", "UTC date-time"),
    (lambda d: d.update(duration_s=0), "duration_s", "> 0"),
    (lambda d: d.update(seed=1.5), "seed", "an integer"),
    (lambda d: d.update(sensor_faults=[{"sensor": "soyuz-om.p4", "kind": "bias"}]),
     "sensor_faults[0].sensor", "unknown channel 'soyuz-om.p4'"),
    (lambda d: d.update(sensor_faults=[{"sensor": "soyuz-om.p1", "kind": "melt"}]),
     "sensor_faults[0].kind", '"stuck"'),
    (lambda d: d.update(valve_faults=[{"valve": "nope", "kind": "stuck_open"}]),
     "valve_faults[0].valve", "unknown valve 'nope'"),
    (lambda d: d["repress"][0].update(events=[[10, 100], [50, 10]]), "repress[0].events",
     "overlap"),
    (lambda d: d["repress"][0].update(events=[[10]]), "repress[0].events[0]", "[start_s, duration_s]"),
    (lambda d: d["crew"].update(generator_module=""), "crew.generator_module", "expected a module"),
    (lambda d: d["crew"].update(activity_fraction=2.0), "crew.activity_fraction", "between 0 and 1"),
    (lambda d: d.update(thermal=[1]), "thermal", "expected a table"),
    (lambda d: d.update(modules=[]), "modules", "at least one"),
])
def test_validation_errors_name_source_key_and_expectation(edit, key, expected):
    data = preset_dict("soyuz-ms09")
    edit(data)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, "case.toml")
    message = str(info.value)
    assert message.startswith(f"case.toml: {key}: "), message
    assert expected in message
    assert info.value.key == key and info.value.source == "case.toml"


def test_scenarios_verb_lists_presets_one_line_each(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(preset_names())
    for name, line in zip(preset_names(), lines):
        assert line.startswith(name) and preset_description(name) in line


def test_scenarios_verb_summarises_a_preset_with_its_leak_rate(capsys):
    assert main(["scenarios", "soyuz-ms09"]) == 0
    out = capsys.readouterr().out
    assert "2018-08-29T20:00:00Z" in out and "900 m3" in out
    rate = float(re.search(r"\(([0-9.]+) mmHg/h\)", out).group(1))
    assert 0.6 <= rate <= 0.8


def test_scenarios_toml_output_round_trips(capsys, tmp_path):
    assert main(["scenarios", "valve-fault", "--toml"]) == 0
    text = capsys.readouterr().out
    assert tomllib.loads(text) == preset_dict("valve-fault")
    path = tmp_path / "mine.toml"
    path.write_text(text.replace('name = "valve-fault"', 'name = "mine"'))
    assert main(["scenarios", str(path)]) == 0
    assert capsys.readouterr().out.startswith("mine: ")


def test_bad_scenario_file_is_a_one_line_error_with_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nstart_utc = 2018-08-29T20:00:00Z\nduration_s = 60.0\n'
                    '[[modules]]\nname = "a"\nvolume_m3 = -5\n')
    proc = subprocess.run([sys.executable, "-m", "hullwatch.tools.cli", "scenarios", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"hullwatch: error: {path}: modules[0].volume_m3: expected a "
                                   "number > 0 (m^3), got -5")
    assert main(["scenarios", str(tmp_path / "missing.toml")]) == 2
    (tmp_path / "broken.toml").write_text("name = \n")
    assert main(["scenarios", str(tmp_path / "broken.toml")]) == 2


def test_unknown_name_lists_the_presets():
    with pytest.raises(ScenarioError, match="no such preset or file; presets: blind-module, nominal-24h"):
        load_scenario("soyuz-ms10")


def test_docs_list_every_key_with_its_unit_and_default():
    text = DOCS.read_text()
    sections = {"": TOP_FIELDS} | {k: f for k, (f, _) in SECTIONS.items()}
    for section, fields in sections.items():
        heading = "### Top level" if not section else (
            f"### `[[{section}]]`" if SECTIONS[section][1] else f"### `[{section}]`")
        assert heading in text, heading
        body = text.split(heading, 1)[1].split("\n### ", 1)[0]
        for f in fields:
            row = next((ln for ln in body.splitlines() if ln.startswith(f"| `{f.key}` |")), None)
            assert row is not None, f"{section}.{f.key} undocumented"
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert cells[1] == (f.unit or "-")
            if f.default is REQUIRED:
                assert cells[2] == "required"
            elif isinstance(f.default, float) and math.isfinite(f.default):
                assert float(cells[2]) == f.default, f"{section}.{f.key}"
            elif isinstance(f.default, int) and not isinstance(f.default, bool):
                assert int(cells[2]) == f.default
    for name in PRESETS:
        assert f"`{name}`" in text
