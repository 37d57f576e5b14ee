"""hullwatch replay: packets re-emitted byte for byte, timed by their CUC stamps."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from hullwatch.firmware.telemetry import CaptureWriter
from hullwatch.tools.ground import iter_capture
from hullwatch.firmware.telemetry.packets import (
    Event,
    EventId,
    Housekeeping,
    ModuleHk,
    Packet,
    PacketType,
    SetFdirMode,
    Severity,
)
from hullwatch.firmware.types import FdirMode
from hullwatch.hal.clock import VirtualClock
from hullwatch.tools.cli import main
from hullwatch.tools.errors import InputError
from hullwatch.tools.captures.replay import ReplayStats, Schedule, replay_capture, replay_records

EPOCH = 1535572800.0


def _hk(t: float, seq: int) -> Packet:
    hk = Housekeeping(2, 0, seq, 30, 50, 0, True, 0, 0, [ModuleHk(101300.0, 295.0, 250.0, 0.0, 0)], [])
    return Packet(101, seq, PacketType.TM, 3, 25, EPOCH + t, seq, 0, hk)


def make_capture(path: Path, times: list[float]) -> list[bytes]:
    """A capture with one housekeeping packet per time in ``times`` (mission s), plus an event
    and a telecommand (no time stamp) in the middle; returns the packets' bytes in order."""
    with CaptureWriter(path) as w:
        for i, t in enumerate(times):
            w.write(_hk(t, i))
            if i == 1:
                w.write(Packet(103, 0, PacketType.TM, 5, 4, EPOCH + t, 0, 0,
                               Event(EventId.LEAK_CONFIRMED, "zvezda", (1e-4, 8.0, 75.0), Severity.HIGH)))
                w.write(Packet(100, 0, PacketType.TC, 8, 1, data=SetFdirMode(FdirMode.PASSIVE)))
    return [p.raw for p in iter_capture(path)]


