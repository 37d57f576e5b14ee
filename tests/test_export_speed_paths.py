"""``hullwatch decode --format csv`` in bulk (tools/captures/csv_export.py) writes the same bytes as the
row-by-row path (decode_format's RowBuilder and the csv module): compared through the real CLI on
clean and damaged captures, with every filter, in one process and in several."""

from __future__ import annotations

import csv
import io
import math
import random

import numpy as np
import pytest

from hullwatch.firmware.telemetry import CaptureSink, TelemetryEmitter, encode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.telemetry.fastcodec import build_tm
from hullwatch.firmware.types import EventId, Severity
from hullwatch.tools.cli import decode as cmd_decode
from hullwatch.tools.captures import csv_export as decode_csv
from hullwatch.tools.cli import main
from hullwatch.tools.captures.formats import RowBuilder, Selector, iso_utc

from telemetry_samples import EPOCH, sample_data, soyuz_layout

TRICKY_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-4, 9.999999999999999e-05, 1e-05, -1.4999999999999999e-05,
                 1.5e-7, 5e-324, 2.2250738585072014e-308, 1e15, 1e16, 9007199254740993.0, 1.2345678901234568e+17,
                 1.7976931348623157e+308, -1.7976931348623157e+308, math.nan, math.inf, -math.inf,
                 101325.25, 294.81600000000003, 1535572800.1000061]


def _csv_line(values: list) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def test_rendered_numbers_are_what_the_csv_module_writes():
    rng = np.random.default_rng(1)
    k = 300
    floats = np.concatenate([np.array(TRICKY_FLOATS), rng.standard_normal(k - len(TRICKY_FLOATS)) * 10.0 ** rng.integers(-12, 20, k - len(TRICKY_FLOATS))])
    bits = rng.integers(0, 2 ** 63, k, dtype=np.uint64).view(np.float64)  # any bit pattern
    ints = rng.integers(0, 2 ** 40, k)
    small = rng.integers(0, 256, k).astype(np.uint8)
    cells = decode_csv.utc_cells(np.full(k, EPOCH + 0.25))
    columns = {0: ("i", ints), 1: ("f", floats), 2: ("u", small), 4: ("c", cells), 5: ("l", b"TM"),
               6: ("f", bits), 9: ("u", small[::-1].copy())}
    text, ends = decode_csv.render(columns, 12, k)
    lines = bytes(text).decode("ascii").splitlines(keepends=True)
    assert len(lines) == k and ends[-1] == len(text)
    for r in range(k):
        expected = [int(ints[r]), float(floats[r]), int(small[r]), "", iso_utc(EPOCH + 0.25), "TM",
                    float(bits[r]), "", "", int(small[::-1][r]), "", ""]
        assert lines[r] == _csv_line(expected), r


def test_text_runs_longer_than_a_place_holder():
    k = 5
    long = np.frombuffer(b"x" * 70 * k, np.uint8).reshape(k, 70)
    columns = {1: ("c", long), 2: ("c", long), 40: ("f", np.arange(k) / 3)}
    text, _ = decode_csv.render(columns, 45, k)
    expected = "".join(_csv_line(["", "x" * 70, "x" * 70, *[""] * 37, v / 3, "", "", "", ""]) for v in range(k))
    assert bytes(text).decode() == expected


def test_round4_and_utc_are_pythons():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-1e6, 1e6, 20000), np.arange(-2000, 2000) / 32.0, np.arange(0, 3000) * 0.00005,
                        [0.0, -0.0, -0.00001, 0.03125, 2.5e-05, 123456789.00005]])
    assert [repr(v) for v in decode_csv.round4(x).tolist()] == [repr(round(v, 4)) for v in x.tolist()]
    t = np.concatenate([EPOCH + rng.uniform(0, 1e6, 5000), EPOCH + np.arange(2000) / 65536.0,
                        [0.0, -1.0, math.nan, math.inf, 0.0005, 1.0]])
    cells = decode_csv.utc_cells(t)
    assert [bytes(c).rstrip(b"\0").decode() for c in cells] == [iso_utc(v) for v in t.tolist()]


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


