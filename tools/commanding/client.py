"""The operator's command client: send a telecommand over UDP, follow its verification.

:class:`CommandClient` sends one TC packet to the flight software's TC link (``--to
udp://HOST:PORT``) and listens where the flight software sends its telemetry (``--tm
udp://HOST:PORT``: the client binds that address) for the service 1 reports whose request id
is the command's, and for the reports it asked for (17/2, 20/2, a layout report). Each arrives
through ``on_stage`` with its round-trip time as it comes; the send ends at completion (1/7), at
a failure report (1/2, 1/4, 1/8), or when nothing of the command arrives for ``timeout_s``.

Library only: never prints. Raises :class:`~hullwatch.tools.errors.InputError` for a bad URL,
:class:`~hullwatch.tools.errors.DeviceProblem` when the telemetry address cannot be bound.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from ...firmware.errors import PacketDecodeError, TelemetryError
from ...firmware.telemetry import packets as P
from ...firmware.telemetry.fastcodec import fast_decode
from ..errors import DeviceProblem, InputError

#: source id the client puts in its telecommands (docs/commanding.md)
GROUND_SOURCE_ID = 16
DEFAULT_TIMEOUT_S = 5.0
#: the APIDs that carry answers: verification, 17/2 and 20/2 (100); the layout report (101)
_ANSWER_APIDS = frozenset((P.APID_COMMAND, P.APID_HOUSEKEEPING))


def udp_address(url: str, option: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` -> (host, port); empty host: 127.0.0.1. Raises InputError."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "udp" or port is None:
        raise InputError(f"{option} {url!r}: expected udp://HOST:PORT")
    return parts.hostname or "127.0.0.1", port


@dataclass(frozen=True, slots=True)
class Stage:
    """One report about the command: the decoded packet, the round trip since sending (s)."""

    packet: P.Packet
    rtt_s: float

    @property
    def report(self) -> Any:
        return self.packet.data


@dataclass(slots=True)
class Outcome:
    """How a send ended: ``completed`` (1/7 seen), ``failure`` (the failure report, or None),
    ``timed_out`` (nothing more within the timeout), every stage in arrival order."""

    seq: int
    stages: list[Stage] = field(default_factory=list)
    completed: bool = False
    failure: P.VerificationReport | None = None
    timed_out: bool = False


class CommandClient:
    """A UDP command client (see the module docstring). Use as a context manager."""

    def __init__(self, to_url: str, tm_url: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 source_id: int = GROUND_SOURCE_ID, first_seq: int | None = None) -> None:
        self.to = udp_address(to_url, "--to")
        tm = udp_address(tm_url, "--tm")
        self.timeout_s = timeout_s
        self.source_id = source_id
        # Sequence counts from the clock by default, so that clients started one after the other
        # do not reuse request ids that a listener could still match.
        self.seq = (time.time_ns() // 1_000_000 if first_seq is None else first_seq) & 0x3FFF
        self._tx = socket.socket(socket.getaddrinfo(*self.to, type=socket.SOCK_DGRAM)[0][0], socket.SOCK_DGRAM)
        try:
            family, _, _, _, addr = socket.getaddrinfo(*tm, type=socket.SOCK_DGRAM)[0]
            self._rx = socket.socket(family, socket.SOCK_DGRAM)
            self._rx.bind(addr)
        except OSError as exc:
            self._tx.close()
            raise DeviceProblem(f"--tm {tm_url}: cannot listen for telemetry: {exc.strerror or exc} "
                                "(is another ground tool listening there?)") from exc

    def close(self) -> None:
        self._tx.close()
        self._rx.close()

    def __enter__(self) -> "CommandClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_packet(self, raw: bytes) -> None:
        """Send one whole TC packet as it is (tests, tools that build their own)."""
        self._tx.sendto(raw, self.to)

    def build(self, command: Any) -> tuple[int, bytes]:
        """``(seq, packet bytes)`` of ``command`` with the next sequence count. Raises
        InputError when a field does not fit its wire type."""
        seq = self.seq
        self.seq = (seq + 1) & 0x3FFF
        try:
            return seq, P.encode(P.make_packet(command, seq=seq, dest_id=self.source_id, ack_flags=0b1111))
        except TelemetryError as exc:
            raise InputError(f"cannot encode {type(command).__name__}: {exc}") from exc

    def send(self, command: Any, on_stage: Callable[[Stage], None] | None = None,
             want: tuple[type, ...] = ()) -> Outcome:
        """Send ``command`` and follow it to its end (see the module docstring). Reports of
        the classes in ``want`` (e.g. ParameterReport) that arrive between its acceptance and
        its end are taken as its answers."""
        seq, raw = self.build(command)
        word = int.from_bytes(raw[:4], "big")
        out = Outcome(seq)
        self._drain()
        t0 = time.perf_counter()
        self._tx.sendto(raw, self.to)
        last = t0
        accepted = False
        while True:
            remaining = last + self.timeout_s - time.perf_counter()
            if remaining <= 0:
                out.timed_out = True
                return out
            packet = self._receive(remaining)
            if packet is None:
                continue
            d = packet.data
            mine = isinstance(d, P.VerificationReport) and (
                d.request_word == word or (d.request_word is None and d.request_apid == (word >> 16 & 0x7FF)
                                           and d.request_seq == seq))
            answer = accepted and want and isinstance(d, want)
            if not (mine or answer):
                continue
            now = time.perf_counter()
            last = now
            stage = Stage(packet, now - t0)
            out.stages.append(stage)
            if on_stage is not None:
                on_stage(stage)
            if mine:
                if d.stage == P.VerificationStage.ACCEPTANCE_SUCCESS:
                    accepted = True
                if d.failed:
                    out.failure = d
                    return out
                if d.stage == P.VerificationStage.COMPLETION_SUCCESS:
                    out.completed = True
                    return out

    def valve_ids(self) -> list[str]:
        """The valve ids in layout order, from a layout report asked for with TC 3/27 (SID 3).
        Raises DeviceProblem when none arrives within the timeout."""
        outcome = self.send(P.OneShotHousekeeping([P.SID_LAYOUT]), want=(P.LayoutReport,))
        for stage in outcome.stages:
            if isinstance(stage.report, P.LayoutReport):
                try:
                    return [v["id"] for v in json.loads(stage.report.layout_json)["valves"]]
                except (ValueError, KeyError, TypeError) as exc:
                    raise DeviceProblem(f"the layout report is unreadable: {exc}") from exc
        raise DeviceProblem(f"no layout report from {self.to[0]}:{self.to[1]} within {self.timeout_s:g} s "
                            "(give the valve's index instead of its id)")

    def _receive(self, timeout: float) -> P.Packet | None:
        self._rx.settimeout(max(timeout, 1e-4))
        try:
            data = self._rx.recv(65536 + 7)
        except socket.timeout:
            return None
        if len(data) < 6 or ((data[0] & 0x07) << 8 | data[1]) not in _ANSWER_APIDS:
            return None  # raw samples and events: never an answer, not worth decoding
        try:
            return fast_decode(data)
        except (PacketDecodeError, TelemetryError):
            return None

    def _drain(self) -> None:
        # Telemetry that arrived before this command (raw samples, housekeeping) is not its answer.
        self._rx.setblocking(False)
        try:
            while True:
                self._rx.recv(65536 + 7)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass
        finally:
            self._rx.setblocking(True)


def read_text(path: str) -> str:
    """The text of ``path`` (UTF-8) for ``params FILE``; raises InputError naming the file."""
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (OSError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
