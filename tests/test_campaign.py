"""Campaign machinery: spec validation, deterministic drawing, executors, resume, failures, report.

The closed loop is replaced here by ``fake_case``, a deterministic function of the case's
parameters injected into the executor, so these tests check the campaign machinery quickly;
tests/test_campaign_cli.py runs the real loop.
"""

from __future__ import annotations

import json
import math
import os
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hullwatch.sim.scenario import scenario_from_dict
from hullwatch.tools.campaign import case as campaign_case
from hullwatch.tools.campaign import report as campaign_report
from hullwatch.tools.campaign.executor import (CampaignError, DaskPool, LocalPool, Progress, execute_case,
                                           read_records, run_campaign)
from hullwatch.tools.campaign.spec import SpecError, draw_case, iter_cases, load_spec, spec_from_text

STATION = """\
name = "tiny"
start_utc = 2018-08-29T20:00:00Z
duration_s = 600.0
seed = 3
[[modules]]
name = "a"
volume_m3 = 10.0
[[modules]]
name = "b"
volume_m3 = 20.0
[[modules]]
name = "c"
volume_m3 = 5.0
[[connections]]
id = "ab"
modules = ["a", "b"]
[[connections]]
id = "bc"
modules = ["b", "c"]
kind = "valve"
[thermal]
amplitude_k = 0.5
"""

SPEC = """\
name = "t"
seed = 5
timeout_s = 20
[[groups]]
name = "leak"
scenario = "station.toml"
duration_s = 300
cases = {cases}
[groups.leak]
diameter_mm = {{each = [1, 3]}}
module = {{each = "any"}}
start_s = {{uniform = [10, 100]}}
[groups.sensor_fault]
count = {{each = [0, 1]}}
[groups.vary]
"thermal.amplitude_k" = {{uniform = [0.2, 1.0]}}
[[groups]]
name = "nom"
scenario = "station.toml"
cases = 4
"""

FAIL_ENV = "HULLWATCH_TEST_FAIL_CASES"


def fake_case(case: dict[str, Any]) -> dict[str, Any]:
    """A deterministic stand-in for the closed loop (a pure function of the case)."""
    if case["id"] in os.environ.get(FAIL_ENV, "").split(","):
        raise RuntimeError(f"injected failure in {case['id']}")
    if case["id"] in os.environ.get(FAIL_ENV + "_HANG", "").split(","):
        while True:
            time.sleep(0.01)
    seed = case["seed"]
    leak = case["leak"]
    if leak is None:
        return {"detected": False, "false_alarms": int(seed % 3 == 0), "suspicions": 0, "sim_s": 86400.0}
    detected = leak["diameter_m"] >= 2e-3 or seed % 4 != 0
    latency = 30.0 + seed % 50 if detected else None
    return {
        "detected": detected, "latency_s": latency, "floor_s": 40.0,
        "latency_ratio": latency / 40.0 if detected else None,
        "located_module": leak["module"] if detected and seed % 5 else "",
        "isolation_correct": bool(detected and seed % 5),
        "false_alarms": 0, "suspicions": 0, "sim_s": float(case["duration_s"]),
    }


@pytest.fixture()
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "station.toml").write_text(STATION)
    (tmp_path / "spec.toml").write_text(SPEC.format(cases=1))
    return tmp_path


