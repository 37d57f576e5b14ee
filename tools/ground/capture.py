"""Reading capture files (``.tm``: packets back to back, exactly as on the link; written by
:class:`~hullwatch.firmware.telemetry.sinks.CaptureWriter` and ``CaptureSink``).

Reading is streaming (fixed-size chunks: constant memory whatever the file size) and
self-resynchronising. The framing rule, applied at each candidate position:

1. the 6-byte primary header must be plausible for a PUS packet: packet version 0, secondary
   header flag 1, sequence flags 3 (stand-alone), PUS version 2 in the first secondary-header
   byte, and a length of at least the smallest packet of its type (13 bytes TC, 21 TM);
2. the whole packet must be in the file;
3. its CRC-16/CCITT-FALSE must check (the CRC over the packet including its CRC field is 0).

If all hold the packet is taken and reading continues right after it. Otherwise the reader
advances one byte and tries again; the bytes passed over form one skipped range, reported as a
:class:`Skip` (file offset, length, reason of the first failure) once the next packet is found or
the file ends. A packet that frames and checks but whose application data cannot be decoded is
reported as a Skip too (its length is known, so reading resumes after it).
"""

from __future__ import annotations

import collections
import io
import itertools
import multiprocessing
import multiprocessing.pool
import os
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from ...firmware.errors import PacketDecodeError
from ...firmware.telemetry import packets as P
from ...firmware.telemetry.fastcodec import TC_HEADER_FIELDS, TM_HEADER_FIELDS, fast_decode
from ...firmware.telemetry.fields import field_offsets
from ...hal.codec import compile_fields
from ...firmware.telemetry.sinks import CaptureWriter  # noqa: F401 - the former telemetry.capture held it
from . import bulk as _bulk

CHUNK_SIZE = 1 << 20
#: packet id, sequence control, data length, and the secondary header's first byte (PUS version)
_PLAUSIBLE = compile_fields(TM_HEADER_FIELDS[:4])


@dataclass(frozen=True, slots=True)
class Skip:
    """A byte range of a capture that held no valid packet."""

    offset: int
    length: int
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.length} bytes at offset {self.offset}: {self.reason}"


class CapturedPacket(NamedTuple):
    """One packet read from a capture (a named tuple: ``offset, raw, packet = captured`` works)."""

    offset: int  #: file offset of the packet's first byte
    raw: bytes
    packet: P.Packet


SkipCallback = Callable[[Skip], None]
ProgressCallback = Callable[[int], None]


def _plausible_at(buf: bytes, pos: int) -> bool:
    """Rule 1 of the framing at ``buf[pos:]`` (7 bytes must be there)."""
    w0, w1, dl, pus = _PLAUSIBLE.unpack_from(buf, pos)
    return (w0 & 0xE800 == 0x0800 and w1 >> 14 == 3 and pus >> 4 == 2
            and dl + 7 >= (P.MIN_TC_SIZE if w0 & 0x1000 else P.MIN_TM_SIZE))


