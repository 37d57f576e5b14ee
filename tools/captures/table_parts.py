"""The rows of one window of a capture as Arrow data, a part per kind of row, before they become a
table (Parquet) or CSV lines (:mod:`~hullwatch.tools.captures.csv_lines`).

A :class:`Part` holds rows of one kind (raw samples, housekeeping, or the packets built row by
row) at their positions in the window, and only the columns that kind fills: a raw-samples row
leaves the hundred-odd housekeeping and event columns empty, and neither the table nor the CSV
should spend work on each of those empty cells. A column of a part is a :data:`Cell`: an Arrow
array (numbers int64 or float64; text as a string array or a dictionary array of enum names) or,
where every row of the part holds the same value, one Arrow scalar (a raw-samples packet's
``packet``, ``type``, ``service``, the statuses of a quiet window...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Cell = Union[pa.Array, pa.Scalar]


@dataclass
class Part:
    """Rows of one kind: row ``i`` of the part is row ``rows[i]`` of the window. A column absent
    from :attr:`cells` is empty (null) in every row of the part."""

    rows: np.ndarray  #: int64 positions in the window, increasing
    cells: dict[str, Cell] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Window:
    """The rows of one window of a capture, ``n`` of them in file order, split in parts whose
    :attr:`Part.rows` together cover ``range(n)`` once."""

    n: int
    parts: list[Part]

    def order(self) -> np.ndarray | None:
        """For each row of the window, its index in the parts' rows laid end to end (the
        permutation that puts the parts' rows back in file order); None when they already are."""
        if len(self.parts) <= 1:
            return None
        where = np.concatenate([p.rows for p in self.parts])
        inverse = np.empty(self.n, np.int64)
        inverse[where] = np.arange(self.n, dtype=np.int64)
        return inverse


def numbers(values: np.ndarray, type_: pa.DataType) -> Cell:
    """A numeric column from numpy values (any byte order): a scalar if every value has the same
    bits (so 0.0 and -0.0, or two NaNs of different payload, stay apart), else an array."""
    native = np.ascontiguousarray(values, np.int64 if pa.types.is_integer(type_) else np.float64)
    if len(native) and (native.view(np.int64) == native.view(np.int64)[0]).all():
        return pa.scalar(native[0].item(), type_)
    return pa.array(native, type_)


def enum_names(codes: np.ndarray, names: pa.StringArray) -> Cell:
    """A text column of enum names: ``names[code]`` for each u8 code; a scalar if one code only."""
    if len(codes) and (codes == codes[0]).all():
        return names[int(codes[0])]
    return pa.DictionaryArray.from_arrays(pa.array(np.ascontiguousarray(codes, np.uint8)), names)


def dense(cell: Cell, n: int, type_: pa.DataType) -> pa.Array:
    """``cell`` as a plain array of ``n`` values of ``type_`` (dictionaries decoded, scalars
    repeated)."""
    if isinstance(cell, pa.Scalar):
        return pa.repeat(cell, n)
    if isinstance(cell, pa.DictionaryArray):
        return cell.dictionary_decode()
    return cell


def _numeric_column(window: Window, name: str, type_: pa.DataType) -> pa.Array:
    """A numeric column in file order: each part's values scattered to its rows with numpy."""
    values = np.empty(window.n, np.int64 if pa.types.is_integer(type_) else np.float64)  # rows left: masked
    valid = np.zeros(window.n, bool) if any(name not in p.cells for p in window.parts) else None
    for p in window.parts:
        cell = p.cells.get(name)
        if cell is None:
            continue
        if isinstance(cell, pa.Scalar):
            values[p.rows] = cell.as_py()
            if valid is not None:
                valid[p.rows] = cell.is_valid
            continue
        values[p.rows] = (cell.fill_null(0) if cell.null_count else cell).to_numpy()  # nulls masked below
        if cell.null_count:
            if valid is None:
                valid = np.ones(window.n, bool)
            valid[p.rows] = cell.is_valid().to_numpy(zero_copy_only=False)
        elif valid is not None:
            valid[p.rows] = True
    return pa.array(values, type_, mask=None if valid is None or valid.all() else ~valid)


def _text_codes(window: Window, name: str) -> pa.DictionaryArray:
    """A text column in file order as a dictionary array (codes scattered with numpy, each part's
    names or values its own stretch of the dictionary; unused entries dropped)."""
    codes = np.full(window.n, -1, np.int32)
    entries: list[pa.Array] = []
    size = 0
    for p in window.parts:
        cell = p.cells.get(name)
        if cell is None:
            continue
        if isinstance(cell, pa.Scalar):
            if cell.is_valid:
                entries.append(pa.array([cell.as_py()], pa.string()))
                codes[p.rows] = size
                size += 1
            continue
        if not isinstance(cell, pa.DictionaryArray):
            cell = pc.dictionary_encode(cell)
        index = cell.indices.to_numpy(zero_copy_only=False)
        codes[p.rows] = np.where(cell.indices.is_valid().to_numpy(zero_copy_only=False), index + size, -1) \
            if cell.null_count else index + size
        entries.append(cell.dictionary)
        size += len(cell.dictionary)
    valid = codes >= 0
    dictionary = pa.concat_arrays(entries) if entries else pa.array([], pa.string())
    if size > 16:  # an enum's table of 256 names: keep those in use
        used = np.bincount(codes[valid], minlength=size) > 0
        codes = np.where(valid, np.cumsum(used, dtype=np.int32)[np.maximum(codes, 0)] - 1, -1).astype(np.int32)
        dictionary = dictionary.filter(pa.array(used))
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=None if valid.all() else ~valid), dictionary)


def parquet_schema(schema: pa.Schema) -> pa.Schema:
    """The schema :func:`assemble` gives with ``codes``: every text column but ``utc`` (a different
    text per row) as a dictionary of strings. Parquet stores them as UTF-8 strings either way."""
    return pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), pa.string()))
                      if pa.types.is_string(f.type) and f.name != "utc" else f for f in schema])


def assemble(window: Window, schema: pa.Schema, codes: bool = False) -> pa.Table:
    """The window's rows as one table of ``schema``, in file order (every column, null where a
    part leaves it empty). With ``codes``, text columns are dictionary arrays
    (:func:`parquet_schema`): the Parquet writer takes those without hashing every string."""
    inverse = window.order()
    indices = None if inverse is None else pa.array(inverse)
    columns = []
    for f in schema:
        if not pa.types.is_string(f.type):
            columns.append(_numeric_column(window, f.name, f.type))
            continue
        if codes and f.name != "utc":
            columns.append(_text_codes(window, f.name))
            continue
        chunks = [dense(p.cells[f.name], len(p), f.type) if f.name in p.cells else pa.nulls(len(p), f.type)
                  for p in window.parts]
        if not chunks:
            columns.append(pa.nulls(window.n, f.type))
            continue
        column = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
        columns.append(column if indices is None else column.take(indices))
    return pa.table(columns, schema=parquet_schema(schema) if codes else schema)
