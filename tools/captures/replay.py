"""Re-emit a telemetry capture's packets with their recorded timing.

python-can's ``can.player`` and its ``MessageSync`` are the model: each packet is sent when its
recorded time (the CUC time stamp in its secondary header) comes due on a wall clock running
``speed`` times real time; gaps longer than ``skip_gaps`` seconds are shortened to that length; the
whole capture can be looped. The bytes sent are exactly the bytes recorded (the whole packet, CRC
included), one packet per UDP datagram or back to back on a serial port.

The library never prints: progress goes through a callback ``progress(done_bytes, total_bytes)``.
It streams the capture (constant memory whatever its size).

Destinations (:func:`open_sink`):

- ``udp://HOST:PORT``: one datagram per packet from an unbound UDP socket. Nobody listening is
  not an error (a ground station may start later); refused datagrams are counted.
- any pyserial URL or port path (``/dev/ttyUSB0``, ``loop://``, ``socket://host:port``,
  ``spy://...``): the packets are written back to back, exactly as in the ``.tm`` file.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol
from urllib.parse import urlsplit

from ...hal.clock import Clock, WallClock
from ...hal.registry import install_serial_handlers
from ..errors import DeviceProblem, InputError
from ..ground.capture import iter_packet_batches

#: ``progress(done_bytes, total_bytes)``; called at most every ``progress_every`` packets.
ProgressCallback = Callable[[int, int], None]


class PacketSink(Protocol):
    """Where replayed packets go. ``send`` takes one whole packet's bytes."""

    url: str

    def send(self, packet: bytes) -> None: ...

    def close(self) -> None: ...


#: Largest UDP payload (IPv4: 65535 - 20 - 8). A legal space packet may be up to 65542 bytes.
MAX_DATAGRAM = 65507
#: Recorded gaps longer than this are time jumps (a corrupt but CRC-valid time stamp, or two
#: recordings back to back): skipped, counted and warned about, never slept through.
MAX_TIME_JUMP_S = 3600.0


