"""The HIL test API (hullwatch.tools.board.hil_flight, hil_history, hil_check) on the in-process board
emulator and on sim://: deadlines in exact mission time, waits that fail instead of hanging,
exact event times, the history by named channel, and the board-versus-scenario check."""

from __future__ import annotations

import time

import pytest

from hullwatch.firmware.telemetry import APID_EVENT, APID_HOUSEKEEPING, APID_RAW, iter_capture
from hullwatch.firmware.types import ModuleStatus
from hullwatch.hal.interfaces import SampleStatus
from hullwatch.sim.device import build_layout
from hullwatch.sim.scenario import load_scenario
from hullwatch.tools import cli
from hullwatch.tools.board.hil_check import BoardMismatch, check_board, layout_differences
from hullwatch.tools.board.hil_device import open_hil_device
from hullwatch.tools.board.pytest_plugin import FlightUnderTest, HilTimeout, WallClockTimeout


@pytest.fixture
def on_sim(tmp_path):
    from hullwatch.sim.device import open_url

    with open_url("sim://soyuz-ms09") as device:
        f = FlightUnderTest(device, capture=tmp_path / "sim.tm")
        yield f
        f.close()


@pytest.fixture
def on_board(tmp_path):
    with open_hil_device("emuboard://api", scenario="soyuz-ms09") as device:
        f = FlightUnderTest(device, capture=tmp_path / "hil.tm")
        yield f
        f.close()


def test_deadlines_are_exact_mission_times(on_sim):
    on_sim.run_for(2)
    assert on_sim.now == 2.0
    on_sim.run_for(0.05)
    assert on_sim.now == 2.05
    on_sim.run_for(0.05)
    assert on_sim.now == 2.1
    with pytest.raises(HilTimeout) as info:
        on_sim.await_event("LEAK_CONFIRMED", within_s=97.9)  # the leak starts at 300 s
    assert on_sim.now == 100.0 and info.value.t == 100.0
    assert "no LEAK_CONFIRMED within 97.9 s of mission time (from t=2.1 to t=100)" in str(info.value)
    assert on_sim.cycles == 1000  # cycles 0.0 .. 99.9, none twice, none skipped


def test_await_on_the_board_reaches_its_deadline_exactly(on_board):
    with pytest.raises(HilTimeout):
        on_board.await_event("LEAK_LOCATED", within_s=60)
    assert on_board.now == 60.0
    assert on_board.device.plant.truth().t == 60.0


def test_await_event_returns_at_the_cycle_of_the_event_and_only_matches_later_ones(on_sim):
    confirmed = on_sim.await_event("LEAK_CONFIRMED", within_s=900)
    assert on_sim.now == confirmed.t  # the loop stopped at the end of that cycle
    assert confirmed.t == round(confirmed.t, 1)  # on the 0.1 s grid, exactly
    suspected = on_sim.assert_event("LEAK_SUSPECTED")
    assert suspected.t <= confirmed.t
    # Already seen: await_event waits for a new one (and there is none), unless told since when.
    with pytest.raises(HilTimeout):
        on_sim.await_event("LEAK_SUSPECTED", within_s=1)
    assert on_sim.await_event("LEAK_SUSPECTED", within_s=0, since=0.0) == suspected
    assert on_sim.await_event("LEAK_CONFIRMED", within_s=0, since=suspected) == confirmed
    with pytest.raises(ValueError, match="did you mean LEAK_LOCATED"):
        on_sim.await_event("LEAK_LOCATD", within_s=1)


