"""A pseudo-terminal relay between the host and a board, with line faults and a stable name.

``PtyRelay(board_url, link_path)`` opens the board's port (any pyserial URL: the emulator's
``/dev/pts/N``, ``/dev/ttyACM0``...), makes a new pseudo-terminal for the host and points the
symbolic link ``link_path`` at it, then copies bytes both ways in a background thread. The host
opens ``serial://<link_path>`` and cannot tell the relay from the board, except that the relay
can misbehave on purpose through :attr:`PtyRelay.faults` (the emulator's
:class:`~hullwatch.sim.urlhandler.protocol_emuboard.LineFaults`, the same controls as
``emuboard://``):

- ``faults.noise`` / ``faults.drop``: per-byte probability of a flipped bit / a lost byte, both
  directions;
- ``faults.burst(n)``: ``n`` random bytes (zeros included) sent to the host;
- ``faults.unplug()`` / ``faults.plug()`` / ``faults.unplug_until(t, clock)``: the host's
  pseudo-terminal is closed and ``link_path`` removed, as when a USB cable is pulled (the host
  reads EIO, reopening fails); plugging makes a new one behind the same ``link_path``.

Plugging and unplugging happen in :meth:`PtyRelay.sync`, which the relay thread calls between
copies and which a flight loop should call every cycle (the pytest plugin does): with
``unplug_until(t, clock=<mission clock>)`` the cable then comes back at the first cycle at or after
``t``, however fast mission time runs while the link is down.

When the board's port fails (the board was power-cycled, or re-enumerated), the relay closes it
and reopens ``board_url`` every ``REOPEN_S`` until it opens again: give it a stable name (the
pytest plugin's emulated board is behind a symbolic link that follows restarts) and the host's
side and ``link_path`` stay as they are.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any

from ...hal.errors import HalError
from ...hal.ports import open_port
from ...sim.board_serve import make_pty
from ...sim.urlhandler.protocol_emuboard import LineFaults

#: Wall seconds the relay thread waits for bytes before it looks at the fault controls again.
POLL_S = 0.005
#: Wall seconds between attempts to reopen a failed board port.
REOPEN_S = 0.05


class PtyRelay:
    """See the module docstring. Use as a context manager, or call :meth:`stop`.

    Raises (on start) DeviceOpenError when the board's port cannot be opened, OSError when the
    pseudo-terminal or ``link_path`` cannot be made."""

    def __init__(self, board_url: str, link_path: str | os.PathLike[str], *,
                 faults: LineFaults | None = None) -> None:
        self.board_url = board_url
        self.link_path = os.fspath(link_path)
        self.url = f"serial://{self.link_path}"
        self.faults = faults or LineFaults()
        self.counters = {"to_board": 0, "to_host": 0, "board_errors": 0, "reopens": 0, "plugs": 0,
                         "plug_errors": 0}
        self._lock = threading.RLock()
        self._board: Any = open_port(board_url, timeout=0)
        self._master: int | None = None
        self._slave: int | None = None
        self._plug()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=f"hil relay {self.link_path}", daemon=True)
        self._thread.start()

    # -- the host's side ---------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave, path = make_pty()
        os.set_blocking(master, False)
        tmp = f"{self.link_path}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(path, tmp)
        os.replace(tmp, self.link_path)  # atomic: the name never points nowhere while plugged
        self._master, self._slave = master, slave
        self.counters["plugs"] += 1

    def _unplug(self) -> None:
        if os.path.lexists(self.link_path):
            os.unlink(self.link_path)
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    # -- the thread --------------------------------------------------------------------------

    def sync(self) -> None:
        """Make the host's side follow the fault controls: unplug (close the pseudo-terminal,
        remove ``link_path``) or plug (a new one behind ``link_path``). Never raises."""
        with self._lock:
            if self._stopping:
                return
            unplugged = self.faults.unplugged
            try:
                if unplugged and self._master is not None:
                    self._unplug()
                elif not unplugged and self._master is None:
                    self._plug()
            except OSError:
                self.counters["plug_errors"] += 1

    def _serve(self) -> None:
        while not self._stopping:
            self.sync()
            board = self._board
            if board is None:
                board = self._reopen()
                if board is None:
                    time.sleep(REOPEN_S)
                    continue
            fds = [board.fileno()] if hasattr(board, "fileno") else []
            if self._master is not None:
                fds.append(self._master)
            try:
                ready, _, _ = select.select(fds, [], [], POLL_S)
            except (OSError, ValueError):
                ready = []
            with self._lock:
                self._pump(board, ready)

    def _reopen(self) -> Any:
        try:
            self._board = open_port(self.board_url, timeout=0)
            self.counters["reopens"] += 1
        except HalError:
            self._board = None
        return self._board

    def _board_failed(self, board: Any) -> None:
        self.counters["board_errors"] += 1
        self._board = None
        try:
            board.close()
        except Exception:  # noqa: BLE001 - it failed already
            pass

    def _pump(self, board: Any, ready: list[int]) -> None:
        faults = self.faults
        master = self._master
        if master is not None and master in ready:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                data = b""  # EIO while the host has its side closed: nothing to relay
            if data:
                self.counters["to_board"] += len(data)
                try:
                    board.write(faults.apply(data))
                except Exception:  # noqa: BLE001 - the board went away (restart): reopen it
                    self._board_failed(board)
                    return
        try:
            out = board.read(board.in_waiting) if board.in_waiting else b""
        except Exception:  # noqa: BLE001
            self._board_failed(board)
            out = b""
        out = faults.take_garbage() + faults.apply(out) if out else faults.take_garbage()
        if out and master is not None:
            self.counters["to_host"] += len(out)
            view = memoryview(out)
            while view:
                try:
                    view = view[os.write(master, view):]
                except BlockingIOError:
                    select.select([], [master], [], POLL_S)
                except OSError:
                    break

    def stop(self) -> None:
        """Stop relaying, close both sides, remove ``link_path``. Idempotent."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self._thread.join(timeout=2.0)
        self._unplug()
        if self._board is not None:
            try:
                self._board.close()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "PtyRelay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["POLL_S", "PtyRelay", "REOPEN_S"]
