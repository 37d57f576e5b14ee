"""A flight software running in a thread with a real UDP TC link and UDP telemetry, for tests.

Telecommands are built with ``spacepackets`` (an encoder independent of ours); reports are read
from a real UDP socket and checked with ``spacepackets`` and with our decoder.
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from typing import Any

from spacepackets.ecss import PusTc, PusTm

from hullwatch.firmware.telemetry import fast_decode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.tools.closed_loop.runner import run_scenario


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pus_tc(service: int, subtype: int, app_data: bytes = b"", seq: int = 0, apid: int = 100) -> bytes:
    """A telecommand built by spacepackets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return PusTc(service=service, message_subtype=subtype, apid=apid, seq_count=seq,
                     app_data=app_data, ack_flags=0b1111).pack()


class LiveFlight:
    """``run_scenario`` in a thread on ``device`` (wall clock at ``speed``), TC link on a free
    port, telemetry to a socket of ours."""

    def __init__(self, device: Any = "sim://soyuz-ms09", until: float = 600.0, speed: float = 1.0,
                 **kwargs: Any) -> None:
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.rx.bind(("127.0.0.1", 0))
        self.tm_url = f"udp://127.0.0.1:{self.rx.getsockname()[1]}"
        self.tc_port = free_udp_port()
        self.tc_url = f"udp://127.0.0.1:{self.tc_port}"
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.flight: Any = None
        self.result: Any = None
        self.error: BaseException | None = None
        started = threading.Event()

        def on_start(flight: Any) -> None:
            self.flight = flight
            started.set()

        def target() -> None:
            try:
                self.result = run_scenario(device, until=until, clock="wall", speed=speed, tm_url=self.tm_url,
                                           tc_url=self.tc_url, on_start=on_start, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                self.error = exc
                started.set()

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        assert started.wait(30), "flight software did not start"
        if self.error:
            raise self.error

    def send(self, raw: bytes) -> None:
        self.tx.sendto(raw, ("127.0.0.1", self.tc_port))

    def reports(self, seq: int | None = None, until_stage: set[int] | None = None, timeout: float = 10.0,
                want: int | None = None, stop: Any = None) -> list[P.Packet]:
        """APID 100 TM packets (service 1 for request ``seq``, and others), until one of the
        stages in ``until_stage`` for that request arrives, ``want`` of them, or ``stop(packet)``."""
        got: list[P.Packet] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.rx.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                raw = self.rx.recv(70000)
            except socket.timeout:
                break
            if (int.from_bytes(raw[:2], "big") & 0x7FF) != P.APID_COMMAND:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                theirs = PusTm.unpack(raw, timestamp_len=6)  # checks the CRC independently
            packet = fast_decode(raw)
            assert theirs.service == packet.service and theirs.message_subtype == packet.subtype
            d = packet.data
            if isinstance(d, P.VerificationReport) and seq is not None and d.request_seq != seq:
                continue
            got.append(packet)
            if want is not None and len(got) >= want:
                break
            if stop is not None and stop(packet):
                break
            if until_stage and isinstance(d, P.VerificationReport) and d.stage in until_stage:
                break
        return got

    def release_tm(self) -> None:
        """Stop listening on the telemetry address (so that a CLI client can bind it)."""
        self.rx.close()

    def stop(self) -> Any:
        if self.flight is not None:
            self.flight.stop()
        self.thread.join(30)
        self.rx.close()
        self.tx.close()
        if self.error:
            raise self.error
        return self.result


END = {2, 4, 7, 8}  #: the stages that end a request: 1/2, 1/4, 1/7, 1/8


def stages(packets: list[P.Packet]) -> list[tuple[int, int]]:
    """``(stage subtype, error code)`` of the verification reports among ``packets``."""
    return [(p.subtype, p.data.error_code) for p in packets if isinstance(p.data, P.VerificationReport)]
