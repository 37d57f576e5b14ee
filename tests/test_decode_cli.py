"""``hullwatch decode``: what a user sees, through the real CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys

import pytest

from hullwatch.firmware.telemetry import CaptureSink, TelemetryEmitter, encode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.types import EventId, Severity
from hullwatch.tools.cli import main
from hullwatch.tools.errors import EXIT_BAD_INPUT, EXIT_DAMAGED, EXIT_OK

from telemetry_samples import EPOCH, sample_data, soyuz_layout


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A 20 s capture at 10 Hz: layout, raw samples, 1 Hz housekeeping, two events, a command."""
    layout = soyuz_layout()
    path = tmp_path_factory.mktemp("cap") / "run.tm"
    sink = CaptureSink(path)
    em = TelemetryEmitter([sink], layout, EPOCH)
    frame = layout.new_frame()
    rng = random.Random(2)
    hk = sample_data(layout)[0]
    for cycle in range(200):
        t = cycle * 0.1
        em.emit_layout_if_due(t)
        frame.pressure[:] = [101325.0 + cycle + rng.gauss(0, 1) for _ in frame.pressure]
        frame.pressure_status[:] = [0] * len(frame.pressure)
        em.emit_raw(frame, cycle, t)
        if cycle % 10 == 0:
            em.emit_hk(hk, t)
        if cycle == 50:
            em.emit_event(P.Event(EventId.LEAK_CONFIRMED, "soyuz-om", (1.2e-4, 9.5, 10.0), Severity.HIGH), t)
        if cycle == 120:
            em.emit_event(P.Event(EventId.LEAK_LOCATED, "soyuz-om", (0.002, 3600.0, 1.2e-4), Severity.HIGH), t)
            sink.write(encode(P.make_packet(P.ValveCommand(0, False), seq=1)))
    em.close()
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_by_default(capture, capsys):
    code, out, err = run(["decode", capture], capsys)
    assert code == EXIT_OK and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["offset", "utc", "t_s"]
    assert len(lines) == 1 + 1 + 200 + 20 + 2 + 1
    assert "layout: 6 modules, 18 pressure, 12 temperature, 1 flow, 6 valves" in lines[1]
    located = [line for line in lines if "LEAK_LOCATED" in line][0]
    assert "2018-08-29T20:00:12.000Z" in located and "12.000" in located
    assert "hole_diameter=2.00 mm reserve_time=1 h leak_rate=10.4 kg/day" in located  # display units
    assert any("(telecommand)" in line and "command valve 0 closed" in line for line in lines)


def test_event_filter_and_time_range(capture, capsys):
    code, out, _ = run(["decode", capture, "--event", "leak_located"], capsys)
    assert code == EXIT_OK
    assert len(out.splitlines()) == 2 and "LEAK_LOCATED" in out
    code, out, _ = run(["decode", capture, "--service", "5", "--until", "6"], capsys)
    lines = out.splitlines()[1:]
    assert len(lines) == 1 and "HIGH LEAK_CONFIRMED soyuz-om" in lines[0]
    code, out, _ = run(["decode", capture, "--apid", "102", "--since", "2018-08-29T20:00:19.5Z"], capsys)
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["19.500", "19.600", "19.700", "19.800", "19.900"]


def test_csv_raw_samples_one_column_per_sensor(capture, capsys, tmp_path):
    out_path = tmp_path / "raw.csv"
    code, out, err = run(["decode", capture, "--format", "csv", "--service", "3,25", "--apid", "102",
                          "--since", "10", "--until", "10.45", "-o", out_path], capsys)
    assert code == EXIT_OK and out == "" and err == ""
    rows = list(csv.DictReader(out_path.open()))
    assert [r["cycle"] for r in rows] == ["100", "101", "102", "103", "104"]
    header = list(rows[0])
    assert header[:4] == ["offset", "utc", "time_utc_s", "t_s"]
    assert "soyuz-om.p1_pa" in header and "soyuz-om.p1_status" in header and "zarya.t2_k" in header
    assert "repress.flow_kg_s" in header and "soyuz-om-soyuz-dm.fb" in header
    assert "event" not in header  # no event column when events are filtered out
    assert 101420 < float(rows[0]["soyuz-om.p1_pa"]) < 101430 and rows[0]["soyuz-om.p1_status"] == "OK"
    assert float(rows[0]["t_s"]) == 10.0