def test_event_times_and_sequence_counts_are_those_of_the_packets(on_sim):
    on_sim.await_event("SEGMENT_SEALED", within_s=900)
    on_sim.close()
    epoch = on_sim.device.epoch_utc
    in_capture = [p.packet for p in iter_capture(on_sim.capture_path) if p.packet.apid == APID_EVENT]
    assert len(in_capture) == len(on_sim.events)
    for seen, packet in zip(on_sim.events, in_capture):
        assert seen.seq == packet.seq and seen.apid == packet.apid
        assert seen.name == packet.data.event_id.name
        assert packet.time_utc - epoch == pytest.approx(seen.t, abs=2e-5)  # CUC: 1/65536 s
    kept = on_sim.tm.packets(apid=APID_EVENT)
    assert [p.seq for p in kept] == [e.seq for e in on_sim.events]
    assert all(p.t == e.t for p, e in zip(kept, on_sim.events))


def test_named_channels_and_module_status(on_board):
    on_board.run_for(3)
    p1 = on_board.tm["soyuz-om.p1"]
    assert len(p1) == 30 and p1.times[:3] == [0.0, 0.1, 0.2]
    assert [s.seq for s in p1] == list(range(30))
    assert p1.latest.apid == APID_RAW and p1.latest.status == SampleStatus.OK
    assert p1.latest.value == pytest.approx(on_board.device.plant.truth().pressure_pa["soyuz-om"], abs=200)
    status = on_board.tm["soyuz-om.status"]
    assert status.times == [0.0, 1.0, 2.0] and status.latest.apid == APID_HOUSEKEEPING
    assert on_board.module_status("soyuz-om") == ModuleStatus.NOMINAL
    assert on_board.tm["dm-om.fb"].latest.value == 1.0
    assert on_board.tm["link_up"].latest.value is True
    with pytest.raises(KeyError, match="did you mean .*soyuz-om.p1"):
        on_board.tm["soyuz-om.p7"]


def test_assertions(on_sim):
    on_sim.assert_no_event(["LEAK_SUSPECTED", "LEAK_CONFIRMED"], during_s=250)
    assert on_sim.now == 250.0
    events = on_sim.assert_event_sequence(
        ["LEAK_SUSPECTED", "LEAK_CONFIRMED", "ISOLATION_STARTED", ("LEAK_LOCATED", "soyuz-om"),
         ("SEGMENT_SEALED", "soyuz-om")], within_s=600)
    assert [e.t for e in events] == sorted(e.t for e in events)
    sealed = on_sim.assert_telemetry("soyuz-om.status", ModuleStatus.SEALED, within_s=5)
    assert sealed.t >= events[-1].t
    with pytest.raises(AssertionError, match=r"unexpected SEGMENT_SEALED\(soyuz-om\)@"):
        on_sim.assert_no_event("SEGMENT_SEALED", since=0.0)
    with pytest.raises(HilTimeout, match="latest soyuz-dm.status: NOMINAL"):
        on_sim.assert_telemetry("soyuz-dm.status", ModuleStatus.SEALED, within_s=3)
    on_sim.clear_history()
    assert on_sim.events == [] and len(on_sim.tm["soyuz-om.p1"]) == 0
    with pytest.raises(HilTimeout, match="matched none of them; no LEAK_CONFIRMED"):
        on_sim.assert_event_sequence(["LEAK_CONFIRMED"], within_s=2)


def test_a_predicate_that_raises_fails_the_test_at_once(on_sim):
    with pytest.raises(ZeroDivisionError):
        on_sim.assert_telemetry("zvezda.p1", lambda v: v / 0 > 1, within_s=100)
    assert on_sim.now < 1.0


class _Hanging:
    """A device whose read blocks for ever after ``after`` cycles (a link that stops mid-cycle)."""

    def __init__(self, device, after: int) -> None:
        self._device = device
        self._reads = 0
        self._after = after

    def __getattr__(self, name):
        return getattr(self._device, name)

    def read(self, frame) -> None:
        self._reads += 1
        if self._reads > self._after:
            time.sleep(3600)
        self._device.read(frame)


