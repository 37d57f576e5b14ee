"""The closed loop's fast paths decide exactly as the general code they shortcut, and a capture
starts with the layout report (docs/architecture.md)."""

from __future__ import annotations

import pytest

from hullwatch import hal
from hullwatch.firmware.fdir.core import Fdir
from hullwatch.firmware.fdir.sensors import SensorStage
from hullwatch.firmware.fdir.valves import ValveMonitor
from hullwatch.firmware.flight import FlightSoftware
from hullwatch.firmware.telemetry import ListSink, decode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.tools.closed_loop.runner import run_scenario


def _capture(url: str, until: float) -> list[bytes]:
    sink = ListSink()
    run_scenario(url, until=until, sinks=[sink])
    return sink.packets_list


def test_a_capture_starts_with_the_layout_report_then_repeats_it_every_minute(tmp_path):
    cap = tmp_path / "ms09.tm"
    run_scenario("sim://soyuz-ms09", until=130.0, capture=cap)
    from hullwatch.tools.ground import iter_capture

    packets = [p.packet for p in iter_capture(cap)]
    assert isinstance(packets[0].data, P.LayoutReport)
    assert isinstance(packets[1].data, P.RawSamples) and packets[1].data.cycle == 0
    layouts = [p.time_utc - packets[0].time_utc for p in packets if isinstance(p.data, P.LayoutReport)]
    assert layouts == [0.0, 60.0, 120.0]


def test_flight_software_run_in_pieces_sends_one_layout_report_first():
    dev = hal.open("sim://soyuz-ms09")
    sink = ListSink()
    fs = FlightSoftware(dev, sinks=[sink])
    for until in (0.35, 0.8, 3.0):
        fs.run(until)
    kinds = [type(decode(b).data).__name__ for b in sink.packets_list]
    assert kinds[0] == "LayoutReport" and kinds.count("LayoutReport") == 1
    assert kinds.count("RawSamples") == 30


def _without(monkeypatch, what: str) -> None:
    """Turn one fast path off, so the general code runs every cycle."""
    if what == "valves":
        real = ValveMonitor.step

        def step(self, frame, t):
            self._quiet = False
            real(self, frame, t)

        monkeypatch.setattr(ValveMonitor, "step", step)
    elif what == "voting":
        real_set = SensorStage.set_params

        def set_params(self, params):
            real_set(self, params)
            self._p_uniform = False
            self._t_uniform = False

        monkeypatch.setattr(SensorStage, "set_params", set_params)


@pytest.mark.parametrize("what, url, until", [
    ("valves", "sim://valve-fault", 900.0),
    ("voting", "sim://sensor-faults", 900.0),
    ("voting", "sim://rapid-depress", 300.0),
])
def test_fast_paths_give_the_same_telemetry_as_the_general_code(monkeypatch, what, url, until):
    fast = _capture(url, until)
    _without(monkeypatch, what)
    assert _capture(url, until) == fast


@pytest.mark.parametrize("until", [200.0, 405.0, 600.0])  # before, during and after isolation
def test_module_report_matches_the_per_module_queries(until):
    dev = hal.open("sim://soyuz-ms09")
    fs = FlightSoftware(dev)
    fs.run(until)
    f: Fdir = fs.fdir
    out = [0.0] * (5 * f.n_modules)
    f.module_report(out)
    expected = []
    for m in range(f.n_modules):
        expected += [f.sensors.pressure[m], f.thermo.temperature[m], f.inventory_mol(m),
                     f.segment_rate(f.slot_of_module(m)), f.module_status(m)]
    assert out == expected
    assert any(out[j + 3] != 0.0 for j in range(0, len(out), 5))  # the rates are exercised


def _valve_run(commands, fb_of, seconds: float, general: bool) -> list[tuple]:
    """Step a ValveMonitor on hand-made frames: ``commands`` maps cycle -> (valve, open),
    ``fb_of(cycle, cmd_list)`` gives the feedback list. Returns its events."""
    from hullwatch.firmware.fdir.events import EventQueue
    from hullwatch.firmware.fdir.params import default_params

    layout = hal.open("sim://soyuz-ms09").layout
    events = EventQueue(64)
    mon = ValveMonitor(layout, default_params(), events)
    frame = layout.new_frame()
    n = len(layout.valves)
    cmd = [1] * (n - 1) + [0]
    frame.valve_status[:] = [0] * n
    out = []
    for k in range(int(seconds * 10)):
        t = k * 0.1
        if k in commands:
            i, open_ = commands[k]
            mon.commanded(i, open_, t)
            cmd[i] = 1 if open_ else 0
        frame.valve_cmd[:] = cmd  # the device reports the command at once
        frame.valve_fb[:] = fb_of(k, cmd)
        if general:
            mon._quiet = False
        mon.step(frame, t)
        while (rec := events.pop()) is not None:
            out.append(rec)
    return out


@pytest.mark.parametrize("general", [False, True])
def test_a_lone_stuck_valve_fails_with_or_without_the_quiet_fast_path(general):
    # Only hatch 2 is commanded (closed at 5 s) and its feedback never moves: nothing else
    # changes in the frames, which is exactly when the monitor takes its quiet shortcut. It
    # fails once its actuation timeout (8 s) plus the margin (1 s) have passed.
    stuck = lambda k, cmd: [1.0] * (len(cmd) - 1) + [0.0]  # noqa: E731
    events = _valve_run({50: (2, False)}, stuck, 30.0, general)
    assert [(e[3], round(e[0], 1)) for e in events] == [("rassvet-zarya", 14.1)]


def test_valve_monitor_fast_path_matches_the_general_code_on_moving_valves():
    def moving(k, cmd):  # valve 1 closes over 4 s from 10 s on, valve 4 never answers its command
        fb = [1.0] * (len(cmd) - 1) + [0.0]
        if k >= 100:
            fb[1] = max(0.0, 1.0 - (k - 100) / 40)
        return fb
    commands = {99: (1, False), 150: (4, False), 300: (1, True)}
    assert _valve_run(commands, moving, 60.0, False) == _valve_run(commands, moving, 60.0, True)
