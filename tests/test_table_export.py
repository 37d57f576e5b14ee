"""``hullwatch decode --format csv|parquet``: the rows as Arrow columns (tools/captures/table_export.py).

Every value round-trips exactly: the CSV read back and the Parquet file hold, cell for cell, the
values of the JSON-lines rows (the per-packet reference path: RowBuilder over decoded packets),
on clean and damaged captures, with every filter, in one process and with the capture framed in
several."""

from __future__ import annotations

import csv
import io
import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from hullwatch.firmware.telemetry import CaptureSink, TelemetryEmitter, encode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.telemetry.fastcodec import build_tm
from hullwatch.firmware.types import EventId, Severity
from hullwatch.tools.captures import table_export
from hullwatch.tools.captures.formats import FLOAT, INT, TEXT, RowBuilder, iso_utc
from hullwatch.tools.cli import main
from hullwatch.tools.errors import EXIT_BAD_INPUT

from telemetry_samples import EPOCH, sample_data, soyuz_layout

TRICKY_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-4, 9.999999999999999e-05, 1e-05, -1.4999999999999999e-05,
                 1.5e-7, 5e-324, 2.2250738585072014e-308, 1e15, 1e16, 9007199254740993.0, 1.2345678901234568e+17,
                 1.7976931348623157e+308, -1.7976931348623157e+308, math.nan, math.inf, -math.inf,
                 101325.25, 294.81600000000003, 1535572800.1000061]


def _capture(path, n_cycles=400, epochs=(EPOCH,), tc_first=False, oddities=True, nested=False):
    """raw samples every cycle, housekeeping at 1 Hz, layout reports (their epoch changing if
    asked), events, telecommands, and packets the bulk path must leave to the row-by-row one."""
    layout = soyuz_layout()
    sink = CaptureSink(path)
    if tc_first:
        sink.write(encode(P.make_packet(P.SetFdirMode(2), seq=1)))
    em = TelemetryEmitter([sink], layout, epochs[0])
    frame = layout.new_frame()
    rng = random.Random(7)
    hk = sample_data(layout)[0]
    for cycle in range(n_cycles):
        t = cycle * 0.1
        if len(epochs) > 1 and cycle == n_cycles // 2:
            em.epoch_utc = epochs[1]
            em.emit_layout_if_due(t + 1e6)
        em.emit_layout_if_due(t)
        frame.pressure[:] = [101325.0 + cycle + rng.gauss(0, 1) for _ in frame.pressure]
        frame.pressure_status[:] = [rng.choice((0, 0, 0, 1, 3)) for _ in frame.pressure]
        frame.flow[:] = [rng.choice((0.0, -1.5e-05, 2e-3, math.nan))]
        frame.valve_cmd[:] = [rng.randint(0, 1) for _ in frame.valve_cmd]
        em.emit_raw(frame, cycle, t)
        if cycle % 10 == 0:
            em.emit_hk(hk, t)
        if cycle % 97 == 50:
            em.emit_event(P.Event(EventId.LEAK_LOCATED, "soyuz-om", (0.002, 3600.0, 1.2e-4), Severity.HIGH), t)
        if cycle % 150 == 20:
            sink.write(encode(P.make_packet(P.ValveCommand(cycle % 6, True), seq=cycle)))
        if oddities and cycle == 123:
            # raw samples with fewer channels than the layout, and an unknown TM kind
            sink.write(encode(P.make_packet(P.RawSamples(cycle, [1.0], [0], [], [], [], [], [1], [0.5], [0]),
                                            time_utc=EPOCH + t)))
            sink.write(build_tm(110, 1, 3, 25, 0, 0, EPOCH + t, b"\x00\x09abc"))
        if nested and cycle % 25 == 3:
            # an unknown kind whose data holds a whole valid packet: framing from inside it finds
            # that one, which is not a packet of the capture
            inner = encode(P.make_packet(P.AliveReport(), time_utc=EPOCH + t))
            sink.write(build_tm(111, cycle, 200, 1, 0, 0, EPOCH + t, bytes(3000) + inner + bytes(500)))
    em.close()
    return path


FILTERS = [
    [],
    ["--apid", "102"],
    ["--service", "3,25", "--apid", "101"],
    ["--service", "5"],
    ["--event", "LEAK_LOCATED"],
    ["--since", "10", "--until", "20.05"],
    ["--since", "2018-08-29T20:00:15Z"],
    ["--apid", "100", "--apid", "102", "--until", "30"],
]


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    clean = _capture(base / "clean.tm")
    data = bytearray(clean.read_bytes())
    rng = random.Random(11)
    for _ in range(6):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    data[40000:40000] = b"\x08\x66garbage"
    damaged = base / "damaged.tm"
    damaged.write_bytes(bytes(data[:-9]))
    return clean, damaged




