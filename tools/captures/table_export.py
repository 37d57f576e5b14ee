"""``hullwatch decode --format csv|parquet``: one row per packet, as Arrow columns written by
pyarrow's CSV and Parquet writers.

The rows and columns are those of :class:`~hullwatch.tools.captures.formats.RowBuilder` (the JSON
lines rows), typed by :attr:`RowBuilder.types`: whole numbers as int64, numbers as float64, text as
UTF-8 strings, an empty cell as null (an empty CSV field). Floats are written as the shortest text
that reads back to the same float64, so every value round-trips exactly through CSV as through
Parquet.

The capture is read a window at a time (:func:`~hullwatch.tools.ground.capture.iter_packet_batches`,
every CRC checked). Raw-samples and housekeeping packets, nearly all of a capture, become columns in
bulk: their fields are read for the whole window through numpy structured dtypes derived from the
construct declarations (:mod:`hullwatch.tools.ground.bulk`). Every other packet (layout reports,
events, telecommands, packets that do not match the layout report, unknown kinds) is decoded and
built row by row. The rows of a window are put back in file order and written as one Arrow table,
so memory is that of a window whatever the capture's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ...firmware.telemetry import packets as P
from ...firmware.types import FdirMode, IsolationState, ModuleStatus, ValveHealth
from ...hal.interfaces import SampleStatus
from ..ground import bulk
from ..ground.capture import PacketBatch, Skip, iter_packet_batches
from .formats import FLOAT, INT, TEXT, RowBuilder, Selector, enum_name

ARROW_TYPES: dict[str, pa.DataType] = {INT: pa.int64(), FLOAT: pa.float64(), TEXT: pa.string()}
#: a header line, text cells in double quotes, numbers bare, an empty cell empty
CSV_OPTIONS = pacsv.WriteOptions(include_header=True, quoting_style="needed", batch_size=8192)

#: capture bytes per window: the rows of a window (~5,000 raw-samples packets) are one table
WINDOW_BYTES = 2 << 20

_RAW, _HK = 1, 2  #: packet classes of the bulk path (0: row by row)


def schema_of(rows: RowBuilder) -> pa.Schema:
    """The Arrow schema of ``rows``' columns."""
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in zip(rows.columns, rows.types)])


def round4(x: np.ndarray) -> np.ndarray:
    """``[round(v, 4) for v in x]`` (Python's correctly rounded decimal rounding), vectorised:
    ``rint(x * 1e4) / 1e4`` is exact unless ``x * 1e4`` lies within a few ulps of a half, where the
    product's own rounding could tip it; those few go through ``round``."""
    p = x * 1e4
    y = np.rint(p) / 1e4
    with np.errstate(invalid="ignore"):
        risky = ~(np.abs(p) < 2.0 ** 52) | (np.abs(np.abs(p - np.floor(p)) - 0.5) <= 4 * np.spacing(np.abs(p)))
    for i in np.flatnonzero(risky & np.isfinite(x)).tolist():
        y[i] = round(float(x[i]), 4)
    return y


_MILLIS = pa.array([f".{ms:03d}Z" for ms in range(1000)])


