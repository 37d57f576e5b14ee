"""Where encoded packets go: capture files, UDP, callbacks, lists.

A sink takes whole packets (bytes). Sinks are called from the flight loop, so ``write`` never
raises: a failure is counted in ``errors`` (and the last one kept in ``last_error``) and the loop
goes on (docs/architecture.md, "Embedded style": nothing in the loop raises).
"""

from __future__ import annotations

import os
import socket
from typing import Callable, Protocol, runtime_checkable

from . import packets as P


@runtime_checkable
class Sink(Protocol):
    def write(self, packet: bytes) -> None:
        """Take one whole packet. Never raises."""

    def close(self) -> None:
        """Release resources. Idempotent."""


class _Counting:
    def __init__(self) -> None:
        self.packets = 0  #: packets written
        self.errors = 0  #: packets that could not be written
        self.last_error: str = ""

    def _fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def health(self) -> dict[str, int]:
        return {"packets": self.packets, "errors": self.errors}


class CaptureSink(_Counting):
    """Appends packets to a ``.tm`` capture file, back to back, as on the link.

    Unbuffered: every packet is one ``write`` system call, so a crash of the process loses at most
    the packet being written (the OS holds what was written). Opening raises OSError (before the
    loop starts); writing never raises. A capture also keeps the telecommands the flight software
    applied (``records_telecommands``).
    """

    records_telecommands = True

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._file = open(self.path, "ab" if append else "wb", buffering=0)

    def write(self, packet: bytes) -> None:
        try:
            written = self._file.write(packet)
            if written != len(packet):  # raw files may write short; finish the packet
                self._file.write(packet[written:])
            self.packets += 1
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class UdpSink(_Counting):
    """Sends each packet as one UDP datagram to ``(host, port)``. Non-blocking; never raises."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.address = (host, int(port))
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
        family, _, _, _, self._sockaddr = infos[0]
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def write(self, packet: bytes) -> None:
        try:
            self._sock.sendto(packet, self._sockaddr)
            self.packets += 1
        except OSError as exc:  # no listener (ICMP refused), buffer full, network down
            self._fail(exc)

    def close(self) -> None:
        self._sock.close()


class CallbackSink(_Counting):
    """Calls ``fn(packet)`` for each packet; an exception from ``fn`` is counted, not raised.
    With ``telecommands=True`` it also gets the telecommands applied, as a capture does."""

    def __init__(self, fn: Callable[[bytes], object], telecommands: bool = False) -> None:
        super().__init__()
        self._fn = fn
        self.records_telecommands = telecommands

    def write(self, packet: bytes) -> None:
        try:
            self._fn(packet)
            self.packets += 1
        except Exception as exc:  # noqa: BLE001 - a sink never raises into the flight loop
            self._fail(exc)

    def close(self) -> None:
        pass


class ListSink(_Counting):
    """Keeps every packet in ``packets_list`` (tests, small runs), up to ``limit`` packets; the
    ones beyond are counted in ``errors`` (every queue is bounded)."""

    def __init__(self, limit: int = 10_000_000) -> None:
        super().__init__()
        self.limit = limit
        self.packets_list: list[bytes] = []

    def write(self, packet: bytes) -> None:
        if len(self.packets_list) >= self.limit:
            self.errors += 1
            self.last_error = f"list full ({self.limit} packets)"
            return
        self.packets_list.append(packet)
        self.packets += 1

    def close(self) -> None:
        pass


class CaptureWriter:
    """Writes packets to a capture file, each with one unbuffered ``write``, so a crash loses at
    most the packet being written. Raises OSError (the ground-side writer; the flight loop uses
    :class:`~hullwatch.firmware.telemetry.sinks.CaptureSink`, which counts errors instead)."""

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = os.fspath(path)
        self._file = open(self.path, "ab" if append else "wb", buffering=0)
        self.packets = 0

    def write(self, packet: bytes | P.Packet) -> None:
        raw = P.encode(packet) if isinstance(packet, P.Packet) else packet
        view = memoryview(raw)
        while view:
            view = view[self._file.write(view):]
        self.packets += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CaptureWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