class Framer:
    """Finds packets in successive windows of a byte stream (the resync rule in the module doc).

    State carried between windows: a skipped range still open at the end of a window.

    Two ways to apply the same rule: :meth:`_scan`, one candidate position at a time (the
    reference, and what resynchronises after damage), and the bulk way in :meth:`frame`: follow
    the chain of length fields (:class:`bulk.LengthWalker`), then check the headers and CRCs of
    thousands of candidates at once with numpy; where the first candidate fails, :meth:`_scan`
    takes over until it has found the next packet. Both give the same packets and skipped ranges.
    """

    #: candidates checked at once by :meth:`frame` (bounds the work wasted when one fails)
    BULK_PACKETS = 4096

    def __init__(self, verify_crc: bool, bulk: bool = True) -> None:
        self.verify_crc = verify_crc
        self.bulk = bulk
        self.skip_start: int | None = None
        self.skip_reason = ""
        self._walker = _bulk.LengthWalker(self.BULK_PACKETS)

    def frame(self, buf: bytes, base: int, final: bool, skips: list[Skip],
              limit: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """The start (in ``buf``) and length of every packet found in ``buf`` (file offset
        ``base``), as int64 arrays, and how many bytes of ``buf`` were consumed; skipped ranges are
        appended to ``skips``. Unless ``final``, stops where a packet might continue past the end
        of ``buf``. With ``limit``, takes no packet that starts at or after ``buf[limit]`` (one
        that starts before may end after it) and closes an open skipped range there."""
        n = len(buf)
        lim = n if limit is None else min(limit, n)
        out_s: list[np.ndarray] = []
        out_l: list[np.ndarray] = []
        pos = 0
        a = np.frombuffer(buf, np.uint8)
        while True:
            if self.bulk and self.skip_start is None and pos < lim and pos + 7 <= n and _plausible_at(buf, pos):
                starts, lengths, after = self._walker.walk(buf, a, pos, lim)
                if len(starts):
                    ok = _bulk.plausible(a, starts, lengths)
                    good = len(ok) if ok.all() else int(ok.argmin())
                    if self.verify_crc and good:  # CRCs of the plausible ones only: garbage can claim 64 kB
                        crc = _bulk.crc_ok(a, starts[:good], lengths[:good])
                        good = good if crc.all() else int(crc.argmin())
                    out_s.append(starts[:good])
                    out_l.append(lengths[:good])
                    if good == len(ok):
                        pos = after
                        continue
                    pos = int(starts[good])
            ps: list[int] = []
            pl: list[int] = []
            pos, done = self._scan(buf, base, final, pos, lim, limit is not None, ps, pl, skips,
                                   one_packet=self.bulk)
            if ps:
                out_s.append(np.asarray(ps, np.int64))
                out_l.append(np.asarray(pl, np.int64))
            if done:
                break
        if not out_s:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), pos
        return np.concatenate(out_s), np.concatenate(out_l), pos

    def _scan(self, buf: bytes, base: int, final: bool, pos: int, lim: int, limited: bool, starts: list[int],
              lengths: list[int], skips: list[Skip], one_packet: bool) -> tuple[int, bool]:
        """The rule applied one candidate position at a time from ``pos``. With ``one_packet``,
        returns right after the first packet taken, ``(position, False)``; otherwise, or when the
        window is exhausted first, ``(bytes consumed, True)``."""
        n = len(buf)
        unpack = _PLAUSIBLE.unpack_from
        crc = P.crc16
        verify = self.verify_crc
        view = memoryview(buf)
        skip_start = self.skip_start
        reason = self.skip_reason
        min_tm, min_tc = P.MIN_TM_SIZE, P.MIN_TC_SIZE
        while pos < lim and pos + 7 <= n:
            w0, w1, dl, pus = unpack(buf, pos)
            total = dl + 7
            if (w0 & 0xE800 == 0x0800 and w1 >> 14 == 3 and pus >> 4 == 2
                    and total >= (min_tc if w0 & 0x1000 else min_tm)):
                end = pos + total
                if end > n:
                    if not final:
                        break
                    why = f"truncated packet: its header says {total} bytes, {n - pos} left in the file"
                elif not verify or not crc(view[pos:end]):
                    if skip_start is not None:
                        skips.append(Skip(skip_start, base + pos - skip_start, reason))
                        skip_start = None
                    starts.append(pos)
                    lengths.append(total)
                    pos = end
                    if one_packet:
                        self.skip_start = None
                        return pos, False
                    continue
                else:
                    why = f"CRC mismatch in a {total}-byte packet"
            else:
                why = "no valid packet header"
            if skip_start is None:
                skip_start = base + pos
                reason = why
            pos += 1
        if final and pos < lim:
            if skip_start is None:
                skip_start = base + pos
                reason = f"truncated: {n - pos} trailing bytes, too short for a packet"
            pos = n
        if final or limited:
            if skip_start is not None:
                skips.append(Skip(skip_start, base + pos - skip_start, reason))
                skip_start = None
        self.skip_start = skip_start
        self.skip_reason = reason
        return pos, True


