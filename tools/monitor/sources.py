"""Where the monitor's telemetry comes from: UDP datagrams, a capture file (read once or
followed while it grows), or the packets of a run in this process.

Each source runs in a thread of its own and feeds :meth:`MonitorState.ingest`; none raises once
started (a problem becomes a note in the state and, for captures, a skipped range).
"""

from __future__ import annotations

import collections
import os
import selectors
import socket
import sys
import threading
from typing import Callable
from urllib.parse import urlsplit

from ..errors import InputError
from ..ground.capture import Skip, iter_raw_packets
from .state import MonitorState

#: receive buffer asked of the kernel for the UDP socket: bursts of a fast replay wait there while
#: the monitor is busy or not scheduled (on a loaded machine a process can wait 100 ms and more
#: for a core). Linux caps SO_RCVBUF at net.core.rmem_max; a process allowed to (CAP_NET_ADMIN)
#: asks with SO_RCVBUFFORCE, which is not capped. The kernel doubles the figure for its overhead.
UDP_RCVBUF = 32 << 20

_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)

#: seconds between looks at a followed capture
FOLLOW_POLL_S = 0.2

#: a damaged stretch at the end of a followed capture is held back (it may be a packet being
#: written) up to this many bytes; beyond, it is reported as skipped
FOLLOW_HOLD = 1 << 20

#: packets the in-process feed holds before it drops (never blocks the flight loop)
FEED_LIMIT = 100_000


def parse_udp_url(url: str, what: str = "--tm") -> tuple[str, int]:
    """``udp://HOST:PORT`` -> (host, port); ``udp://:PORT`` is 127.0.0.1 (as ``run --tc`` reads it).
    Raises InputError naming ``what``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "udp" or port is None:
        raise InputError(f"{what} {url!r}: expected udp://HOST:PORT, e.g. udp://127.0.0.1:10025")
    return parts.hostname or "127.0.0.1", port


class _Thread:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.done = threading.Event()  #: set when the source has nothing more to give

    def start(self) -> "_Thread":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the thread (idempotent)."""
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _wake(self) -> None:
        pass

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class UdpSource(_Thread):
    """Receives telemetry datagrams on ``host:port`` (bound at construction: raises InputError
    if that fails). One datagram holds one packet, or several back to back."""

    def __init__(self, state: MonitorState, host: str, port: int, rcvbuf: int = UDP_RCVBUF) -> None:
        super().__init__("hullwatch-monitor-udp")
        self.state = state
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self._size_buffer(rcvbuf)
            self.sock.bind((host, port))
        except OSError as exc:
            raise InputError(f"--tm udp://{host}:{port}: cannot receive there: {exc.strerror or exc}") from exc
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()[:2]
        self.rcvbuf = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._wake_r, self._wake_w = socket.socketpair()

    def _size_buffer(self, rcvbuf: int) -> None:
        if _SO_RCVBUFFORCE is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
                return
            except OSError:
                pass  # not privileged: the capped size below
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        recv = self.sock.recv
        ingest = self.state.ingest
        try:
            while not self._stop.is_set():
                sel.select(0.5)
                while True:  # drain everything queued before waiting again
                    try:
                        data = recv(65536)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:  # e.g. ICMP errors reported on the socket: keep going
                        self.state.note(f"UDP receive error: {exc}")
                        break
                    ingest(data)
        finally:
            sel.close()
            self.sock.close()
            self._wake_r.close()
            self._wake_w.close()
            self.done.set()


class CaptureSource(_Thread):
    """Reads a capture file into the state; with ``follow``, keeps reading what is appended.

    Damaged ranges are reported to ``on_skip`` (and counted in the link health); a followed file
    that shrinks (rewritten) is read again from its start."""

    def __init__(self, state: MonitorState, path: str, follow: bool = False,
                 on_skip: Callable[[Skip], None] | None = None) -> None:
        super().__init__("hullwatch-monitor-capture")
        self.state = state
        self.path = path
        self.follow = follow
        self.on_skip = on_skip
        self.skips = 0

    def _skip(self, skip: Skip) -> None:
        self.skips += 1
        with self.state.lock:
            self.state.link.skipped_bytes += skip.length
        self.state.note(f"{self.path}: {skip}")
        if self.on_skip is not None:
            self.on_skip(skip)

    def _run(self) -> None:
        try:
            if self.follow:
                self._follow()
            else:
                for _, raw in iter_raw_packets(self.path, on_skip=self._skip):
                    self.state.ingest(raw)
                    if self._stop.is_set():
                        return
        except OSError as exc:
            self.state.note(f"{self.path}: {exc.strerror or exc}")
        finally:
            with self.state.lock:
                self.state.source_done = not self.follow or self._stop.is_set()
            self.done.set()

    def _follow(self) -> None:
        offset = 0  # file offset of the first byte not yet framed
        pending = b""  # bytes from ``offset`` held back (a packet still being written)
        while not self._stop.is_set():
            try:
                size = os.path.getsize(self.path)
            except OSError:
                size = -1
            if 0 <= size < offset + len(pending):
                self.state.note(f"{self.path}: the file shrank to {size} bytes; reading it again from the start")
                offset, pending = 0, b""
            if size > offset + len(pending):
                with open(self.path, "rb") as f:
                    f.seek(offset + len(pending))
                    pending += f.read(size - offset - len(pending))
                offset, pending = self._frame(offset, pending)
            self._stop.wait(FOLLOW_POLL_S)
        if pending:  # what is left at the end was never completed
            self._frame(offset, pending, final=True)

    def _frame(self, offset: int, buf: bytes, final: bool = False) -> tuple[int, bytes]:
        """Ingest the packets of ``buf`` (at file ``offset``); returns the new offset and the tail
        held back: a damaged range that reaches the end of ``buf`` may be a packet half written."""
        skips: list[Skip] = []
        for start, raw in iter_raw_packets(buf, on_skip=skips.append):
            self.state.ingest(raw)
        held = len(buf)
        for skip in skips:
            if not final and skip.offset + skip.length == len(buf) and skip.length <= FOLLOW_HOLD:
                held = skip.offset
                continue
            self._skip(Skip(offset + skip.offset, skip.length, skip.reason))
        return offset + held, buf[held:]


class FeedSink:
    """A telemetry sink for the flight loop (``hullwatch run --monitor``): ``write`` only queues
    the packet (bounded; never blocks, never raises); a thread of its own ingests the queue."""

    def __init__(self, state: MonitorState, limit: int = FEED_LIMIT) -> None:
        self.state = state
        self.limit = limit
        self.packets = 0
        self.errors = 0  #: packets dropped because the queue was full
        self.last_error = ""
        self._queue: collections.deque[bytes] = collections.deque()
        self._ready = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="hullwatch-monitor-feed", daemon=True)
        self._thread.start()

    def write(self, packet: bytes) -> None:
        if len(self._queue) >= self.limit:
            self.errors += 1
            self.last_error = f"monitor queue full ({self.limit} packets)"
            return
        self._queue.append(packet)
        self.packets += 1
        if not self._ready.is_set():
            self._ready.set()

    def _drain(self) -> None:
        queue = self._queue
        ingest = self.state.ingest
        while True:
            self._ready.wait(0.2)
            self._ready.clear()
            while queue:
                ingest(queue.popleft())
            if self._closed and not queue:
                return

    def health(self) -> dict[str, int]:
        return {"packets": self.packets, "errors": self.errors}

    def close(self) -> None:
        """Ingest what is queued, then stop the thread (idempotent)."""
        self._closed = True
        self._ready.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
