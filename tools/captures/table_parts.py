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


def assemble(window: Window, schema: pa.Schema) -> pa.Table:
    """The window's rows as one table of ``schema``, in file order (every column, null where a
    part leaves it empty)."""
    inverse = window.order()
    indices = None if inverse is None else pa.array(inverse)
    columns = []
    for f in schema:
        chunks = [dense(p.cells[f.name], len(p), f.type) if f.name in p.cells else pa.nulls(len(p), f.type)
                  for p in window.parts]
        if not chunks:
            columns.append(pa.nulls(window.n, f.type))
            continue
        column = pa.chunked_array(chunks, f.type)
        columns.append(column if indices is None else column.take(indices))
    return pa.table(columns, schema=schema)