def _open(source: str | os.PathLike[str] | BinaryIO) -> tuple[BinaryIO, bool]:
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb"), True
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source), True
    return source, False


def frame_windows(source: str | os.PathLike[str] | BinaryIO, verify_crc: bool, chunk_size: int,
                  on_progress: ProgressCallback | None, bulk: bool = True
                  ) -> Iterator[tuple[bytes, int, np.ndarray, np.ndarray, list[Skip]]]:
    """The framing layer under the readers: ``(window, file offset of window, packet starts in
    window, lengths, skips)`` per chunk of about ``chunk_size`` bytes read; starts and lengths are
    int64 arrays. ``bulk`` False applies the framing rule byte by byte only (:class:`Framer`)."""
    f, owned = _open(source)
    try:
        framer = Framer(verify_crc, bulk)
        # A file of our own is re-read from the first unconsumed byte rather than having the
        # unconsumed tail (at most a packet) joined to the next chunk: the join copied the window.
        reread = owned and f.seekable()
        origin = f.tell() if reread else 0
        carry = b""  # the unconsumed tail of the last window
        base = 0
        while True:
            if reread:
                f.seek(origin + base)
                buf = f.read(chunk_size + len(carry))
                new = len(buf) - len(carry)
            else:
                chunk = f.read(chunk_size)
                new = len(chunk)
                buf = carry + chunk if carry else chunk
            final = new <= 0
            skips: list[Skip] = []
            starts, lengths, used = framer.frame(buf, base, final, skips)
            carry = b"" if final else buf[used:]
            if len(starts) or skips:
                # handed over, not kept: a consumer that lets go of the window frees it
                held = [(buf, base, starts, lengths, skips)]
                del buf
                yield held.pop()
            if on_progress is not None and new > 0:
                on_progress(new)
            if final:
                return
            base += used
    finally:
        if owned:
            f.close()


def iter_capture(source: str | os.PathLike[str] | BinaryIO | bytes, on_skip: SkipCallback | None = None,
                 verify_crc: bool = True, *, chunk_size: int = CHUNK_SIZE,
                 on_progress: ProgressCallback | None = None) -> Iterator[CapturedPacket]:
    """Every intact packet of a capture, decoded, in file order; constant memory.

    ``source`` is a path, an open binary file, or bytes. Skipped byte ranges go to ``on_skip`` (in
    file order, before the packets that follow them). ``on_progress(n)`` is called with the number
    of bytes read after each chunk. Raises OSError if the file cannot be opened or read.
    """
    for buf, base, starts, lengths, skips in frame_windows(source, verify_crc, chunk_size, on_progress):
        pending = iter(skips)
        skip = next(pending, None)
        for start, length in zip(starts.tolist(), lengths.tolist()):
            while skip is not None and skip.offset < base + start:
                if on_skip is not None:
                    on_skip(skip)
                skip = next(pending, None)
            raw = buf[start:start + length]
            try:
                packet = fast_decode(raw, verify_crc=False)
            except PacketDecodeError as exc:
                if on_skip is not None:
                    on_skip(Skip(base + start, length, f"undecodable packet: {exc}"))
                continue
            yield CapturedPacket(base + start, raw, packet)
        while skip is not None:
            if on_skip is not None:
                on_skip(skip)
            skip = next(pending, None)


def iter_raw_packets(source: str | os.PathLike[str] | BinaryIO | bytes, on_skip: SkipCallback | None = None,
                     verify_crc: bool = True, *, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[int, bytes]]:
    """``(file offset, packet bytes)`` of every packet that frames and checks, without decoding."""
    for buf, base, starts, lengths, skips in frame_windows(source, verify_crc, chunk_size, None):
        if on_skip is not None:
            for skip in skips:
                on_skip(skip)
        for start, length in zip(starts.tolist(), lengths.tolist()):
            yield base + start, buf[start:start + length]


# ----------------------------------------------------------------------------------------------
# Bulk path: numpy header columns for a whole window at once

_TM_OFF = field_offsets(TM_HEADER_FIELDS)
_TC_OFF = field_offsets(TC_HEADER_FIELDS)