def test_a_cycle_that_blocks_is_interrupted_by_the_wall_guard():
    from hullwatch.sim.device import open_url

    with open_url("sim://soyuz-ms09") as device:
        f = FlightUnderTest(_Hanging(device, after=5), wall_timeout_s=0.5)
        start = time.monotonic()
        with pytest.raises(WallClockTimeout, match="wall-clock budget of 0.5 s"):
            f.await_event("LEAK_CONFIRMED", within_s=900)
        assert time.monotonic() - start < 0.5 + 2.0 + 1.0  # the budget, the grace, slack
        assert len(f.tm["soyuz-om.p1"]) == 5  # what was seen is kept


def test_the_wall_budget_is_per_test(on_board):
    on_board.wall_timeout_s = 0.3
    with pytest.raises(WallClockTimeout):
        on_board.run_for(36000)
    with pytest.raises(WallClockTimeout):  # nothing left for later waits either
        on_board.run_for(1)


def test_layout_differences_name_every_difference():
    soyuz = build_layout(load_scenario("soyuz-ms09"))
    assert layout_differences(soyuz, build_layout(load_scenario("valve-fault"))) == []
    prk = build_layout(load_scenario("prk-slow"))
    diffs = layout_differences(soyuz, prk)
    assert diffs[:2] == ["module prk (10 m3) is missing on the board",
                         "module usos: volume 726 m3 on the board, 716 m3 in the scenario"]
    assert "valve zvezda-prk (hatch zvezda-prk) is missing on the board" in diffs
    assert len(diffs) == 8
    reverse = layout_differences(prk, soyuz)
    assert "module prk is on the board but not in the scenario" in reverse
    with pytest.raises(BoardMismatch) as info:
        check_board(soyuz, prk, board_name="'b'", scenario_name="prk-slow")
    assert info.value.exit_code == 2 and info.value.differences == diffs


def test_run_device_refuses_a_board_for_another_station(capsys):
    code = cli.main(["run", "--device", "emuboard://", "--scenario", "prk-slow", "--until", "10", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not fit scenario 'prk-slow'" in err
    assert "module prk (10 m3) is missing on the board" in err
    assert "channel prk.p1 (pressure in prk) is missing on the board" in err
    assert "Traceback" not in err


def test_the_capture_of_a_hil_run_reruns_without_difference(on_board, capsys):
    on_board.await_event("SEGMENT_SEALED", within_s=900)
    on_board.run_for(2)
    on_board.close()
    assert cli.main(["rerun", on_board.capture_path]) == 0
    assert "no difference" in capsys.readouterr().out


def test_wait_for_sees_events_and_packets_as_they_come(on_sim):
    hk = on_sim.wait_for(lambda x: getattr(x, "name", "") == "housekeeping" and x.t >= 3.0, within_s=10)
    assert hk.t == 3.0 and on_sim.now == 3.0 and hk.data.cycle == 30
    with pytest.raises(HilTimeout, match="no thing within 2 s"):
        on_sim.wait_for(lambda x: False, within_s=2, what="no thing")


def test_send_and_assert_command_through_service_1(on_board):
    from hullwatch.firmware.telemetry import SetFdirMode, ValveCommand
    from hullwatch.firmware.types import FdirMode

    on_board.run_for(1)
    i = on_board.device.layout.valve_index("dm-om")
    done = on_board.send_and_assert_command(ValveCommand(i, False), within_s=30)
    assert [v.subtype for v in done.reports] == [1, 3, 7] and done.completed
    assert done.reports[0].t <= done.final.t == on_board.now
    assert on_board.device.plant.truth().valve_position["dm-om"] < 0.1
    bad = on_board.send_and_assert_command(ValveCommand(99, False), error="BAD_ARGUMENT", stage="acceptance")
    assert not bad.receipt and [v.subtype for v in bad.reports] == [2]
    on_board.send_and_assert_command(SetFdirMode(FdirMode.PASSIVE))
    with pytest.raises(AssertionError, match="expected failure BAD_ARGUMENT"):
        on_board.send_and_assert_command(ValveCommand(i, True), within_s=30, error="BAD_ARGUMENT")
