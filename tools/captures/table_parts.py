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
from typing import Any, Union

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


class _Validity:
    """The validity bitmaps of a window's columns, by the parts that fill them: every column a
    kind of row fills alone (the sensor readings of the raw samples, the estimates of
    housekeeping) has the same one, so it is packed once per window, not once per column."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self._bitmaps: dict[tuple[int, ...], tuple[pa.Buffer | None, int]] = {}

    def of(self, filled: tuple[int, ...]) -> tuple[pa.Buffer | None, int]:
        """(bitmap, null count) of a column filled in the rows of the parts ``filled`` (indices
        in :attr:`Window.parts`) and empty elsewhere; no bitmap when no row is empty."""
        found = self._bitmaps.get(filled)
        if found is None:
            parts = self.window.parts
            valid_rows = sum(len(parts[i]) for i in filled)
            if valid_rows == self.window.n:
                found = (None, 0)
            else:
                valid = np.zeros(self.window.n, bool)
                for i in filled:
                    valid[parts[i].rows] = True
                found = (_bitmap(valid), self.window.n - valid_rows)
            self._bitmaps[filled] = found
        return found


def _bitmap(valid: np.ndarray) -> pa.Buffer:
    """An Arrow validity bitmap (least significant bit first) of a bool array."""
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _numeric_column(window: Window, name: str, type_: pa.DataType, validity: _Validity | None = None) -> pa.Array:
    """A numeric column in file order: each part's values scattered to its rows with numpy, the
    result wrapped as an Arrow array without a copy."""
    parts = window.parts
    present = [(i, p.cells[name]) for i, p in enumerate(parts) if name in p.cells]
    if len(present) == 1 and len(parts[present[0][0]]) == window.n and isinstance(present[0][1], pa.Array):
        return present[0][1]  # one part holds every row: its column as it is
    values = np.empty(window.n, np.int64 if pa.types.is_integer(type_) else np.float64)  # rows left: masked
    filled: list[int] = []
    invalid: list[np.ndarray] = []  # rows of the parts' own empty cells
    for i, cell in present:
        rows = parts[i].rows
        if isinstance(cell, pa.Scalar):
            if cell.is_valid:
                values[rows] = cell.as_py()
                filled.append(i)
            continue
        filled.append(i)
        if cell.null_count:
            values[rows] = cell.fill_null(0).to_numpy()
            invalid.append(rows[~cell.is_valid().to_numpy(zero_copy_only=False)])
        else:
            values[rows] = cell.to_numpy()
    bitmap, nulls = _column_validity(window, validity, filled, invalid)
    return pa.Array.from_buffers(type_, window.n, [bitmap, pa.py_buffer(values)], null_count=nulls)


def _column_validity(window: Any, validity: Any, filled: list[int], invalid: list[Any]) -> tuple[Any, int]:
    """The validity bitmap and null count of a column filled from the parts ``filled``: the
    window's (``validity``, or a new :class:`_Validity`) with the rows of ``invalid`` (row-index
    arrays of null cells) cleared as well."""
    if validity is None:
        validity = _Validity(window)
    bitmap, nulls = validity.of(tuple(filled))
    if invalid:
        valid = np.ones(window.n, bool) if bitmap is None else \
            np.unpackbits(np.frombuffer(bitmap, np.uint8), count=window.n, bitorder="little").astype(bool)
        for rows in invalid:
            valid[rows] = False
        bitmap, nulls = _bitmap(valid), int(window.n - np.count_nonzero(valid))
    return bitmap, nulls


#: (dictionary, which entries are used) -> those entries: the enum tables of a kind of row are the
#: same objects from one window to the next, and their columns use the same few names
_USED_ENTRIES: dict[tuple[int, bytes], tuple[pa.Array, pa.Array]] = {}


def _used_entries(dictionary: pa.Array, used: np.ndarray) -> pa.Array:
    """The entries of ``dictionary`` where ``used`` is True (remembered; see :data:`_USED_ENTRIES`)."""
    key = (id(dictionary), used.tobytes())
    found = _USED_ENTRIES.get(key)
    if found is not None and found[0] is dictionary:  # the held reference keeps the id unique
        return found[1]
    if len(_USED_ENTRIES) >= 1024:
        _USED_ENTRIES.clear()
    entries = dictionary.filter(pa.array(used))
    _USED_ENTRIES[key] = (dictionary, entries)
    return entries


def _text_codes(window: Window, name: str, validity: _Validity | None = None) -> pa.DictionaryArray:
    """A text column in file order as a dictionary array: codes scattered with numpy, each part's
    names or values its own stretch of the dictionary. A part's enum table (256 names) is cut to
    the names its rows use, so the dictionary stays small."""
    parts = window.parts
    codes = np.zeros(window.n, np.int32)  # rows left: masked (and 0, a valid index, under the mask)
    entries: list[pa.Array] = []
    filled: list[int] = []
    invalid: list[np.ndarray] = []
    size = 0
    for i, p in enumerate(parts):
        cell = p.cells.get(name)
        if cell is None:
            continue
        if isinstance(cell, pa.Scalar):
            if cell.is_valid:
                entries.append(pa.array([cell.as_py()], pa.string()))
                codes[p.rows] = size
                size += 1
                filled.append(i)
            continue
        filled.append(i)
        table = isinstance(cell, pa.DictionaryArray)  # an enum's names (else: the part's own values)
        if not table:
            cell = pc.dictionary_encode(cell)
        dictionary = cell.dictionary
        indices = cell.indices
        if cell.null_count:
            invalid.append(p.rows[~indices.is_valid().to_numpy(zero_copy_only=False)])
            indices = indices.fill_null(0)
        index = indices.to_numpy()
        if table and len(dictionary) > 16:  # an enum's table of 256 names: keep those in use
            used = np.bincount(index, minlength=len(dictionary)) > 0
            renumber = np.cumsum(used, dtype=np.int32) - 1
            codes[p.rows] = renumber[index] + size
            dictionary = _used_entries(dictionary, used)
        else:
            codes[p.rows] = index.astype(np.int32) + size if size else index
        entries.append(dictionary)
        size += len(dictionary)
    bitmap, nulls = _column_validity(window, validity, filled, invalid)
    dictionary = pa.concat_arrays(entries) if len(entries) > 1 else entries[0] if entries else pa.array([], pa.string())
    indices = pa.Array.from_buffers(pa.int32(), window.n, [bitmap, pa.py_buffer(codes)], null_count=nulls)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


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
    validity = _Validity(window)
    columns = []
    #: columns made of constants (a quiet window's statuses and valve states), by their constants:
    #: arrays are immutable, so columns with the same constants in the same parts share one
    shared: dict[tuple[Any, ...], pa.Array] = {}
    for f in schema:
        key = _constants_key(window, f.name, f.type)
        column = shared.get(key) if key is not None else None
        if column is None:
            column = _column(window, f, codes, validity, indices)
            if key is not None:
                shared[key] = column
        columns.append(column)
    return pa.table(columns, schema=parquet_schema(schema) if codes else schema)


def _constants_key(window: Window, name: str, type_: pa.DataType) -> tuple[Any, ...] | None:
    """What a column is made of when each part leaves it empty or holds one constant in it
    (floats by their bits, so 0.0 and -0.0 stay apart); None when a part holds an array."""
    key: list[Any] = [type_]
    for i, p in enumerate(window.parts):
        cell = p.cells.get(name)
        if cell is None:
            continue
        if not isinstance(cell, pa.Scalar):
            return None
        value = cell.as_py()
        key.append((i, value.hex() if isinstance(value, float) else value))  # None: an empty constant
    return tuple(key)


def _column(window: Window, f: pa.Field, codes: bool, validity: _Validity, indices: pa.Array | None) -> pa.Array:
    """Column ``f`` of the window in file order (see :func:`assemble`)."""
    if not pa.types.is_string(f.type):
        return _numeric_column(window, f.name, f.type, validity)
    if codes and f.name != "utc":
        return _text_codes(window, f.name, validity)
    chunks = [dense(p.cells[f.name], len(p), f.type) if f.name in p.cells else pa.nulls(len(p), f.type)
              for p in window.parts]
    if not chunks:
        return pa.nulls(window.n, f.type)
    column = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
    return column if indices is None else column.take(indices)