#: columns of :meth:`PacketBatch.headers`
HEADER_DTYPE = np.dtype([
    ("offset", np.int64), ("length", np.int32), ("apid", np.uint16), ("seq", np.uint16),
    ("packet_type", np.uint8), ("service", np.uint8), ("subtype", np.uint8),
    ("msg_counter", np.uint16), ("dest_id", np.uint16), ("time_utc", np.float64), ("key", np.int32),
])


@dataclass(slots=True)
class PacketBatch:
    """The packets found in one window of a capture: ``buffer[starts[i]:starts[i]+lengths[i]]``
    is packet i, at file offset ``base + starts[i]``. CRCs were checked if asked.

    The one batch API of every capture reader: :meth:`headers` (every header field as numpy
    columns), :meth:`select` (which packets are of a kind), :meth:`raw` and :meth:`packets`
    (decode only those)."""

    buffer: bytes
    base: int
    starts: np.ndarray  #: int64
    lengths: np.ndarray  #: int32
    _headers: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.starts)

    def select(self, *, apid: int | None = None, service: int | None = None, subtype: int | None = None,
               key: int | None = None, telecommands: bool = False) -> np.ndarray:
        """Indices (file order) of the packets whose headers match every field given: telemetry
        packets (telecommands instead if ``telecommands``) of this APID, service, subtype and
        key (SID or function id: the first u16 of the application data)."""
        h = self.headers()
        ok = h["packet_type"] == (1 if telecommands else 0)
        for name, value in (("apid", apid), ("service", service), ("subtype", subtype), ("key", key)):
            if value is not None:
                ok &= h[name] == value
        return np.flatnonzero(ok)

    def offset(self, i: int) -> int:
        """File offset of packet ``i``."""
        return self.base + int(self.starts[i])

    def raw(self, i: int) -> bytes:
        """The bytes of packet ``i``."""
        start = int(self.starts[i])
        return self.buffer[start:start + int(self.lengths[i])]

    def packets(self, indices: Iterable[int], on_skip: SkipCallback | None = None) -> Iterator[tuple[int, P.Packet]]:
        """``(index, decoded packet)`` for each index, in the order given. A packet that frames and
        checks but whose application data does not decode is left out, reported to ``on_skip``
        as a :class:`Skip` if given."""
        for i in indices:
            i = int(i)
            try:
                yield i, fast_decode(self.raw(i), verify_crc=False)
            except PacketDecodeError as exc:
                if on_skip is not None:
                    on_skip(Skip(self.offset(i), int(self.lengths[i]), f"undecodable packet: {exc}"))

    def headers(self) -> np.ndarray:
        """Header fields of every packet as a structured array (:data:`HEADER_DTYPE`), vectorised
        (computed once per batch). ``key`` is the first u16 of the application data (SID /
        function id), -1 if none. TC packets have time_utc 0 and msg_counter 0; dest_id holds
        their source id."""
        if self._headers is None:
            self._headers = self._compute_headers()
        return self._headers

    def _compute_headers(self) -> np.ndarray:
        width = P.PRIMARY_HEADER_SIZE + P.TM_SECONDARY_HEADER_SIZE + 2  # headers and key of a TM packet
        a = np.frombuffer(self.buffer, np.uint8)
        s = self.starts
        n = len(s)
        out = np.empty(n, HEADER_DTYPE)
        if n == 0:
            return out
        if int(s[-1]) + width > len(a):  # a short telecommand at the very end: pad (rare)
            a = np.concatenate((a, np.zeros(width, np.uint8)))
        h = _bulk.gather_rows(a, s, width)  # one copy of the first bytes of each packet

        def u8(offset: int) -> np.ndarray:
            return h[:, offset]

        def u16(offset: int) -> np.ndarray:
            return h[:, offset:offset + 2].view(">u2")[:, 0]

        w0 = u16(_TM_OFF["primary.packet_id"])
        is_tc = (u8(_TM_OFF["primary.packet_id"]) & 0x10) != 0
        tm = ~is_tc
        out["offset"] = s + self.base
        out["length"] = self.lengths
        out["apid"] = w0 & 0x7FF
        out["seq"] = u16(_TM_OFF["primary.seq_ctrl"]) & 0x3FFF
        out["packet_type"] = is_tc
        out["service"] = u8(_TM_OFF["secondary.service"])
        out["subtype"] = u8(_TM_OFF["secondary.subtype"])
        secs = h[:, _TM_OFF["secondary.cuc_seconds"]:_TM_OFF["secondary.cuc_seconds"] + 4].view(">u4")[:, 0]
        # the same float operations as fast_decode: seconds + fraction / 65536.0
        out["time_utc"] = secs + u16(_TM_OFF["secondary.cuc_fraction"]) / 65536.0
        out["msg_counter"] = u16(_TM_OFF["secondary.msg_counter"])
        out["dest_id"] = u16(_TM_OFF["secondary.dest_id"])
        tm_key = P.PRIMARY_HEADER_SIZE + P.TM_SECONDARY_HEADER_SIZE
        out["key"] = u16(tm_key)
        if is_tc.any():  # TM fields read at TM offsets; telecommand rows are redone here
            tc = np.flatnonzero(is_tc)
            out["time_utc"][tc] = 0.0
            out["msg_counter"][tc] = 0
            out["dest_id"][tc] = u16(_TC_OFF["secondary.source_id"])[tc]
            out["key"][tc] = u16(P.PRIMARY_HEADER_SIZE + P.TC_SECONDARY_HEADER_SIZE)[tc]
        data_off = np.where(tm, tm_key, P.PRIMARY_HEADER_SIZE + P.TC_SECONDARY_HEADER_SIZE)
        no_key = self.lengths - data_off - P.PEC_SIZE < 2
        if no_key.any():
            out["key"][no_key] = -1
        return out


