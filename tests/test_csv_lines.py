"""CSV and Parquet export on real captures, bit for bit (tools/captures/csv_lines.py, table_parts.py).

- The CSV text made per kind of row is byte for byte what ``pyarrow.csv.write_csv`` writes for the
  same rows (the whole table of each window, with the documented options).
- Read back with the ``csv`` module, every sample of a real closed-loop capture is the float64 the
  packet holds (compared by bits), every status its SampleStatus name; so are the Parquet columns.
- Odd floats a raw-samples packet can carry (NaN, inf, -inf, -0.0, subnormals, the extremes,
  readings with float noise next to quantised ones) round-trip through both formats.
- The text table of repeating readings gives Arrow's own cast of each value (a property test).
"""

from __future__ import annotations

import csv
import io
import math
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hullwatch.firmware.telemetry import CaptureSink, TelemetryEmitter
from hullwatch.hal.interfaces import SampleStatus
from hullwatch.tools.captures import csv_lines
from hullwatch.tools.captures.formats import RowBuilder, Selector
from hullwatch.tools.captures.table_export import TableExporter, export_csv, export_parquet
from hullwatch.tools.captures.table_parts import assemble
from hullwatch.tools.closed_loop.runner import run_scenario
from hullwatch.tools.ground.capture import iter_capture

from telemetry_samples import EPOCH, soyuz_layout

ODD = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, -5e-324, 2.2250738585072014e-308,
       2.225073858507201e-308, 1.7976931348623157e+308, -1.7976931348623157e+308, 1e-7, -1.5e-05, 0.1,
       1e16, 9007199254740993.0, 101325.25, 101325.25 + 2 ** -36, 294.81600000000003, -0.25, -1.75]


def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _rows_and_selector(path):
    """RowBuilder and Selector as ``hullwatch decode`` makes them for a whole capture."""
    from hullwatch.tools.cli.decode import _scan_layout
    from hullwatch.firmware.telemetry import packets as P

    layout, counts, epoch, first = _scan_layout(str(path))
    rows = RowBuilder({d.name for d in P.PACKET_DEFS} | {"unknown"}, layout, counts)
    return rows, Selector(None, None, None, None, None, epoch if epoch is not None else first)


@pytest.fixture(scope="module")
def real_capture(tmp_path_factory):
    """Three minutes of the soyuz-ms09 leak, recorded by the closed loop (1,800 raw-samples packets)."""
    path = tmp_path_factory.mktemp("real") / "ms09.tm"
    run_scenario("sim://soyuz-ms09?seed=7", until=180.0, capture=path)
    return path


