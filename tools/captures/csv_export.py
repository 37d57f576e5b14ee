"""Bulk CSV export for ``hullwatch decode --format csv``: the same bytes as the row-by-row path
(decode_format's RowBuilder and the csv module), several times faster per CPU second, and in
several processes for big captures.

A capture is mostly raw-samples packets (one per cycle, ~80-140 columns each) and housekeeping
reports. Those two kinds are turned into text a block of rows at a time (:func:`render`):

- their fields are read for the whole block through numpy structured dtypes derived from the
  construct declarations (firmware/telemetry/bulk.py);
- every number of the block goes through one ``orjson.dumps`` of a float64 matrix: orjson writes
  the shortest text that reads back to the same float64, the digits of Python's ``repr`` (what
  the csv module writes); the values ``repr`` lays out differently (below 1e-4 in magnitude,
  where it uses an exponent, and nan/inf) are written by ``repr`` itself, once per distinct value;
- text columns (UTC, kind names, enum names, empty columns) stand in that matrix as place holders
  and are written over them; integers lose orjson's ``.0``; what is to go becomes NUL, and one
  pass drops the NULs, which leaves the CSV lines.

Every other packet (layout reports, events, telecommands, undecodable or unusual packets) takes
the row-by-row path, and the rows are written in file order. Memory is that of a window of the
capture (8 MB, or a 4 MB segment per worker process) and its rows, whatever the capture's size.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import orjson

from ...firmware.errors import PacketDecodeError
from ..ground import bulk
from ...firmware.telemetry import packets as P
from ..ground.capture import PacketBatch, Skip, iter_packet_batches
from ...firmware.telemetry.fastcodec import fast_decode
from ...firmware.types import FdirMode, IsolationState, ModuleStatus, ValveHealth
from .formats import RowBuilder, Selector, _enum_name

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_COMMA, _NEWLINE = ord(","), ord("\n")
#: rows rendered together (bounds the matrices to a few MB)
ROWS_PER_BLOCK = 2048


# ----------------------------------------------------------------------------------------------
# text cells that are not numbers


def _name_table(cls: Any) -> np.ndarray:
    """The text RowBuilder writes for each u8 code of an enum, as a bytes array."""
    return np.array([_enum_name(cls, code).encode("ascii") for code in range(256)])


def name_cells(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[code]`` for each code as ``(k, w)`` uint8 cells, NUL padded."""
    text = table[codes]
    return text.view(np.uint8).reshape(len(codes), text.dtype.itemsize)


def utc_cells(t: np.ndarray) -> np.ndarray:
    """``decode_format.iso_utc`` of each UTC time as ``(k, 24)`` uint8 cells (all NUL where it
    is empty: not finite or not after 1970)."""
    k = len(t)
    valid = np.isfinite(t) & (t > 0)
    ms = np.rint(np.where(valid, t, 0.0) * 1000.0).astype(np.int64)  # round() is half-even too
    second, milli = np.divmod(ms, 1000)
    out = np.zeros((k, 24), np.uint8)
    distinct, inverse = np.unique(second, return_inverse=True)  # ten rows a second, or more
    date = np.datetime_as_string(distinct.astype("datetime64[s]"), unit="s").astype("S19")
    out[:, :19] = date.view(np.uint8).reshape(len(distinct), 19)[inverse]
    out[:, 19] = ord(".")
    out[:, 20] = 48 + milli // 100
    out[:, 21] = 48 + milli // 10 % 10
    out[:, 22] = 48 + milli % 10
    out[:, 23] = ord("Z")
    out[~valid] = 0
    return out


def round4(x: np.ndarray) -> np.ndarray:
    """``[round(v, 4) for v in x]`` (Python's correctly rounded decimal rounding), vectorised:
    ``rint(x * 1e4) / 1e4`` is exact unless ``x * 1e4`` lies within a few ulps of a half, where
    the product's own rounding could tip it; those few go through ``round``."""
    p = x * 1e4
    y = np.rint(p) / 1e4
    with np.errstate(invalid="ignore"):
        risky = ~(np.abs(p) < 2.0 ** 52) | (np.abs(np.abs(p - np.floor(p)) - 0.5) <= 4 * np.spacing(np.abs(p)))
    for i in np.flatnonzero(risky).tolist():
        y[i] = round(float(x[i]), 4)
    return y