def iter_packet_batches(source: str | os.PathLike[str] | BinaryIO | bytes, on_skip: SkipCallback | None = None,
                        verify_crc: bool = True, *, chunk_size: int = 8 * CHUNK_SIZE,
                        on_progress: ProgressCallback | None = None, workers: int = 1) -> Iterator[PacketBatch]:
    """The packets of a capture a window at a time, for bulk work, every CRC checked (unless
    ``verify_crc`` is False). Same packets and skipped ranges as :func:`iter_capture`.

    Framing and CRCs go in bulk (bulk.py: thousands of candidates checked with numpy at once).
    ``workers`` > 1 (a path only) frames segments of the file in that many processes: checking
    CRCs is the cost, so this scales with cores. Memory stays bounded: at most 16 segments per
    worker are framed before they are asked for (their packet tables, 12 bytes a packet), and the
    bytes of one segment are read at a time.
    """
    if workers > 1 and isinstance(source, (str, os.PathLike)):
        yield from _parallel_batches(os.fspath(source), on_skip, verify_crc, chunk_size, on_progress, workers)
        return
    for window in frame_windows(source, verify_crc, chunk_size, on_progress):
        buf, base, starts, lengths, skips = window
        del window
        if on_skip is not None:
            for skip in skips:
                on_skip(skip)
        if len(starts):
            batch = [PacketBatch(buf, base, starts, lengths.astype(np.int32))]
            del buf
            yield batch.pop()  # not kept here: the consumer's letting go frees the window


# ----------------------------------------------------------------------------------------------
# Parallel framing: each worker frames one segment of the file; the parent splices them.


class _Segment(NamedTuple):
    start: int  #: file offset where framing began
    starts: np.ndarray  #: absolute file offsets of the packets found
    lengths: np.ndarray
    skips: list[Skip]
    end: int  #: file offset where the next segment's packets must begin


def _frame_segment(path: str, start: int, limit: int, size: int, verify_crc: bool) -> _Segment:
    """Frame the packets that start in ``[start, limit)`` of the file, from a fresh state at
    ``start`` (resynchronising if ``start`` falls inside a packet)."""
    with open(path, "rb") as f:
        f.seek(start)
        buf = f.read(limit - start + P.MAX_PACKET_SIZE)
    final = start + len(buf) >= size
    skips: list[Skip] = []
    framer = Framer(verify_crc)
    starts, lengths, used = framer.frame(buf, start, final, skips, None if limit >= size else limit - start)
    return _Segment(start, starts + start, lengths.astype(np.int32), skips, start + used)