def utc_text(t: np.ndarray) -> pa.Array:
    """``formats.iso_utc`` of each UTC time (``2018-08-29T20:00:00.500Z``), null where it is empty
    (not finite or not after 1970)."""
    valid = np.isfinite(t) & (t > 0)
    ms = np.rint(np.where(valid, t, 0.0) * 1000.0).astype(np.int64)  # np.rint is half-even like round()
    second, milli = np.divmod(ms, 1000)
    # ten or more packets a second: format each distinct second once, then join the milliseconds
    seconds, inverse = np.unique(second, return_inverse=True)
    text = pc.strftime(pa.array(seconds, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
    joined = pc.binary_join_element_wise(text.take(pa.array(inverse)), _MILLIS.take(pa.array(milli)), "")
    return pc.if_else(pa.array(valid), joined, pa.nulls(len(t), pa.string()))


def _names(cls: Any) -> list[str]:
    """The text RowBuilder writes for each u8 code of an enum (index = code)."""
    return [enum_name(cls, code) for code in range(256)]


class _Columns:
    """The columns of one window's rows, filled kind by kind at the rows' positions: numbers in
    numpy arrays with a validity mask, text as codes into a list of distinct strings. Cells never
    filled are null."""

    def __init__(self, schema: pa.Schema, n: int) -> None:
        self.schema = schema
        self.n = n
        self._numbers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._text: dict[str, tuple[np.ndarray, dict[str, int]]] = {}

    def numbers(self, name: str, rows: np.ndarray | int, values: Any) -> None:
        column = self._numbers.get(name)
        if column is None:
            dtype = np.int64 if pa.types.is_integer(self.schema.field(name).type) else np.float64
            column = self._numbers[name] = (np.zeros(self.n, dtype), np.zeros(self.n, bool))
        column[0][rows] = values
        column[1][rows] = True

    def number_block(self, names: list[str], rows: np.ndarray, values: np.ndarray) -> None:
        """``values[:, j]`` of column ``names[j]`` at ``rows``."""
        by_column = np.ascontiguousarray(values.T)  # one strided pass instead of one per column
        for name, column in zip(names, by_column):
            self.numbers(name, rows, column)

    def text(self, name: str, rows: np.ndarray | int, codes: Any, strings: list[str]) -> None:
        """``strings[codes[i]]`` at ``rows[i]``."""
        column = self._text.get(name)
        if column is None:
            column = self._text[name] = (np.full(self.n, -1, np.int32), {})
        index = column[1]
        remap = np.array([index.setdefault(text, len(index)) for text in strings], np.int32)
        column[0][rows] = remap[codes]

    def table(self) -> pa.Table:
        """The columns as a table; ``utc`` is made from ``time_utc_s`` (what RowBuilder writes)."""
        arrays = []
        for field in self.schema:
            if field.name == "utc" and "time_utc_s" in self._numbers:
                values, valid = self._numbers["time_utc_s"]
                arrays.append(utc_text(np.where(valid, values, np.nan)))
            elif field.name in self._numbers:
                values, valid = self._numbers[field.name]
                arrays.append(pa.array(values, field.type, mask=None if valid.all() else ~valid))
            elif field.name in self._text:
                codes, index = self._text[field.name]
                array = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(list(index)))
                arrays.append(array.dictionary_decode())
            else:
                arrays.append(pa.nulls(self.n, field.type))
        return pa.table(arrays, schema=self.schema)


class _BulkKind:
    """One packet kind read in bulk: its numpy dtype (the layout's channel counts) and columns."""

    name = ""
    code = 0

    def __init__(self, rows: RowBuilder, dtype: np.dtype, counts: dict[str, int]) -> None:
        self.rows = rows
        self.dtype = dtype
        self.size = dtype.itemsize  #: packet length in bytes
        fields = dtype.fields or {}
        #: (byte offset of a count field, the count the layout has)
        self._count_checks = [(fields[f"data.{name}"][1], count) for name, count in counts.items()]

    def matches(self, a: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Whether each packet of this length has the layout's channel counts."""
        ok = np.ones(len(starts), bool)
        for at, count in self._count_checks:
            ok &= a[starts + at] == count
        return ok

    def fill(self, out: _Columns, at: np.ndarray, rec: np.ndarray) -> None:
        """Put the data columns of the packets ``rec`` at rows ``at``."""
        raise NotImplementedError


class _RawSamples(_BulkKind):
    name, code = "raw_samples", _RAW

    def __init__(self, rows: RowBuilder) -> None:
        n_p, n_t, n_f, n_v = rows.counts[:4]
        super().__init__(rows, bulk.raw_samples_dtype(n_p, n_t, n_f, n_v),
                         {"n_pressure": n_p, "n_temperature": n_t, "n_flow": n_f, "n_valves": n_v})
        self._status = _names(SampleStatus)  #: each sample's status as RowBuilder names it

    def fill(self, out: _Columns, at: np.ndarray, rec: np.ndarray) -> None:
        names, starts = self.rows.columns, self.rows.starts
        out.numbers("cycle", at, rec["data.cycle"])
        for kind in ("pressure", "temperature", "flow"):
            first, count = starts[kind], rec[f"data.{kind}"].shape[1]
            out.number_block(names[first:first + 2 * count:2], at, rec[f"data.{kind}"])
            status = rec[f"data.{kind}_status"]
            for i in range(count):
                out.text(names[first + 2 * i + 1], at, status[:, i], self._status)
        first, count = starts["valves"], rec["data.valve_cmd"].shape[1]
        out.number_block(names[first:first + 2 * count:2], at, rec["data.valve_cmd"])
        out.number_block(names[first + 1:first + 2 * count:2], at, rec["data.valve_fb"])
        first, status = starts["valve_status"], rec["data.valve_status"]
        for i in range(count):
            out.text(names[first + i], at, status[:, i], self._status)


class _Housekeeping(_BulkKind):
    name, code = "housekeeping", _HK
    _MODULE_FLOATS = ("pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s")

    def __init__(self, rows: RowBuilder) -> None:
        self.n_modules, self.n_valves = rows.counts[4], rows.counts[3]
        super().__init__(rows, bulk.housekeeping_dtype(self.n_modules, self.n_valves),
                         {"n_modules": self.n_modules, "n_valves": self.n_valves})
        self._names = {cls: _names(cls) for cls in (FdirMode, IsolationState, ModuleStatus, ValveHealth)}

    def fill(self, out: _Columns, at: np.ndarray, rec: np.ndarray) -> None:
        names, starts = self.rows.columns, self.rows.starts
        out.numbers("cycle", at, rec["data.cycle"])
        for key in ("cycle_time_us", "max_cycle_time_us", "overruns", "link_errors", "sensors_failed"):
            out.numbers(key, at, rec[f"data.{key}"])
        out.numbers("link_up", at, rec["data.link_up"] != 0)
        out.text("mode", at, rec["data.mode"], self._names[FdirMode])
        out.text("isolation_state", at, rec["data.isolation_state"], self._names[IsolationState])
        for i in range(self.n_modules):
            first = starts["modules"] + 5 * i
            for j, name in enumerate(self._MODULE_FLOATS):
                out.numbers(names[first + j], at, rec[f"data.modules[{i}].{name}"])
            out.text(names[first + 4], at, rec[f"data.modules[{i}].status"], self._names[ModuleStatus])
        for i in range(self.n_valves):
            out.numbers(names[starts["valves"] + 2 * i], at, rec[f"data.valves[{i}].cmd"])
            out.numbers(names[starts["valves"] + 2 * i + 1], at, rec[f"data.valves[{i}].fb"])
            out.text(names[starts["valve_health"] + i], at, rec[f"data.valves[{i}].health"],
                     self._names[ValveHealth])


@dataclass
class ExportStats:
    rows: int = 0  #: rows written (the header not counted)
    bulk_rows: int = 0  #: of which raw-samples and housekeeping rows made in bulk
    skips: int = 0  #: skipped byte ranges reported


class TableExporter:
    """The rows of a capture as Arrow tables, a window at a time, in file order, with ``selector``
    (the ``hullwatch decode`` filters) deciding which packets are rows.

    Skipped byte ranges (framing, and packets that check but cannot be decoded) go to ``on_skip``
    in file order, each window's after its rows.
    """

    def __init__(self, rows: RowBuilder, selector: Selector, on_skip: Callable[[Skip], None] | None = None) -> None:
        self.rows = rows
        self.selector = selector
        self.on_skip = on_skip
        self.schema = schema_of(rows)
        self.stats = ExportStats()
        self._bulk: list[_BulkKind] = []
        if {"pressure", "valve_status"} <= rows.starts.keys():
            self._bulk.append(_RawSamples(rows))
        if "modules" in rows.starts:
            self._bulk.append(_Housekeeping(rows))
        self._pending: list[Skip] = []

    def tables(self, path: str | os.PathLike[str], *, workers: int = 1,
               on_progress: Callable[[int], None] | None = None) -> Iterator[pa.Table]:
        """The rows of each window of the capture at ``path`` (windows without rows left out)."""
        for batch in iter_packet_batches(path, on_skip=self._hold, on_progress=on_progress,
                                         workers=workers, chunk_size=WINDOW_BYTES):
            table = self.batch_table(batch)
            if table.num_rows:
                yield table
            self._report()
        self._report()

    def _hold(self, skip: Skip) -> None:
        """The framing's ``on_skip``: held until the rows before it are out."""
        self._pending.append(skip)

    def _report(self) -> None:
        skips = sorted(self._pending, key=lambda s: s.offset)
        self._pending.clear()
        self.stats.skips += len(skips)
        if self.on_skip is not None:
            for skip in skips:
                self.on_skip(skip)

    def batch_table(self, batch: PacketBatch) -> pa.Table:
        """The rows of one window; its undecodable packets are held for ``on_skip``."""
        h = batch.headers()
        n = len(h)
        a = np.frombuffer(batch.buffer, np.uint8)
        s = batch.starts
        tm = h["packet_type"] == 0
        kind = np.zeros(n, np.int8)
        reports = tm & (h["service"] == 3) & (h["subtype"] == 25)
        for maker in self._bulk:
            sid = P.SID_RAW_SAMPLES if maker.code == _RAW else P.SID_HOUSEKEEPING
            cand = np.flatnonzero(reports & (h["key"] == sid) & (h["length"] == maker.size))
            if len(cand):
                kind[cand[maker.matches(a, s[cand])]] = maker.code

        decoded, decodable, epochs = self._decode_others(batch, h, kind)

        # the Selector's time state after each packet, vectorised: the last telemetry time, and
        # mission time 0 from the last layout report (carried over from the windows before)
        sel = self.selector
        carry_tm, carry_base = sel.last_tm_time, sel.base_time
        last = np.maximum.accumulate(np.where(tm & decodable, np.arange(n), -1))
        tm_known = (last >= 0) | (carry_tm is not None)
        t_utc = np.where(last >= 0, h["time_utc"][np.maximum(last, 0)], np.nan if carry_tm is None else carry_tm)
        base = np.full(n, np.nan if carry_base is None else carry_base)
        base_known = np.full(n, carry_base is not None)
        for i, epoch in epochs:
            base[i:] = epoch
            base_known[i:] = True
        t_mission = t_utc - base

        in_bulk = np.flatnonzero(kind != 0)
        if len(in_bulk) and not base_known[in_bulk].all():
            # no mission time yet (no layout report, no telemetry before): rare, row by row
            decoded.update(batch.packets(in_bulk))
            kind[:] = 0
            in_bulk = in_bulk[:0]
        passes = np.zeros(n, bool)
        if len(in_bulk):
            passes[in_bulk] = self._bulk_filter(h[in_bulk], t_utc[in_bulk], t_mission[in_bulk])

        # every other packet through Selector and RowBuilder, with the state just before it
        built: dict[int, list[Any]] = {}
        for i in sorted(decoded):
            if i:
                sel.last_tm_time = float(t_utc[i - 1]) if tm_known[i - 1] else None
                sel.base_time = float(base[i - 1]) if base_known[i - 1] else None
            else:
                sel.last_tm_time, sel.base_time = carry_tm, carry_base
            packet = decoded[i]
            ok, t_m = sel.accept(packet)
            if ok:
                built[i] = self.rows.build(int(h["offset"][i]), packet, t_m, packet.name)
        if n:
            sel.last_tm_time = float(t_utc[-1]) if tm_known[-1] else None
            sel.base_time = float(base[-1]) if base_known[-1] else None

        # the rows in file order: packet i is row position[i]
        is_row = passes.copy()
        is_row[list(built)] = True
        position = np.cumsum(is_row) - 1
        out = _Columns(self.schema, int(is_row.sum()))
        for maker in self._bulk:
            members = np.flatnonzero((kind == maker.code) & passes)
            if len(members):
                self._fill_bulk(out, position[members], maker, a, s[members], h[members], t_mission[members])
                self.stats.bulk_rows += len(members)
        for i, row in built.items():
            self._fill_row(out, int(position[i]), row)
        table = out.table()
        self.stats.rows += table.num_rows
        return table

    def _decode_others(self, batch: PacketBatch, h: np.ndarray, kind: np.ndarray
                       ) -> tuple[dict[int, P.Packet], np.ndarray, list[tuple[int, float]]]:
        """Decode the packets outside the bulk path: the packets by index, which packets could be
        decoded, and the (index, epoch) of each layout report. Undecodable ones become Skips."""
        others = np.flatnonzero(kind == 0)
        decoded = dict(batch.packets(others, self._hold))
        decodable = np.ones(len(h), bool)
        decodable[[i for i in others.tolist() if i not in decoded]] = False
        epochs = [(i, p.data.epoch_utc) for i, p in decoded.items()
                  if p.packet_type == P.PacketType.TM and isinstance(p.data, P.LayoutReport)]
        return decoded, decodable, epochs

    def _bulk_filter(self, h: np.ndarray, t_utc: np.ndarray, t_mission: np.ndarray) -> np.ndarray:
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
        # the negation of Selector's tests, so that NaN compares the same way
        if sel.since is not None:
            ok &= ~((t_mission if sel.since[0] == "mission" else t_utc) < sel.since[1])
        if sel.until is not None:
            ok &= ~((t_mission if sel.until[0] == "mission" else t_utc) > sel.until[1])
        return ok

    def _fill_bulk(self, out: _Columns, at: np.ndarray, maker: _BulkKind, a: np.ndarray, starts: np.ndarray,
                   h: np.ndarray, t_mission: np.ndarray) -> None:
        rec = bulk.gather_rows(a, starts, maker.size).view(maker.dtype)[:, 0]
        for name in ("offset", "apid", "service", "subtype", "seq", "msg_counter"):
            out.numbers(name, at, h[name])
        out.numbers("time_utc_s", at, h["time_utc"])
        known = ~np.isnan(t_mission)
        out.numbers("t_s", at[known], round4(t_mission[known]))
        out.text("packet", at, 0, [maker.name])
        out.text("type", at, 0, ["TM"])
        maker.fill(out, at, rec)

    def _fill_row(self, out: _Columns, at: int, row: list[Any]) -> None:
        """One row made by RowBuilder (``""``: an empty cell)."""
        for field, kind, value in zip(self.schema, self.rows.types, row):
            if value == "" or field.name == "utc":  # utc: made from time_utc_s
                continue
            if kind == TEXT:
                out.text(field.name, at, 0, [value])
            else:
                out.numbers(field.name, at, value)


def export_csv(path: str | os.PathLike[str], out: IO[bytes], rows: RowBuilder, selector: Selector,
               on_skip: Callable[[Skip], None] | None = None, *, workers: int = 1,
               on_progress: Callable[[int], None] | None = None) -> ExportStats:
    """Write the rows of the capture at ``path`` to ``out`` (binary) as CSV: a header line, then
    a line per row; an empty field is an empty cell. Raises OSError from ``out``."""
    exporter = TableExporter(rows, selector, on_skip)
    with pacsv.CSVWriter(out, exporter.schema, write_options=CSV_OPTIONS) as writer:
        for table in exporter.tables(path, workers=workers, on_progress=on_progress):
            writer.write_table(table)
    return exporter.stats


def export_parquet(path: str | os.PathLike[str], out: str | os.PathLike[str] | IO[bytes], rows: RowBuilder,
                   selector: Selector, on_skip: Callable[[Skip], None] | None = None, *, workers: int = 1,
                   on_progress: Callable[[int], None] | None = None) -> ExportStats:
    """Write the rows of the capture at ``path`` to ``out`` (a path or a binary file) as Parquet,
    a row group per window of the capture. Raises OSError."""
    exporter = TableExporter(rows, selector, on_skip)
    with pq.ParquetWriter(out, exporter.schema) as writer:
        for table in exporter.tables(path, workers=workers, on_progress=on_progress):
            writer.write_table(table)
    return exporter.stats
