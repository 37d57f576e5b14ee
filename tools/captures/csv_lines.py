"""CSV text of a window of rows (:class:`~hullwatch.tools.captures.table_parts.Window`), made by
Arrow's compute kernels, byte for byte what ``pyarrow.csv.write_csv`` writes for the same table
with :data:`CSV_OPTIONS` (a test holds it to that on real captures).

The format (RFC 4180, ``\\n`` line ends, UTF-8): a header line of the column names; a line per
row; text cells in double quotes with a quote inside doubled; numbers bare, as Arrow casts them
to text (integers in decimal; floats as the shortest text that reads back to the same float64,
``nan``, ``inf``, ``-0``); an empty cell as nothing between two commas.

Why not hand the table to ``pyarrow.csv.write_csv``: the writer works cell by cell, and an empty
cell of a numeric column costs it as much as a short number (about 12 ns, a null cast to text
and then skipped). A raw-samples row leaves about 90 of the 157 columns of a full export empty,
a housekeeping row about 100, so a third of the writer's time went on nothing. Here each
:class:`Part` (rows of one kind) is rendered with only its own columns: the cells every row of
the part shares (its empty columns, the quotes and commas between cells, columns whose value is
the same in every row) are one text constant, and the columns that vary are cast to text (the
same cast the writer uses, one cast per number type for the whole part). A column of readings
that repeat (a quiet module's pressures: a few hundred multiples of 0.25 Pa in a window) is
cast as a small table of its distinct values (:func:`coded_values`) with the constant after it
appended to each entry, and its rows picked from the table. ``binary_join_element_wise`` lays
the pieces end to end into one line per row. The lines of the parts are put back in file order
with one ``take``, and the data buffers of the resulting string arrays are the CSV text of the
window, written without a copy.
"""

from __future__ import annotations

import functools
import math
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .table_parts import Cell, Part, Window

#: the writer options this module matches: a header line, text cells in double quotes (quoting
#: style "needed" quotes every text value), numbers bare, an empty cell empty
CSV_OPTIONS = pacsv.WriteOptions(include_header=True, quoting_style="needed", batch_size=8192)


def quote(text: str) -> str:
    """A text cell: in double quotes, a quote inside doubled."""
    return '"' + text.replace('"', '""') + '"'


def header(schema: pa.Schema) -> bytes:
    """The header line (column names, quoted), with its line end."""
    return (",".join(quote(name) for name in schema.names) + "\n").encode("utf-8")


def _escaped(strings: pa.Array) -> pa.Array:
    """Text with each quote doubled (nulls stay null)."""
    return pc.replace_substring(strings, '"', '""')


def _scalar_text(cell: pa.Scalar, is_text: bool) -> str:
    if not cell.is_valid:
        return ""
    if is_text:
        return quote(cell.as_py())
    value = cell.as_py()
    return _number_text(cell.type, value, math.copysign(1.0, value) if isinstance(value, float) else 1.0)


@functools.lru_cache(maxsize=4096)
def _number_text(type_: pa.DataType, value: float | int, sign: float) -> str:
    """The writer's text of one number (a column every row of a part shares: valve states, APIDs);
    ``sign`` keeps -0.0 and 0.0 (equal as keys) apart."""
    return pc.cast(pa.array([value], type_), pa.string())[0].as_py()


#: scales tried for a float column whose values are whole multiples of 1/Q (quarter pascals,
#: millikelvins...), smallest first
SCALES = np.array([1.0, 2.0, 4.0, 8.0, 10.0, 16.0, 100.0, 1e3, 1e4, 1e5, 1e6])
#: where the values looked at to choose a scale lie, as fractions of the column: spread at random
#: (fixed), so that no period of the data lines up with them
_SAMPLE_AT = np.random.default_rng(0).random(256)
_SCALES_COLUMN = SCALES[:, None]


def _scale_of(x: np.ndarray) -> float | None:
    """The smallest scale Q of :data:`SCALES` for which most sampled values are whole multiples of
    1/Q; None if there is none."""
    sample = x[(_SAMPLE_AT * len(x)).astype(np.int64)]
    counts = (np.rint(_SCALES_COLUMN * sample) / _SCALES_COLUMN == sample).sum(axis=1)
    best = counts.max()
    if best < len(sample) // 2:
        return None
    return float(SCALES[int(np.argmax(counts >= 0.95 * best))])