def test_csv_housekeeping_and_events_have_units_in_names(capture, capsys):
    code, out, _ = run(["decode", capture, "--format", "csv", "--apid", "101", "--apid", "103"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    hk = [r for r in rows if r["packet"] == "housekeeping"]
    assert len(hk) == 20 and float(hk[0]["soyuz-om.pressure_pa"]) == 101325.0 and hk[0]["mode"] == "ACTIVE"
    assert float(hk[0]["soyuz-dm.leak_rate_kg_s"]) == 1e-05 and hk[0]["soyuz-dm.status"] == "SUSPECTED"
    events = [r for r in rows if r["packet"] == "event_high"]
    assert [e["event"] for e in events] == ["LEAK_CONFIRMED", "LEAK_LOCATED"]
    assert "hole_diameter_m=0.002" in events[1]["values"]


def test_jsonl_names_event_values(capture, capsys):
    code, out, _ = run(["decode", capture, "--format", "jsonl", "--event", "LEAK_LOCATED"], capsys)
    [obj] = [json.loads(line) for line in out.splitlines()]
    assert obj["hole_diameter_m"] == 0.002 and obj["reserve_time_s"] == 3600.0 and obj["subject"] == "soyuz-om"
    assert obj["t_s"] == 12.0 and obj["utc"] == "2018-08-29T20:00:12.000Z"


def test_damaged_capture_decodes_the_rest_and_exits_3(capture, capsys, tmp_path):
    from hullwatch.tools.ground import iter_capture

    data = bytearray(capture.read_bytes())
    boundary = [c.offset for c in iter_capture(capture) if c.offset > 30000][0]
    data[boundary:boundary] = b"\xff" * 33  # garbage between two packets
    data[9000] ^= 0x40  # a bit flip inside a packet
    bad = tmp_path / "bad.tm"
    bad.write_bytes(bytes(data[:-4]))
    code, out, err = run(["decode", bad, "--format", "jsonl"], capsys)
    assert code == EXIT_DAMAGED
    good = len(out.splitlines())
    assert good == 1 + 200 + 20 + 2 + 1 - 2  # the flipped and the truncated packet are lost, nothing else
    messages = err.strip().splitlines()
    assert "skipped" in messages[0] and "CRC mismatch" in messages[0]
    assert f"skipped 33 bytes at offset {boundary}: no valid packet header" in messages[1]
    assert "truncated" in messages[2]
    assert "damaged: 3 byte ranges skipped" in messages[-1]


@pytest.mark.parametrize("argv, message", [
    (["decode", "/nonexistent/run.tm"], "no such capture file"),
    (["decode", "{tmp}"], "is a directory"),
])
def test_missing_or_unreadable_file_is_one_line(argv, message, capsys, tmp_path):
    code, out, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_unknown_event_name_is_refused(capture, capsys):
    code, _, err = run(["decode", capture, "--event", "LEAK_EVERYWHERE"], capsys)
    assert code == EXIT_BAD_INPUT and "LEAK_EVERYWHERE" in err and "LEAK_LOCATED" in err


def test_bad_time_is_a_usage_error(capture, capsys):
    with pytest.raises(SystemExit) as info:
        main(["decode", str(capture), "--since", "yesterday"])
    assert info.value.code == 2
    assert "ISO UTC" in capsys.readouterr().err


def test_garbage_only_file_is_not_a_capture(capsys, tmp_path):
    junk = tmp_path / "junk.tm"
    junk.write_bytes(bytes(range(256)) * 4)
    code, out, err = run(["decode", junk], capsys)
    assert code == EXIT_BAD_INPUT and out == "" and "not a telemetry capture" in err and err.count("\n") == 1


def test_empty_capture_warns_and_exits_0(capsys, tmp_path):
    empty = tmp_path / "empty.tm"
    empty.write_bytes(b"")
    code, out, err = run(["decode", empty], capsys)
    assert code == 0 and "warning" in err and "empty capture" in err


def test_console_script_in_a_subprocess(capture, tmp_path):
    unreadable = tmp_path / "secret.tm"
    unreadable.write_bytes(capture.read_bytes()[:100])
    os.chmod(unreadable, 0)
    result = subprocess.run([sys.executable, "-m", "hullwatch.tools", "decode", str(capture), "--event",
                             "LEAK_CONFIRMED"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "LEAK_CONFIRMED" in result.stdout and result.stderr == ""
    if os.access(unreadable, os.R_OK):  # running as root: permissions do not bite
        return
    result = subprocess.run([sys.executable, "-m", "hullwatch.tools", "decode", str(unreadable)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_BAD_INPUT and "permission denied" in result.stderr


def test_the_table_names_modules_from_the_latest_layout_report(tmp_path, capsys):
    """Two stations' recordings back to back: each housekeeping line names its own modules."""
    from hullwatch.tools.closed_loop.runner import run_scenario

    first, second = tmp_path / "a.tm", tmp_path / "b.tm"
    run_scenario("sim://soyuz-ms09", until=3.0, capture=str(first))
    run_scenario("sim://tiangong-hub-leak", until=3.0, capture=str(second))
    both = tmp_path / "both.tm"
    both.write_bytes(first.read_bytes() + second.read_bytes())
    assert main(["decode", str(both), "--apid", "101", "--no-progress"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "housekeeping" in line]
    assert "zvezda" in lines[0] and "zvezda" not in lines[-1] and " m0 " not in lines[-1]
