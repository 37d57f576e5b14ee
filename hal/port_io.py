"""Bytes in and out of a board's open serial port, for :class:`~hullwatch.hal.board_link.BoardLink`.

Two ways, chosen per port by :func:`port_io`:

- :class:`FdPortIO`: a POSIX serial port opened by pyserial (a USB CDC-ACM board, a UART, a
  pseudo-terminal) is read and written through its file descriptor: ``select`` then one
  ``os.read`` of everything waiting, one ``os.write``. pyserial's own calls cost three to four
  times as much per cycle (a ``Timeout`` object and an abort pipe per call, an ``in_waiting``
  ioctl before each read, a ``select`` after every write), and a HIL cycle makes one write and
  one read. pyserial still opens, configures and closes the port.
- :class:`SerialApiIO`: any other port (``emuboard://``, ``socket://``, ``loop://``, a wrapper
  such as a byte counter, Windows) goes through pyserial's ``in_waiting``/``read``/``write``.

Both give the same contract: :meth:`read_some` returns what has arrived, waiting at most the
port's read timeout (``b""`` if nothing came); :meth:`write` sends every byte or raises. Errors
are pyserial's (``SerialException``, ``SerialTimeoutException``) or ``OSError``; the link turns
them into :class:`~hullwatch.hal.board_link.PortFailure`.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, Protocol

from serial import SerialException, SerialTimeoutException

#: Most bytes one read takes from the descriptor: two frames of the largest size and change.
READ_CHUNK = 4096
#: Read wait when the port has no read timeout (None: pyserial would block), s.
DEFAULT_POLL_S = 0.05
#: How long :meth:`FdPortIO.read_some` polls the descriptor before it sleeps in ``select``, s.
#: A board on a pty (the emulator in its own process) answers a HIL_STEP in 40-60 us; polling
#: meets the reply on a running core instead of paying the wake-up of a sleeping process (about
#: 15-30 us per direction). Each turn yields the core (``sched_yield``): a poll must never hold a
#: core another runnable process needs. A slower board (USB, a UART) costs this much CPU per read,
#: no more.
SPIN_S = 150e-6


def poll_readable(fd: int, until: float) -> bool:
    """True as soon as ``fd`` has bytes to read (or an error a read will meet), False at
    ``until`` (``time.perf_counter``, s) without. A zero-timeout ``select`` per turn (a tty read
    of nothing returns b"", as at EOF, so readiness is asked, not read): a system call, not a
    sleep and a wake-up. Between turns the core is offered to any other runnable process
    (``sched_yield``): on a loaded machine the process that must answer, or the kernel worker
    that moves a pty's bytes, may be waiting for this very core, and a bare poll kept it for a
    whole time slice (HIL over a pty beside one busy process: 1,950 cycles/s, 6,500 yielding).
    The one poll of both ends of a pty: the host's read and ``hullwatch board --pty``."""
    sel = select.select
    yield_core = os.sched_yield
    while True:
        try:
            if sel((fd,), (), (), 0)[0]:
                return True
        except (OSError, ValueError):
            return True  # let the caller's read meet the error
        if time.perf_counter() >= until:
            return False
        yield_core()


class PortIO(Protocol):
    def read_some(self) -> bytes:
        """The bytes waiting, or those arriving within the port's read timeout (``b""``: none)."""

    def write(self, data: bytes) -> None:
        """Send all of ``data`` (raises on failure or after the port's write timeout)."""


class SerialApiIO:
    """Through pyserial's API (any port object with ``in_waiting``, ``read`` and ``write``)."""

    __slots__ = ("port",)

    def __init__(self, port: Any) -> None:
        self.port = port

    def read_some(self) -> bytes:
        port = self.port
        n = port.in_waiting
        return port.read(n if n else 1)

    def write(self, data: bytes) -> None:
        self.port.write(data)


class FdPortIO:
    """Through the file descriptor of a pyserial POSIX port (opened non-blocking by pyserial).

    Same errors as pyserial's: a descriptor that reports data and reads none (a USB board
    unplugged, a pty whose other side closed) is a ``SerialException``; a write still incomplete
    after the port's write timeout a ``SerialTimeoutException``; an I/O error an ``OSError``.
    """

    __slots__ = ("fd", "poll_s", "write_timeout_s", "spin_s")

    def __init__(self, port: Any, spin_s: float = SPIN_S) -> None:
        self.fd: int = port.fd
        timeout = port.timeout
        self.poll_s: float = DEFAULT_POLL_S if timeout is None else timeout
        self.write_timeout_s: float | None = port.write_timeout
        #: seconds a read polls before sleeping (at most the read timeout; 0: never)
        self.spin_s: float = min(spin_s, self.poll_s)

    def read_some(self) -> bytes:
        fd = self.fd
        # Polling holds the GIL: with another thread in the process (an in-process board, a
        # monitor) it could starve the very thread that answers, so only a lone thread polls.
        ready: Any = self.spin_s and threading.active_count() == 1 \
            and poll_readable(fd, time.perf_counter() + self.spin_s)
        if not ready:
            ready, _, _ = select.select((fd,), (), (), self.poll_s)
        if not ready:
            return b""
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return b""  # a spurious wake-up: nothing after all
        if not data:
            raise SerialException("device reports readiness to read but returned no data "
                                  "(device disconnected or multiple access on port?)")
        return data

    def write(self, data: bytes) -> None:
        fd = self.fd
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            n = 0
        if n == len(data):
            return  # the usual write: the driver took the whole frame
        # The driver's buffer is full: wait for room, up to the write timeout.
        view = memoryview(data)[n:]
        limit = self.write_timeout_s
        deadline = None if limit is None else time.monotonic() + limit
        while view:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise SerialTimeoutException("Write timeout")
            _, ready, _ = select.select((), (fd,), (), left)
            if not ready:
                continue
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                pass


def port_io(port: Any) -> PortIO:
    """The way to move bytes through ``port``: :class:`FdPortIO` for an open pyserial POSIX
    port (exactly that class: a subclass may override reads), else :class:`SerialApiIO`."""
    cls = type(port)
    if cls.__name__ == "Serial" and cls.__module__ == "serial.serialposix" \
            and getattr(port, "is_open", False) and isinstance(getattr(port, "fd", None), int):
        return FdPortIO(port)
    return SerialApiIO(port)


__all__ = ["PortIO", "SerialApiIO", "FdPortIO", "port_io", "poll_readable", "READ_CHUNK"]