def _export(argv, capsys, fast: bool, monkeypatch) -> tuple[int, bytes, str]:
    monkeypatch.setattr(cmd_decode, "FAST_CSV", fast)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.encode("utf-8"), err


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


@pytest.mark.parametrize("argv", FILTERS)
def test_bulk_export_is_byte_for_byte_the_row_by_row_one(captures, argv, capsys, monkeypatch):
    for capture in captures:
        reference = _export(["decode", capture, "--format", "csv", *argv], capsys, False, monkeypatch)
        fast = _export(["decode", capture, "--format", "csv", *argv], capsys, True, monkeypatch)
        assert fast == reference, (capture.name, argv)
    assert reference[0] == 3 and "damaged" in reference[2]  # the damaged one: exit 3, skips listed


def test_rows_rendered_in_small_blocks_come_out_in_order(captures, capsys, monkeypatch):
    monkeypatch.setattr(decode_csv, "ROWS_PER_BLOCK", 7)
    _, damaged = captures
    reference = _export(["decode", damaged, "--format", "csv"], capsys, False, monkeypatch)
    assert _export(["decode", damaged, "--format", "csv"], capsys, True, monkeypatch) == reference


def test_bulk_export_to_a_file_and_in_several_processes(captures, tmp_path, capsys, monkeypatch):
    _, damaged = captures
    outputs = []
    for fast, workers in ((False, "1"), (True, "1"), (True, "2")):
        path = tmp_path / f"{fast}-{workers}.csv"
        monkeypatch.setattr(cmd_decode, "FAST_CSV", fast)
        code = main(["decode", str(damaged), "--format", "csv", "-o", str(path), "--workers", workers])
        outputs.append((code, path.read_bytes(), capsys.readouterr().err))
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    rows = list(csv.DictReader(io.StringIO(outputs[0][1].decode())))
    assert {r["packet"] for r in rows} >= {"layout", "raw_samples", "housekeeping", "event_high", "valve_command",
                                           "unknown"}
    assert "packets do not match the layout report" in outputs[0][2]


def _sequential_and_parallel(path, segment_size, **selector):
    from hullwatch.tools.cli.decode import _scan_layout

    layout, counts, epoch, first = _scan_layout(str(path))
    kinds = {d.name for d in P.PACKET_DEFS} | {"unknown"}
    results = []
    for parallel in (False, True):
        rows = RowBuilder(kinds, layout, counts)
        sel = Selector(base_time=epoch if epoch is not None else first, **selector)
        out: list[bytes] = []
        skips: list = []
        if parallel:
            stats = decode_csv.export_parallel(str(path), rows, sel, out.append, "utf-8", skips.append, workers=2,
                                               segment_size=segment_size)
        else:
            stats = decode_csv.CsvExporter(rows, sel, out.append, "utf-8", skips.append).run(str(path))
        results.append((b"".join(out), skips, stats.rows, rows.mismatches, rows.first_mismatch))
    return results


@pytest.mark.parametrize("segment_size", [7000, 65536])
def test_segments_in_worker_processes_splice_exactly(captures, segment_size):
    for capture in captures:
        sequential, parallel = _sequential_and_parallel(capture, segment_size)
        assert parallel == sequential
        assert sequential[2] > 400


def test_segments_that_do_not_line_up_are_redone(tmp_path, monkeypatch):
    path = _capture(tmp_path / "nested.tm", n_cycles=300, nested=True)
    redone = []
    real = decode_csv._export_range
    monkeypatch.setattr(decode_csv, "_export_range", lambda *a: redone.append(a[1]) or real(*a))
    sequential, parallel = _sequential_and_parallel(path, 5000)
    assert parallel == sequential
    assert redone  # in this process: a worker had framed from inside a packet and was overruled


def test_segments_whose_assumed_state_is_wrong_are_redone(tmp_path):
    # the epoch changes half way, and a telecommand comes before any telemetry
    path = _capture(tmp_path / "epochs.tm", n_cycles=300, epochs=(EPOCH, EPOCH + 3600.0), tc_first=True)
    for selector in ({}, {"since": ("mission", -3500.0)}, {"apids": {100, 102}}):
        sequential, parallel = _sequential_and_parallel(path, 9000, **selector)
        assert parallel == sequential, selector
