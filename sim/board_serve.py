"""Serving the emulated board: on a pseudo-terminal or any pyserial port, paced like a UART.

:func:`serve_fd` serves a :class:`~hullwatch.sim.board_emulator.BoardEmulator` on a file
descriptor (a pty master), :func:`serve_port` on an open pyserial port, :class:`PtyBoard` on a new
pseudo-terminal from a background thread; :class:`Pacer` paces the board's bytes to a baud rate
(a pty moves megabytes per second whatever baud is set). ``hullwatch board`` runs these.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from typing import TYPE_CHECKING, Any, Callable

from ..hal.port_io import poll_readable

if TYPE_CHECKING:  # board_emulator re-exports this module's names
    from .board_emulator import BoardEmulator

class Pacer:
    """Paces outgoing bytes to a baud rate (10 bits per byte), against absolute deadlines.

    A pseudo-terminal moves megabytes per second whatever baud is set; a board on a real UART at
    115200 baud cannot. With a pacer the emulator behaves like the slow board.
    """

    def __init__(self, baud: int | None) -> None:
        self.byte_s = 10.0 / baud if baud else 0.0
        self._free_at = 0.0

    def send(self, write: Callable[[bytes], Any], data: bytes, chunk: int = 16) -> None:
        if not self.byte_s:
            write(data)
            return
        now = time.perf_counter()
        if self._free_at < now:
            self._free_at = now
        for i in range(0, len(data), chunk):
            part = data[i:i + chunk]
            self._free_at += len(part) * self.byte_s
            write(part)
            delay = self._free_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


#: How long :func:`serve_fd` of ``hullwatch board --pty`` polls for the next request after a
#: reply before it sleeps in ``select``, s (``--spin-us``). A HIL host sends its next HIL_STEP
#: about one flight cycle (60-100 us of CPU) after the reply; polling catches it without the
#: wake-up a sleeping process pays (about 15-30 us per direction on a pty).
SERVE_SPIN_S = 200e-6


def serve_fd(board: BoardEmulator, fd: int, *, stop: Callable[[], bool] = lambda: False,
             baud: int | None = None, poll_s: float = 0.05, spin_s: float = 0.0) -> None:
    """Serve ``board`` on the file descriptor ``fd`` (a pty master) until
    ``stop()`` is true.

    Reads whatever arrives, answers at once (or paced to ``baud``), sends stream frames as they
    come due. After each reply it polls ``fd`` for up to ``spin_s`` seconds (0: not at all)
    before sleeping in ``select``: a busy core instead of a wake-up per request. Only for a
    board in its own process: a polling thread would hold the GIL its host needs. An I/O error
    on the descriptor (the other side closed) is waited out, not raised: a host may close and
    reopen its end.
    """
    pacer = Pacer(baud)
    spin_until = 0.0

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [], poll_s)
                continue
            view = view[n:]

    while not stop():
        timeout = poll_s
        rate = board.stream_rate_hz
        if rate:
            timeout = min(timeout, 0.5 / rate)
        ready: Any = ()
        if spin_until:
            ready = poll_readable(fd, spin_until)
            spin_until = 0.0
        if not ready:
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
            except (OSError, ValueError):
                return
        out = b""
        if ready:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                data = b""
            except OSError:
                # EIO on a pty master while no process holds the slave open: wait for one.
                time.sleep(poll_s)
                continue
            if data:
                out = board.receive(data)
        out += board.poll()
        if out:
            try:
                pacer.send(write, out)
            except OSError:
                continue
            if spin_s > 0:
                spin_until = time.perf_counter() + spin_s


def serve_port(board: BoardEmulator, port: Any, *, stop: Callable[[], bool] = lambda: False,
               baud: int | None = None, poll_s: float = 0.05) -> None:
    """Serve ``board`` on an open pyserial port (any URL) until ``stop()`` is true."""
    pacer = Pacer(baud)
    port.timeout = poll_s
    while not stop():
        data = port.read(max(1, port.in_waiting))
        out = board.receive(data) if data else b""
        out += board.poll()
        if out:
            pacer.send(port.write, out)


def make_pty(raw: bool = True) -> tuple[int, int, str]:
    """Open a pseudo-terminal; return (master fd, slave fd, slave path). The slave is put in raw
    mode (no echo, no line discipline) so binary frames pass unchanged."""
    master, slave = os.openpty()
    if raw:
        tty.setraw(slave)
        tty.setraw(master)
    return master, slave, os.ttyname(slave)




class PtyBoard:
    """An emulated board served on a pseudo-terminal by a background thread (in-process).

    ``path`` is the device path a host opens (``serial:///dev/pts/N`` works too). The board
    keeps the slave end open itself, so a host may close and reopen the port at will.
    Use as a context manager, or call :meth:`stop`.
    """

    def __init__(self, board: BoardEmulator, *, baud: int | None = None) -> None:
        self.board = board
        self.master, self._slave, self.path = make_pty()
        self._stopping = False
        self._thread = threading.Thread(
            target=serve_fd, args=(board, self.master),
            kwargs={"stop": lambda: self._stopping, "baud": baud, "poll_s": 0.02},
            name=f"board-emulator {self.path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._thread.join(timeout=2.0)
            for fd in (self.master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> "PtyBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
