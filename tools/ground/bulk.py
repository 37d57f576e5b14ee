"""Bulk capture work with numpy: CRC checks over many packets at once, speculative framing, and
raw-samples / housekeeping packets decoded into columns.

Reading a capture costs the CRC: ``binascii.crc_hqx`` runs at ~300 MB/s, 1.3 us for a 380-byte
raw-samples packet, and :data:`packets.crc16` (anycrc) 0.34 us. Here packets of equal length
are gathered into a ``(K, L)`` byte matrix and checked together (:func:`crc_ok_rows`), and the
framing walks the length fields and confirms a repeating pattern of lengths with one numpy
comparison (:class:`LengthWalker`) instead of one Python step per packet. capture.py uses both and
falls back to its byte-by-byte resynchronising framer wherever a candidate packet does not check,
so the packets and skipped ranges found are exactly those of the byte-by-byte rule.

How the CRC is vectorised. CRC-16/CCITT-FALSE is linear over GF(2): with ``T`` the map "append
16 zero bits to a 16-bit state" (``T[x] = x * z^16 mod 0x11021``, a bijection), a state ``c``
followed by the big-endian words ``w1, w2`` becomes ``T(T(c ^ w1) ^ w2) = T^2(c ^ w1 ^ T^-1(w2))``.
So the word pair ``(w1, w2)`` acts like the single word ``w1 ^ T^-1(w2)`` under ``T^2``: each pass
over a ``(K, n)`` word matrix halves ``n`` with one table look-up and one XOR per pair
(``T^-2^k`` at pass k), whole-matrix numpy operations rather than one per byte column. The initial
value 0xFFFF is folded into the first word; a packet is intact iff the CRC over all its bytes,
its CRC field included, is 0, and as every ``T^m`` is a bijection with ``T^m(0) = 0`` that is iff
the last remaining word is 0. Tables (64k entries each) are built on first use, one per pass.
"""

from __future__ import annotations

import threading
from typing import Any

import construct as cs
import numpy as np

from ...firmware.telemetry import packets as P
from ...firmware.telemetry.fields import FlatField, flatten

_POLY = 0x1021
#: below this many packets of one length, :data:`packets.crc16` per packet is cheaper than the tables
MIN_VECTOR_GROUP = 24

_tables: dict[str, Any] = {}