@pytest.fixture(scope="module")
def odd_capture(tmp_path_factory):
    """Raw samples whose pressures walk through :data:`ODD` (one odd value per cycle and channel,
    among quantised readings) and whose statuses change, written by the flight emitter."""
    path = tmp_path_factory.mktemp("odd") / "odd.tm"
    layout = soyuz_layout()
    sink = CaptureSink(path)
    em = TelemetryEmitter([sink], layout, EPOCH)
    frame = layout.new_frame()
    for cycle in range(600):
        em.emit_layout_if_due(cycle * 0.1)
        for j in range(len(frame.pressure)):
            frame.pressure[j] = ODD[(cycle + j) % len(ODD)] if cycle % 3 == 0 else 101325.0 + ((cycle * 7 + j) % 40) / 4
            frame.pressure_status[j] = (cycle // 50 + j) % 4
        frame.temperature[:] = [295.0 + ((cycle + j) % 500) / 1000 for j in range(len(frame.temperature))]
        frame.flow[:] = [-0.0 if cycle % 2 else 5e-324]
        em.emit_raw(frame, cycle, cycle * 0.1)
    em.close()
    return path


def _writer_csv(path) -> bytes:
    """The reference: pyarrow's CSV writer over the whole table of every window."""
    rows, selector = _rows_and_selector(path)
    exporter = TableExporter(rows, selector)
    buf = io.BytesIO()
    with pacsv.CSVWriter(buf, exporter.schema, write_options=csv_lines.CSV_OPTIONS) as w:
        for window in exporter.windows(path):
            w.write_table(assemble(window, exporter.schema))
    return buf.getvalue()


def _export(path, tmp_path) -> tuple[bytes, pa.Table]:
    rows, selector = _rows_and_selector(path)
    buf = io.BytesIO()
    export_csv(path, buf, rows, selector)
    rows, selector = _rows_and_selector(path)
    export_parquet(path, tmp_path / "x.parquet", rows, selector)
    return buf.getvalue(), pq.read_table(tmp_path / "x.parquet")


@pytest.mark.parametrize("which", ["real_capture", "odd_capture"])
def test_the_csv_is_what_pyarrows_writer_writes(which, request, tmp_path):
    path = request.getfixturevalue(which)
    text, _ = _export(path, tmp_path)
    assert text == _writer_csv(path)


@pytest.mark.parametrize("which", ["real_capture", "odd_capture"])
def test_every_sample_reads_back_bit_for_bit(which, request, tmp_path):
    path = request.getfixturevalue(which)
    text, table = _export(path, tmp_path)
    layout = soyuz_layout() if which == "odd_capture" else None
    packets = [(offset, p) for offset, _, p in iter_capture(path) if p.name == "raw_samples"]
    by_offset = {int(r["offset"]): r for r in csv.DictReader(io.StringIO(text.decode("utf-8")))
                 if r["packet"] == "raw_samples"}
    parquet = {row["offset"]: row for row in table.to_pylist() if row["packet"] == "raw_samples"}
    assert len(packets) == len(by_offset) == len(parquet) > 500
    names = [c for c in table.column_names if c.endswith(("_pa", "_k", "_kg_s")) and "." in c
             and not c.endswith((".pressure_pa", ".temperature_k", ".leak_rate_kg_s"))]
    if layout is not None:
        assert names[0] == f"{layout.pressure[0].id}_pa"
    for offset, packet in packets:
        d = packet.data
        values = [*d.pressure, *d.temperature, *d.flow]
        statuses = [*d.pressure_status, *d.temperature_status, *d.flow_status]
        assert len(values) == len(names)
        for name, value, status in zip(names, values, statuses):
            for got in (float(by_offset[offset][name]), parquet[offset][name]):
                assert _bits(got) == _bits(value) or (math.isnan(got) and math.isnan(value)), (offset, name)
            status_column = name.rsplit("_", 2 if name.endswith("_kg_s") else 1)[0] + "_status"
            assert by_offset[offset][status_column] == parquet[offset][status_column] == SampleStatus(status).name
        assert int(by_offset[offset]["cycle"]) == parquet[offset]["cycle"] == d.cycle


def test_parquet_text_columns_read_back_as_strings(odd_capture, tmp_path):
    _, table = _export(odd_capture, tmp_path)
    assert table.schema.field("soyuz-om.p1_status").type == pa.string()
    assert table.schema.field("packet").type == pa.string() and table.schema.field("utc").type == pa.string()
    assert table.schema.field("soyuz-om.p1_pa").type == pa.float64()
    assert table.schema.field("cycle").type == pa.int64()


def test_odd_floats_written_as_arrow_casts_them():
    values = 101325.0 + np.arange(1050) % 40 / 4.0  # quantised readings: taken from a table...
    values[::5] = ODD * 10  # ...and odd ones among them: cast one by one
    assert csv_lines.coded_floats(values) is not None
    lines = csv_lines.window_lines(*_one_column_window(values))
    assert [line.rstrip("\n") for line in lines.to_pylist()] == pc.cast(pa.array(values), pa.string()).to_pylist()
    assert [_bits(float(line)) for line in lines.to_pylist() if "nan" not in line] == \
        [_bits(v) for v in values.tolist() if not math.isnan(v)]


def _one_column_window(values: np.ndarray):
    from hullwatch.tools.captures.table_parts import Part, Window

    part = Part(np.arange(len(values)), {"x": pa.array(values)})
    return Window(len(values), [part]), pa.schema([("x", pa.float64())]), frozenset()


finite = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)


