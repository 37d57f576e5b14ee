"""The HIL pytest plugin as a test engineer meets it: test files run by pytester in a subprocess
(a hang shows as pytester's own timeout, not a stuck CI job), against the in-process board
emulator (``--hil-device emuboard://NAME``)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

#: Wall seconds a pytester run may take before it counts as hung.
HANG_S = 120


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_suite=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-device", "emuboard://plug",
                                         *args, timeout=HANG_S)


def test_a_missed_event_fails_the_test_with_what_was_seen(pytester):
    result = run(pytester, """
        import pytest

        @pytest.mark.scenario("nominal-24h", seed=3)
        def test_waits_for_a_leak_that_never_comes(flight):
            flight.await_event("LEAK_CONFIRMED", within_s=60)

        def test_time_after_it(flight):
            try:
                flight.await_event("LEAK_LOCATED", within_s=30)
            except AssertionError:
                assert flight.now == 30.0
            else:
                raise RuntimeError("expected the deadline to be missed")
    """)
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "no LEAK_CONFIRMED within 60 s of mission time (from t=0 to t=60)" in out
    assert "latest housekeeping at t=59" in out
    assert "events seen:" in out


def test_a_stalled_link_fails_within_the_wall_bound(pytester):
    """A line that corrupts every byte: the loop crawls (each cycle waits for answers that never
    come). The marker's wall budget fails the test in seconds, naming the budget."""
    result = run(pytester, """
        import pytest

        @pytest.mark.hil_timeout(1.5)
        def test_stalled(flight, link_faults):
            link_faults.noise = 1.0
            flight.await_event("LEAK_CONFIRMED", within_s=3600)
    """)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "wall-clock budget of 1.5 s" in out
    assert re.search(r"in (\d+\.\d+)s", out.splitlines()[-1])


def test_the_option_sets_the_wall_budget(pytester):
    result = run(pytester, """
        def test_stalled(flight, link_faults):
            link_faults.noise = 1.0
            flight.run_for(3600)
    """, "--hil-timeout", "1")
    result.assert_outcomes(failed=1)
    assert "wall-clock budget of 1 s" in result.stdout.str()


def test_a_board_for_another_station_is_refused_naming_each_difference(pytester):
    result = run(pytester, """
        import pytest

        @pytest.mark.scenario("prk-slow")
        def test_on_prk(flight):
            flight.run_for(1)
    """)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "does not fit scenario 'prk-slow' (8 differences)" in out
    assert "module prk (10 m3) is missing on the board" in out
    assert "module usos: volume 726 m3 on the board, 716 m3 in the scenario" in out
    assert "channel prk.p1 (pressure in prk) is missing on the board" in out
    assert "valve zvezda-prk (hatch zvezda-prk) is missing on the board" in out


def test_marker_arguments_are_validated(pytester):
    result = run(pytester, """
        import pytest

        @pytest.mark.scenario("nominal-24h", sed=3)
        def test_misspelt(scenario):
            pass

        @pytest.mark.scenario("nominal-24h", seed=-1)
        def test_negative_seed(scenario):
            pass

        @pytest.mark.hil_timeout("soon")
        def test_bad_timeout(scenario):
            pass
    """)
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    assert "@pytest.mark.scenario: unknown argument(s) sed" in out
    assert "seed must be an integer >= 0, got -1" in out
    assert "hil_timeout: expected a positive number of seconds, got 'soon'" in out


def test_indirect_parametrization_and_the_seed_that_ran(pytester, tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text(_preset_toml("nominal-24h").replace('name = "nominal-24h"', 'name = "from-file"', 1))
    result = run(pytester, f"""
        import pytest
        from hullwatch.sim.scenario import preset_dict

        SOURCE = dict(preset_dict("nominal-24h"), name="from-dict", seed=21)

        @pytest.mark.parametrize("scenario", ["nominal-24h", "valve-fault", SOURCE, {str(toml)!r}],
                                 ids=["nominal", "valve", "dict", "file"], indirect=True)
        def test_param(scenario, plant):
            assert plant.scenario.name == scenario.name
            assert plant.seed == scenario.seed
            print("RAN", scenario.name, scenario.seed)

        @pytest.mark.scenario("valve-fault", seed=11)
        def test_marker_seed(scenario, plant, hil_device):
            assert scenario.seed == 11 and plant.seed == 11 and hil_device.seed == 11

        @pytest.mark.scenario(seed=5)
        @pytest.mark.parametrize("scenario", ["nominal-24h"], indirect=True)
        def test_param_and_marker_seed(scenario, plant):
            assert scenario.name == "nominal-24h" and scenario.seed == 5 and plant.seed == 5
    """, "-s")
    result.assert_outcomes(passed=6)
    ran = re.findall(r"RAN (\S+) (\d+)", result.stdout.str())
    assert [name for name, _ in ran] == ["nominal-24h", "valve-fault", "from-dict", "from-file"]
    assert ran[2] == ("from-dict", "21")


def _preset_toml(name: str) -> str:
    import contextlib
    import io

    from hullwatch.tools import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["scenarios", name, "--toml"]) == 0
    return out.getvalue()