# ----------------------------------------------------------------------------------------------
# rows: one orjson call per block of rows, then edits in place

#: orjson writes this float as 24 characters, the longest ``repr`` of a float64: a place holder
#: for text, overwritten once orjson has laid the row out
_HOLDER = -1.2345678901234567e+100
_SLOT = 24
_NUL = 0
#: "0".."255" as 3 bytes, NUL padded: u8 values are written over the "0.0" orjson writes for a
#: zero (it writes 0.0 in a few ns, other small floats in ~20)
_U8_TEXT = np.array([str(i).encode("ascii") for i in range(256)], dtype="S3").view(np.uint8).reshape(256, 3)

#: a column's values for every row: ("f", float64 values), ("i", integer values, |v| < 1e15),
#: ("u", values 0..255), ("c", (k, w) uint8 text cells, NUL padded) or ("l", the same bytes for
#: every row)
Column = tuple[str, Any]


def render(columns: dict[int, Column], n_columns: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The CSV lines of k rows, columns missing from ``columns`` empty: the text (uint8) and
    where each line ends in it.

    The rows are laid out as one float64 matrix, one value per number column, and written by a
    single ``orjson.dumps`` (``[[v,v,...],[v,...]]``). Runs of text columns stand in the matrix
    as place holders of 24 characters each, enough for their text and commas. Then, in place:
    integers lose their ``.0``; the place holders and the values ``repr`` writes differently
    (below 1e-4 in magnitude; nan, inf) take their text; the brackets become line ends. Whatever
    is to go is set to NUL, and one pass drops the NULs.
    """
    tokens: list[tuple[str, Any]] = []  # ("f"|"i", values) or ("t", text content)
    run: list[Any] = []  # the text columns of the run being gathered (None = empty)

    def close_run() -> None:
        if not run:
            return
        parts: list[np.ndarray] = []
        for j, part in enumerate(run):
            if j:
                parts.append(np.full((k, 1), _COMMA, np.uint8))
            if part is not None:
                parts.append(part)
        content = np.concatenate(parts, axis=1) if parts else np.zeros((k, 0), np.uint8)
        holders = max(1, -(-(content.shape[1] + 1) // (_SLOT + 1)))
        tokens.append(("t", (content, holders)))
        run.clear()

    for c in range(n_columns):
        col = columns.get(c)
        if col is None:
            run.append(None)
        elif col[0] == "c":
            run.append(col[1])
        elif col[0] == "l":
            run.append(np.broadcast_to(np.frombuffer(col[1], np.uint8), (k, len(col[1]))))
        else:
            close_run()
            tokens.append(col)
    close_run()

    width = sum(v[1] if kind == "t" else 1 for kind, v in tokens)
    mt = np.empty((width, k), np.float64)  # filled a column at a time (contiguous), then transposed
    token_of: list[int] = []  # first matrix column of each token
    fixes: list[tuple[int, np.ndarray, np.ndarray]] = []  # (matrix column, rows, values) for repr
    j = 0
    for kind, v in tokens:
        token_of.append(j)
        if kind == "t":
            mt[j:j + v[1]] = _HOLDER
            j += v[1]
            continue
        row = mt[j]
        if kind == "u":
            row[:] = 0.0
            j += 1
            continue
        row[:] = v
        if kind == "f":
            odd = ~np.isfinite(row)
            odd |= (row != 0) & (np.abs(row) < 1e-4)  # repr 1e-05, orjson 0.00001
            if odd.any():
                rows = np.flatnonzero(odd)
                fixes.append((j, rows, row[rows].copy()))
                row[rows] = _HOLDER
        j += 1

    text = orjson.dumps(np.ascontiguousarray(mt.T), option=_NUMPY)
    buf = bytearray(text)  # a writable copy
    t = np.frombuffer(buf, np.uint8)
    # Every value but a row's last ends at a ","; the "," between rows follows the row's "]". With
    # the final "]" standing for the last row's, there are ``width`` commas per row.
    commas = np.flatnonzero(t == _COMMA)
    if len(commas) != k * width - 1:  # cannot happen with numbers: a guard against misalignment
        raise AssertionError(f"orjson laid out {len(commas) + 1} separators for {k} x {width} values")
    seps = np.empty(k * width, np.int64)
    seps[:-1] = commas
    seps[-1] = len(t) - 1
    seps = seps.reshape(k, width)
    row_end = seps[:, width - 1] - 1  # each row's "]"

    def ends(col: int | list[int]) -> np.ndarray:
        """Where the values of matrix column(s) ``col`` end (the "," or "]" after them)."""
        if isinstance(col, int):
            return seps[:, col] if col < width - 1 else row_end
        if max(col) < width - 1:
            return seps[:, col]
        return np.where(np.asarray(col) < width - 1, seps[:, col], row_end[:, None])

    def starts(col: int) -> np.ndarray:
        if col:
            return ends(col - 1) + 1
        first = np.empty(k, np.int64)
        first[0] = 2  # after "[["
        first[1:] = seps[:-1, width - 1] + 2  # after "],["
        return first

    ints = [token_of[i] for i, (kind, _) in enumerate(tokens) if kind in "iu"]
    if ints:
        at = ends(ints)
        t[at - 1] = _NUL  # "7.0" -> "7", and a u8's "0.0" -> "0"
        t[at - 2] = _NUL
    small = [i for i, (kind, _) in enumerate(tokens) if kind == "u"]
    if small:  # u8 values: the digits of those that are not 0, over their "0.0"
        values = np.empty((len(small), k), np.uint8)
        for row, i in zip(values, small):
            row[:] = tokens[i][1]
        nonzero = np.flatnonzero(values)
        if len(nonzero):
            cols = np.asarray([token_of[i] for i in small])
            col, row = np.divmod(nonzero, k)
            first = ends(cols)[row, col] - 3
            digits = _U8_TEXT[values.ravel()[nonzero]]
            for d in range(3):
                keep = digits[:, d] != 0
                t[first[keep] + d] = digits[keep, d]
    for i, (kind, v) in enumerate(tokens):
        if kind != "t":
            continue
        content, holders = v
        span = holders * (_SLOT + 1) - 1
        windows = np.lib.stride_tricks.sliding_window_view(t, span, writeable=True)
        filled = np.zeros((k, span), np.uint8)
        filled[:, :content.shape[1]] = content
        windows[starts(token_of[i])] = filled
    if fixes:
        windows = np.lib.stride_tricks.sliding_window_view(t, _SLOT, writeable=True)
        for j, rows, values in fixes:
            distinct, inverse = np.unique(values, return_inverse=True)
            texts = np.array([repr(v).encode("ascii") for v in distinct.tolist()], dtype=f"S{_SLOT}")
            windows[starts(j)[rows]] = texts.view(np.uint8).reshape(len(distinct), _SLOT)[inverse]
    t[row_end] = _NEWLINE
    t[seps[:, width - 1]] = _NUL  # the "," between rows, and the last "]"
    t[seps[:-1, width - 1] + 1] = _NUL  # "[" of the next row
    t[:2] = _NUL  # "[["
    out = np.frombuffer(buf.translate(None, b"\0"), np.uint8)
    return out, np.flatnonzero(out == _NEWLINE) + 1


class _KindRows:
    """Text of the rows of one packet kind (raw samples or housekeeping) for RowBuilder's columns."""

    name = ""

    def __init__(self, rows: RowBuilder, dtype: np.dtype) -> None:
        self.rows = rows
        self.dtype = dtype
        self.size = dtype.itemsize  #: packet length in bytes

    def text(self, a: np.ndarray, starts: np.ndarray, h: np.ndarray,
             t_mission: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The CSV lines of these packets (all of this kind and layout): text and line ends."""
        rec = bulk.gather_rows(a, starts, self.size).view(self.dtype)[:, 0]
        cols: dict[int, Column] = {
            0: ("i", h["offset"]), 1: ("c", utc_cells(h["time_utc"])), 2: ("f", h["time_utc"]),
            3: ("f", round4(t_mission)), 4: ("l", self.name.encode("ascii")), 5: ("i", h["apid"]),
            6: ("l", b"TM"), 7: ("u", h["service"]), 8: ("u", h["subtype"]), 9: ("i", h["seq"]),
            10: ("i", h["msg_counter"])}
        self.columns(rec, cols)
        return render(cols, len(self.rows.columns), len(starts))

    def columns(self, rec: np.ndarray, cols: dict[int, Column]) -> None:
        raise NotImplementedError


class RawRows(_KindRows):
    """raw_samples rows (the channel counts of the RowBuilder's layout)."""

    name = "raw_samples"

    def __init__(self, rows: RowBuilder) -> None:
        n_p, n_t, n_f, n_v = rows.counts[:4]
        super().__init__(rows, bulk.raw_samples_dtype(n_p, n_t, n_f, n_v))
        self.counts = (n_p, n_t, n_f, n_v)

    def columns(self, rec: np.ndarray, cols: dict[int, Column]) -> None:
        r = self.rows
        cols[r.index["cycle"]] = ("i", rec["data.cycle"])
        for name, start in (("pressure", r._p), ("temperature", r._t), ("flow", r._f)):
            values, status = rec[f"data.{name}"], rec[f"data.{name}_status"]
            for i in range(values.shape[1]):
                cols[start + 2 * i] = ("f", values[:, i])
                cols[start + 2 * i + 1] = ("u", status[:, i])
        cmd, fb, vs = rec["data.valve_cmd"], rec["data.valve_fb"], rec["data.valve_status"]
        for i in range(cmd.shape[1]):
            cols[r._v + 2 * i] = ("u", cmd[:, i])
            cols[r._v + 2 * i + 1] = ("f", fb[:, i])
            cols[r._vs + i] = ("u", vs[:, i])

    def matches(self, a: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Whether each raw-samples packet has the layout's channel counts (its length matched)."""
        at = (self.dtype.fields or {})["data.n_pressure"][1]
        ok = np.ones(len(starts), bool)
        for j, count in enumerate(self.counts):
            ok &= a[starts + at + j] == count
        return ok


class HousekeepingRows(_KindRows):
    """housekeeping rows (the module and valve counts of the RowBuilder's layout)."""

    name = "housekeeping"
    _MODULE_FLOATS = ("pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s")

    def __init__(self, rows: RowBuilder) -> None:
        self.n_modules, self.n_valves = rows.counts[4], rows.counts[3]
        super().__init__(rows, bulk.housekeeping_dtype(self.n_modules, self.n_valves))
        self._modes = _name_table(FdirMode)
        self._isolation = _name_table(IsolationState)
        self._module_status = _name_table(ModuleStatus)
        self._valve_health = _name_table(ValveHealth)

    def columns(self, rec: np.ndarray, cols: dict[int, Column]) -> None:
        r = self.rows
        ix = r.index
        cols[ix["cycle"]] = ("i", rec["data.cycle"])
        for key in ("cycle_time_us", "max_cycle_time_us", "overruns", "link_errors", "sensors_failed"):
            cols[ix[key]] = ("i", rec[f"data.{key}"])
        cols[ix["link_up"]] = ("u", rec["data.link_up"] != 0)
        cols[ix["mode"]] = ("c", name_cells(self._modes, rec["data.mode"]))
        cols[ix["isolation_state"]] = ("c", name_cells(self._isolation, rec["data.isolation_state"]))
        for i in range(self.n_modules):
            for j, name in enumerate(self._MODULE_FLOATS):
                cols[r._m + 5 * i + j] = ("f", rec[f"data.modules[{i}].{name}"])
            cols[r._m + 5 * i + 4] = ("c", name_cells(self._module_status, rec[f"data.modules[{i}].status"]))
        for i in range(self.n_valves):
            cols[r._v + 2 * i] = ("u", rec[f"data.valves[{i}].cmd"])
            cols[r._v + 2 * i + 1] = ("f", rec[f"data.valves[{i}].fb"])
            cols[r._vh + i] = ("c", name_cells(self._valve_health, rec[f"data.valves[{i}].health"]))

    def matches(self, a: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Whether each housekeeping packet has the layout's module and valve counts."""
        fields = self.dtype.fields or {}
        ok = a[starts + fields["data.n_modules"][1]] == self.n_modules
        ok &= a[starts + fields["data.n_valves"][1]] == self.n_valves
        return ok


# ----------------------------------------------------------------------------------------------
# the export


@dataclass
class ExportStats:
    rows: int = 0  #: CSV rows written (the header not counted)
    fast_rows: int = 0  #: of which raw-samples and housekeeping rows made in bulk
    skips: int = 0  #: skipped byte ranges reported


class CsvExporter:
    """Writes the CSV rows of a capture to ``out`` (binary), as ``CsvWriter`` and the per-packet
    loop of ``hullwatch decode`` would, with ``selector`` deciding which packets are rows.

    ``encoding`` is that of the text the reference path would have written (rows of layout
    reports or parameter tables may hold non-ASCII text). Skipped byte ranges (framing and
    undecodable packets) go to ``on_skip`` in file order.
    """

    def __init__(self, rows: RowBuilder, selector: Selector, write: Callable[[bytes], Any],
                 encoding: str = "utf-8", on_skip: Callable[[Skip], None] | None = None) -> None:
        self.rows = rows
        self.selector = selector
        self.write = write
        self.encoding = encoding
        self.on_skip = on_skip
        self.stats = ExportStats()
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")
        kinds = set()
        if hasattr(rows, "_p") and hasattr(rows, "_vs"):
            kinds.add("raw")
        if hasattr(rows, "_m"):
            kinds.add("hk")
        self._raw = RawRows(rows) if "raw" in kinds else None
        self._hk = HousekeepingRows(rows) if "hk" in kinds else None
        self._pending: list[Skip] = []
        #: a telecommand row took its time from before the first batch (the Selector's state)
        self.used_carry_tm = False
        self.saw_tm = False  #: a telemetry packet was decoded
        self._first_batch = True

    def header(self) -> None:
        self._csv.writerow(self.rows.columns)
        self._flush_text()

    def _flush_text(self) -> None:
        self.write(self._text.getvalue().encode(self.encoding))
        self._text.seek(0)
        self._text.truncate()

    def skip(self, skip: Skip) -> None:
        """The framing's ``on_skip``: held until the packets before it are written."""
        self._pending.append(skip)

    def _report(self, skips: list[Skip]) -> None:
        skips.sort(key=lambda s: s.offset)
        self.stats.skips += len(skips)
        if self.on_skip is not None:
            for s in skips:
                self.on_skip(s)

    def finish(self) -> ExportStats:
        """Report the skipped ranges still held (those after the last packet)."""
        self._report(self._pending)
        self._pending = []
        return self.stats

    def run(self, path: str, on_progress: Callable[[int], None] | None = None) -> ExportStats:
        """Export the whole capture at ``path`` in this process."""
        for batch in iter_packet_batches(path, on_skip=self.skip, on_progress=on_progress):
            self.batch(batch)
        return self.finish()

    def batch(self, batch: PacketBatch) -> None:
        """Write the rows of one batch (and report its skipped ranges)."""
        h = batch.headers()
        n = len(h)
        a = np.frombuffer(batch.buffer, np.uint8)
        s = batch.starts
        tm = h["packet_type"] == 0
        kind = np.zeros(n, np.int8)  # 0 row by row, 1 raw samples, 2 housekeeping
        housekeeping = tm & (h["service"] == 3) & (h["subtype"] == 25)
        for code, fast in ((1, self._raw), (2, self._hk)):
            if fast is None:
                continue
            sid = P.SID_RAW_SAMPLES if code == 1 else P.SID_HOUSEKEEPING
            cand = np.flatnonzero(housekeeping & (h["key"] == sid) & (h["length"] == fast.size))
            if len(cand):
                kind[cand[fast.matches(a, s[cand])]] = code

        # the packets that go row by row: decoded now, in order, for the time state
        sel = self.selector
        undecodable: list[Skip] = []
        decoded: dict[int, P.Packet] = {}
        decodable = np.ones(n, bool)
        epochs: list[tuple[int, float]] = []
        for i in np.flatnonzero(kind == 0).tolist():
            start, length = int(s[i]), int(h["length"][i])
            try:
                packet = fast_decode(batch.buffer[start:start + length], verify_crc=False)
            except PacketDecodeError as exc:
                decodable[i] = False
                undecodable.append(Skip(batch.base + start, length, f"undecodable packet: {exc}"))
                continue
            decoded[i] = packet
            if packet.packet_type == P.PacketType.TM and isinstance(packet.data, P.LayoutReport):
                epochs.append((i, packet.data.epoch_utc))

        # time state at each packet (as Selector.accept leaves it after the packet), vectorised
        carry_tm, carry_base = sel.last_tm_time, sel.base_time
        last = np.maximum.accumulate(np.where(tm & decodable, np.arange(n), -1))
        if n and last[-1] >= 0:
            self.saw_tm = True
        tm_known = (last >= 0) | (carry_tm is not None)
        t_utc = np.where(last >= 0, h["time_utc"][np.maximum(last, 0)], np.nan if carry_tm is None else carry_tm)
        base = np.full(n, np.nan if carry_base is None else carry_base)
        base_known = np.full(n, carry_base is not None)
        for i, epoch in epochs:
            base[i:] = epoch
            base_known[i:] = True
        t_mission = t_utc - base

        fast = np.flatnonzero(kind != 0)
        if len(fast) and not base_known[fast].all():
            # no mission time yet (no layout report and no telemetry before): rare; row by row
            # keeps every detail of the reference path
            for i in fast.tolist():
                start, length = int(s[i]), int(h["length"][i])
                decoded[i] = fast_decode(batch.buffer[start:start + length], verify_crc=False)
            kind[:] = 0
            fast = fast[:0]
        passes = np.zeros(n, bool)
        if len(fast):
            passes[fast] = self._fast_filter(h[fast], t_utc[fast], t_mission[fast])

        # raw-samples and housekeeping rows, a kind at a time
        blocks: dict[int, list[tuple[memoryview, list[int]]]] = {}  # per kind: (text, line ends) per block
        for code, maker in ((1, self._raw), (2, self._hk)):
            members = np.flatnonzero((kind == code) & passes)
            if maker is None or not len(members):
                continue
            blocks[code] = []
            for j in range(0, len(members), ROWS_PER_BLOCK):
                part = members[j:j + ROWS_PER_BLOCK]
                text, line_ends = maker.text(a, s[part], h[part], t_mission[part])
                blocks[code].append((memoryview(text), line_ends.tolist()))

        # every other row through Selector and RowBuilder, with the state just before it
        order = np.where(passes, kind, 0)
        slow_rows: dict[int, bytes] = {}
        if self._first_batch and decoded:
            first_tm = int(np.argmax(last >= 0)) if (last >= 0).any() else n
            self.used_carry_tm = any(i <= first_tm and decoded[i].packet_type == P.PacketType.TC for i in decoded)
        self._first_batch = False
        for i in sorted(decoded):
            before = i - 1
            if before >= 0:
                sel.last_tm_time = float(t_utc[before]) if tm_known[before] else None
                sel.base_time = float(base[before]) if base_known[before] else None
            else:
                sel.last_tm_time, sel.base_time = carry_tm, carry_base
            packet = decoded[i]
            ok, t_m = sel.accept(packet)
            if ok:
                self._csv.writerow(self.rows.build(int(h["offset"][i]), packet, t_m, packet.name))
                slow_rows[i] = self._text.getvalue().encode(self.encoding)
                self._text.seek(0)
                self._text.truncate()
                order[i] = 3
        if n:
            sel.last_tm_time = float(t_utc[-1]) if tm_known[-1] else None
            sel.base_time = float(base[-1]) if base_known[-1] else None

        # the rows in file order: runs of one kind, each a slice of that kind's text
        pieces: list[Any] = []
        rows_here = np.flatnonzero(order)
        if len(rows_here):
            codes = order[rows_here]
            cursor = {1: [0, 0], 2: [0, 0]}  # block, row in block
            bounds = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
            for b0, b1 in zip(bounds[:-1], bounds[1:]):
                code = int(codes[b0])
                if code == 3:
                    pieces.extend(slow_rows[i] for i in rows_here[b0:b1].tolist())
                    continue
                at = cursor[code]
                wanted = b1 - b0
                while wanted:
                    text, ends = blocks[code][at[0]]
                    take = min(wanted, len(ends) - at[1])
                    pieces.append(text[ends[at[1] - 1] if at[1] else 0:ends[at[1] + take - 1]])
                    wanted -= take
                    at[1] += take
                    if at[1] == len(ends):
                        at[0] += 1
                        at[1] = 0
            self.stats.rows += len(rows_here)
            self.stats.fast_rows += int(passes.sum())
        self._report(self._pending + undecodable)
        self._pending = []
        if pieces:
            self.write(b"".join(pieces))

    def _fast_filter(self, h: np.ndarray, t_utc: np.ndarray, t_mission: np.ndarray) -> np.ndarray:
        """Selector.accept for raw-samples and housekeeping packets (telemetry, never events)."""
        sel = self.selector
        ok = np.ones(len(h), bool)
        if sel.apids is not None:
            ok &= np.isin(h["apid"], list(sel.apids))
        if sel.services is not None:
            any_service = np.zeros(len(h), bool)
            for service, subtype in sel.services:
                m = h["service"] == service
                if subtype is not None:
                    m &= h["subtype"] == subtype
                any_service |= m
            ok &= any_service
        if sel.event_ids is not None:
            ok[:] = False
        # written as the negation of Selector's tests so that NaN compares the same way
        if sel.since is not None:
            ok &= ~((t_mission if sel.since[0] == "mission" else t_utc) < sel.since[1])
        if sel.until is not None:
            ok &= ~((t_mission if sel.until[0] == "mission" else t_utc) > sel.until[1])
        return ok


# ----------------------------------------------------------------------------------------------
# several processes: each exports a segment of the file; the parent writes them in order


@dataclass
class _Segment:
    text: bytes  #: the CSV rows of the segment's packets (or in the file ``text_path``)
    skips: list[Skip]
    first_packet: int | None  #: file offset of the segment's first packet
    end: int  #: file offset where the next segment's packets must begin
    base_time: float | None  #: the Selector's state after the segment
    last_tm_time: float | None
    saw_tm: bool  #: a telemetry packet was decoded (else last_tm_time is the carry, unknown here)
    used_carry_tm: bool
    mismatches: int
    first_mismatch: str
    stats: ExportStats
    text_path: str = ""


def _export_range(path: str, start: int, limit: int, size: int, rows: RowBuilder, selector: Selector,
                  encoding: str) -> _Segment:
    """The rows of the packets that start in ``[start, limit)`` (framing afresh at ``start``),
    with ``selector`` holding the time state before them."""
    from ..ground.capture import _Framer

    with open(path, "rb") as f:
        f.seek(start)
        buf = f.read(limit - start + P.MAX_PACKET_SIZE)
    final = start + len(buf) >= size
    framing: list[Skip] = []
    starts, lengths, used = _Framer(True).frame(buf, start, final, framing, None if limit >= size else limit - start)
    out: list[bytes] = []
    skips: list[Skip] = []
    mismatches_before = rows.mismatches
    exporter = CsvExporter(rows, selector, out.append, encoding, skips.append)
    for skip in framing:
        exporter.skip(skip)
    if len(starts):
        exporter.batch(PacketBatch(buf, start, starts, lengths.astype(np.int32)))
    exporter.finish()
    first_packet = start + int(starts[0]) if len(starts) else None
    return _Segment(b"".join(out), skips, first_packet, start + used, selector.base_time,
                    selector.last_tm_time, exporter.saw_tm, exporter.used_carry_tm, rows.mismatches - mismatches_before,
                    rows.first_mismatch if rows.mismatches > mismatches_before else "", exporter.stats)


_WORKER: dict[str, Any] = {}


def _export_task(task: tuple[int, int]) -> _Segment:
    w = _WORKER
    rows: RowBuilder = w["rows"]
    rows.mismatches = 0
    rows.first_mismatch = ""
    selector = Selector(w["apids"], w["services"], w["event_ids"], w["since"], w["until"], w["base_time"])
    seg = _export_range(w["path"], task[0], task[1], w["size"], rows, selector, w["encoding"])
    # the rows go back through a file (in memory on Linux): pickling megabytes through the pool's
    # pipe cost about as much CPU as making them
    seg.text_path = os.path.join(w["tmp"], f"{task[0]}.csv")
    with open(seg.text_path, "wb") as f:
        f.write(seg.text)
    seg.text = b""
    return seg


def _read_text(seg: _Segment) -> bytes:
    if not seg.text_path:
        return seg.text
    with open(seg.text_path, "rb") as f:
        text = f.read()
    os.unlink(seg.text_path)
    return text


def export_parallel(path: str, rows: RowBuilder, selector: Selector, write: Callable[[bytes], Any],
                    encoding: str = "utf-8", on_skip: Callable[[Skip], None] | None = None, workers: int = 2,
                    segment_size: int = 4 << 20, on_progress: Callable[[int], None] | None = None) -> ExportStats:
    """Export the capture at ``path`` with ``workers`` processes, each turning a segment of the
    file into rows; the same bytes, skipped ranges and RowBuilder counts as
    :meth:`CsvExporter.run`, the header excepted (write it first).

    A segment is exported assuming that the time state before it is the initial one (mission
    time from the same epoch; no telecommand before its first telemetry packet). That holds
    for captures whose layout reports all carry one epoch. Where it does not, or where a
    worker's framing does not line up with the end of the previous segment, the parent exports
    that segment again itself, with the true state.
    """
    import multiprocessing
    import shutil
    import tempfile

    size = os.path.getsize(path)
    tasks = [(b, min(b + segment_size, size)) for b in range(0, size, segment_size)] or [(0, 0)]
    shm = "/dev/shm"
    tmp = tempfile.mkdtemp(prefix="hullwatch-csv-", dir=shm if os.access(shm, os.W_OK) else None)
    _WORKER.clear()
    _WORKER.update(path=path, size=size, rows=rows, apids=selector.apids, services=selector.services,
                   event_ids=selector.event_ids, since=selector.since, until=selector.until,
                   base_time=selector.base_time, encoding=encoding, tmp=tmp)
    assumed_base, assumed_tm = selector.base_time, selector.last_tm_time
    if "fork" not in multiprocessing.get_all_start_methods():  # the workers inherit _WORKER
        exporter = CsvExporter(rows, selector, write, encoding, on_skip)
        return exporter.run(path, on_progress)
    ctx = multiprocessing.get_context("fork")
    stats = ExportStats()
    pending: Skip | None = None

    def report(skip: Skip) -> None:
        nonlocal pending
        if pending is not None and pending.offset + pending.length == skip.offset:
            pending = Skip(pending.offset, pending.length + skip.length, pending.reason)  # one range
            return
        if pending is not None:
            stats.skips += 1
            if on_skip is not None:
                on_skip(pending)
        pending = skip

    def results(pool: Any) -> Any:
        """The segments in order, at most two per worker ahead of the writing (memory)."""
        ahead: list[Any] = []
        queue = iter(tasks)
        for task in queue:
            ahead.append((task, pool.apply_async(_export_task, (task,))))
            if len(ahead) >= 2 * workers:
                break
        while ahead:
            task, pending_result = ahead.pop(0)
            nxt = next(queue, None)
            if nxt is not None:
                ahead.append((nxt, pool.apply_async(_export_task, (nxt,))))
            yield task, pending_result.get()

    expected = 0
    try:
        with ctx.Pool(workers) as pool:
            for (start, limit), seg in results(pool):
                same_state = (selector.base_time == assumed_base
                              and not (seg.used_carry_tm and selector.last_tm_time != assumed_tm))
                # lined up (as capture._splice): the first packet or skipped range at or after the
                # end of the previous segment starts exactly there, and no packet starts before it
                later = [k.offset for k in seg.skips if k.offset >= expected]
                if seg.first_packet is not None:
                    later.append(seg.first_packet)
                lined_up = (min(later + [seg.end]) == expected
                            and (seg.first_packet is None or seg.first_packet >= expected))
                if not lined_up or not same_state:
                    _read_text(seg)  # dropped
                    mine = Selector(selector.apids, selector.services, selector.event_ids, selector.since,
                                    selector.until, selector.base_time)
                    mine.last_tm_time = selector.last_tm_time
                    before = rows.mismatches, rows.first_mismatch
                    seg = _export_range(path, expected, max(limit, expected), size, rows, mine, encoding)
                    rows.mismatches, rows.first_mismatch = before  # added back below, once
                    seg.saw_tm = True  # started from the true state: its result is the true state
                for skip in seg.skips:
                    if skip.offset >= expected:
                        report(skip)
                text = _read_text(seg)
                if text:
                    write(text)
                if seg.mismatches:
                    if not rows.mismatches:
                        rows.first_mismatch = seg.first_mismatch
                    rows.mismatches += seg.mismatches
                selector.base_time = seg.base_time
                if seg.saw_tm:
                    selector.last_tm_time = seg.last_tm_time
                stats.rows += seg.stats.rows
                stats.fast_rows += seg.stats.fast_rows
                expected = seg.end
                if on_progress is not None:
                    on_progress(limit - start)
    finally:
        _WORKER.clear()
        shutil.rmtree(tmp, ignore_errors=True)
    if pending is not None:
        stats.skips += 1
        if on_skip is not None:
            on_skip(pending)
    return stats