@settings(max_examples=200, deadline=None)
@given(base=st.integers(-10 ** 7, 10 ** 7), scale=st.sampled_from([1.0, 4.0, 10.0, 1e3, 1e6, 3.0]),
       steps=st.lists(st.integers(-50, 50), min_size=64, max_size=400),
       noise=st.lists(st.tuples(st.integers(0, 399), finite), max_size=20))
def test_the_text_table_is_the_cast_of_every_value(base, scale, steps, noise):
    """Readings ``(base + step) / scale`` with arbitrary floats mixed in: the table and index
    give exactly ``pc.cast`` of every value, whichever way each value is taken."""
    x = (base + np.cumsum(np.array(steps, np.int64))) / scale
    for at, value in noise:
        x[at % len(x)] = value
    expected = pc.cast(pa.array(x), pa.string()).to_pylist()
    coded = csv_lines.coded_floats(x)
    if coded is not None:
        table, index = coded
        assert table.take(pa.array(index)).to_pylist() == expected
    lines = csv_lines.window_lines(*_one_column_window(x))
    assert [line.rstrip("\n") for line in lines.to_pylist()] == expected


def test_quantised_readings_are_taken_from_a_table():
    x = 101325.0 + np.arange(2000) % 37 / 4.0
    table, index = csv_lines.coded_floats(x)
    assert len(table) == 37 and table.take(pa.array(index)).to_pylist() == pc.cast(pa.array(x), pa.string()).to_pylist()
    assert csv_lines.coded_floats(np.random.default_rng(1).standard_normal(2000)) is None  # nothing repeats


def test_text_cells_are_quoted_and_empty_ones_are_not():
    from hullwatch.tools.captures.table_parts import Part, Window

    texts = pa.array(['say "hi"', None, "a,b", "line\nbreak", ""])
    numbers = pa.array([1.5, None, -0.0, math.nan, 2.0])
    window = Window(5, [Part(np.arange(5), {"t": texts, "x": numbers, "k": pa.scalar("K")})])
    schema = pa.schema([("t", pa.string()), ("gap", pa.int64()), ("x", pa.float64()), ("k", pa.string())])
    buf = io.BytesIO()
    pacsv.write_csv(assemble(window, schema), buf, write_options=csv_lines.CSV_OPTIONS)
    lines = b"".join(line.encode() for line in csv_lines.window_lines(window, schema, frozenset({"t", "k"})).to_pylist())
    assert csv_lines.header(schema) + lines == buf.getvalue()
    assert lines.startswith(b'"say ""hi""",,1.5,"K"\n,,,"K"\n"a,b",,-0,"K"\n')
    back = list(csv.reader(io.StringIO(buf.getvalue().decode())))[1:]
    assert back == [['say "hi"', "", "1.5", "K"], ["", "", "", "K"], ["a,b", "", "-0", "K"],
                    ["line\nbreak", "", "nan", "K"], ["", "", "2", "K"]]


@pytest.mark.parametrize("which", ["real_capture", "odd_capture"])
def test_pyarrows_csv_reader_gives_back_the_parquet_table(which, request, tmp_path):
    """Read with the documented options, the CSV is the Parquet table, every float by its bits."""
    path = request.getfixturevalue(which)
    text, table = _export(path, tmp_path)
    options = pacsv.ConvertOptions(column_types=dict(zip(table.column_names, table.schema.types)), null_values=[""],
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)
    back = pacsv.read_csv(io.BytesIO(text), convert_options=options)
    assert back.schema == table.schema and back.num_rows == table.num_rows
    for name in table.column_names:
        a, b = back.column(name).combine_chunks(), table.column(name).combine_chunks()
        if pa.types.is_floating(a.type):
            assert a.is_valid().equals(b.is_valid()), name
            bits_a = np.asarray(a.fill_null(0.0).to_numpy()).view(np.int64)
            bits_b = np.asarray(b.fill_null(0.0).to_numpy()).view(np.int64)
            nan = np.isnan(a.fill_null(0.0).to_numpy())
            assert (nan == np.isnan(b.fill_null(0.0).to_numpy())).all() and (bits_a[~nan] == bits_b[~nan]).all(), name
        else:
            assert a.equals(b), name
