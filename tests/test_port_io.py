"""hal.port_io: bytes through a real pseudo-terminal opened by pyserial, by file descriptor."""

from __future__ import annotations

import os
import threading
import time

import pytest
import serial

from hullwatch.hal import port_io
from hullwatch.hal.board_link import BoardLink, PortFailure
from hullwatch.hal.ports import open_port
from hullwatch.sim.board_serve import make_pty


@pytest.fixture
def pty_port():
    """(master fd, pyserial port on the slave, as BoardLink.open opens it)."""
    master, slave, path = make_pty()
    port = open_port(path, timeout=0.002)
    yield master, port
    port.close()
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_posix_port_is_moved_by_its_descriptor(pty_port) -> None:
    _, port = pty_port
    io = port_io.port_io(port)
    assert isinstance(io, port_io.FdPortIO)
    assert io.fd == port.fd and io.poll_s == 0.002 and io.write_timeout_s == port.write_timeout


def test_other_ports_go_through_pyserial(pty_port) -> None:
    _, port = pty_port

    class Wrapper:  # a byte counter, as bench/flash.py puts in front of the port
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

    assert isinstance(port_io.port_io(Wrapper(port)), port_io.SerialApiIO)
    emu = serial.serial_for_url("emuboard://", timeout=0.002)
    try:
        assert isinstance(port_io.port_io(emu), port_io.SerialApiIO)
    finally:
        emu.close()


def test_read_some_takes_everything_waiting_in_one_call(pty_port) -> None:
    master, port = pty_port
    io = port_io.port_io(port)
    os.write(master, bytes(range(1, 256)) * 2)
    time.sleep(0.05)
    data = io.read_some()
    assert data == bytes(range(1, 256)) * 2


def test_read_some_waits_the_port_timeout_then_returns_nothing(pty_port) -> None:
    _, port = pty_port
    io = port_io.port_io(port)
    t0 = time.perf_counter()
    assert io.read_some() == b""
    assert time.perf_counter() - t0 >= 0.0015


def test_write_sends_every_byte(pty_port) -> None:
    master, port = pty_port
    io = port_io.port_io(port)
    io.write(b"\x01\x02hello\x00")
    time.sleep(0.05)
    assert os.read(master, 100) == b"\x01\x02hello\x00"


def test_a_full_line_times_out_as_pyserial_does(pty_port) -> None:
    _, port = pty_port
    io = port_io.port_io(port)
    io.write_timeout_s = 0.2
    t0 = time.perf_counter()
    with pytest.raises(serial.SerialTimeoutException):
        for _ in range(10_000):  # nobody reads the master: the pty's buffer fills
            io.write(b"x" * 4096)
    assert 0.2 <= time.perf_counter() - t0 < 5.0


def test_a_vanished_device_is_a_port_failure_on_the_link() -> None:
    """The far side closes (a USB board unplugged; here the pty master): the link raises
    PortFailure, as it does through pyserial."""
    master, slave, path = make_pty()
    link = BoardLink.open(path)
    try:
        assert isinstance(link._io, port_io.FdPortIO)
        os.close(master)
        os.close(slave)
        with pytest.raises(PortFailure):
            for _ in range(100):
                link._read_some()
    finally:
        link.close()
    with pytest.raises(PortFailure, match="closed"):
        link._read_some()


def test_replacing_the_port_replaces_the_way_bytes_move(pty_port) -> None:
    _, port = pty_port
    link = BoardLink(port, url="pty")
    assert isinstance(link._io, port_io.FdPortIO)
    emu = serial.serial_for_url("emuboard://", timeout=0.002)
    link.port = emu
    assert isinstance(link._io, port_io.SerialApiIO)
    link.close()
    assert link._io is None and link.port is None


class _CountingSelect:
    """select.select that counts the zero-timeout calls (the polling turns of read_some)."""

    def __init__(self) -> None:
        self.polls = 0
        self._select = port_io.select.select

    def __call__(self, r, w, x, timeout=None):
        if timeout == 0:
            self.polls += 1
        return self._select(r, w, x, timeout)


def test_a_lone_thread_polls_before_sleeping_and_a_reply_ends_the_poll(pty_port, monkeypatch) -> None:
    master, port = pty_port
    io = port_io.port_io(port)
    assert io.spin_s == min(port_io.SPIN_S, io.poll_s) > 0
    counting = _CountingSelect()
    monkeypatch.setattr(port_io.select, "select", counting)
    yields = []
    real_yield = port_io.os.sched_yield
    monkeypatch.setattr(port_io.os, "sched_yield", lambda: (yields.append(1), real_yield()))
    # An earlier test of the session may have left a daemon thread running: this process is
    # taken as single-threaded (the next test proves the other branch with a real thread).
    monkeypatch.setattr(port_io.threading, "active_count", lambda: 1)
    t0 = time.perf_counter()
    assert io.read_some() == b""  # nothing comes: polled for spin_s, then slept the rest
    assert counting.polls > 0 and time.perf_counter() - t0 >= 0.0015
    # Every turn that found nothing offered the core away (all but, at most, the one that ran
    # out of time): a poll never holds a core another process may need.
    assert counting.polls - 1 <= len(yields) <= counting.polls
    os.write(master, b"\x05reply\x00")
    polls, yielded = counting.polls, len(yields)
    assert io.read_some() == b"\x05reply\x00"
    assert counting.polls == polls + 1  # ready on the first turn: no more polling than that
    assert len(yields) == yielded


def test_with_another_thread_in_the_process_a_read_never_polls(pty_port, monkeypatch) -> None:
    """Polling holds the GIL: an in-process board thread would be starved of it."""
    master, port = pty_port
    io = port_io.port_io(port)
    counting = _CountingSelect()
    monkeypatch.setattr(port_io.select, "select", counting)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert io.read_some() == b""
        os.write(master, b"\x05reply\x00")
        assert io.read_some() == b"\x05reply\x00"
    finally:
        stop.set()
        other.join()
    assert counting.polls == 0


def test_no_polling_when_asked_for_none(pty_port, monkeypatch) -> None:
    _, port = pty_port
    io = port_io.FdPortIO(port, spin_s=0.0)
    counting = _CountingSelect()
    monkeypatch.setattr(port_io.select, "select", counting)
    assert io.read_some() == b"" and counting.polls == 0