def test_capture_named_in_the_failure_report_and_summary(pytester, tmp_path):
    report_json = tmp_path / "hil.json"
    report_xml = tmp_path / "hil.xml"
    result = run(pytester, """
        def test_fails(flight):
            flight.run_for(3)
            assert flight.module_status("soyuz-om").name == "SEALED"

        def test_passes(flight):
            flight.run_for(2)
    """, "--hil-report", str(report_json))
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    capture = re.search(r"capture: (\S+test_fails\.tm)", out).group(1)
    assert "hullwatch decode " + capture in out
    assert "hil summary" in out
    assert re.search(r"\s3\.0\s+\d+\.\d\d\s+\d+\s+failed\s+test_suite.py::test_fails", out)
    data = json.loads(report_json.read_text())
    assert data["version"] == 1
    by_name = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    assert by_name["test_fails"]["outcome"] == "failed"
    assert by_name["test_fails"]["capture"] == capture
    assert by_name["test_passes"]["mission_s"] == 2.0
    assert by_name["test_passes"]["cycles"] == 20
    assert by_name["test_passes"]["scenario"] == "soyuz-ms09" and by_name["test_passes"]["seed"] == 7
    assert by_name["test_passes"]["board_id"] == "hwb-emu-0001"

    from hullwatch.firmware.telemetry import iter_capture

    packets = list(iter_capture(capture))
    assert packets[0].packet.name == "layout" and len(packets) > 30

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-device", "emuboard://plug",
                                           "--hil-report", str(report_xml), timeout=HANG_S)
    suite = ET.parse(report_xml).getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    case = suite.find("testcase[@name='test_passes']")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["mission_s"] == "2.0" and props["cycles"] == "20"


def test_slow_baud_is_warned_and_the_relay_serves_the_emulator_process(pytester):
    """The default board (the emulator in its own process) paced at 115200 baud, with the pty
    relay in front of it for every test: the session warns with the estimate, the relay's link
    name is not the board's, and the loop runs through it."""
    pytester.makepyfile(test_suite="""
        def test_through_the_relay(flight, board):
            assert flight.device.board.url != board.url and "relay-link" in flight.device.board.url
            assert board.url.endswith("board-link") and board.emulated
            flight.run_for(2)
            assert flight.tm["link_up"].latest.value is True
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-relay", "--hil-baud", "115200",
                                           timeout=HANG_S)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "HilSpeedWarning: --hil-baud 115200: the emulated board answers at most about 26 HIL " \
           "cycles/s" in out


def test_line_faults_and_power_do_not_leak_into_the_next_test(pytester):
    result = run(pytester, """
        def test_breaks_the_line(link_faults, board):
            link_faults.noise = 0.5
            link_faults.unplug()
            board.power_off()

        def test_gets_a_clean_line(link_faults, flight):
            assert link_faults.noise == 0.0 and not link_faults.unplugged
            flight.run_for(1)
            assert flight.tm["link_up"].latest.value is True
    """)
    result.assert_outcomes(passed=2)


def test_a_board_without_hil_or_without_an_answer_is_refused_in_words(pytester):
    pytester.makepyfile(test_suite="""
        def test_on_it(flight):
            flight.run_for(1)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-device", "emuboard://nohil?hil=0",
                                           timeout=HANG_S)
    result.assert_outcomes(errors=1)
    assert "refuses HIL: its configuration has hil_allowed = false" in result.stdout.str()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-device", "/dev/hullwatch-no-such-port",
                                           timeout=HANG_S)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "--hil-device /dev/hullwatch-no-such-port:" in out and "Traceback" not in out
