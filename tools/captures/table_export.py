"""``hullwatch decode --format csv|parquet``: one row per packet, from Arrow columns; Parquet by
pyarrow's writer, CSV by :mod:`~hullwatch.tools.captures.csv_lines` (the text pyarrow's CSV writer
would write, made faster).

The rows and columns are those of :class:`~hullwatch.tools.captures.formats.RowBuilder` (the JSON
lines rows), typed by :attr:`RowBuilder.types`: whole numbers as int64, numbers as float64, text as
UTF-8 strings, an empty cell as null (an empty CSV field). Floats are written as the shortest text
that reads back to the same float64, so every value round-trips exactly through CSV as through
Parquet.

The capture is read a window at a time (:func:`~hullwatch.tools.ground.capture.iter_packet_batches`,
every CRC checked). Raw-samples and housekeeping packets, nearly all of a capture, become columns in
bulk (:mod:`~hullwatch.tools.captures.bulk_rows`: numpy structured dtypes derived from the construct
declarations, no Python step per packet). Every other packet (layout reports, events,
telecommands, packets that do not match the layout report, unknown kinds) is decoded and built row
by row. A window's rows are a :class:`~hullwatch.tools.captures.table_parts.Window` of parts, one
per kind, put in file order as they are written, so memory is that of a window whatever the
capture's size.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...firmware.telemetry import packets as P
from ..ground.capture import PacketBatch, Skip, iter_packet_batches
from .bulk_rows import BulkKind, HousekeepingRows, RawSamplesRows, round4, utc_text
from .csv_lines import CSV_OPTIONS, CsvWriter
from .formats import COMMON, FLOAT, INT, TEXT, RowBuilder, Selector
from .table_parts import Part, Window, assemble, parquet_schema

__all__ = ["ARROW_TYPES", "CSV_OPTIONS", "ExportStats", "TableExporter", "export_csv", "export_parquet",
           "round4", "schema_of", "utc_text"]

ARROW_TYPES: dict[str, pa.DataType] = {INT: pa.int64(), FLOAT: pa.float64(), TEXT: pa.string()}

#: capture bytes per window: the rows of a window (about 10,000 raw-samples packets) are rendered
#: together
WINDOW_BYTES = 4 << 20
#: windows per Parquet row group (8 MB of capture, about 22,000 rows). The writer keeps about
#: 1 KB of metadata per column chunk until it closes the file (170 KB per row group of 157
#: columns): with a row group per window that was 43 MB more memory per GB of capture, and it
#: grows with the capture; two windows' tables held (compact: parts let go of, constant columns
#: shared) cost less than the metadata they save at 1 GB
ROW_GROUP_WINDOWS = 2


def schema_of(rows: RowBuilder) -> pa.Schema:
    """The Arrow schema of ``rows``' columns."""
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in zip(rows.columns, rows.types)])


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """``pyarrow.parquet.ParquetWriter`` options, chosen for the CPU time per row with a file any
    Parquet reader takes (measured on a real capture, 157 columns; docs/telemetry.md):

    - Snappy compression, PLAIN floats: what every reader reads. BYTE_STREAM_SPLIT would write
      the floats a fifth faster, LZ4_RAW a few percent faster, ZSTD half the file for more CPU
      time, but older readers refuse them; readings quantised to 0.25 Pa compress to a quarter,
      so no compression would make the file four times larger.
    - Dictionary encoding for the text columns only, given as dictionary arrays (statuses and
      names repeat; the writer hashes no string). Numbers stay PLAIN: a dictionary of the
      readings was slower to write, even given ready-made.
    - min/max statistics for the common columns (offset, times, packet kind, APID...: what a
      reader filters row groups on), not for the per-sensor ones, where they cost a fifth of the
      writing time.
    - 64k values per write batch (the default 1,024 costs a few percent more in calls).
    - Version 1 data pages (the default): what every reader reads.
    - The writer runs in the calling thread: columns written in parallel use more CPU time in all,
      and the export's figure is rows per CPU second.
    """
    return {"use_dictionary": [f.name for f in schema if pa.types.is_string(f.type)], "compression": "snappy",
            "write_batch_size": 1 << 16, "data_page_version": "1.0",
            "store_schema": False,  # text columns are given as dictionaries; read back as strings
            "write_statistics": [name for name in COMMON if name in schema.names]}


@dataclass
class ExportStats:
    rows: int = 0  #: rows written (the header not counted)
    bulk_rows: int = 0  #: of which raw-samples and housekeeping rows made in bulk
    skips: int = 0  #: skipped byte ranges reported