def _frame_segment_args(args: tuple[str, int, int, int, bool]) -> _Segment:
    return _frame_segment(*args)


def _splice(seg: _Segment, expected: int) -> _Segment | None:
    """``seg`` restricted to what lies at or after ``expected``, if its framing lines up with it
    (its first packet or skipped range there starts exactly at ``expected``); else None."""
    i = int(np.searchsorted(seg.starts, expected))
    skips = [k for k in seg.skips if k.offset >= expected]
    first_packet = int(seg.starts[i]) if i < len(seg.starts) else None
    first_skip = skips[0].offset if skips else None
    first = min(x for x in (first_packet, first_skip, seg.end) if x is not None)
    if first != expected:
        return None
    return _Segment(expected, seg.starts[i:], seg.lengths[i:], skips, max(seg.end, expected))


def _in_order(pool: multiprocessing.pool.Pool, tasks: list[tuple[str, int, int, int, bool]], ahead: int
              ) -> Iterator[tuple[tuple[str, int, int, int, bool], _Segment]]:
    """Each task with its framed segment, in order, at most ``ahead`` segments framed before they
    are asked for: ``Pool.imap`` frames them all as fast as the workers go, and when the consumer
    is slower (an export), their packet tables pile up in the parent (12 bytes a packet, 30 MB a
    GB of capture). The workers are given half of ``ahead`` at a time, so that each frames a few
    segments in a row (given one at a time as the reader took one, they used 10-20 % more CPU
    time)."""
    waiting: collections.deque[tuple[tuple[str, int, int, int, bool], multiprocessing.pool.AsyncResult]] = \
        collections.deque()
    pending = iter(tasks)
    while True:
        if len(waiting) <= ahead // 2:
            for task in itertools.islice(pending, ahead - len(waiting)):
                waiting.append((task, pool.apply_async(_frame_segment_args, (task,))))
        if not waiting:
            return
        task, result = waiting.popleft()
        yield task, result.get()


def _parallel_batches(path: str, on_skip: SkipCallback | None, verify_crc: bool, segment_size: int,
                      on_progress: ProgressCallback | None, workers: int) -> Iterator[PacketBatch]:
    size = os.path.getsize(path)
    bounds = list(range(0, size, segment_size)) or [0]
    tasks = [(path, b, min(b + segment_size, size), size, verify_crc) for b in bounds]
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pending: Skip | None = None

    def report(skip: Skip) -> None:
        nonlocal pending
        if pending is not None and pending.offset + pending.length == skip.offset:
            pending = Skip(pending.offset, pending.length + skip.length, pending.reason)  # one range
            return
        if pending is not None and on_skip is not None:
            on_skip(pending)
        pending = skip

    expected = 0
    with ctx.Pool(workers) as pool, open(path, "rb") as f:
        for task, seg in _in_order(pool, tasks, 16 * workers):
            spliced = _splice(seg, expected) if task[1] > 0 else seg
            if spliced is None:  # the worker resynchronised on something else: redo it from here
                spliced = _frame_segment(path, expected, max(task[2], expected), size, verify_crc)
            for skip in spliced.skips:
                report(skip)
            if len(spliced.starts):
                if pending is not None and pending.offset + pending.length <= int(spliced.starts[0]):
                    if on_skip is not None:
                        on_skip(pending)
                    pending = None
                first = int(spliced.starts[0])
                f.seek(first)
                batch = [PacketBatch(f.read(int(spliced.starts[-1]) + int(spliced.lengths[-1]) - first), first,
                                     spliced.starts - first, spliced.lengths)]
                yield batch.pop()  # not kept here: the consumer's letting go frees the window
            expected = spliced.end
            if on_progress is not None:
                on_progress(task[2] - task[1])
    if pending is not None and on_skip is not None:
        on_skip(pending)
