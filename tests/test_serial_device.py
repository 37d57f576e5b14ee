"""The serial board device over pyserial URLs: layout, reads, commands, link loss, hints."""

from __future__ import annotations

import errno
import socket
import threading

import pytest
import serial

from hullwatch import hal
from hullwatch.hal import wire
from hullwatch.hal.errors import (
    DeviceNotFound,
    DeviceOpenError,
    DevicePermissionError,
    LinkTimeout,
    ProtocolError,
)
from hullwatch.hal.interfaces import SampleStatus
from hullwatch.hal import serial_device
from hullwatch.sim.board_emulator import BoardEmulator, PtyBoard, open_flash
from hullwatch.sim.device import build_layout
from hullwatch.sim.scenario import load_scenario
from hullwatch.sim.urlhandler import protocol_emuboard


class StepClock(hal.Clock):
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


@pytest.fixture
def name(request):
    n = f"t-{request.node.name}"
    yield n
    protocol_emuboard.forget(n)


def test_layout_is_the_boards_configuration(name):
    with hal.open(f"emuboard://{name}") as dev:
        assert dev.layout == build_layout(load_scenario("soyuz-ms09"))
        assert dev.info.kind == "board" and dev.info.name == "hwb-emu-0001"
        assert dev.info.details["protocol"] == "1.2" and dev.info.details["generation"] == 1
        assert dev.link_up


def test_read_fills_frame_and_marks_stale(name):
    clock = StepClock()
    with hal.open(f"emuboard://{name}", clock=clock) as dev:
        frame = dev.layout.new_frame()
        dev.read(frame)
        assert frame.pressure == [101_325.0] * 18
        assert frame.temperature == [295.0] * 12
        assert set(frame.pressure_status) == {SampleStatus.OK}
        assert frame.valve_fb == [1.0] * 5 + [0.0] and frame.valve_cmd == [1] * 5 + [0]
        dev.read(frame)  # the board has not converted since: STALE
        assert set(frame.pressure_status) == {SampleStatus.STALE}
        h = dev.health()
        assert h["frames"] >= 2 and h["crc_errors"] == 0 and h["reads"] == 2


def test_command_valve_reaches_the_board(name):
    with hal.open(f"emuboard://{name}") as dev:
        dev.command_valve(1, False)
        board = protocol_emuboard.link(name).board
        assert board.valves[1].commanded == wire.ValveCommand.CLOSE
        dev.command_valve(99, True)  # ignored, counted, no exception
        assert dev.health()["failed_commands"] == 1


def test_unplug_marks_stale_link_lost_then_reconnects(name):
    clock = StepClock()
    with hal.open(f"emuboard://{name}", clock=clock) as dev:
        frame = dev.layout.new_frame()
        dev.read(frame)
        faults = protocol_emuboard.link(name).faults
        faults.unplug()
        dev.read(frame)  # the port fails: link lost at once, no exception
        assert not dev.link_up
        assert set(frame.pressure_status) == {SampleStatus.STALE}
        dev.command_valve(0, False)  # queued while down
        clock.t += serial_device.RECONNECT_INTERVAL_S
        dev.read(frame)  # reconnect attempt fails: still unplugged
        assert not dev.link_up
        faults.plug()
        clock.t += serial_device.RECONNECT_INTERVAL_S / 2
        dev.read(frame)  # not yet time to retry
        assert not dev.link_up
        clock.t += serial_device.RECONNECT_INTERVAL_S
        dev.read(frame)
        assert dev.link_up
        assert protocol_emuboard.link(name).board.valves[0].commanded == wire.ValveCommand.CLOSE
        h = dev.health()
        assert h["link_lost"] == 1 and h["reconnects"] == 1 and h["port_errors"] >= 1


def test_silent_board_times_out_then_link_lost(name, monkeypatch):
    clock = StepClock()
    with hal.open(f"emuboard://{name}", clock=clock, timeout_s=0.005) as dev:
        frame = dev.layout.new_frame()
        board = protocol_emuboard.link(name).board
        monkeypatch.setattr(board, "receive", lambda data: b"")  # the firmware hangs
        for i in range(serial_device.LINK_LOST_AFTER):
            assert dev.link_up
            dev.read(frame)
        assert not dev.link_up
        assert dev.health()["timeouts"] == serial_device.LINK_LOST_AFTER * serial_device.READ_ATTEMPTS
        monkeypatch.undo()
        clock.t += 1.0
        dev.read(frame)
        assert dev.link_up