def coded_floats(x: np.ndarray, scales: dict[str, float] | None = None, name: str = ""
                 ) -> tuple[pa.Array, np.ndarray] | None:
    """Float64 values as a small table of texts and an index per value, when that is cheaper than
    casting every value: ``table.take(index)`` is exactly ``pc.cast(x, pa.string())``
    (:func:`coded_values`, the table cast to text)."""
    coded = coded_values(x, scales, name)
    return None if coded is None else (pc.cast(pa.array(coded[0]), pa.string()), coded[1])


def coded_values(x: np.ndarray, scales: dict[str, float] | None = None, name: str = ""
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Float64 values as a small table of float64 values and an index per value
    (``table[index]`` has the bits of ``x``), when casting the table is cheaper than casting ``x``.

    A sensor reading repeats: a window of 10,000 pressures quantised to 0.25 Pa holds a few hundred
    distinct values. Values that are exactly ``k / Q`` for a scale ``Q`` (:func:`_scale_of`) with
    whole k in a range narrower than ``len(x) / 4`` (else: within ``len(x) / 8`` of the median k)
    become the table ``(k0..k1) / Q``, cast once; the rest (NaN, -0.0, outliers, readings with
    float noise) are cast one by one and appended to the table. The text of a value is always
    Arrow's cast of that very float64 (the test for ``k / Q`` compares values, -0.0 apart), so
    nothing depends on how Arrow formats. None when no scale fits or fewer than half the values
    would come from the table. ``scales`` remembers the scale found for each column ``name`` from
    one window to the next (choosing it is much of the fixed cost).
    """
    n = len(x)
    if n < 64:
        return None
    hint = None if scales is None else scales.get(name)
    with np.errstate(invalid="ignore", over="ignore"):
        q = hint if hint is not None else _scale_of(x)
        if q is None:
            return None
        found = _multiples(x, q)
        if found is None and hint is not None:
            q = _scale_of(x)
            found = None if q is None else _multiples(x, q)
    if found is None:
        return None
    if scales is not None:
        scales[name] = q
    k, exact, k0, k1 = found
    held = int(np.count_nonzero(exact))
    others = np.flatnonzero(~exact) if held < n else np.zeros(0, np.int64)
    if k0 <= 0.0 <= k1:  # -0.0 reads as k = 0 but its text is "-0"
        zero = np.flatnonzero(x == 0.0)
        negative = zero[np.signbit(x[zero])]
        if len(negative):
            others = np.union1d(others, negative)
    span = int(k1 - k0) + 1
    np.subtract(k, k0, out=k)
    if len(others):
        k[others] = 0.0
    index = k.astype(np.int64)
    index[others] = span + np.arange(len(others))
    table = np.arange(int(k0), int(k1) + 1, dtype=np.int64) / q
    return (np.concatenate((table, x[others])) if len(others) else table), index


def _multiples(x: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """``k = rint(x * q)``, where ``x == k / q`` (and k in the range kept), and that range; None
    if fewer than half the values are kept or the range is wide."""
    n = len(x)
    k = np.multiply(x, q)
    np.rint(k, out=k)
    exact = np.divide(k, q) == x  # NaN fails; an infinity makes the range wide
    held = int(np.count_nonzero(exact))
    if held < n // 2:
        return None
    k0, k1 = _range(k, exact, held)
    if not k1 - k0 < n // 4:  # outliers: keep the values near the median
        middle = float(np.median(k[exact][:: max(1, held // 256)]))
        exact &= np.abs(k - middle) <= n // 8
        held = int(np.count_nonzero(exact))
        if held < n // 2:
            return None
        k0, k1 = _range(k, exact, held)
    if not (k1 - k0 < n // 4 and -2.0 ** 52 < k0 and k1 < 2.0 ** 52):
        return None
    return k, exact, k0, k1


def _range(k: np.ndarray, where: np.ndarray, held: int) -> tuple[float, float]:
    """Smallest and largest of ``k[where]`` (``held`` of them, at least one)."""
    if held == len(k):
        return float(k.min()), float(k.max())
    chosen = k[where]
    return float(chosen.min()), float(chosen.max())


class _Column:
    """A varying column of a part on its way to text: ``values`` to cast (numbers), or ``text``
    already (text columns); with ``index``, those are a table and ``index`` picks each row's entry."""

    __slots__ = ("values", "text", "index", "after")

    def __init__(self, values: pa.Array | None = None, text: pa.Array | None = None,
                 index: np.ndarray | None = None) -> None:
        self.values = values
        self.text = text
        self.index = index
        self.after = ""  #: the constant text that follows the column in every line


def _column(cell: pa.Array, is_text: bool, scales: dict[str, float], name: str) -> _Column:
    """A varying column, unquoted (the quotes are in the constants around it)."""
    if isinstance(cell, pa.DictionaryArray) and not cell.null_count:
        return _Column(text=_escaped(cell.dictionary), index=cell.indices.to_numpy())
    if isinstance(cell, pa.DictionaryArray):
        cell = cell.dictionary_decode()
    if is_text:
        return _Column(text=_escaped(cell))
    if pa.types.is_floating(cell.type) and not cell.null_count:
        coded = coded_values(cell.to_numpy(), scales, name)
        if coded is not None:
            return _Column(values=pa.array(coded[0]), index=coded[1])
    return _Column(values=cell)


def part_lines(part: Part, schema: pa.Schema, text_columns: frozenset[str],
               scales: dict[str, float] | None = None) -> pa.Array:
    """The CSV lines (each with its ``\\n``) of the rows of ``part``, in the part's order.
    ``scales``: see :func:`coded_floats`."""
    scales = {} if scales is None else scales
    # a line is: the text constant before the first varying column, then each varying column
    # followed by the constant up to the next one (the last ends with the line end)
    first: str | None = None
    columns: list[_Column] = []
    constant: list[str] = []
    for i, name in enumerate(schema.names):
        if i:
            constant.append(",")
        cell: Cell | None = part.cells.get(name)
        if cell is None:
            continue
        is_text = name in text_columns
        if isinstance(cell, pa.Scalar):
            constant.append(_scalar_text(cell, is_text))
            continue
        column = _column(cell, is_text, scales, name)
        quoted = is_text and not column.text.null_count  # an empty text cell has no quotes
        if is_text and not quoted:
            column.text = pc.binary_join_element_wise('"', column.text, '"', "")
        if quoted:
            constant.append('"')
        if columns:
            columns[-1].after = "".join(constant)
        else:
            first = "".join(constant)
        columns.append(column)
        constant = ['"'] if quoted else []
    constant.append("\n")
    if not columns:
        return pa.repeat(pa.scalar("".join(constant)), len(part))
    columns[-1].after = "".join(constant)
    _cast_all(columns)
    return _lay_out(first or "", columns, len(part))


def _cast_all(columns: list[_Column]) -> None:
    """Cast the numbers of every column to text, one cast per type for the whole part (a cast
    call costs tens of microseconds of its own)."""
    by_type: dict[pa.DataType, list[_Column]] = {}
    for c in columns:
        if c.values is not None:
            by_type.setdefault(c.values.type, []).append(c)
    for group in by_type.values():
        values = [c.values for c in group]
        text = pc.cast(values[0] if len(values) == 1 else pa.concat_arrays(values), pa.string())
        at = 0
        for c in group:
            c.text = text.slice(at, len(c.values))
            at += len(c.values)


def _lay_out(first: str, columns: list[_Column], n: int) -> pa.Array:
    """Lay the columns and constants end to end, one line per row. A column given as a table
    gets the constant after it appended to its table entries (once per entry, not per row): all
    such tables at once, and all their rows picked with one ``take``."""
    tabled = [c for c in columns if c.index is not None]
    picked: dict[int, pa.Array] = {}
    if tabled:
        sizes = [len(c.text) for c in tabled]
        afters = pa.array([c.after for c in tabled]).take(pa.array(np.repeat(np.arange(len(tabled)), sizes)))
        entries = pc.binary_join_element_wise(pa.concat_arrays([c.text for c in tabled]), afters, "")
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        rows = entries.take(pa.array(np.concatenate([c.index + at for c, at in zip(tabled, starts)])))
        for j, c in enumerate(tabled):
            picked[id(c)] = rows.slice(j * n, n)
    pieces: list[pa.Array | pa.Scalar] = []
    if first:
        pieces.append(pa.scalar(first))
    for c in columns:
        if c.index is not None:
            pieces.append(picked[id(c)])
            continue
        pieces.append(c.text)
        if c.after:
            pieces.append(pa.scalar(c.after))
    if len(pieces) == 1:
        return pieces[0]
    # an empty number (a null in a varying column) is an empty cell
    return pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")


def window_lines(window: Window, schema: pa.Schema, text_columns: frozenset[str],
                 scales: dict[str, float] | None = None) -> pa.ChunkedArray:
    """The CSV lines of the window's rows, in file order, as string arrays. ``scales``: see
    :func:`coded_floats`."""
    lines = [part_lines(p, schema, text_columns, scales) for p in window.parts if len(p)]
    if not lines:
        return pa.chunked_array([], pa.string())
    inverse = window.order()
    if inverse is None:
        return pa.chunked_array(lines)
    return pa.chunked_array(lines).take(pa.array(inverse))  # the parts are not laid end to end first


def write_lines(lines: pa.Array | pa.ChunkedArray, out: IO[bytes]) -> None:
    """Write the text of string arrays of whole lines to ``out``, from Arrow's buffers (no copy)."""
    for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
        if not len(chunk):
            continue
        _, offsets, data = chunk.buffers()
        bounds = np.frombuffer(offsets, np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
        out.write(memoryview(data)[int(bounds[0]):int(bounds[-1])])


def write_in_order(window: Window, lines: list[pa.Array], out: IO[bytes]) -> None:
    """Write the lines of the window's parts (``lines[j]``: part ``j``'s, in its order) to ``out``
    in file order, a run of consecutive rows of one part at a time straight from the parts'
    buffers: putting the lines in order with a ``take`` first copied the window's text once more
    (about 3 bytes of memory per byte of capture)."""
    if len(lines) == 1:
        write_lines(lines[0], out)
        return
    n = window.n
    part = np.empty(n, np.int32)
    for j, p in enumerate(window.parts):
        part[p.rows] = j
    # a run: consecutive rows of one part (a part's rows are increasing, so they are consecutive
    # lines of that part too)
    first = np.flatnonzero(np.concatenate(([True], part[1:] != part[:-1])))
    ends = np.append(first[1:], n)
    taken = np.zeros(len(lines), np.int64)  # lines of each part written so far
    bounds = []
    for chunk in lines:
        _, offsets, _ = chunk.buffers()
        bounds.append(np.frombuffer(offsets, np.int32)[chunk.offset:chunk.offset + len(chunk) + 1].tolist())
    data = [memoryview(chunk.buffers()[2]) for chunk in lines]
    write = out.write
    for j, length in zip(part[first].tolist(), (ends - first).tolist()):
        at = int(taken[j])
        b = bounds[j]
        write(data[j][b[at]:b[at + length]])
        taken[j] = at + length


class CsvWriter:
    """Writes windows of rows of ``schema`` to ``out`` as CSV: the header line first."""

    def __init__(self, out: IO[bytes], schema: pa.Schema) -> None:
        self.out = out
        self.schema = schema
        self.text_columns = frozenset(f.name for f in schema if pa.types.is_string(f.type))
        self._scales: dict[str, float] = {}
        out.write(header(schema))

    def write(self, window: Window) -> None:
        """Write the window's rows. The parts' columns are let go of as their lines are made (the
        window is spent)."""
        lines = []
        for p in window.parts:
            lines.append(part_lines(p, self.schema, self.text_columns, self._scales) if len(p)
                         else pa.array([], pa.string()))
            p.cells.clear()
        write_in_order(window, lines, self.out)
