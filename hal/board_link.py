"""Request/response over a board's serial port: the host side of docs/protocol.md.

:class:`BoardLink` sends one request at a time (stop-and-wait), matches the response by seq,
retries a bounded number of times, and raises hal errors; it never prints and never sleeps longer
than its timeouts. The serial device (the flight loop's view) and the flashing tools both build on
it::

    link = BoardLink.open("/dev/ttyACM0")
    ident = link.identify()                      # checks the protocol version
    info = link.request(wire.FlashInfo())        # -> wire.FlashInfoReply
    link.close()

Errors: :class:`~hullwatch.hal.errors.LinkTimeout` (no valid response after every attempt),
:class:`~hullwatch.hal.errors.NakError` (the board refused; ``code``, ``reason``),
:class:`~hullwatch.hal.errors.ProtocolError` (wrong response type, malformed payload, version),
:class:`PortFailure` (the port itself failed: unplugged, closed), all :class:`LinkError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from . import wire
from .board_check import check_description, check_identity
from .errors import LinkError, LinkTimeout, NakError, ProtocolError
from .framing import MAX_WIRE_FRAME, FrameReader, encode_frame
from .interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind
from .port_io import PortIO, port_io
from .ports import DEFAULT_BAUD, open_port

#: Attempts per request (first try included) before LinkTimeout.
REQUEST_ATTEMPTS = 3
#: Response timeout, s: from sending the request (or the last byte received) to giving up.
RESPONSE_TIMEOUT_S = 0.05
#: Timeout of requests the board may take long over (erase, commit, reset), s.
SLOW_TIMEOUT_S = 1.0
SLOW_REQUESTS = frozenset({wire.MsgType.FLASH_BEGIN, wire.MsgType.FLASH_COMMIT, wire.MsgType.RESET})
#: Wait after a RESET before the next request, s (docs/protocol.md).
RESET_SETTLE_S = 0.5
#: Floor of the adaptive timeout of per-cycle requests (:meth:`BoardLink.adaptive_timeout`), s.
#: A request damaged on the line is never answered (the board drops a bad CRC), so on a noisy
#: fast link (a pty, 80 us round trips) every damaged request costs this much: 0.5 ms instead of
#: 2 ms took HIL through a BER 2e-5 line from 58-61 % to 72-78 % of the clean throughput. A board
#: that is merely late (its process descheduled on a loaded machine) loses nothing: its late
#: reply is accepted during the next attempt, which waits four times as long, and the last
#: attempt waits the full response timeout.
ADAPTIVE_MIN_S = 0.0005
#: Round trips measured before the adaptive timeout is trusted (until then: the full timeout).
ADAPTIVE_WARMUP = 8

_STREAM_FRAME = int(wire.MsgType.STREAM_FRAME)
_NAK = int(wire.MsgType.NAK)


class PortFailure(LinkError):
    """The port failed (device unplugged, port closed, I/O error): reopen it to go on."""


@dataclass(frozen=True, slots=True)
class BoardDescription:
    """What the board says it is: identity and its module, channel and valve tables."""

    identity: wire.IdentifyReply
    modules: tuple[wire.ModuleEntry, ...]
    channels: tuple[wire.ChannelEntry, ...]
    valves: tuple[wire.ValveEntry, ...]

    def layout(self) -> Layout:
        """The hal Layout of this board (channels grouped by kind, board order within a kind).

        Raises ProtocolError when a table refers to a module or kind that does not exist."""
        names = [m.name for m in self.modules]

        def module(index: int, what: str) -> str:
            if index >= len(names):
                raise ProtocolError(f"{what} refers to module {index}; the board has {len(names)}")
            return names[index]

        by_kind: dict[int, list[ChannelInfo]] = {k: [] for k in ChannelKind}
        for c in self.channels:
            try:
                kind = ChannelKind(c.kind)
            except ValueError:
                raise ProtocolError(f"channel {c.index} ({c.id}) has unknown kind {c.kind}") from None
            by_kind[kind].append(ChannelInfo(c.id, kind, module(c.module, f"channel {c.id}"),
                                             c.valid_min, c.valid_max))
        valves = []
        for v in self.valves:
            try:
                kind = ValveKind(v.kind)
            except ValueError:
                raise ProtocolError(f"valve {v.index} ({v.id}) has unknown kind {v.kind}") from None
            b = None if v.module_b == wire.NO_MODULE else module(v.module_b, f"valve {v.id}")
            valves.append(ValveInfo(v.id, kind, module(v.module_a, f"valve {v.id}"), b,
                                    v.actuation_timeout_s))
        return Layout(
            modules=tuple(ModuleInfo(m.name, m.volume_m3) for m in self.modules),
            pressure=tuple(by_kind[ChannelKind.PRESSURE]),
            temperature=tuple(by_kind[ChannelKind.TEMPERATURE]),
            flow=tuple(by_kind[ChannelKind.FLOW]),
            valves=tuple(valves),
        )


class BoardLink:
    """Stop-and-wait requests over an open pyserial port (see the module docstring).

    Counters (``counters()``): requests, retries, timeouts, naks, stale_replies (a response to
    an earlier attempt), unexpected (frames of a type nobody asked for), port_errors, stream
    frames and stream gaps, plus the frame reader's (frames, crc_errors, cobs_errors,
    short_frames, oversized, dropped_bytes).
    """

    def __init__(self, port: Any, *, url: str = "", timeout_s: float = RESPONSE_TIMEOUT_S,
                 baudrate: int = DEFAULT_BAUD) -> None:
        self.port = port  # and the way to move its bytes (the property below)
        self.url = url
        self.timeout_s = timeout_s
        self.baudrate = baudrate
        self.reader = FrameReader()
        self._seq = 0
        self.latest_stream: wire.StreamFrame | None = None
        self._stream_seq: int | None = None
        self.on_stream: Callable[[wire.StreamFrame], None] | None = None
        self.stats = {"requests": 0, "retries": 0, "timeouts": 0, "naks": 0, "stale_replies": 0,
                      "unexpected": 0, "echoes": 0, "port_errors": 0, "stream_frames": 0, "stream_gaps": 0}
        self._flush_pending = True
        # Smoothed round trip and its mean deviation, s (Jacobson/Karels, as TCP's RTO).
        self.srtt = 0.0
        self.rttvar = 0.0
        self._rtt_samples = 0

    @classmethod
    def open(cls, url: str, *, timeout_s: float = RESPONSE_TIMEOUT_S, baudrate: int = DEFAULT_BAUD,
             **port_options: Any) -> "BoardLink":
        """Open the port behind ``url`` (hal.ports.open_port: DeviceOpenError with a hint)."""
        # The port's own read timeout is short: a read must never sleep past a request's
        # deadline (the per-cycle timeout is adaptive and may be a couple of milliseconds).
        port = open_port(url, baudrate=baudrate, timeout=min(timeout_s, ADAPTIVE_MIN_S), **port_options)
        return cls(port, url=url, timeout_s=timeout_s, baudrate=baudrate)

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def port(self) -> Any:
        """The open pyserial port (None once closed). Setting it (a wrapper, a reopened port)
        also picks how its bytes are moved (hal.port_io)."""
        return self._port

    @port.setter
    def port(self, port: Any) -> None:
        self._port = port
        self._io: PortIO | None = None if port is None else port_io(port)

    def counters(self) -> dict[str, int]:
        return {**self.stats, **self.reader.counters()}

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # closing a dead port must not fail the caller
                pass

    @property
    def is_open(self) -> bool:
        return self.port is not None

    def adaptive_timeout(self) -> float:
        """Timeout for a per-cycle request: ``srtt + 4 * rttvar`` of the round trips measured so
        far (first attempts answered without a retry), at least ADAPTIVE_MIN_S and at most the
        link's response timeout (which is also used until ADAPTIVE_WARMUP round trips are in).
        A response lost on a fast link then costs about one round trip instead of 50 ms."""
        if self._rtt_samples < ADAPTIVE_WARMUP:
            return self.timeout_s
        return min(self.timeout_s, max(ADAPTIVE_MIN_S, self.srtt + 4.0 * self.rttvar))

    def _measured(self, rtt: float) -> None:
        if self._rtt_samples == 0:
            self.srtt, self.rttvar = rtt, rtt / 2.0
        else:
            self.rttvar += 0.25 * (abs(self.srtt - rtt) - self.rttvar)
            self.srtt += 0.125 * (rtt - self.srtt)
        self._rtt_samples += 1

    def wire_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on a UART at the link's baud rate (10 bits per byte)."""
        return nbytes * 10.0 / self.baudrate

    def _write(self, data: bytes) -> None:
        io = self._io
        if io is None:
            raise PortFailure(f"{self.url}: port is closed")
        try:
            io.write(data)
        except Exception as exc:  # SerialException, OSError, PortNotOpenError, write timeout
            self.stats["port_errors"] += 1
            raise PortFailure(f"{self.url}: write failed: {exc}") from exc

    def _read_some(self) -> bytes:
        io = self._io
        if io is None:
            raise PortFailure(f"{self.url}: port is closed")
        try:
            return io.read_some()
        except Exception as exc:
            self.stats["port_errors"] += 1
            raise PortFailure(f"{self.url}: read failed: {exc}") from exc

    def _handle_stream(self, frame: Any) -> None:
        try:
            msg = wire.decode(frame.type, frame.payload)
        except ProtocolError:
            self.stats["unexpected"] += 1
            return
        if self._stream_seq is not None and frame.seq != (self._stream_seq + 1) & 0xFF:
            self.stats["stream_gaps"] += 1
        self._stream_seq = frame.seq
        self.stats["stream_frames"] += 1
        self.latest_stream = msg  # type: ignore[assignment]
        if self.on_stream is not None:
            self.on_stream(msg)  # type: ignore[arg-type]

    # -- requests ----------------------------------------------------------------------------

    def request(self, msg: wire.Message, *, timeout_s: float | None = None,
                attempts: int = REQUEST_ATTEMPTS) -> Any:
        """Send ``msg``, return the board's response dataclass (see :meth:`request_raw`)."""
        return wire.decode(wire.reply_type(msg.TYPE), self.request_raw(msg, timeout_s=timeout_s, attempts=attempts))

    def request_raw(self, msg: wire.Message, *, timeout_s: float | None = None,
                    attempts: int = REQUEST_ATTEMPTS, growth: float = 1.0) -> bytes:
        """Send ``msg``, return the payload of the board's response (not decoded: the caller
        decodes it, e.g. with a :class:`~hullwatch.hal.wire.SamplesCodec`).

        Each attempt uses a new seq and waits ``timeout_s`` (default: the link's, or
        SLOW_TIMEOUT_S for erase/commit/reset) times ``growth`` per earlier attempt (the last
        attempt, and at most every attempt: the larger of ``timeout_s`` and the link's timeout)
        after the request and after every byte received; a corrupt frame while waiting (the response was damaged) retries at once.
        A late response to an earlier attempt of this same request is accepted (the host
        retries only requests whose repetition is harmless); a response to an earlier request
        is stale and dropped.

        Raises:
            LinkTimeout: no valid response in ``attempts`` attempts.
            NakError: the board refused (not retried: it answered).
            ProtocolError: the response has the wrong type or a malformed payload.
            PortFailure: the port failed (not retried here; reopen it).
        """
        return self.exchange(msg.TYPE, wire.payload_of(msg), timeout_s=timeout_s, attempts=attempts,
                             growth=growth)

    def exchange(self, msg_type: int, payload: bytes, *, timeout_s: float | None = None,
                 attempts: int = REQUEST_ATTEMPTS, growth: float = 1.0) -> bytes:
        """:meth:`request_raw` of a request already encoded: type ``msg_type``, ``payload``
        (e.g. :func:`~hullwatch.hal.wire.inject_payload`, the per-cycle path). Same attempts,
        timeouts and errors."""
        if timeout_s is None:
            timeout_s = SLOW_TIMEOUT_S if msg_type in SLOW_REQUESTS else self.timeout_s
        want = wire.reply_type(msg_type)
        stats = self.stats
        stats["requests"] += 1
        longest = max(timeout_s, self.timeout_s)
        # Worst case the response is the longest frame on a UART-speed link.
        slack = 2 * self.wire_time(MAX_WIRE_FRAME)
        reader = self.reader
        seqs: list[int] = []
        damaged = False
        wait = timeout_s
        for attempt in range(attempts):
            if attempt:
                stats["retries"] += 1
                # The last attempt waits the full timeout: a slow answer still makes it.
                wait = longest if attempt == attempts - 1 else min(longest, wait * growth)
            self._seq = seq = (self._seq + 1) & 0xFF
            seqs.append(seq)
            frame = encode_frame(msg_type, seq, payload)
            if self._flush_pending or attempt:
                # A leading delimiter ends any partial frame the board holds (after a reopen, or
                # a request whose delimiter the line lost).
                frame = b"\x00" + frame
                self._flush_pending = False
                if damaged:
                    reader.reset()  # our partial frame is the remains of a damaged one
            self._write(frame)
            start = time.monotonic()
            deadline = start + wait
            cap = wait + slack
            errors_before = reader.errors
            while True:
                data = self._read_some()
                now = time.monotonic()
                if data:
                    for f in reader.feed(data):
                        if f.type == _STREAM_FRAME:
                            self._handle_stream(f)
                        elif f.type == want and f.seq in seqs:
                            if not attempt:
                                self._measured(now - start)
                            return f.payload
                        elif f.type == _NAK and f.seq in seqs:
                            nak = wire.decode(f.type, f.payload)
                            stats["naks"] += 1
                            raise NakError(nak.code, f"{nak.code_name}: {nak.text}",
                                           wire.MsgType(msg_type).name)
                        elif f.seq == seq and not f.type & 0x80:
                            stats["echoes"] += 1  # our own request: the line echoes
                        elif f.seq == seq:
                            raise ProtocolError(f"{wire.MsgType(msg_type).name}: board answered "
                                                f"with type {f.type:#04x}, expected {want:#04x} or NAK")
                        else:
                            stats["stale_replies"] += 1
                    deadline = max(deadline, now + wait)
                    if reader.errors != errors_before:
                        damaged = True
                        break  # the response was damaged on the line: ask again now
                if now >= deadline or now - start >= cap:
                    stats["timeouts"] += 1
                    break
        raise LinkTimeout(f"{self.url}: no valid response to {wire.MsgType(msg_type).name} after "
                          f"{attempts} attempts ({timeout_s * 1e3:.0f} ms"
                          + (f" growing x{growth:g} per attempt)" if growth != 1.0 else " each)"))

    def identify(self, *, attempts: int = REQUEST_ATTEMPTS, timeout_s: float | None = None) -> wire.IdentifyReply:
        """IDENTIFY the board and check its protocol major (ProtocolError if it differs) and
        every field of the reply (BoardDescriptionError, hal.board_check)."""
        reply = self.request(wire.Identify(wire.PROTOCOL_MAJOR, wire.PROTOCOL_MINOR),
                             attempts=attempts, timeout_s=timeout_s)
        if reply.protocol_major != wire.PROTOCOL_MAJOR:
            raise ProtocolError(
                f"{self.url}: board {reply.board_id!r} speaks protocol {reply.protocol_version}, "
                f"this host speaks {wire.PROTOCOL_MAJOR}.x; update the "
                + ("board firmware" if reply.protocol_major < wire.PROTOCOL_MAJOR else "host software"))
        check_identity(reply, f"{self.url}: board {reply.board_id!r}")
        return reply

    def describe(self, identity: wire.IdentifyReply | None = None) -> BoardDescription:
        """IDENTIFY (unless given) and read the module, channel and valve tables.

        Raises BoardDescriptionError (a ProtocolError) when the tables break a rule every
        configuration image keeps (hal.board_check)."""
        ident = identity or self.identify()
        modules = tuple(self.request(wire.DescribeModule(i)) for i in range(ident.module_count))
        channels = tuple(self.request(wire.DescribeChannel(i)) for i in range(ident.channel_count))
        valves = tuple(self.request(wire.DescribeValve(i)) for i in range(ident.valve_count))
        description = BoardDescription(ident, modules, channels, valves)
        if ident.flags & wire.BoardFlags.CONFIG_VALID:  # an unconfigured board has no tables
            check_description(description, f"{self.url}: board {ident.board_id!r}")
        return description

    def reset(self, kind: int = wire.ResetKind.SOFT) -> None:
        """RESET the board and wait the settle time."""
        self.request(wire.Reset(kind))
        time.sleep(RESET_SETTLE_S)
        self._flush_pending = True
