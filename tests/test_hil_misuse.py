"""The HIL test API misused as a newcomer would: times that are not numbers or not finite,
malformed event sequences, an unknown valve, and a test's fixtures kept past its end. Each gets a
clear error naming what was wrong; nothing runs for ever or leaks into the next test."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HANG_S = 120


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_misuse=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hil-device", "emuboard://misuse",
                                         *args, timeout=HANG_S)


def test_bad_times_and_sequences_are_refused_at_once(pytester) -> None:
    result = run(pytester, """
        import math
        import pytest

        @pytest.mark.parametrize("value, error", [
            (float("nan"), ValueError), (math.inf, ValueError), (-1.0, ValueError), ("2", TypeError),
        ])
        def test_run_for(flight, value, error):
            with pytest.raises(error, match="run_for"):
                flight.run_for(value)
            assert flight.now == 0.0

        def test_await_within(flight):
            with pytest.raises(TypeError, match="within_s"):
                flight.await_event("LEAK_LOCATED", within_s="5")

        def test_assert_no_event_negative(flight):
            with pytest.raises(ValueError, match="during_s"):
                flight.assert_no_event("LEAK_LOCATED", during_s=-3)

        def test_sequence_items(flight):
            with pytest.raises(ValueError, match="pairs"):
                flight.assert_event_sequence([("LEAK_CONFIRMED", "x", "y")])

        def test_unknown_valve(flight):
            with pytest.raises(KeyError, match="did you mean dm-om"):
                flight.device.layout.valve_index("dm-omx")
    """)
    result.assert_outcomes(passed=8)


def test_a_finished_tests_fixtures_cannot_touch_the_next(pytester) -> None:
    result = run(pytester, """
        import pytest

        kept = {}

        def test_keeps_its_fixtures(flight, link_faults):
            with pytest.raises(ValueError, match="0..1"):
                link_faults.noise = 2.0
            with pytest.raises(ValueError, match=">= 0"):
                link_faults.burst(-5)
            flight.run_for(1)
            kept["flight"], kept["faults"] = flight, link_faults

        def test_uses_them_after(flight):
            with pytest.raises(RuntimeError, match="ended"):
                kept["faults"].noise = 0.5
            with pytest.raises(RuntimeError, match="ended"):
                kept["flight"].run_for(1)
            flight.run_for(1)

        def test_next_test_is_unharmed(flight):
            flight.run_for(5)
            flight.assert_no_event("LINK_LOST")
    """)
    result.assert_outcomes(passed=3)


def test_a_run_stopped_by_the_wall_guard_reports_its_mission_time(pytester) -> None:
    result = run(pytester, """
        import pytest
        from hullwatch.tools.board.pytest_plugin import WallClockTimeout

        @pytest.mark.hil_timeout(1)
        def test_long(flight):
            with pytest.raises(WallClockTimeout):
                flight.run_for(10 ** 6)
            assert flight.mission_s > 0 and flight.mission_s == pytest.approx(flight.now)
    """)
    result.assert_outcomes(passed=1)