class UdpSink:
    """One datagram per packet to ``udp://HOST:PORT`` (IPv4 or IPv6, resolved once). A legal
    packet longer than a datagram can carry (:data:`MAX_DATAGRAM`) is sent in consecutive
    datagrams of at most MAX_DATAGRAM bytes, in order (a receiver that reads the datagrams as a
    byte stream gets it whole); ``split`` counts such packets."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise InputError(f"{url}: bad port ({exc}); expected udp://HOST:PORT") from exc
        if not parts.hostname or port is None:
            raise InputError(f"{url}: expected udp://HOST:PORT, e.g. udp://127.0.0.1:10015")
        try:
            family, type_, proto, _, addr = socket.getaddrinfo(
                parts.hostname, port, type=socket.SOCK_DGRAM
            )[0]
        except socket.gaierror as exc:
            raise DeviceProblem(f"{url}: cannot resolve host {parts.hostname!r}: {exc}") from exc
        self.url = url
        self.address = addr
        self.refused = 0
        self.split = 0
        self._sock = socket.socket(family, type_, proto)

    def send(self, packet: bytes) -> None:
        if len(packet) > MAX_DATAGRAM:
            self.split += 1
            for i in range(0, len(packet), MAX_DATAGRAM):
                self._send(packet[i:i + MAX_DATAGRAM])
            return
        self._send(packet)

    def _send(self, packet: bytes) -> None:
        try:
            self._sock.sendto(packet, self.address)
        except ConnectionRefusedError:
            # An ICMP "port unreachable" from an earlier datagram: nobody listens yet. UDP replay
            # goes on regardless, as a spacecraft downlink would.
            self.refused += 1
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise InputError(
                    f"{self.url}: a {len(packet)}-byte packet does not fit in one UDP datagram"
                ) from exc
            raise DeviceProblem(f"{self.url}: send failed: {exc}") from exc

    def close(self) -> None:
        self._sock.close()


class SerialSink:
    """Packets written back to back to a pyserial port (any pyserial URL or a port path)."""

    def __init__(self, url: str) -> None:
        import serial  # deferred: pyserial is only needed for a serial sink

        install_serial_handlers()
        target = url[len("serial://"):] if url.startswith("serial://") else url
        try:
            self._port = serial.serial_for_url(target, baudrate=115200, write_timeout=5.0)
        except ValueError as exc:  # an unknown scheme or a bad option: the URL, not the device
            raise InputError(f"{url}: malformed URL: {exc}") from exc
        except serial.SerialException as exc:
            raise DeviceProblem(f"{url}: cannot open port: {exc}") from exc
        self.url = url

    def send(self, packet: bytes) -> None:
        import serial  # deferred, as in __init__ (already loaded by then)

        try:
            self._port.write(packet)
        except (serial.SerialException, OSError) as exc:
            raise DeviceProblem(f"{self.url}: write failed: {exc}") from exc

    def close(self) -> None:
        try:
            self._port.flush()
        finally:
            self._port.close()


def open_sink(url: str) -> PacketSink:
    """Open the replay destination named by ``url`` (``udp://HOST:PORT`` or a pyserial URL/path).

    Raises:
        InputError: the URL is malformed.
        DeviceProblem: the destination cannot be opened.
    """
    if not url:
        raise InputError("empty destination URL; expected udp://HOST:PORT or a serial port URL")
    if url.lower().startswith("udp://"):
        return UdpSink(url)
    return SerialSink(url)


@dataclass(slots=True)
class ReplayStats:
    """What a replay did. ``mission_span_s`` is the recorded time covered (summed over loops),
    ``gaps_skipped`` the number of gaps shortened to ``skip_gaps``, ``skipped_s`` the recorded
    time they cut (so the replay paced ``mission_span_s - skipped_s`` of recorded time)."""

    packets: int = 0
    bytes: int = 0
    loops: int = 0
    gaps_skipped: int = 0
    skipped_s: float = 0.0
    mission_span_s: float = 0.0
    #: recorded gaps over the jump limit, skipped (not paced, not in mission_span_s); the first
    #: one's size (s) and the byte offset of the packet that jumped
    time_jumps: int = 0
    first_jump_s: float = 0.0
    first_jump_offset: int | None = None
    #: packets whose stamp left the timeline of the packets around them (a corrupt, CRC-valid
    #: stamp, either way, of any size): sent with the packet before, not paced
    bad_stamps: int = 0
    first_bad_offset: int | None = None  #: byte offset of the first of them


#: A packet further than this (s) from the one before it, whose successor is back within it, has
#: a corrupt stamp (Schedule).
OUTLIER_GAP_S = 10.0


class Schedule:
    """Maps recorded packet times to send times on a replay clock (python-can's MessageSync).

    The first packet is due at once. Each later packet is due after the recorded gap since the
    previous one, except that a gap longer than ``max_jump`` is a time jump and counts as no gap
    (counted in ``stats.time_jumps``), a gap longer than ``skip_gaps`` counts as ``skip_gaps``,
    and a recorded time going backwards (a new capture appended, a loop, the packet after a
    jump) counts as no gap. A packet more than OUTLIER_GAP_S off the previous one, either way,
    whose successor is back within OUTLIER_GAP_S after the previous one, has a corrupt stamp:
    it is due with the previous packet and the timeline stays (``stats.bad_stamps``).
    """

    def __init__(self, skip_gaps: float | None, stats: ReplayStats,
                 max_jump: float | None = MAX_TIME_JUMP_S) -> None:
        if skip_gaps is not None and skip_gaps < 0:
            raise InputError(f"skip_gaps must be >= 0 s, got {skip_gaps}")
        if max_jump is not None and not max_jump > 0:
            raise InputError(f"max_jump must be > 0 s, got {max_jump}")
        self._max_jump = max_jump
        self._skip = skip_gaps
        self._stats = stats
        self._prev: float | None = None
        self.due = 0.0  #: replay-clock time (s of recorded time) at which the packet is due

    def advance(self, recorded_t: float | None, offset: int | None = None,
                next_t: float | None = None) -> float:
        """Return the due time of a packet recorded at ``recorded_t`` (s); ``None`` (a packet
        without a time stamp) is due with the packet before it. ``offset`` (the packet's byte
        offset) is kept for the first time jump; ``next_t`` is the next packet's recorded time
        (None: unknown), which tells a corrupt stamp from a real jump."""
        if recorded_t is None:
            return self.due
        if self._prev is not None:
            gap = recorded_t - self._prev
            if abs(gap) > OUTLIER_GAP_S and next_t is not None \
                    and -OUTLIER_GAP_S <= next_t - self._prev <= OUTLIER_GAP_S:
                st = self._stats
                st.bad_stamps += 1
                if st.first_bad_offset is None:
                    st.first_bad_offset = offset
                return self.due
            if gap < 0:
                gap = 0.0
            elif self._max_jump is not None and gap > self._max_jump:
                st = self._stats
                st.time_jumps += 1
                if st.first_jump_offset is None:
                    st.first_jump_s, st.first_jump_offset = gap, offset
                gap = 0.0
            self._stats.mission_span_s += gap
            if self._skip is not None and gap > self._skip:
                self._stats.gaps_skipped += 1
                self._stats.skipped_s += gap - self._skip
                gap = self._skip
            self.due += gap
        self._prev = recorded_t
        return self.due


def _with_next_time(records: Iterable[tuple[float | None, int, bytes]]
                    ) -> Iterator[tuple[tuple[float | None, int, bytes], float | None]]:
    """Each record with the recorded time of the next one (None at the end)."""
    it = iter(records)
    prev = next(it, None)
    for rec in it:
        yield prev, rec[0]  # type: ignore[misc]
        prev = rec
    if prev is not None:
        yield prev, None


def replay_records(
    passes: Callable[[], Iterable[tuple[float | None, int, bytes]]],
    sink: PacketSink,
    *,
    total_bytes: int = 0,
    speed: float | None = 1.0,
    skip_gaps: float | None = None,
    loop: bool = False,
    clock: Clock | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 256,
    should_stop: Callable[[], bool] | None = None,
    max_jump: float | None = MAX_TIME_JUMP_S,
) -> ReplayStats:
    """Send timed packets to ``sink``.

    Args:
        passes: called once per pass over the data (once, or again and again with ``loop``); it
            returns an iterable of ``(recorded_time_s, end_offset, packet_bytes)`` in file order,
            ``end_offset`` being the file offset just after the packet (for progress).
        total_bytes: size of one pass, for progress.
        speed: times real time (> 0); ``None`` sends as fast as possible.
        skip_gaps: recorded gaps longer than this (s) are shortened to it; ``None`` keeps them.
        loop: start over at the end, until ``should_stop`` returns True (or forever).
        clock: the replay clock; default a :class:`~hullwatch.hal.clock.WallClock` at ``speed``.
            Tests pass a virtual clock and read its time at each send.
        progress: ``progress(done_bytes, total_bytes)`` within the current pass.
        should_stop: polled before each packet; True ends the replay cleanly.
        max_jump: recorded gaps longer than this (s) are time jumps: not waited for, counted
            in ``time_jumps``; ``None`` waits any gap out.

    Returns:
        :class:`ReplayStats`.

    Raises:
        InputError: bad ``speed``/``skip_gaps``; DeviceProblem: the sink failed.
    """
    if speed is not None and not speed > 0:
        raise InputError(f"speed must be > 0, got {speed}")
    stats = ReplayStats()
    schedule = Schedule(skip_gaps, stats, max_jump)
    if speed is not None and clock is None:
        clock = WallClock(speed=speed)
    base = clock.now() if clock is not None else 0.0
    while True:
        sent_this_pass = 0
        end = 0
        for (recorded_t, end, packet), next_t in _with_next_time(passes()):
            if should_stop is not None and should_stop():
                return stats
            due = schedule.advance(recorded_t, end - len(packet), next_t)
            if clock is not None:
                clock.sleep_until(base + due)
            sink.send(packet)
            stats.packets += 1
            stats.bytes += len(packet)
            sent_this_pass += 1
            if progress is not None and stats.packets % progress_every == 0:
                progress(end, total_bytes)
        stats.loops += 1
        if progress is not None:
            progress(max(end, total_bytes), total_bytes)
        if not loop or sent_this_pass == 0:
            return stats
        if should_stop is not None and should_stop():
            return stats


def replay_capture(
    path: str | os.PathLike[str],
    sink: PacketSink,
    *,
    speed: float | None = 1.0,
    skip_gaps: float | None = None,
    loop: bool = False,
    clock: Clock | None = None,
    progress: ProgressCallback | None = None,
    on_skip: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_jump: float | None = MAX_TIME_JUMP_S,
) -> ReplayStats:
    """Replay the capture at ``path`` to ``sink`` (see :func:`replay_records` for the options).

    Packets are timed by their CUC time stamps. Damaged stretches are skipped by the capture
    reader's resynchronisation and reported through ``on_skip(skip)`` (a telemetry ``Skip``:
    offset, length, reason); they are not sent.

    Raises:
        FileNotFoundError / OSError: the capture cannot be read.
        InputError, DeviceProblem: as :func:`replay_records`.
    """
    path = os.fspath(path)
    total = os.path.getsize(path)

    def one_pass() -> Iterator[tuple[float | None, int, bytes]]:
        return timed_packets(path, on_skip=on_skip)

    return replay_records(
        one_pass, sink, total_bytes=total, speed=speed, skip_gaps=skip_gaps, loop=loop,
        clock=clock, progress=progress, should_stop=should_stop, max_jump=max_jump,
    )


def timed_packets(path: str, *, on_skip: Callable[[Any], None] | None = None
                  ) -> Iterator[tuple[float | None, int, bytes]]:
    """Yield ``(utc_time_s or None, end_offset, raw_bytes)`` for every intact packet of a capture.

    Uses the ground bulk reader (CRC checked, header fields vectorised); a telecommand packet
    has no time stamp: its time is that of the telemetry packet before it (None at the start).
    """
    last_t: float | None = None
    for batch in iter_packet_batches(path, on_skip=on_skip):
        headers = batch.headers()
        times = headers["time_utc"].tolist()
        is_tc = headers["packet_type"].tolist()
        buf, base = batch.buffer, batch.base
        for start, length, t, tc in zip(batch.starts.tolist(), batch.lengths.tolist(), times, is_tc):
            if tc:
                t = last_t
            else:
                last_t = t
            end = start + length
            yield t, base + end, buf[start:end]
