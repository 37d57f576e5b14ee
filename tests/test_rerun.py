"""hullwatch rerun: the flight software re-run on a capture's samples reproduces its events exactly;
changed parameters show up as listed differences with mission times."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hullwatch.tools.ground import iter_capture
from hullwatch.tools.cli import main
from hullwatch.tools.captures.rerun import EventRecord, diff_events

#: mission seconds recorded: the soyuz-ms09 leak (seed 7) is detected, located and sealed by ~400 s
DURATION_S = 480


def _record(path: Path, *extra: str) -> None:
    """A capture made the way a user makes one: ``hullwatch run``."""
    assert main(["run", "--scenario", "soyuz-ms09", "--seed", "7", "--until", str(DURATION_S),
                 "--capture", str(path), "--quiet", *extra]) == 0


@pytest.fixture(scope="module")
def ms09(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rerun") / "ms09.tm"
    _record(path)
    return path


def _events(path: Path) -> list[str]:
    return [p.packet.data.event_id.name for p in iter_capture(path) if p.packet.service == 5]


def test_unchanged_parameters_give_no_difference(ms09: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = _events(ms09)
    assert "LEAK_CONFIRMED" in names and "SEGMENT_SEALED" in names  # a capture worth comparing
    assert main(["rerun", str(ms09)]) == 0
    out = capsys.readouterr().out
    assert "no difference" in out
    assert f"events: {len(names)} recorded, {len(names)} in the re-run" in out
    assert f"{DURATION_S * 10} cycles" in out


def test_changed_parameters_list_differences_with_mission_times(
        ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "tuned.toml"
    params.write_text("[leak]\nfalse_alarm_prob = 1e-9\n[isolation]\ndischarge_coefficient = 0.6\n")
    assert main(["rerun", str(ms09), "--fdir", str(params)]) == 1
    out = capsys.readouterr().out
    diff_lines = [line for line in out.splitlines() if line[:2] in ("- ", "+ ", "~ ")]
    assert diff_lines, out
    assert re.search(r"^\d+ differences?", out, re.M)
    # values are labelled with their field names and units
    assert any("leak_rate" in line and "kg/day" in line for line in diff_lines), out
    for line in diff_lines:
        assert re.match(r"^[-+~] \d+:\d\d:\d\d\.\d{3}  [A-Z_]+ ", line), line
    # a smaller false-alarm probability needs more evidence: the leak is suspected later
    suspected = [line for line in diff_lines if "LEAK_SUSPECTED" in line]
    assert [line[0] for line in suspected][:2] == ["-", "+"]
    t_rec, t_new = (line.split()[1] for line in suspected[:2])
    assert t_new > t_rec
    # a smaller discharge coefficient: the same flow needs a larger hole (values[0], m)
    located = [line for line in diff_lines if "LEAK_LOCATED" in line]
    assert located, out
    if located[0].startswith("~"):
        # labelled with the field name, in display units
        before, after = re.search(r"hole_diameter ([\d.]+) mm -> ([\d.]+) mm", located[0]).groups()
        assert float(after) > float(before)


def test_rerun_capture_is_itself_rerunnable(ms09: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again.tm"
    assert main(["rerun", str(ms09), "--capture", str(again)]) == 0
    assert _events(again) == _events(ms09)
    assert main(["rerun", str(again)]) == 0
    assert "no difference" in capsys.readouterr().out
    assert main(["rerun", str(again), "--capture", str(again)]) == 2  # never overwrite the input
    assert "is the capture being re-run" in capsys.readouterr().err


def test_other_mode_differs(ms09: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rerun", str(ms09), "--mode", "passive"]) == 1
    out = capsys.readouterr().out
    assert "mode passive" in out
    assert re.search(r"^- .*SEGMENT_SEALED .*recorded only$", out, re.M)


def test_damaged_capture_is_reported(ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Damage one housekeeping packet: the samples and events are intact, so the re-run still
    # agrees, but the damage is reported and the exit status says so.
    data = bytearray(ms09.read_bytes())
    hk = [p for p in iter_capture(bytes(data)) if p.packet.name == "housekeeping"][100]
    data[hk.offset + 30] ^= 0x10
    bad = tmp_path / "damaged.tm"
    bad.write_bytes(bytes(data))
    assert main(["rerun", str(bad)]) == 3
    captured = capsys.readouterr()
    assert "no difference" in captured.out
    assert f"offset {hk.offset}" in captured.err and "damaged capture" in captured.err


def test_capture_without_samples_is_bad_input(ms09: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    no_raw = tmp_path / "noraw.tm"
    no_raw.write_bytes(b"".join(p.raw for p in iter_capture(ms09) if p.packet.name != "raw_samples"))
    assert main(["rerun", str(no_raw)]) == 2
    assert "no raw-sample packets" in capsys.readouterr().err
    assert main(["rerun", str(tmp_path / "missing.tm")]) == 2
    assert main(["rerun", str(ms09), "--fdir", str(tmp_path / "nope.toml")]) == 2


def test_bad_parameter_table_names_the_key(ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "bad.toml"
    params.write_text("[leak]\nfalse_alarm_prob = 7.0\n")
    assert main(["rerun", str(ms09), "--fdir", str(params)]) == 2
    err = capsys.readouterr().err
    assert "false_alarm_prob" in err and err.count("\n") == 1


def _e(t: float, name: str = "LEAK_CONFIRMED", subject: str = "zvezda", v: float = 1.0) -> EventRecord:
    return EventRecord(t, name, subject, (v, 2.0, 3.0))


@pytest.mark.parametrize("recorded, rerun, kinds", [
    ([_e(10.0)], [_e(10.0)], []),
    ([_e(10.0)], [_e(10.0004)], []),  # within the CUC tolerance
    ([_e(10.0)], [_e(10.1)], ["recorded only", "rerun only"]),
    ([_e(10.0)], [_e(10.0, v=1.5)], ["changed"]),
    ([_e(10.0)], [_e(10.0, subject="zarya")], ["recorded only", "rerun only"]),
    ([_e(10.0), _e(20.0)], [_e(20.0)], ["recorded only"]),
    ([], [_e(5.0), _e(6.0)], ["rerun only", "rerun only"]),
    ([_e(1.0, "CYCLE_OVERRUN", "executive")], [], []),  # host events are not compared
])
def test_diff_rule(recorded: list, rerun: list, kinds: list) -> None:
    diffs, _, _, _ = diff_events(recorded, rerun)
    assert [d.kind for d in diffs] == kinds


def test_diff_accepts_runner_events_and_sorts_by_time() -> None:
    from hullwatch.tools.closed_loop.runner import RunEvent

    rerun = [RunEvent(30.0, "LEAK_LOCATED", "soyuz-om", (0.002, 9000.0, 0.0003), "HIGH", 0.0)]
    diffs, n_rec, n_new, _ = diff_events([_e(50.0), _e(5.0, "LEAK_SUSPECTED")], rerun)
    assert (n_rec, n_new) == (2, 1)
    assert [d.t for d in diffs] == [5.0, 30.0, 50.0]
    assert diff_events([_e(1.0, "CYCLE_OVERRUN", "executive")], [], compare_all=True)[0][0].kind == "recorded only"
