"""The replay:// device gives back exactly what a capture recorded, frame by frame."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from hullwatch import hal
from hullwatch.firmware.telemetry import CaptureSink, TelemetryEmitter
from hullwatch.firmware.telemetry.packets import Event, EventId, Severity
from hullwatch.hal.interfaces import SampleStatus

PERIOD = 0.1


def record_sim(path: Path, cycles: int, seed: int = 3, scenario: str = "soyuz-ms09") -> list:
    """Record ``cycles`` cycles of a simulated station the way the executive does (layout report
    every 60 s, raw samples every cycle, housekeeping-free); return the frames that were sent."""
    dev = hal.open(f"sim://{scenario}?seed={seed}")
    sink = CaptureSink(path)
    em = TelemetryEmitter([sink], dev.layout, dev.epoch_utc)
    frame = dev.layout.new_frame()
    frames = []
    for k in range(cycles):
        t = k * PERIOD
        dev.clock.sleep_until(t)
        dev.read(frame)
        em.emit_layout_if_due(t)
        em.emit_raw(frame, k, t)
        if k == 5:
            em.emit_event(Event(EventId.SENSOR_FAILED, "zarya.p2", (4.0, 1.0, 0.0), Severity.MEDIUM), t)
        frames.append(copy.deepcopy(frame))
    em.close()
    dev.close()
    return frames


def test_reads_give_the_recorded_samples_bit_for_bit(tmp_path: Path) -> None:
    cap = tmp_path / "run.tm"
    frames = record_sim(cap, 700)  # > 60 s: a second layout report in the middle
    with hal.open(f"replay://{cap}") as dev:
        sim = hal.open("sim://soyuz-ms09")
        assert dev.layout == sim.layout
        assert dev.epoch_utc == sim.epoch_utc
        assert dev.info.kind == "replay"
        assert dev.clock.virtual and dev.clock.now() == 0.0
        assert dev.start_time == 0.0 and dev.end_time == 699 * PERIOD and dev.period_s == PERIOD
        frame = dev.layout.new_frame()
        for k, want in enumerate(frames):
            dev.clock.sleep_until(k * PERIOD)
            assert dev.peek_time() == k * PERIOD
            dev.read(frame)
            assert frame.t == k * PERIOD  # bit for bit the executive's deadline
            for name in ("pressure", "pressure_status", "temperature", "temperature_status", "flow",
                         "flow_status", "valve_cmd", "valve_fb", "valve_status"):
                # float64 on the wire: equality, not approx
                assert getattr(frame, name) == getattr(want, name), (k, name)
            ok = [i for i, s in enumerate(want.pressure_status) if s == SampleStatus.OK]
            assert [frame.pressure_time[i] for i in ok] == [want.pressure_time[i] for i in ok]
        assert dev.exhausted and dev.last_time == 699 * PERIOD  # the last sample delivered
        dev.read(frame)
        assert dev.exhausted
        assert set(frame.pressure_status) == {int(SampleStatus.NO_DATA)}
        assert dev.health()["samples"] == len(frames)


def test_valve_commands_are_recorded_but_change_nothing(tmp_path: Path) -> None:
    cap = tmp_path / "run.tm"
    frames = record_sim(cap, 30)
    dev = hal.open(f"replay://{cap}")
    frame = dev.layout.new_frame()
    for k in range(30):
        dev.clock.sleep_until(k * PERIOD)
        dev.command_valve(0, False)
        dev.read(frame)
        assert frame.valve_fb == frames[k].valve_fb
        assert frame.valve_cmd == frames[k].valve_cmd
    assert len(dev.commands) == 30 and dev.commands[0] == (0.0, 0, False)
    assert dev.health()["commands"] == 30
    dev.close()
    dev.close()  # idempotent


def test_damaged_capture_skips_and_counts(tmp_path: Path) -> None:
    cap = tmp_path / "run.tm"
    frames = record_sim(cap, 40)
    data = bytearray(cap.read_bytes())
    size = len(data) // 41  # about one packet
    data[20 * size + 30] ^= 0xFF  # a flipped bit in one raw-sample packet: its CRC fails
    cap.write_bytes(bytes(data))
    dev = hal.open(f"replay://{cap}")
    frame = dev.layout.new_frame()
    got = []
    while not dev.exhausted:  # (set by the read that delivers the last sample)
        dev.read(frame)
        got.append(frame.t)
    assert len(got) == len(frames) - 1
    assert dev.health()["skipped_ranges"] >= 1


@pytest.mark.parametrize("url, error, words", [
    ("replay://", hal.DeviceUrlError, "no capture file"),
    ("replay://x.tm?speed=2", hal.DeviceUrlError, "no query"),
    ("replay:///no/such/file.tm", hal.DeviceNotFound, "no such capture file"),
])
def test_bad_urls(url: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        hal.open(url)


def test_capture_without_layout_report_is_refused(tmp_path: Path) -> None:
    cap = tmp_path / "run.tm"
    record_sim(cap, 5)
    from hullwatch.tools.ground import iter_capture

    raw_only = b"".join(p.raw for p in iter_capture(cap) if p.packet.name == "raw_samples")
    bad = tmp_path / "nolayout.tm"
    bad.write_bytes(raw_only)
    with pytest.raises(hal.DeviceOpenError, match="no layout report"):
        hal.open(f"replay://{bad}")
    empty = tmp_path / "empty.tm"
    empty.write_bytes(b"")
    with pytest.raises(hal.DeviceOpenError, match="no layout report"):
        hal.open(f"replay://{empty}")


def test_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record_sim(tmp_path / "rel.tm", 3)
    monkeypatch.chdir(tmp_path)
    dev = hal.open("replay://rel.tm")
    assert dev.info.name == "rel.tm" and not math.isnan(dev.end_time)


def test_paced_reader_stays_in_step_across_a_gap(tmp_path: Path) -> None:
    """The executive sleeps to each deadline: a packet lost to damage becomes one STALE cycle,
    and the following samples still arrive at their own cycles."""
    cap = tmp_path / "run.tm"
    frames = record_sim(cap, 40)
    data = bytearray(cap.read_bytes())
    from hullwatch.tools.ground import iter_capture

    victim = [p for p in iter_capture(bytes(data)) if p.packet.name == "raw_samples"][20]
    data[victim.offset + 40] ^= 0x01
    cap.write_bytes(bytes(data))
    dev = hal.open(f"replay://{cap}")
    frame = dev.layout.new_frame()
    for k in range(40):
        dev.clock.sleep_until(k * PERIOD)
        dev.read(frame)
        if k == 20:
            assert set(frame.pressure_status) == {int(SampleStatus.STALE)}
            assert frame.pressure == frames[19].pressure  # the previous values, flagged stale
        else:
            assert frame.t == k * PERIOD and frame.pressure == frames[k].pressure
    assert dev.health()["gaps"] == 1 and dev.health()["skipped_ranges"] == 1


def test_paced_reader_drops_samples_it_slept_past(tmp_path: Path) -> None:
    cap = tmp_path / "run.tm"
    frames = record_sim(cap, 20)
    dev = hal.open(f"replay://{cap}")
    frame = dev.layout.new_frame()
    for k in range(0, 20, 2):  # a reader at half the recorded rate
        dev.clock.sleep_until(k * PERIOD)
        dev.read(frame)
        assert frame.t == k * PERIOD and frame.pressure == frames[k].pressure
    assert dev.health()["dropped"] == 9