def _same(a, b) -> bool:
    """Equal values, NaN equal to NaN, and -0.0 told from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return type(a) is type(b) and a == b


def _reference(capture, argv, tmp_path, capsys):
    """The JSON-lines rows (RowBuilder's values; missing keys are empty cells), exit and stderr."""
    out = tmp_path / "ref.jsonl"
    code = main(["decode", str(capture), "--format", "jsonl", "-o", str(out), *argv])
    err = capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return rows, code, err


def _typed(cell: str, kind: str):
    if cell == "":
        return None
    return int(cell) if kind == INT else float(cell) if kind == FLOAT else cell


def _check_rows(got: list[dict], reference: list[dict], where: str) -> None:
    assert len(got) == len(reference), where
    for i, (row, ref) in enumerate(zip(got, reference)):
        for name, value in row.items():
            expected = ref.get(name)
            if isinstance(expected, float) and isinstance(value, int):
                value = float(value)  # an integral float written without a point
            assert (value is None and expected is None) or _same(value, expected), (where, i, name, value, expected)


@pytest.mark.parametrize("argv", FILTERS)
def test_csv_and_parquet_hold_exactly_the_jsonl_values(captures, argv, tmp_path, capsys):
    for capture in captures:
        reference, ref_code, ref_err = _reference(capture, argv, tmp_path, capsys)
        csv_path, parquet_path = tmp_path / "x.csv", tmp_path / "x.parquet"
        assert main(["decode", str(capture), "--format", "csv", "-o", str(csv_path), *argv]) == ref_code
        assert capsys.readouterr().err == ref_err
        assert main(["decode", str(capture), "--format", "parquet", "-o", str(parquet_path), *argv]) == ref_code
        assert capsys.readouterr().err == ref_err
        table = pq.read_table(parquet_path)
        kinds = {f.name: (INT if pa.types.is_integer(f.type) else FLOAT if pa.types.is_floating(f.type) else TEXT)
                 for f in table.schema}
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == table.column_names
            from_csv = [{k: _typed(v, kinds[k]) for k, v in row.items()} for row in reader]
        _check_rows(from_csv, reference, f"csv {capture.name} {argv}")
        _check_rows(table.to_pylist(), reference, f"parquet {capture.name} {argv}")
    assert ref_code == 3 and "damaged" in ref_err  # the damaged one: exit 3, skips listed


def test_every_float_bit_pattern_round_trips_through_the_csv(tmp_path):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2 ** 63, 5000, dtype=np.uint64).view(np.float64)
    values = np.concatenate([np.array(TRICKY_FLOATS), bits, rng.standard_normal(2000) * 10.0 ** rng.integers(-12, 20, 2000)])
    buf = io.BytesIO()
    with pacsv.CSVWriter(buf, pa.schema([("x", pa.float64())]), write_options=table_export.CSV_OPTIONS) as w:
        w.write_table(pa.table({"x": values}))
    cells = buf.getvalue().decode().splitlines()[1:]
    assert all(_same(float(c), float(v)) for c, v in zip(cells, values.tolist())) and len(cells) == len(values)


def test_round4_and_utc_are_pythons():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-1e6, 1e6, 20000), np.arange(-2000, 2000) / 32.0, np.arange(0, 3000) * 0.00005,
                        [0.0, -0.0, -0.00001, 0.03125, 2.5e-05, 123456789.00005]])
    assert [repr(v) for v in table_export.round4(x).tolist()] == [repr(round(v, 4)) for v in x.tolist()]
    t = np.concatenate([EPOCH + rng.uniform(0, 1e6, 5000), EPOCH + np.arange(2000) / 65536.0,
                        [0.0, -1.0, math.nan, math.inf, 0.0005, 1.0]])
    assert [v or "" for v in table_export.utc_text(t).to_pylist()] == [iso_utc(v) for v in t.tolist()]


def test_the_schema_types_every_column():
    rows = RowBuilder({d.name for d in P.PACKET_DEFS} | {"unknown"}, soyuz_layout())
    schema = table_export.schema_of(rows)
    assert schema.names == rows.columns
    assert schema.field("soyuz-om.p1_pa").type == pa.float64()
    assert schema.field("soyuz-om.p1_status").type == pa.string()  # a SampleStatus name
    assert schema.field("soyuz-om-soyuz-dm.cmd").type == pa.int64()
    assert schema.field("soyuz-om.status").type == pa.string()
    assert schema.field("utc").type == pa.string() and schema.field("offset").type == pa.int64()