def _swap(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    return (((x >> 8) | (x << 8)) & 0xFFFF).astype(np.uint16)


def _t16() -> np.ndarray:
    """``T``: the CRC state after shifting 16 zero bits through state x (non-reflected, no init)."""
    table = _tables.get("t16")
    if table is None:
        c = np.arange(65536, dtype=np.uint32)
        for _ in range(16):
            c = np.where(c & 0x8000, (c << 1) ^ _POLY, c << 1) & 0xFFFF
        table = _tables["t16"] = c.astype(np.uint16)
    return table


def _t8_swapped() -> np.ndarray:
    """The classic byte table (state after shifting 8 zero bits through ``x << 8``), its entries
    XORed with 0xFF00 and byte-swapped: the state after the initial value and one byte b is
    ``table[b ^ 0xFF]`` in the byte-swapped representation (see :func:`crc_ok_rows`)."""
    table = _tables.get("t8")
    if table is None:
        c = np.arange(256, dtype=np.uint32) << 8
        for _ in range(8):
            c = np.where(c & 0x8000, (c << 1) ^ _POLY, c << 1) & 0xFFFF
        table = _tables["t8"] = _swap(c ^ 0xFF00)
    return table


def _power(level: int) -> np.ndarray:
    """``T^(2^level)`` as a table."""
    key = f"pow{level}"
    table = _tables.get(key)
    if table is None:
        below = _t16() if level == 1 else _power(level - 1)
        table = _tables[key] = below[below]
    return table


def _inverse_power_swapped(level: int) -> np.ndarray:
    """``T^-(2^level)`` as a table indexed by, and holding, byte-swapped values."""
    key = f"inv{level}"
    table = _tables.get(key)
    if table is None:
        power = _t16() if level == 0 else _power(level)
        inverse = np.empty(65536, np.uint16)
        inverse[power] = np.arange(65536, dtype=np.uint16)
        table = _tables[key] = _swap(inverse[_swap(np.arange(65536, dtype=np.uint32))])
    return table


class _Scratch(threading.local):
    """Grow-only work buffers reused between calls, one set per thread: fresh multi-megabyte
    arrays cost a page fault per 4 kB on every call, which was more than the table look-ups."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self._buffers[name] = np.empty(max(size, 1 << 16), np.uint8)
        return buf[:size].view(dtype).reshape(shape)


_scratch = _Scratch()


def crc_ok_rows(rows: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """For a ``(K, L)`` uint8 matrix of K whole packets of L >= 3 bytes each (each row
    contiguous): a bool array, True where the CRC-16/CCITT-FALSE over the row (CRC field
    included) is 0, i.e. where the packet checks. With ``overwrite`` the first two bytes of each
    row may be changed (saves a copy of the matrix).

    The words are read in the machine's (little-endian) order and the tables hold byte-swapped
    values, which saves a byte-swapping pass: XOR commutes with swapping bytes, and a result is
    zero in either order."""
    k, length = rows.shape
    if k == 0:
        return np.zeros(0, bool)
    odd = length % 2
    n = (length - odd) // 2
    if overwrite and rows.strides[1] == 1:
        words = rows[:, odd:].view(np.uint16)  # read in place; only its first word is written
    else:
        words = _scratch.get("a", (k, n), np.uint16)
        np.copyto(words, rows[:, odd:].view(np.uint16))
    if odd:  # the first byte alone moves the initial state; the rest are whole words
        words[:, 0] ^= _t8_swapped()[rows[:, 0] ^ 0xFF]
    else:
        words[:, 0] ^= np.uint16(0xFFFF)
    level = 0
    spare = "b"
    while n > 1:
        inv = _inverse_power_swapped(level)
        half = n // 2
        pairs = _scratch.get(spare, (k, half + n % 2), np.uint16)
        if n % 2:  # an odd word count: a zero word in front of the first (T(0) = 0 changes nothing)
            np.take(inv, words[:, 0], out=pairs[:, 0], mode="clip")
            body = pairs[:, 1:]
            np.take(inv, words[:, 2::2], out=body, mode="clip")
            np.bitwise_xor(body, words[:, 1::2], out=body)
        else:
            np.take(inv, words[:, 1::2], out=pairs, mode="clip")
            np.bitwise_xor(pairs, words[:, 0::2], out=pairs)
        spare = "a" if spare == "b" else "b"
        words = pairs
        n = words.shape[1]
        level += 1
    return words[:, 0] == 0


def gather_rows(a: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``a[s:s+length]`` for each s in ``starts`` as one ``(len(starts), length)`` uint8 matrix."""
    # fancy indexing copies row by row; np.take on the same view walks the whole view (slow)
    return np.lib.stride_tricks.sliding_window_view(a, length)[starts]


def crc_ok(a: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """True for each packet ``a[starts[i]:starts[i]+lengths[i]]`` whose CRC checks. Packets are
    grouped by length; large groups go through :func:`crc_ok_rows`, small ones through
    :data:`packets.crc16`."""
    ok = np.zeros(len(starts), bool)
    if not len(starts):
        return ok
    values, inverse, counts = np.unique(lengths, return_inverse=True, return_counts=True)
    small: list[int] = []
    for g, (length, count) in enumerate(zip(values.tolist(), counts.tolist())):
        members = np.flatnonzero(inverse == g) if len(values) > 1 else np.arange(len(starts))
        if count >= MIN_VECTOR_GROUP:
            ok[members] = crc_ok_rows(gather_rows(a, starts[members], length), overwrite=True)
        else:
            small.extend(members.tolist())
    if small:
        view = memoryview(a)
        crc = P.crc16
        st = starts.tolist()
        ln = lengths.tolist()
        for i in small:
            ok[i] = not crc(view[st[i]:st[i] + ln[i]])
    return ok


def plausible(a: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rule 1 of the framing (capture.py) for each candidate start, vectorised: packet version 0,
    secondary header flag 1, sequence flags 3, PUS version 2, a length at least that of the
    smallest packet of its type. Every ``starts[i] + 7`` must lie inside ``a``."""
    b0 = a[starts]
    return (((b0 & 0xE8) == 0x08) & (a[starts + 2] >= 0xC0) & ((a[starts + 6] >> 4) == 2)
            & (lengths >= np.where(b0 & 0x10, P.MIN_TC_SIZE, P.MIN_TM_SIZE)))


def _period(lengths: list[int]) -> int:
    """The smallest period P (P <= len/2) of the whole list of lengths, 0 if none."""
    for p in range(1, len(lengths) // 2 + 1):
        if lengths[p:] == lengths[:-p]:
            return p
    return 0


class _Pattern:
    """A repeating sequence of packet lengths and the index grids to test it ``reps`` times."""

    def __init__(self, lengths: tuple[int, ...], max_reps: int) -> None:
        self.lengths = lengths
        pattern = np.asarray(lengths, np.int64)
        self.period = len(lengths)
        self.span = int(pattern.sum())
        offsets = np.concatenate((np.zeros(1, np.int64), np.cumsum(pattern[:-1])))
        #: start of packet j of repetition k, relative to the first
        self.starts = (np.arange(max_reps, dtype=np.int64) * self.span)[:, None] + offsets[None, :]
        self.all_lengths = np.broadcast_to(pattern, self.starts.shape)
        self.hi = (pattern - 7) >> 8  #: expected length field bytes
        self.lo = (pattern - 7) & 0xFF
        self.max_reps = max_reps


class LengthWalker:
    """Follows the chain of length fields through a window: each candidate packet starts where
    the previous one ends. :meth:`walk` returns the candidates; nothing is checked but the
    lengths (the caller checks headers and CRCs).

    A capture is mostly a repeating pattern of lengths (ten raw-samples packets, a housekeeping
    report, ...). After a few Python steps show a period, the length fields of the following
    repetitions are compared with a handful of numpy operations, and Python steps resume where
    the pattern breaks (an event, a layout report); the pattern is remembered, so once the
    sequence is back in step (any rotation of it) the comparison resumes after one period. The
    result is exactly the chain a step-by-step walk finds, whatever the speculation.
    """

    STEPS = 32  #: Python steps looked at to find a new period

    def __init__(self, max_packets: int) -> None:
        self.max_packets = max_packets
        self._rotations: dict[tuple[int, ...], _Pattern] = {}
        self._period = 0

    def _learn(self, lengths: list[int]) -> None:
        pattern = tuple(lengths)
        reps = self.max_packets // len(pattern) + 2
        self._period = len(pattern)
        self._rotations = {}
        for r in range(len(pattern)):
            rotation = pattern[r:] + pattern[:r]
            if rotation not in self._rotations:
                self._rotations[rotation] = _Pattern(rotation, reps)

    def walk(self, buf: bytes, a: np.ndarray, pos: int, limit: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Candidates from ``pos``: stops before one that starts at or after ``limit``, whose
        length field is not wholly inside ``buf`` or that does not end inside ``buf``, and after
        about ``max_packets``. Returns (starts, lengths, position after the last one), int64."""
        n = len(buf)
        end = min(limit, n)
        most = self.max_packets
        pieces_s: list[Any] = []
        pieces_l: list[Any] = []
        ps: list[int] = []
        pl: list[int] = []
        found = 0
        recent: list[int] = []
        while found < most:
            if pos >= end or pos + 6 > n:
                break
            total = ((buf[pos + 4] << 8) | buf[pos + 5]) + 7
            if pos + total > n:
                break
            ps.append(pos)
            pl.append(total)
            pos += total
            found += 1
            recent.append(total)
            period = self._period
            pattern = None
            if period and len(recent) >= period:
                pattern = self._rotations.get(tuple(recent[-period:]))
            if pattern is None and len(recent) >= self.STEPS and len(recent) % 8 == 0:
                period = _period(recent[-self.STEPS:])
                if period:
                    self._learn(recent[-period:])
                    pattern = self._rotations[tuple(recent[-period:])]
            if pattern is None:
                continue
            recent = []
            reps = min((end - pos) // pattern.span, (most - found) // pattern.period + 1, pattern.max_reps)
            if reps < 1:
                continue
            heads = pattern.starts[:reps] + pos
            same = (a[heads + 4] == pattern.hi) & (a[heads + 5] == pattern.lo)
            whole = same.all(axis=1)
            good = reps if whole.all() else int(whole.argmin())
            if good:
                pieces_s.append(ps)
                pieces_l.append(pl)
                pieces_s.append(heads[:good].ravel())
                pieces_l.append(pattern.all_lengths[:good].ravel())
                ps = []
                pl = []
                found += good * pattern.period
                pos += good * pattern.span
        pieces_s.append(ps)
        pieces_l.append(pl)
        if len(pieces_s) == 1:
            return np.asarray(ps, np.int64), np.asarray(pl, np.int64), pos
        return (np.concatenate([np.asarray(x, np.int64) for x in pieces_s]),
                np.concatenate([np.asarray(x, np.int64) for x in pieces_l]), pos)


# ----------------------------------------------------------------------------------------------
# Columns of raw-samples and housekeeping packets: numpy structured dtypes derived from the
# construct declarations (through fields.flatten), never typed by hand.

_NUMPY_CODE = {"B": "u1", "b": "i1", "H": ">u2", "h": ">i2", "I": ">u4", "i": ">i4", "L": ">u4", "l": ">i4",
               "Q": ">u8", "q": ">i8", "f": ">f4", "d": ">f8"}


def dtype_of(fields: list[FlatField]) -> np.dtype:
    """A packed numpy structured dtype equivalent to flattened fields: one named field per path
    (arrays as sub-arrays). Raises TypeError for a code numpy has no equivalent for."""
    names: list[str] = []
    formats: list[Any] = []
    for f in fields:
        if f.code == "s":
            fmt: Any = f"S{f.count}"
        elif f.code in _NUMPY_CODE:
            fmt = (_NUMPY_CODE[f.code], (f.count,)) if f.is_array or f.count != 1 else _NUMPY_CODE[f.code]
        else:
            raise TypeError(f"{f.path}: struct code {f.code!r} has no numpy equivalent")
        names.append(f.path)
        formats.append(fmt)
    return np.dtype({"names": names, "formats": formats})  # packed: no alignment padding


def _packet_fields(body: Any, counts: dict[str, int]) -> list[FlatField]:
    decl = cs.Struct("primary" / P.PRIMARY_HEADER, "secondary" / P.TM_SECONDARY_HEADER,
                     "data" / body, "pec" / cs.Int16ub)
    return flatten(decl, counts)


_DTYPE_CACHE: dict[tuple, np.dtype] = {}


def raw_samples_dtype(n_pressure: int, n_temperature: int, n_flow: int, n_valves: int) -> np.dtype:
    """The whole raw-samples packet (headers, data, CRC) for these channel counts, as a numpy dtype
    whose field names are the declaration's paths (``data.pressure``, ``secondary.cuc_seconds``)."""
    key = ("raw", n_pressure, n_temperature, n_flow, n_valves)
    dt = _DTYPE_CACHE.get(key)
    if dt is None:
        dt = _DTYPE_CACHE[key] = dtype_of(_packet_fields(P.RAW_SAMPLES_BODY, {
            "n_pressure": n_pressure, "n_temperature": n_temperature, "n_flow": n_flow, "n_valves": n_valves}))
    return dt


def housekeeping_dtype(n_modules: int, n_valves: int) -> np.dtype:
    """The whole housekeeping packet for these counts as a numpy dtype (``data.modules[2].status``...)."""
    key = ("hk", n_modules, n_valves)
    dt = _DTYPE_CACHE.get(key)
    if dt is None:
        dt = _DTYPE_CACHE[key] = dtype_of(_packet_fields(P.HOUSEKEEPING_BODY, {
            "n_modules": n_modules, "n_valves": n_valves}))
    return dt
