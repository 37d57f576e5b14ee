"""docs/hil.md is exact: every number in its prose is checked here against the code, its example
test file and link-fault snippet run as written, and its sample output is what the run prints."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hullwatch.firmware.fdir.params import default_params
from hullwatch.hal import serial_device, wire
from hullwatch.hal.config_image import COUNTS_MAX
from hullwatch.sim.board_flash import DEFAULT_BOARD_ID
from hullwatch.sim.device import build_layout, open_url
from hullwatch.sim.scenario import load_scenario
from hullwatch.tools import cli
from hullwatch.tools.board import hil_flight, hil_history, hil_report
from hullwatch.tools.board.hil_board import BoardControlError
from hullwatch.tools.board.hil_check import BoardMismatch, layout_differences

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "hil.md").read_text()
#: The doc with its line breaks and indentation folded: phrases survive rewrapping.
FLAT = " ".join(DOC.split())


def prose(text: str) -> str:
    """The doc without its fenced code blocks (those are run, below)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def soyuz():
    return build_layout(load_scenario("soyuz-ms09"))


def test_cycle_channels_and_valves():
    assert default_params().executive.period_s == 0.1
    assert "Each 0.1 s cycle" in FLAT
    layout = soyuz()
    assert len(layout.pressure) + len(layout.temperature) + len(layout.flow) == 31
    assert len(layout.valves) == 6
    assert "sensor readings (31 for soyuz-ms09) and its valve position-sensor readings (6)" in FLAT
    assert COUNTS_MAX == (1 << 24) - 1 and "24-bit quantisation" in FLAT
    assert (wire.PROTOCOL_MAJOR, wire.VALVE_STIMULUS_MINOR) == (1, 1)
    assert "protocol 1.1" in FLAT and "a 1.0 board" in FLAT
    assert DEFAULT_BOARD_ID == "hwb-emu-0001"


def test_board_mismatch_figures():
    prk = load_scenario("prk-slow")
    assert len(prk.modules) == 7 and "the `prk-slow` scenario (7 modules)" in FLAT
    diffs = layout_differences(soyuz(), build_layout(prk))
    assert len(diffs) == 8 and "(8 differences)" in FLAT
    for d in diffs[:3] + diffs[-1:]:
        assert d.split(" (")[0] in FLAT
    assert "module prk (10 m3) is missing" in diffs[0] and "726 m3 on the board, 716 m3" in diffs[1]
    assert BoardMismatch("", []).exit_code == 2 and "with exit status 2" in FLAT
    assert BoardControlError("").exit_code == 4 and "(`BoardControlError`, exit status 4)" in FLAT


def test_deadlines_as_documented():
    assert "`flight.run_for(2)` from `t = 0` runs the cycles at 0.0, 0.1, ... 1.9" in FLAT
    with open_url("sim://nominal-24h") as device:
        f = hil_flight.FlightUnderTest(device)
        f.run_for(2)
        assert f.now == 2.0 and f.cycles == 20
        with pytest.raises(hil_flight.HilTimeout):
            f.await_event("LEAK_CONFIRMED", within_s=598)
        assert f.now == 600.0
    assert "`within_s=600` either returns" in FLAT and "(600.0 from t = 0)" in FLAT
    events_shown = hil_history.TelemetryHistory.summary.__defaults__[0]
    assert events_shown == 12 and "(the last 12, with their times)" in FLAT


def test_guard_history_and_report_figures():
    assert hil_report.DEFAULT_WALL_TIMEOUT_S == 300.0 and "at most 300 s of wall time" in FLAT
    assert hil_flight.ALARM_GRACE_S == 2.0 and "`SIGALRM` 2 s after the budget" in FLAT
    assert hil_history.RAW_HISTORY_PACKETS == 36000
    assert hil_history.RAW_HISTORY_PACKETS * default_params().executive.period_s == 3600.0
    assert "the last 36000 (an hour of mission time)" in FLAT
    assert hil_report.REPORT_VERSION == 1 and '{"version": 1,' in FLAT
    fields = set(hil_report.HilRecord("x").as_dict())
    listed = re.search(r'"tests": \[\{(.*?)\}', DOC, re.S).group(1)
    assert {f.strip().strip('"') for f in listed.replace("\n", " ").split(",")} == fields
    assert default_params().executive.housekeeping_period_s == 1.0


def test_command_figures():
    import inspect

    from hullwatch.tools.board import hil_commands

    assert hil_commands.TERMINAL_SUBTYPES == {2, 4, 7, 8}
    assert "final service 1 report (1/2, 1/4, 1/7 or 1/8)" in FLAT
    assert inspect.signature(hil_flight.FlightUnderTest.send_and_assert_command).parameters["within_s"].default == 10.0
    assert "`flight.send_and_assert_command(tc, within_s=10," in FLAT


def test_link_figures():
    assert serial_device.LINK_LOST_AFTER == 3 and "after 3 failed cycles" in FLAT
    assert serial_device.RECONNECT_INTERVAL_S == 0.5 and "retries every 0.5 s of its clock" in FLAT