def test_line_noise_is_counted_and_survived(name):
    with hal.open(f"emuboard://{name}?noise=2e-4&drop=2e-4&seed=3", timeout_s=0.005) as dev:
        frame = dev.layout.new_frame()
        ok = 0
        for _ in range(300):
            dev.read(frame)
            ok += frame.pressure_status[0] in (SampleStatus.OK, SampleStatus.STALE)
        h = dev.health()
        assert h["crc_errors"] + h["cobs_errors"] > 0 and h["retries"] > 0
        assert ok == 300
        assert protocol_emuboard.link(name).faults.flipped > 0


def test_garbage_burst_resynchronises(name):
    with hal.open(f"emuboard://{name}") as dev:
        frame = dev.layout.new_frame()
        protocol_emuboard.link(name).faults.burst(5000)
        dev.read(frame)
        dev.read(frame)
        assert dev.link_up and frame.pressure[0] == 101_325.0
        assert dev.health()["dropped_bytes"] >= 4000


def test_protocol_version_mismatch_is_refused(name):
    import dataclasses

    lk = protocol_emuboard._make_link({})
    protocol_emuboard._BOARDS[name] = lk
    original = lk.board._handlers[wire.MsgType.IDENTIFY]
    lk.board._handlers[wire.MsgType.IDENTIFY] = lambda m: dataclasses.replace(original(m), protocol_major=2)
    with pytest.raises(ProtocolError, match=r"protocol 2\.\d.*host speaks 1.x.*update the host"):
        hal.open(f"emuboard://{name}")


def test_unconfigured_board_is_refused_with_a_hint(name, tmp_path):
    from hullwatch.sim.board_flash import BoardFlash

    flash = BoardFlash.format(__import__("hullwatch.sim.board_emulator", fromlist=["x"]).MemoryStorage(40000))
    lk = protocol_emuboard.EmulatedLink(BoardEmulator(flash), protocol_emuboard.LineFaults())
    protocol_emuboard._BOARDS[name] = lk
    with pytest.raises(DeviceOpenError, match="no valid configuration.*hullwatch flash"):
        hal.open(f"emuboard://{name}")


def test_loop_url_has_no_board():
    with pytest.raises(LinkTimeout, match="no board answered"):
        hal.open("loop://", timeout_s=0.01)


def test_missing_port_hint():
    with pytest.raises(DeviceNotFound, match="no such serial port.*plugged in.*list_ports"):
        hal.open("/dev/ttyHULLWATCH-NONE")
    with pytest.raises(DeviceNotFound):
        hal.open("serial:///dev/ttyHULLWATCH-NONE")


def test_permission_hint(monkeypatch):
    def denied(*a, **k):
        raise serial.SerialException(errno.EACCES, "could not open port /dev/ttyACM0: [Errno 13] Permission denied: '/dev/ttyACM0'")

    monkeypatch.setattr(serial, "serial_for_url", denied)
    with pytest.raises(DevicePermissionError, match="dialout"):
        hal.open("/dev/ttyACM0")


def test_cli_reports_port_problem_with_hint(capsys):
    """What a user sees: one line with the hint and exit status 4 (device problem)."""
    from hullwatch.tools import cli

    if "board-info" not in cli.build_parser()._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        pytest.skip("board-info verb not built yet")
    code = cli.main(["board-info", "--port", "/dev/ttyHULLWATCH-NONE"])
    err = capsys.readouterr().err
    assert code == 4 and "no such serial port" in err and "hint" in err


def test_bare_path_serial_url_and_spy_over_a_pty(tmp_path):
    board = BoardEmulator(open_flash(None))
    with PtyBoard(board) as pty:
        for url in (pty.path, f"serial://{pty.path}", f"spy://{pty.path}?file={tmp_path / 'spy.txt'}"):
            with hal.open(url) as dev:
                frame = dev.layout.new_frame()
                dev.read(frame)
                assert frame.pressure[0] == 101_325.0, url
        assert "0x00" in (tmp_path / "spy.txt").read_text() or (tmp_path / "spy.txt").stat().st_size > 0


def test_socket_url():
    board = BoardEmulator(open_flash(None))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(0.05)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    return
                conn.sendall(board.receive(data))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with hal.open(f"socket://127.0.0.1:{port}") as dev:
            frame = dev.layout.new_frame()
            dev.read(frame)
            assert frame.temperature[0] == 295.0
    finally:
        stop.set()
        t.join(2)
        server.close()