def _strip(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records without what may differ between runs (wall time, retries)."""
    return {k: {kk: vv for kk, vv in r.items() if kk not in ("wall_s", "cpu_s", "attempts")}
            for k, r in records.items()}


# --------------------------------------------------------------------------------------------
# spec


@pytest.mark.parametrize("edit, key, expected", [
    (("seed = 5", "seed = -1"), "seed", ">= 0"),
    (("timeout_s = 20", "timeout_s = 20\ncolour = 1"), "colour", "unknown key"),
    (('name = "leak"', 'name = "le ak"'), "groups[0].name", "letters"),
    (('scenario = "station.toml"\nduration_s', 'scenario = "nowhere.toml"\nduration_s'),
     "groups[0].scenario", "no preset or scenario file"),
    (("{each = [1, 3]}", "{gauss = [1, 3]}"), "groups[0].leak.diameter_mm", "unknown distribution"),
    (("{each = [1, 3]}", "{log_uniform = [0, 3]}"), "groups[0].leak.diameter_mm", "low must be > 0"),
    (("{each = [1, 3]}", "{uniform = [3]}"), "groups[0].leak.diameter_mm", "[low, high]"),
    (("{each = [1, 3]}", "[1, -2]"), "groups[0].leak.diameter_mm", "> 0"),
    (('module = {each = "any"}', 'module = ["a", "zvezda"]'), "groups[0].leak.module", "expected one of a, b, c"),
    (("count = {each = [0, 1]}", "count = {each = [0, 1]}\nkinds = [\"melt\"]"),
     "groups[0].sensor_fault.kind", "expected one of bias"),
    (("count = {each = [0, 1]}", "count = {each = [0, 1]}\nprobability = 0.5"),
     "groups[0].sensor_fault.probability", "not both"),
    (('"thermal.amplitude_k"', '"thermal.amplitude_kk"'), "groups[0].vary.thermal.amplitude_kk",
     "no such key in the base scenario"),
    (('name = "nom"', 'name = "leak"'), "groups[1].name", "duplicate group name"),
    (("cases = 4", "cases = 0"), "groups[1].cases", ">= 1"),
])
def test_spec_errors_name_the_file_and_key(spec_dir: Path, edit: tuple[str, str], key: str,
                                           expected: str) -> None:
    path = spec_dir / "bad.toml"
    text = SPEC.format(cases=1)
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}: "), msg
    assert expected in msg


def test_spec_error_for_bad_toml_and_missing_file(spec_dir: Path) -> None:
    (spec_dir / "x.toml").write_text("name = \n")
    with pytest.raises(SpecError, match=r"x\.toml: not valid TOML"):
        load_spec(spec_dir / "x.toml")
    with pytest.raises(SpecError, match="no such spec file or built-in spec"):
        load_spec("no-such-spec")


def test_case_i_does_not_depend_on_n_or_order(spec_dir: Path) -> None:
    small = load_spec(spec_dir / "spec.toml")
    big = spec_from_text(SPEC.format(cases=3), str(spec_dir / "spec3.toml"), base_dir=spec_dir)
    assert small.groups[0].size == 12 and big.groups[0].size == 36  # 2 diameters x 3 modules x 2
    small_cases = list(iter_cases(small))
    big_cases = {c["id"]: c for c in iter_cases(big)}
    for c in small_cases:
        b = big_cases[c["id"]]
        assert {k: v for k, v in c.items() if k != "campaign"} == {k: v for k, v in b.items() if k != "campaign"}
    # drawing backwards gives the same cases
    g = small.groups[0]
    assert [draw_case(small, g, i) for i in reversed(range(g.size))][::-1] == small_cases[:g.size]
    # the grid is covered once per repeat
    combos = {(c["leak"]["diameter_m"], c["leak"]["module"], len(c["sensor_faults"])) for c in small_cases[:12]}
    assert len(combos) == 12
    # a fault in the leaking module by default; seeds differ between cases
    assert all(f["sensor"].startswith(c["leak"]["module"] + ".p") for c in small_cases[:12]
               for f in c["sensor_faults"])
    assert len({c["seed"] for c in small_cases}) == len(small_cases)


def test_master_seed_changes_the_draw(spec_dir: Path) -> None:
    a = load_spec(spec_dir / "spec.toml")
    b = spec_from_text(SPEC.format(cases=1).replace("seed = 5", "seed = 6"), "b.toml", base_dir=spec_dir)
    assert [c["seed"] for c in iter_cases(a)] != [c["seed"] for c in iter_cases(b)]


def test_builtin_specs_load() -> None:
    for name in ("smoke", "fdir-acceptance"):
        spec = load_spec(name)
        assert spec.size > 0 and spec.source == f"builtin:{name}"


def test_acceptance_spec_covers_every_module_size_and_fault() -> None:
    spec = load_spec("fdir-acceptance")
    from hullwatch.sim.scenario import preset_dict

    modules = {m["name"] for m in preset_dict("soyuz-ms09")["modules"]}
    leak = [c for c in iter_cases(spec) if c["leak"]]
    combos = {(round(c["leak"]["diameter_m"] * 1e3), c["leak"]["module"], len(c["sensor_faults"])) for c in leak}
    assert combos == {(d, m, f) for d in range(1, 11) for m in modules for f in (0, 1)}
    nominal = [g for g in spec.groups if not g.has_leak]
    assert sum(g.size * (g.duration_s or 0) for g in nominal) / 86400 >= 100


def test_case_scenario_file_replays(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    case = next(c for c in iter_cases(spec) if c["sensor_faults"])
    path = campaign_case.write_case_scenario(case, spec_dir / "case.toml")
    data = tomllib.loads(path.read_text())
    assert data == campaign_case.build_scenario_dict(case) | {}
    sc = scenario_from_dict(data, str(path))
    assert sc.seed == case["seed"] and sc.leaks[0].module == case["leak"]["module"]
    assert sc.sensor_faults[0].sensor == case["sensor_faults"][0]["sensor"]
    assert sc.thermal.amplitude_k == pytest.approx(case["vary"]["thermal.amplitude_k"])
    assert f"--seed {case['seed']}" in path.read_text()


def test_group_fdir_parameters_reach_the_case_and_its_replay_file(spec_dir: Path) -> None:
    (spec_dir / "params.toml").write_text("[slowleak]\nwatch_min_s = 900.0\n[leak]\nclear_s = 50.0\n")
    text = SPEC.format(cases=1).replace('timeout_s = 20\n', 'timeout_s = 20\nfdir_params = "params.toml"\n')
    text = text.replace('[groups.vary]', '[groups.fdir.slowleak]\nlocate = 2\n[groups.fdir.leak]\n'
                                         'clear_s = 60.0\n[groups.vary]')
    (spec_dir / "spec.toml").write_text(text)
    spec = load_spec(spec_dir / "spec.toml")
    leak_case = next(c for c in iter_cases(spec) if c["group"] == "leak")
    nom_case = next(c for c in iter_cases(spec) if c["group"] == "nom")
    # The group's keys win, the file's other keys stay, the other group keeps the file alone.
    p = campaign_case.case_params(leak_case)
    assert (p.slowleak.locate, p.slowleak.watch_min_s, p.leak.clear_s) == (2, 900.0, 60.0)
    q = campaign_case.case_params(nom_case)
    assert (q.slowleak.locate, q.slowleak.watch_min_s, q.leak.clear_s) == (1, 900.0, 50.0)
    # The replay files: the scenario names the case's FDIR table, which loads to the same table.
    path = campaign_case.write_case_scenario(leak_case, spec_dir / "case.toml")
    fdir_file = spec_dir / "case.fdir.toml"
    assert f"--fdir {fdir_file.name}" in path.read_text()
    from hullwatch.firmware.fdir.params import load_params
    assert load_params(fdir_file) == load_params(fdir_file) and load_params(fdir_file).slowleak == p.slowleak
    assert load_params(fdir_file).leak == p.leak


@pytest.mark.parametrize("table, key", [
    ('[groups.fdir.slowleak]\nlocate = 7\n', "slowleak.locate"),
    ('[groups.fdir.nosuch]\nx = 1\n', "nosuch"),
    ('[groups.fdir]\nlocate = 2\n', "groups[0].fdir"),
])
def test_group_fdir_errors_name_the_group_and_parameter(spec_dir: Path, table: str, key: str) -> None:
    text = SPEC.format(cases=1).replace('[groups.vary]', table + '[groups.vary]')
    (spec_dir / "spec.toml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir / "spec.toml")
    msg = str(info.value)
    assert "spec.toml" in msg and "groups[0].fdir" in msg and key in msg


def test_floor_matches_design_example() -> None:
    # the statistical floor (docs/architecture.md): 2 mm hole in 900 m3 -> about 0.049 Pa/s; sigma 3 Pa, 10 Hz, alpha 1e-3, 99 %: about 50 s
    scen = {"modules": [{"name": "m", "volume_m3": 900.0, "pressure_pa": 101325.0, "temperature_k": 295.0}]}
    s = campaign_case.leak_slope(scen, {"module": "m", "diameter_m": 2e-3, "cd": 0.7})
    assert s == pytest.approx(0.049, rel=0.02)
    assert campaign_case.detection_floor_s(s, 3.0, 10.0, 1e-3, 0.01) == pytest.approx(50.0, rel=0.05)


# --------------------------------------------------------------------------------------------
# executors and resume


def test_local_pool_results_do_not_depend_on_worker_count(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    with LocalPool(1) as ex:
        one = run_campaign(spec, spec_dir / "one", ex, case_fn=fake_case)
    with LocalPool(2) as ex:
        two = run_campaign(spec, spec_dir / "two", ex, case_fn=fake_case)
    assert one.complete and two.complete and one.done == spec.size == 16
    r1, r2 = read_records(spec_dir / "one"), read_records(spec_dir / "two")
    assert _strip(r1) == _strip(r2)
    assert sorted(r1) == spec.case_ids()
    assert all((spec_dir / "one" / "cases" / f"{i}.toml").is_file() for i in spec.case_ids())


def test_interrupted_campaign_resumes_to_the_same_results(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    with LocalPool(2) as ex:
        run_campaign(spec, spec_dir / "ref", ex, case_fn=fake_case)

        def interrupt(p: Progress) -> None:
            if p.done >= 5:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_campaign(spec, spec_dir / "cut", ex, case_fn=fake_case, on_progress=interrupt)
    partial = read_records(spec_dir / "cut")
    assert 5 <= len(partial) < spec.size
    # a line cut short by the interruption is ignored
    with (spec_dir / "cut" / "cases.jsonl").open("a") as fh:
        fh.write('{"id": "leak-0')
    with LocalPool(2) as ex:
        run = run_campaign(spec, spec_dir / "cut", ex, case_fn=fake_case)
    assert run.resumed == len(partial) and run.ran == spec.size - len(partial) and run.complete
    assert _strip(read_records(spec_dir / "cut")) == _strip(read_records(spec_dir / "ref"))


def test_max_cases_cut_then_resume(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    with LocalPool(1) as ex:
        first = run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case, max_cases=6)
        assert (first.ran, first.done, first.complete) == (6, 6, False)
        second = run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case)
        assert (second.resumed, second.ran, second.complete) == (6, spec.size - 6, True)
        third = run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case)
        assert third.ran == 0


def test_failed_and_hung_cases_are_recorded_and_the_campaign_goes_on(spec_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (spec_dir / "spec.toml").write_text(SPEC.format(cases=1).replace("timeout_s = 20", "timeout_s = 0.5"))
    spec = load_spec(spec_dir / "spec.toml")
    monkeypatch.setenv(FAIL_ENV, "leak-00003")
    monkeypatch.setenv(FAIL_ENV + "_HANG", "nom-00001")
    with LocalPool(2) as ex:
        run = run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case)
    assert run.complete and run.failed == 2
    recs = read_records(spec_dir / "out")
    bad = recs["leak-00003"]
    assert bad["status"] == "error" and "injected failure in leak-00003" in bad["error"]
    assert bad["seed"] == draw_case(spec, spec.groups[0], 3)["seed"] and bad["diameter_mm"] == 1.0
    assert "RuntimeError" in bad["traceback"]
    hung = recs["nom-00001"]
    assert hung["status"] == "timeout" and "0.5 s" in hung["error"] and hung["wall_s"] < 5
    assert sum(r["status"] == "ok" for r in recs.values()) == spec.size - 2
    files = campaign_report.write_report(spec_dir / "out")
    assert {f["id"] for f in files.summary["failures"]} == {"leak-00003", "nom-00001"}
    assert "injected failure" in files.summary_md.read_text()
    # --retry-failed runs them again (now passing)
    monkeypatch.delenv(FAIL_ENV)
    monkeypatch.delenv(FAIL_ENV + "_HANG")
    with LocalPool(1) as ex:
        again = run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case, retry_failed=True)
    assert again.ran == 2 and again.failed == 0


def test_interrupt_abandons_running_cases_at_once(spec_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(spec_dir / "spec.toml")  # timeout 20 s: the hung case would hold a clean shutdown
    monkeypatch.setenv(FAIL_ENV + "_HANG", "leak-00001")

    def interrupt(p: Progress) -> None:
        if p.last is not None:
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with LocalPool(2) as ex:
            run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case, on_progress=interrupt)
    assert time.perf_counter() - t0 < 10
    assert "leak-00001" not in read_records(spec_dir / "out")


def test_execute_case_timeout_does_not_fire_after_return() -> None:
    case = {"id": "x", "seed": 1, "timeout_s": 0.05, "leak": None}
    rec = execute_case(fake_case, case)
    assert rec["status"] == "ok"
    time.sleep(0.1)  # the cancelled timer must not raise into this thread later


def test_directory_of_another_spec_is_refused(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    other = spec_from_text(SPEC.format(cases=2), "other.toml", base_dir=spec_dir)
    with LocalPool(1) as ex:
        run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case, max_cases=1)
        with pytest.raises(CampaignError, match="holds a campaign of spec 't'"):
            run_campaign(other, spec_dir / "out", ex, case_fn=fake_case)


@pytest.mark.slow  # starting a LocalCluster takes seconds on a loaded machine
def test_dask_local_cluster_gives_the_same_results(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    with LocalPool(1) as ex:
        run_campaign(spec, spec_dir / "local", ex, case_fn=fake_case, write_scenarios=False)
    seen: list[Progress] = []
    with DaskPool(workers=1, processes=False) as ex:
        assert "LocalCluster" in ex.description
        run = run_campaign(spec, spec_dir / "dask", ex, case_fn=fake_case, on_progress=seen.append)
    assert run.complete and seen[-1].done == spec.size and seen[0].last is None
    assert _strip(read_records(spec_dir / "dask")) == _strip(read_records(spec_dir / "local"))


@pytest.mark.slow
def test_dask_existing_scheduler_by_address(spec_dir: Path) -> None:
    import logging

    from distributed import LocalCluster

    spec = load_spec(spec_dir / "spec.toml")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        with DaskPool(scheduler=cluster.scheduler_address) as ex:
            assert ex.workers == 2 and cluster.scheduler_address in ex.description
            run = run_campaign(spec, spec_dir / "remote", ex, case_fn=fake_case, max_cases=7)
    assert run.ran == 7 and len(read_records(spec_dir / "remote")) == 7
    with pytest.raises(CampaignError, match="cannot reach the Dask scheduler"):
        DaskPool(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0)


# --------------------------------------------------------------------------------------------
# report


def test_clopper_pearson_and_poisson_bounds() -> None:
    lo, hi = campaign_report.clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.30850, abs=1e-4)
    lo, hi = campaign_report.clopper_pearson(10, 10)
    assert lo == pytest.approx(0.69150, abs=1e-4) and hi == 1.0
    lo, hi = campaign_report.clopper_pearson(5, 10)
    assert (lo, hi) == (pytest.approx(0.18709, abs=1e-4), pytest.approx(0.81291, abs=1e-4))
    assert campaign_report.poisson_upper(0) == pytest.approx(-math.log(0.05), rel=1e-6)
    assert campaign_report.poisson_upper(2) == pytest.approx(6.2958, abs=1e-3)
    assert campaign_report.percentile([1, 2, 3, 4], 50) == 2.5


def test_report_summarises_by_diameter(spec_dir: Path) -> None:
    spec = load_spec(spec_dir / "spec.toml")
    with LocalPool(2) as ex:
        run_campaign(spec, spec_dir / "out", ex, case_fn=fake_case)
    files = campaign_report.write_report(spec_dir / "out")
    s = files.summary
    recs = read_records(spec_dir / "out")
    assert [b["diameter_mm"] for b in s["by_diameter"]] == ["1", "3"]
    for b in s["by_diameter"]:
        mine = [r for r in recs.values() if r.get("diameter_mm") == float(b["diameter_mm"])]
        assert b["cases"] == len(mine) == 6
        assert b["detection"]["k"] == sum(r["detected"] for r in mine)
    nominal = [r for r in recs.values() if r["kind"] == "nominal"]
    assert s["nominal"]["sim_days"] == pytest.approx(len(nominal))
    assert s["nominal"]["false_alarms"] == sum(r["false_alarms"] for r in nominal)
    rows = (spec_dir / "out" / "cases.csv").read_text().splitlines()
    assert rows[0].startswith("id,group,index,kind") and len(rows) == spec.size + 1
    assert json.loads(files.summary_json.read_text())["cases"] == spec.size
    assert {p.name for p in files.plots} == {"detection.png", "latency.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files.plots)
    md = files.summary_md.read_text()
    assert "| 3 | 6 |" in md and "## Targets" in md and "isolated with a sensor fault" in md
