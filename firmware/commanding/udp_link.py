"""The UDP telecommand link: one TC packet per datagram, into the bounded queue.

``udp://HOST:PORT`` (``udp://:PORT`` binds to 127.0.0.1: loopback unless asked otherwise; use
``udp://0.0.0.0:PORT`` to listen on every interface). Two readers share the socket, in arrival
order: at the start of every cycle the flight loop itself drains what has arrived
(:meth:`UdpTcLink.poll`), so a telecommand that arrived before a cycle starts is applied in that
cycle whatever the thread scheduling; and a receiver thread, the link's "interrupt handler", reads
datagrams as they come between cycles, so that a flood does not overflow the socket buffer. Datagrams the operating system dropped before the thread read
them (socket buffer full) are counted through ``SO_RXQ_OVFL`` where the platform has it and
reported as lost (``TELECOMMANDS_LOST``).

Opening raises :class:`~hullwatch.firmware.errors.CommandLinkError` (a bad URL, a port in use);
after that nothing raises: receive errors are counted.
"""

from __future__ import annotations

import socket
import struct
import threading
from urllib.parse import urlsplit

from ..errors import CommandLinkError
from .queue import TcQueue

#: where ``hullwatch run --tc`` listens when given no address
DEFAULT_TC_URL = "udp://127.0.0.1:10024"
#: the socket receive buffer asked for (the OS may cap it): room for a burst of small packets
RECV_BUFFER = 4 << 20
_MAX_DATAGRAM = 65536 + 6
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)


def parse_tc_url(url: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` -> (host, port); an empty host is 127.0.0.1. Raises CommandLinkError."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise CommandLinkError(f"--tc {url!r}: bad port ({exc}); expected udp://HOST:PORT", True) from exc
    if parts.scheme != "udp" or port is None or parts.path not in ("", "/"):
        raise CommandLinkError(f"--tc {url!r}: expected udp://HOST:PORT (udp://:PORT listens on 127.0.0.1)", True)
    return parts.hostname or "127.0.0.1", port


class UdpTcLink:
    """Receives telecommands on a UDP socket into ``queue`` (a background thread).

    Attributes: ``address`` (the bound (host, port); port 0 in the URL picks a free one),
    ``datagrams`` received, ``errors`` (receive errors), ``os_dropped`` (datagrams the OS
    dropped, when the platform counts them).
    """

    def __init__(self, url: str, queue: TcQueue) -> None:
        host, port = parse_tc_url(url)
        self.queue = queue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            family, _, _, _, sockaddr = infos[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise CommandLinkError(f"--tc {url}: {exc}") from exc
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                self._ovfl = True
            except OSError:
                self._ovfl = False
            self._sock.bind(sockaddr)
        except OSError as exc:
            self._sock.close()
            raise CommandLinkError(f"--tc {url}: cannot listen: {exc.strerror or exc}") from exc
        self._sock.settimeout(0.2)
        # The loop's reader: a second handle on the same socket without a timeout (never waits).
        self._poll_sock = self._sock.dup()
        self._poll_sock.setblocking(False)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self.url = f"udp://{self.address[0]}:{self.address[1]}"
        self.datagrams = 0
        self.errors = 0
        self.os_dropped = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tc-link {self.url}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        offer = self.queue.offer
        space = socket.CMSG_SPACE(4)
        last_drops = 0
        while not self._stop.is_set():
            try:
                data, anc, _flags, _addr = sock.recvmsg(_MAX_DATAGRAM, space)
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                self.errors += 1
                self.last_error = str(exc)
                continue
            self.datagrams += 1
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                    drops = struct.unpack("=I", value[:4])[0]
                    if drops != last_drops:
                        self.os_dropped += (drops - last_drops) & 0xFFFFFFFF
                        self.queue.count_lost((drops - last_drops) & 0xFFFFFFFF)
                        last_drops = drops
            offer(data)

    def poll(self) -> None:
        """Offer every datagram waiting in the socket to the queue, without waiting (the flight
        loop calls this at the start of each cycle). At most the queue's capacity plus its
        refusal ring are read per call, so a flood cannot hold up a cycle; the rest waits."""
        if self._stop.is_set():
            return
        sock = self._poll_sock
        offer = self.queue.offer
        for _ in range(self.queue.capacity + self.queue.refused_capacity):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.errors += 1
                self.last_error = str(exc)
                return
            self.datagrams += 1
            offer(data)

    def close(self) -> None:
        """Stop the thread and close the socket. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._poll_sock.close()
        self._sock.close()

    def health(self) -> dict[str, int]:
        return {"datagrams": self.datagrams, "errors": self.errors, "os_dropped": self.os_dropped}

    def __enter__(self) -> "UdpTcLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