class TableExporter:
    """The rows of a capture, a window at a time, in file order, with ``selector`` (the
    ``hullwatch decode`` filters) deciding which packets are rows.

    Skipped byte ranges (framing, and packets that check but cannot be decoded) go to ``on_skip``
    in file order, each window's after its rows.
    """

    def __init__(self, rows: RowBuilder, selector: Selector, on_skip: Callable[[Skip], None] | None = None) -> None:
        self.rows = rows
        self.selector = selector
        self.on_skip = on_skip
        self.schema = schema_of(rows)
        self.stats = ExportStats()
        self._bulk: list[BulkKind] = []
        if {"pressure", "valve_status"} <= rows.starts.keys():
            self._bulk.append(RawSamplesRows(rows))
        if "modules" in rows.starts:
            self._bulk.append(HousekeepingRows(rows))
        self._pending: list[Skip] = []

    def windows(self, path: str | os.PathLike[str], *, workers: int = 1,
                on_progress: Callable[[int], None] | None = None) -> Iterator[Window]:
        """The rows of each window of the capture at ``path`` (windows without rows left out).
        Raises OSError if the capture cannot be read."""
        for batch in iter_packet_batches(path, on_skip=self._hold, on_progress=on_progress,
                                         workers=workers, chunk_size=WINDOW_BYTES):
            window = [self.batch_window(batch)]
            del batch  # the capture bytes are not needed while the window is written
            if window[0].n:
                yield window.pop()  # held by the caller alone, which may let go of it as it writes
            self._report()
        self._report()

    def tables(self, path: str | os.PathLike[str], *, workers: int = 1,
               on_progress: Callable[[int], None] | None = None) -> Iterator[pa.Table]:
        """The rows of each window of the capture at ``path`` as a table of :attr:`schema`."""
        for window in self.windows(path, workers=workers, on_progress=on_progress):
            yield assemble(window, self.schema)

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
        """The rows of one window as a table; its undecodable packets are held for ``on_skip``."""
        return assemble(self.batch_window(batch), self.schema)

    def batch_window(self, batch: PacketBatch) -> Window:
        """The rows of one window; its undecodable packets are held for ``on_skip``."""
        h = batch.headers()
        n = len(h)
        a = np.frombuffer(batch.buffer, np.uint8)
        s = batch.starts
        tm = h["packet_type"] == 0
        kind = np.zeros(n, np.int8)  # 0: row by row, else 1 + index in self._bulk
        reports = tm & (h["service"] == 3) & (h["subtype"] == 25)
        for code, maker in enumerate(self._bulk, 1):
            cand = np.flatnonzero(reports & (h["key"] == maker.sid) & (h["apid"] == maker.apid)
                                  & (h["length"] == maker.size))
            if len(cand):
                kind[cand[maker.matches(a, s[cand])]] = code

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
        parts = []
        for code, maker in enumerate(self._bulk, 1):
            members = np.flatnonzero((kind == code) & passes)
            if len(members):
                parts.append(Part(position[members], maker.cells(a, s[members], h[members], t_mission[members])))
                self.stats.bulk_rows += len(members)
        if built:
            parts.append(self._built_part(position, built))
        window = Window(int(is_row.sum()), parts)
        self.stats.rows += window.n
        return window

    def _built_part(self, position: np.ndarray, built: dict[int, list[Any]]) -> Part:
        """The rows made by RowBuilder (``""``: an empty cell) as a part."""
        indices = sorted(built)
        part = Part(position[indices])
        for field, kind, values in zip(self.schema, self.rows.types, zip(*(built[i] for i in indices))):
            if values.count("") == len(values):
                continue
            convert = int if kind == INT else float if kind == FLOAT else str
            part.cells[field.name] = pa.array([None if v == "" else convert(v) for v in values], field.type)
        return part

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


@contextlib.contextmanager
def _system_allocator() -> Iterator[None]:
    """Arrow buffers from the C library's allocator for the duration: pyarrow's default pool
    (mimalloc) kept about 40 MB more resident for the same windows, which took the peak memory
    of a CSV export past 200 MB. Each buffer remembers its pool, so switching is safe."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def export_csv(path: str | os.PathLike[str], out: IO[bytes], rows: RowBuilder, selector: Selector,
               on_skip: Callable[[Skip], None] | None = None, *, workers: int = 1,
               on_progress: Callable[[int], None] | None = None) -> ExportStats:
    """Write the rows of the capture at ``path`` to ``out`` (binary) as CSV (csv_lines: a header
    line, then a line per row; an empty field is an empty cell). Raises OSError from ``out``."""
    exporter = TableExporter(rows, selector, on_skip)
    with _system_allocator():
        writer = CsvWriter(out, exporter.schema)
        for window in exporter.windows(path, workers=workers, on_progress=on_progress):
            writer.write(window)
            del window
    return exporter.stats


def export_parquet(path: str | os.PathLike[str], out: str | os.PathLike[str] | IO[bytes], rows: RowBuilder,
                   selector: Selector, on_skip: Callable[[Skip], None] | None = None, *, workers: int = 1,
                   on_progress: Callable[[int], None] | None = None) -> ExportStats:
    """Write the rows of the capture at ``path`` to ``out`` (a path or a binary file) as Parquet,
    a row group per :data:`ROW_GROUP_WINDOWS` windows of the capture (:data:`WINDOW_BYTES`).
    Raises OSError."""
    exporter = TableExporter(rows, selector, on_skip)
    schema = exporter.schema
    with _system_allocator(), pq.ParquetWriter(out, parquet_schema(schema), **parquet_options(schema)) as writer:
        held: list[pa.Table] = []
        for window in exporter.windows(path, workers=workers, on_progress=on_progress):
            held.append(assemble(window, schema, codes=True))
            del window  # its parts: the tables hold what is written
            if len(held) == ROW_GROUP_WINDOWS:
                writer.write_table(pa.concat_tables(held), row_group_size=1 << 40)  # one row group
                held.clear()
        if held:
            writer.write_table(pa.concat_tables(held), row_group_size=1 << 40)
            held.clear()
    return exporter.stats