def test_framing_in_several_processes_writes_the_same_bytes(captures, tmp_path, capsys):
    _, damaged = captures
    outputs = []
    for fmt in ("csv", "parquet"):
        for workers in ("1", "2"):
            path = tmp_path / f"{workers}.{fmt}"
            code = main(["decode", str(damaged), "--format", fmt, "-o", str(path), "--workers", workers])
            # Parquet compared by its values (repr: NaN equals NaN), CSV byte for byte
            content = path.read_bytes() if fmt == "csv" else repr(pq.read_table(path).to_pylist())
            outputs.append((code, content, capsys.readouterr().err))
        assert outputs[-1] == outputs[-2], fmt
    rows = list(csv.DictReader(io.StringIO(outputs[0][1].decode())))
    assert {r["packet"] for r in rows} >= {"layout", "raw_samples", "housekeeping", "event_high", "valve_command",
                                           "unknown"}
    assert "packets do not match the layout report" in outputs[0][2]


def test_a_capture_whose_epoch_changes_and_that_starts_with_a_telecommand(tmp_path, capsys):
    path = _capture(tmp_path / "epochs.tm", n_cycles=300, epochs=(EPOCH, EPOCH + 3600.0), tc_first=True)
    for argv in ([], ["--since", "-3500"], ["--apid", "100", "--apid", "102"]):
        reference, code, err = _reference(path, argv, tmp_path, capsys)
        out = tmp_path / "e.parquet"
        assert main(["decode", str(path), "--format", "parquet", "-o", str(out), *argv]) == code
        assert capsys.readouterr().err == err
        _check_rows(pq.read_table(out).to_pylist(), reference, str(argv))


def test_a_capture_with_no_rows_still_has_the_header(captures, tmp_path, capsys):
    clean, _ = captures
    out = tmp_path / "none.csv"
    assert main(["decode", str(clean), "--format", "csv", "-o", str(out), "--since", "1e9"]) == 0
    header = out.read_text().splitlines()
    assert len(header) == 1 and header[0].startswith('"offset","utc"')
    assert main(["decode", str(clean), "--format", "parquet", "-o", str(tmp_path / "none.parquet"),
                 "--since", "1e9"]) == 0
    assert pq.read_table(tmp_path / "none.parquet").num_rows == 0


def test_parquet_to_a_terminal_is_refused(captures, capsys, monkeypatch):
    clean, _ = captures
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert main(["decode", str(clean), "--format", "parquet"]) == EXIT_BAD_INPUT
    assert "give -o FILE" in capsys.readouterr().err


def test_assemble_puts_every_part_in_its_rows():
    # three kinds of rows interleaved; each column filled by an array, a constant, or nothing in
    # each part, with empty cells of a part's own; the reference is built row by row
    from hullwatch.tools.captures.table_parts import Part, Window, assemble, enum_names

    names = pa.array([f"NAME{i}" for i in range(256)])
    a = Part(np.array([0, 1, 3, 4, 6, 7]), {
        "x": pa.array([1.5, -0.0, math.nan, 2.0, 3.0, 4.0]), "k": pa.scalar(7, pa.int64()),
        "zero": pa.scalar(0.0), "negzero": pa.scalar(-0.0), "s": enum_names(np.array([3, 3, 200, 3, 9, 200], np.uint8), names),
        "same": pa.scalar("OK")})
    b = Part(np.array([2, 8]), {"x": pa.scalar(-0.0), "k": pa.array([None, 5], pa.int64()),
                                "negzero": pa.scalar(-0.0), "zero": pa.scalar(0.0), "s": pa.scalar("B"), "same": pa.scalar("OK")})
    c = Part(np.array([5]), {"s": pa.array([None], pa.string()), "same": pa.scalar(None, pa.string())})
    window = Window(9, [a, b, c])
    schema = pa.schema([("x", pa.float64()), ("k", pa.int64()), ("zero", pa.float64()), ("negzero", pa.float64()),
                        ("s", pa.string()), ("same", pa.string()), ("none", pa.float64())])
    expected: dict[str, list] = {name: [None] * 9 for name in schema.names}
    for part in (a, b, c):
        for name, cell in part.cells.items():
            values = cell.to_pylist() if isinstance(cell, pa.Array) else [cell.as_py()] * len(part)
            for row, value in zip(part.rows.tolist(), values):
                expected[name][row] = value
    for codes in (False, True):
        table = assemble(window, schema, codes=codes)
        got = {name: col.cast(schema.field(name).type).to_pylist() for name, col in zip(table.column_names, table.columns)}
        for name in schema.names:
            assert len(got[name]) == 9 and all(
                (x is None and y is None) or _same(x, y) for x, y in zip(got[name], expected[name])), (codes, name)
        if codes:  # an enum's table is cut to the names in use
            assert len(table.column("s").chunk(0).dictionary) <= 5