class _Recorder:
    """A sink that notes the replay clock's time at each packet."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.url = "test://"
        self.sent: list[tuple[float, bytes]] = []

    def send(self, packet: bytes) -> None:
        self.sent.append((self.clock.now(), packet))

    def close(self) -> None:
        pass


def test_packets_are_due_at_their_recorded_times(tmp_path: Path) -> None:
    cap = tmp_path / "c.tm"
    raws = make_capture(cap, [0.0, 0.5, 1.25, 10.0, 10.1])
    clock = VirtualClock(100.0)
    sink = _Recorder(clock)
    stats = replay_capture(cap, sink, clock=clock)
    assert [p for _, p in sink.sent] == raws
    # the event shares its housekeeping packet's time; the telecommand has none: sent with it
    assert [round(t - 100.0, 4) for t, _ in sink.sent] == [0.0, 0.5, 0.5, 0.5, 1.25, 10.0, 10.1]
    assert stats.packets == 7 and stats.bytes == cap.stat().st_size
    assert stats.mission_span_s == pytest.approx(10.1, abs=1e-4)


def test_long_gaps_are_shortened(tmp_path: Path) -> None:
    cap = tmp_path / "c.tm"
    make_capture(cap, [0.0, 1.0, 3601.0, 3602.0])
    clock = VirtualClock()
    sink = _Recorder(clock)
    stats = replay_capture(cap, sink, clock=clock, skip_gaps=5.0)
    times = [round(t, 4) for t, _ in sink.sent]
    assert times == [0.0, 1.0, 1.0, 1.0, 6.0, 7.0]
    assert stats.gaps_skipped == 1 and stats.skipped_s == pytest.approx(3595.0, abs=1e-3)


def test_time_going_backwards_is_no_gap() -> None:
    stats = ReplayStats()
    s = Schedule(None, stats)
    assert [s.advance(t) for t in (10.0, 12.0, 5.0, 6.0, None, 7.5)] == [0.0, 2.0, 2.0, 3.0, 3.0, 4.5]


def test_loop_replays_again_until_stopped(tmp_path: Path) -> None:
    cap = tmp_path / "c.tm"
    raws = make_capture(cap, [0.0, 1.0, 2.0])
    clock = VirtualClock()
    sink = _Recorder(clock)
    stats = replay_capture(cap, sink, clock=clock, loop=True, should_stop=lambda: len(sink.sent) >= 3 * len(raws))
    assert [p for _, p in sink.sent] == raws * 3
    assert stats.loops == 3
    assert [round(t, 3) for t, _ in sink.sent[len(raws) - 1:len(raws) + 1]] == [2.0, 2.0]  # loops back to back


def test_progress_reaches_the_file_size(tmp_path: Path) -> None:
    cap = tmp_path / "c.tm"
    make_capture(cap, [float(i) for i in range(600)])
    seen: list[tuple[int, int]] = []
    replay_capture(cap, _Recorder(VirtualClock()), speed=None, progress=lambda d, t: seen.append((d, t)))
    size = cap.stat().st_size
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 3


def test_bad_speed_is_refused() -> None:
    with pytest.raises(InputError, match="speed"):
        replay_records(lambda: [], _Recorder(VirtualClock()), speed=0.0)
    with pytest.raises(InputError, match="skip_gaps"):
        replay_records(lambda: [], _Recorder(VirtualClock()), skip_gaps=-1.0)


def _udp_listener() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.settimeout(5.0)
    return sock, sock.getsockname()[1]


def test_cli_udp_fast_sends_every_packet_byte_for_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "c.tm"
    raws = make_capture(cap, [float(i) for i in range(200)])
    sock, port = _udp_listener()
    with sock:
        assert main(["replay", str(cap), "--to", f"udp://127.0.0.1:{port}", "--fast"]) == 0
        got = [sock.recv(70000) for _ in raws]
    assert got == raws
    assert f"replayed {len(raws)} packets ({cap.stat().st_size} bytes)" in capsys.readouterr().out


def test_cli_paces_by_recorded_time(tmp_path: Path) -> None:
    cap = tmp_path / "c.tm"
    raws = make_capture(cap, [0.0, 1.0, 2.0, 3.0])  # 3 s of recorded time
    sock, port = _udp_listener()
    with sock:
        started = time.perf_counter()
        assert main(["replay", str(cap), "--to", f"udp://127.0.0.1:{port}", "--speed", "10"]) == 0
        elapsed = time.perf_counter() - started
        got = [sock.recv(70000) for _ in raws]
    assert got == raws
    assert elapsed >= 0.3 - 0.01  # never early: 3 s recorded at 10x


def test_cli_serial_url_gets_the_capture_back_to_back(tmp_path: Path) -> None:
    """A pyserial ``socket://`` URL: the bytes arriving are the capture file, exactly."""
    cap = tmp_path / "c.tm"
    make_capture(cap, [float(i) for i in range(50)])
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = bytearray()

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        assert main(["replay", str(cap), "--to", f"socket://127.0.0.1:{port}", "--fast"]) == 0
    finally:
        thread.join(10)
        server.close()
    assert bytes(received) == cap.read_bytes()


def test_cli_damaged_capture_sends_the_rest_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "c.tm"
    raws = make_capture(cap, [float(i) for i in range(20)])
    data = cap.read_bytes()
    cut = sum(len(r) for r in raws[:5])  # between two packets, well inside the file
    garbage = b"\x01garbage\xff" * 3
    (tmp_path / "bad.tm").write_bytes(data[:cut] + garbage + data[cut:])
    sock, port = _udp_listener()
    with sock:
        code = main(["replay", str(tmp_path / "bad.tm"), "--to", f"udp://127.0.0.1:{port}", "--fast"])
        got = [sock.recv(70000) for _ in raws]
    assert code == 3
    assert got == raws
    err = capsys.readouterr().err
    assert f"skipped {len(garbage)} bytes at offset {cut}" in err


@pytest.mark.parametrize("argv, words", [
    (["--to", "udp://127.0.0.1"], "expected udp://HOST:PORT"),
    (["--to", "/dev/no-such-port-hullwatch"], "cannot open port"),
])
def test_cli_bad_destination(tmp_path: Path, argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "c.tm"
    make_capture(cap, [0.0, 1.0])
    assert main(["replay", str(cap), *argv]) in (2, 4)
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_cli_missing_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "none.tm"), "--to", "udp://127.0.0.1:9"]) == 2
    assert "no such capture file" in capsys.readouterr().err