def test_slow_baud_figures():
    assert wire.PROTOCOL_MINOR == wire.HIL_STEP_MINOR == 2
    assert hil_report.board_bytes_per_cycle(31, 6) == 444
    assert hil_report.board_bytes_per_cycle(31, 6, protocol_minor=1) == 459
    rate = hil_report.estimated_cycles_per_s(115200, 31, 6)
    assert round(rate) == 26 and round(rate / 10, 1) == 2.6
    assert round(hil_report.estimated_cycles_per_s(115200, 31, 6, protocol_minor=1)) == 25
    assert round(3600 / 0.1 / rate / 60) == 23
    assert hil_report.SLOW_CYCLES_PER_S == 100.0
    text = " ".join(prose(DOC).split())
    for phrase in ("one HIL_STEP reply, 444 bytes for soyuz-ms09's 31 channels and 6 valves",
                   "a SAMPLES and a HIL_INJECT reply, 459 bytes", "115200 baud (10 bits a byte)",
                   "about 26 cycles/s (25 for the older board): 2.6x real time", "takes 23 minutes",
                   "below 100 cycles/s"):
        assert phrase in text, phrase


def test_example_suite_table():
    deadline = (ROOT / "tests" / "hil" / "test_sealing_deadline.py").read_text()
    assert "LEAK_START_S = 300.0" in deadline and "SEAL_WITHIN_S = 300.0" in deadline
    assert "starts (300 s); sealed within 5 minutes" in FLAT
    assert "unplug_until(t + 5.0" in (ROOT / "tests" / "hil" / "test_link_fault.py").read_text()
    assert "a cable pulled for 5 s" in FLAT
    assert "rel=0.35" in (ROOT / "tests" / "hil" / "test_matrix.py").read_text()
    assert "the hole estimated within 35 %" in FLAT
    for name in re.findall(r"^\| `(test_\w+\.py)`", DOC, re.M):
        assert (ROOT / "tests" / "hil" / name).exists(), name


def test_polling_figures():
    from hullwatch.hal import port_io
    from hullwatch.sim.board_serve import SERVE_SPIN_S

    assert port_io.SPIN_S == 150e-6 and SERVE_SPIN_S == 200e-6
    assert cli.main(["board", "--pty", "--spin-us", "1000001"]) == 2
    for phrase in ("for up to 150 us (`hal.port_io.SPIN_S`)", "for 200 us after each reply (`--spin-us`)",
                   "`--spin-us 200`", "the default, 200,", "0 .. 1000000", "costs the host 150 us",
                   "takes 15-30 us to run again"):
        assert phrase in FLAT, phrase
    # the wake-up figure is the one docs/architecture.md measured
    assert "takes 15-30 us to run again" in (ROOT / "docs" / "architecture.md").read_text()


def test_link_bridge_figure():
    from hullwatch.firmware.fdir.params import default_params

    assert default_params().leak.link_bridge_s == 10.0
    assert "An outage of at most 10 s of mission time (`leak.link_bridge_s`)" in FLAT


#: Every number in the doc's prose and what checks it (above, or the named test).
CHECKED = {
    "0.1": "cycle period", "31": "channels", "6": "valves", "24": "ADC bits",
    "1.1": "protocol", "1.0": "protocol; 1.0 board", "1": "1 s housekeeping", "2": "exit status 2; 2 s grace",
    "8": "1/8", "7": "prk-slow modules; 1/7", "444": "HIL_STEP reply", "26": "cycles/s", "2.6": "x real time",
    "23": "minutes at 115200", "1.2": "protocol", "8": "differences", "10": "prk volume; link bridge", "726": "usos board", "716": "usos prk",
    "4": "exit status 4", "0.0": "first cycle", "1.9": "last cycle before 2", "2.0": "run_for(2)",
    "600": "within_s", "600.0": "deadline", "12": "events shown", "300": "wall budget; leak start",
    "36000": "raw ring", "3": "link lost after", "0.5": "reconnect", "459": "bytes per cycle",
    "115200": "baud", "25": "cycles/s (1.1)", "100": "slow warning", "5": "minutes; cable",
    "35": "matrix tolerance", "0": "t = 0",
    "150": "host poll", "200": "board poll", "1000000": "--spin-us range", "15": "wake-up",
    "30": "wake-up",
}


def test_every_number_in_the_prose_is_checked():
    text = prose(DOC)
    # Identifiers that contain digits are names, not figures.
    text = re.sub(r"[\w./:-]*(?:ms09|MS-09|0001|pts/\d|bench:\d+|1e-4|seed=11)[\w./:?&=-]*", " ", text)
    numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)", text))
    assert numbers <= set(CHECKED), sorted(numbers - set(CHECKED))


def test_sample_verdict_is_what_the_run_prints(capsys):
    shown = re.search(r"^verdict: .*$", blocks(DOC, "console")[0], re.M).group(0)
    assert cli.main(["run", "--device", "emuboard://", "--scenario", "soyuz-ms09", "--quiet",
                     "--until", "900"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("verdict:")]
    assert printed == [shown]


def test_example_test_file_and_snippet_run_as_written(pytester):
    example = next(b for b in blocks(DOC, "python") if "# tests/hil/test_my_station.py" in b)
    snippet = next(b for b in blocks(DOC, "python") if "def test_cable_pulled_for_five_seconds" in b)
    ast.parse(example), ast.parse(snippet)
    pytester.makepyfile(test_my_station=example, test_snippet=snippet)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-device", "emuboard://docs",
                                           timeout=300)
    result.assert_outcomes(passed=5)
