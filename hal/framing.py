"""Board link framing: CRC-16/CCITT-FALSE, COBS, 0x00 delimiters, a resynchronising reader.

One frame on the wire (docs/protocol.md, "Framing")::

    COBS( type u8 | seq u8 | payload (0..MAX_PAYLOAD bytes) | crc16 u16 big-endian ) | 0x00

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) over
``type | seq | payload``; anycrc's CRC16-IBM-3740 (the catalogue's name for it) computes it in C,
several bytes per step: 4x ``binascii.crc_hqx`` on a 400-byte frame. COBS (``cobs`` package, C implementation)
removes every 0x00 from the body, so a 0x00 always ends a frame and a reader that lost its place
resynchronises at the next one.

:class:`FrameReader` is the deframer (esptool's ``slip_reader`` and fprime-gds's deframer are the
model): it keeps leftovers between reads, drops garbage and oversized frames, counts what it
dropped, and never raises on noise.
"""

from __future__ import annotations

import binascii
from typing import NamedTuple

import anycrc
from cobs import cobs

#: Largest payload in a frame, bytes (type, seq and CRC not included).
MAX_PAYLOAD = 1100
#: Largest decoded frame: type + seq + payload + CRC.
MAX_FRAME = 2 + MAX_PAYLOAD + 2
#: Largest encoded frame on the wire, delimiter included: COBS adds one byte per 254 plus one.
MAX_WIRE_FRAME = MAX_FRAME + MAX_FRAME // 254 + 1 + 1
#: Smallest decoded frame: type + seq + CRC.
MIN_FRAME = 4

DELIMITER = b"\x00"


_crc16 = anycrc.Model("CRC16-IBM-3740").calc


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value of ``b"123456789"`` is 0x29B1); ``crc``
    continues from a previous state."""
    if crc == 0xFFFF:
        return _crc16(data)
    return binascii.crc_hqx(data, crc)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Build one wire frame, trailing 0x00 included.

    Raises:
        ValueError: ``msg_type``/``seq`` outside 0..255 or ``payload`` longer than MAX_PAYLOAD.
    """
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD {MAX_PAYLOAD}")
    body = bytes((msg_type, seq)) + payload
    crc = _crc16(body)
    return cobs.encode(body + bytes((crc >> 8, crc & 0xFF))) + DELIMITER


class RawFrame(NamedTuple):
    """A frame that passed COBS and CRC checks. ``payload`` excludes type, seq and CRC.
    (A named tuple: immutable, and built every cycle at half the cost of a frozen dataclass.)"""

    type: int
    seq: int
    payload: bytes


class FrameReader:
    """Turns a byte stream into :class:`RawFrame` objects; never raises on bad input.

    Feed it whatever the port returned; it returns the complete good frames found so far and
    keeps a partial frame for the next call. The documented limits are enforced on receive: a
    frame whose encoded bytes (delimiter excluded) exceed ``max_wire_frame - 1`` is discarded up
    to the next delimiter without buffering it (the receive buffer is bounded), and a frame that
    decodes to more than :data:`MAX_FRAME` bytes (a payload over :data:`MAX_PAYLOAD`) is dropped
    as oversized too, so no frame a sender could not legally build ever reaches a handler.

    Counters (all monotonic): ``frames`` good frames, ``crc_errors`` frames whose CRC failed,
    ``cobs_errors`` frames that were not valid COBS, ``short_frames`` frames too short to hold
    type/seq/CRC, ``oversized`` frames longer than the maximum, ``dropped_bytes`` bytes thrown
    away for any of these reasons (delimiters not counted).
    """

    __slots__ = (
        "_buf", "_skipping", "max_wire_frame", "_max_encoded",
        "frames", "crc_errors", "cobs_errors", "short_frames", "oversized", "dropped_bytes",
    )

    def __init__(self, max_wire_frame: int = MAX_WIRE_FRAME) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.max_wire_frame = max_wire_frame
        # The limit applies to the frame's bytes before its delimiter.
        self._max_encoded = max_wire_frame - 1
        self.frames = 0
        self.crc_errors = 0
        self.cobs_errors = 0
        self.short_frames = 0
        self.oversized = 0
        self.dropped_bytes = 0

    @property
    def errors(self) -> int:
        """Frames dropped for any reason."""
        return self.crc_errors + self.cobs_errors + self.short_frames + self.oversized

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held for the next :meth:`feed`."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (after reopening the port); counters are kept."""
        self.dropped_bytes += len(self._buf)
        self._buf.clear()
        self._skipping = False

    def feed(self, data: bytes) -> list[RawFrame]:
        """Add ``data``; return the good frames it completed, in order."""
        out: list[RawFrame] = []
        last = len(data) - 1
        if 0 < last <= self._max_encoded and not self._buf and not self._skipping and data.find(0) == last:
            # The usual read: exactly one frame and its delimiter.
            self._take(data[:last], out)
            return out
        start = 0
        n = len(data)
        buf = self._buf
        while start < n:
            end = data.find(0, start)
            if end < 0:
                chunk_len = n - start
                if self._skipping:
                    self.dropped_bytes += chunk_len
                elif len(buf) + chunk_len > self._max_encoded:
                    # Too long to be a frame: drop it and everything up to the next delimiter.
                    self.oversized += 1
                    self.dropped_bytes += len(buf) + chunk_len
                    buf.clear()
                    self._skipping = True
                else:
                    buf += data[start:]
                break
            if self._skipping:
                self.dropped_bytes += end - start
                self._skipping = False
            elif buf:
                buf += data[start:end]
                if len(buf) > self._max_encoded:
                    self.oversized += 1
                    self.dropped_bytes += len(buf)
                else:
                    self._take(bytes(buf), out)
                buf.clear()
            elif end > start:
                if end - start > self._max_encoded:
                    self.oversized += 1
                    self.dropped_bytes += end - start
                else:
                    self._take(data[start:end], out)
            start = end + 1
        return out

    def _take(self, encoded: bytes, out: list[RawFrame]) -> None:
        try:
            body = cobs.decode(encoded)
        except cobs.DecodeError:
            self.cobs_errors += 1
            self.dropped_bytes += len(encoded)
            return
        if len(body) < MIN_FRAME:
            self.short_frames += 1
            self.dropped_bytes += len(encoded)
            return
        if len(body) > MAX_FRAME:
            # Fits the wire limit but carries a payload over MAX_PAYLOAD: not a legal frame.
            self.oversized += 1
            self.dropped_bytes += len(encoded)
            return
        if _crc16(body) != 0:
            # Running the CRC over data + big-endian CRC leaves 0 for a good frame.
            self.crc_errors += 1
            self.dropped_bytes += len(encoded)
            return
        self.frames += 1
        out.append(RawFrame(body[0], body[1], body[2:-2]))

    def counters(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "crc_errors": self.crc_errors,
            "cobs_errors": self.cobs_errors,
            "short_frames": self.short_frames,
            "oversized": self.oversized,
            "dropped_bytes": self.dropped_bytes,
        }
