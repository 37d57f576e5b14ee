"""Captures never stop a tool part way: any legal packet is replayed, a time jump is skipped with
a warning, and errors name the file and the byte offset."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import struct
import threading
from pathlib import Path

import pytest

from hullwatch.tools.ground import iter_capture
from hullwatch.firmware.telemetry.packets import LayoutReport, RawSamples, crc16, encode, make_packet
from hullwatch.tools.cli import main
from hullwatch.tools.captures.replay import MAX_DATAGRAM, ReplayStats, Schedule
from hullwatch.tools.closed_loop.runner import run_scenario

CUC_AT = 6 + 7  # primary header, then version, service, subtype, msg counter, dest id


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cap") / "run.tm"
    run_scenario("sim://soyuz-ms09", until=20.0, capture=str(path))
    return path


def packets_of(path: Path) -> list[tuple[int, bytes, object]]:
    data = path.read_bytes()
    out = []
    for cap in iter_capture(str(path)):
        length = 7 + struct.unpack_from(">H", data, cap.offset + 4)[0]
        out.append((cap.offset, data[cap.offset:cap.offset + length], cap.packet.data))
    return out


def with_crc(body: bytes) -> bytes:
    return body + struct.pack(">H", crc16(body))


def retimed(packet: bytes, seconds: int) -> bytes:
    body = bytearray(packet[:-2])
    struct.pack_into(">I", body, CUC_AT, seconds)
    return with_crc(bytes(body))


def test_schedule_skips_time_jumps() -> None:
    stats = ReplayStats()
    s = Schedule(None, stats)
    assert s.advance(100.0, 0) == 0.0
    assert s.advance(101.0, 10) == 1.0
    assert s.advance(101.0 + 86400 * 32, 20) == 1.0  # a jump: not waited for
    assert s.advance(102.0, 30) == 1.0  # back: no gap either
    assert s.advance(103.0, 40) == 2.0
    assert stats.time_jumps == 1 and stats.first_jump_offset == 20


def far_future(capture: Path, tmp_path: Path) -> tuple[Path, int]:
    """The capture with one raw-samples packet in the middle stamped 2100-01-01 (CRC valid)."""
    pkts = packets_of(capture)
    raws = [i for i, (_, _, d) in enumerate(pkts) if isinstance(d, RawSamples)]
    victim = raws[len(raws) // 2]
    out = tmp_path / "jump.tm"
    parts = [p for _, p, _ in pkts]
    parts[victim] = retimed(parts[victim], 4102444800)
    out.write_bytes(b"".join(parts))
    return out, pkts[victim][0]


def test_replay_does_not_stall_on_a_far_future_stamp(capture: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, offset = far_future(capture, tmp_path)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(main(
        ["replay", str(path), "--to", f"udp://127.0.0.1:{port}", "--speed", "1000", "--no-progress"])))
    runner.start()
    runner.join(timeout=60)
    sink.close()
    assert not runner.is_alive(), "paced replay stalled on the time jump"
    assert result == [0]
    err = capsys.readouterr().err
    # (one packet off the timeline of its neighbours: a corrupt stamp, not a jump)
    assert "1 packets stamped off the timeline" in err and f"byte offset {offset}" in err


def test_rerun_ignores_a_far_future_stamp(capture: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = far_future(capture, tmp_path)
    assert main(["rerun", str(path), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "no difference" in out and "1 raw samples" in err


def test_a_legal_65542_byte_packet_is_replayed(capture: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    pkts = [p for _, p, _ in packets_of(capture)]
    head = bytearray(pkts[1][:6 + 13])
    struct.pack_into(">H", head, 4, 65535)  # the largest data field: 65542 bytes in all
    big = with_crc(bytes(head) + bytes(65536 - 13 - 2))
    assert len(big) == 65542
    path = tmp_path / "big.tm"
    path.write_bytes(b"".join(pkts[:5]) + big + b"".join(pkts[5:]))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(2.0)
    port = sink.getsockname()[1]
    got = bytearray()
    count = [0]

    def receive() -> None:
        try:
            while True:
                got.extend(sink.recv(1 << 17))
                count[0] += 1
        except OSError:
            pass

    reader = threading.Thread(target=receive)
    reader.start()
    code = main(["replay", str(path), "--to", f"udp://127.0.0.1:{port}", "--fast", "--no-progress"])
    reader.join(timeout=10)
    sink.close()
    assert code == 0
    assert "split over consecutive datagrams" in capsys.readouterr().err
    assert count[0] == len(pkts) + 2  # the big one took two datagrams
    assert bytes(got) == path.read_bytes()
    assert MAX_DATAGRAM < 65542


def test_plot_names_file_and_offset_of_a_bad_layout_report(capture: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pkts = packets_of(capture)
    i = next(k for k, (_, _, d) in enumerate(pkts) if isinstance(d, LayoutReport))
    offset, packet, _ = pkts[i]
    # The layout JSON (a u16 length, then text) follows the SID and the epoch: break its text.
    start = 6 + 13 + 2 + 8 + 2
    body = bytearray(packet[:-2])
    body[start:start + 1] = b"["
    parts = [p for _, p, _ in pkts]
    parts[i] = with_crc(bytes(body))
    path = tmp_path / "badlayout.tm"
    path.write_bytes(b"".join(parts))
    assert main(["plot", str(path), "-o", str(tmp_path / "x.png"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "badlayout.tm" in err and f"byte offset {offset}" in err


def _rerun(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["rerun", str(path), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _raw_indices(packets: list) -> list[int]:
    return [i for i, (_o, _b, d) in enumerate(packets) if type(d).__name__ == "RawSamples"]


@pytest.mark.parametrize("shift_s", [3000, 86_400, -1000, -100])
@pytest.mark.parametrize("where", ["middle", "last"])
def test_rerun_places_one_corrupt_stamp_by_its_cycle(capture: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     shift_s: int, where: str) -> None:
    """One raw sample's stamp off by any amount, forward or back, in the middle or at the end:
    the re-run covers the whole recording (no hang, no stale tail, no empty pass)."""
    packets = packets_of(capture)
    raws = _raw_indices(packets)
    i = raws[len(raws) // 2] if where == "middle" else raws[-1]
    secs = struct.unpack_from(">I", packets[i][1], CUC_AT)[0]
    blobs = [b for _o, b, _d in packets]
    blobs[i] = retimed(blobs[i], secs + shift_s)
    bad = tmp_path / "one-stamp.tm"
    bad.write_bytes(b"".join(blobs))
    code, out, err = _rerun(bad, capsys)
    _, base_out, _ = _rerun(capture, capsys)
    assert code == 0 and "no difference" in out, out + err
    assert re.search(r"(\d+) cycles", out).group(1) == re.search(r"(\d+) cycles", base_out).group(1)
    assert "1 raw samples with a corrupt time stamp" in err


def test_rerun_of_two_recordings_back_to_back_reruns_the_first(capture: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The same station recorded again a year later, appended: the re-run covers the first
    recording, says so, and ends (it used to run a year of stale cycles)."""
    packets = packets_of(capture)
    later = [retimed(b, struct.unpack_from(">I", b, CUC_AT)[0] + 365 * 86_400) for _o, b, _d in packets]
    both = tmp_path / "two.tm"
    both.write_bytes(capture.read_bytes() + b"".join(later))
    code, out, err = _rerun(both, capsys)
    _, base_out, _ = _rerun(capture, capsys)
    assert code == 0 and "no difference" in out
    assert re.search(r"(\d+) cycles", out).group(1) == re.search(r"(\d+) cycles", base_out).group(1)
    assert "another recording follows" in err


def test_rerun_goes_on_past_a_different_layout_report(capture: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    packets = packets_of(capture)
    raws = _raw_indices(packets)
    layout_i = next(i for i, (_o, _b, d) in enumerate(packets) if type(d).__name__ == "LayoutReport")
    report = packets[layout_i][2]
    changed = make_packet(dataclasses.replace(report, layout_json=report.layout_json + "  "),
                          time_utc=0.0)
    changed_bytes = retimed(encode(changed), struct.unpack_from(">I", packets[raws[100]][1], CUC_AT)[0])
    blobs = [b for _o, b, _d in packets]
    blobs.insert(raws[100], changed_bytes)
    bad = tmp_path / "layout.tm"
    bad.write_bytes(b"".join(blobs))
    code, out, err = _rerun(bad, capsys)
    assert code == 0 and "no difference" in out, out + err
    assert "1 layout reports differ from the first" in err


@pytest.mark.parametrize("shift_s", [3000.0, -3000.0, 50.0])
def test_schedule_does_not_pace_one_packet_off_the_timeline(shift_s: float) -> None:
    """One stamp off by less than --max-jump, either way: its neighbours agree, so it is sent
    with the packet before and the pacing goes on from them (it used to stall for the step)."""
    stats = ReplayStats()
    s = Schedule(None, stats)
    times = [100.0, 100.1, 100.2 + shift_s, 100.3, 100.4]
    due = [s.advance(t, 10 * i, times[i + 1] if i + 1 < len(times) else None) for i, t in enumerate(times)]
    assert due == pytest.approx([0.0, 0.1, 0.1, 0.3, 0.4])
    assert stats.bad_stamps == 1


def test_schedule_still_waits_out_a_real_gap() -> None:
    stats = ReplayStats()
    s = Schedule(None, stats)
    times = [100.0, 100.1, 400.0, 400.1]
    due = [s.advance(t, 0, times[i + 1] if i + 1 < len(times) else None) for i, t in enumerate(times)]
    assert due == pytest.approx([0.0, 0.1, 300.0, 300.1]) and stats.bad_stamps == 0


def test_plot_leaves_out_one_housekeeping_stamp_far_off(capture: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    packets = packets_of(capture)
    hks = [i for i, (_o, _b, d) in enumerate(packets) if type(d).__name__ == "Housekeeping"]
    blobs = [b for _o, b, _d in packets]
    i = hks[len(hks) // 2]
    blobs[i] = retimed(blobs[i], struct.unpack_from(">I", blobs[i], CUC_AT)[0] + 10**9)
    bad = tmp_path / "hk.tm"
    bad.write_bytes(b"".join(blobs))
    assert main(["plot", str(bad), "-o", str(tmp_path / "hk.png"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "1 housekeeping packets with a time stamp jumping" in err
    span = re.search(r"mission time ([\d.]+) s \.\. ([\d.]+) s", out)
    assert float(span.group(2)) < 60.0, out


def test_plot_follows_two_recordings_back_to_back(capture: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    later = [retimed(b, struct.unpack_from(">I", b, CUC_AT)[0] + 86_400) for _o, b, _d in packets_of(capture)]
    both = tmp_path / "two.tm"
    both.write_bytes(capture.read_bytes() + b"".join(later))
    assert main(["plot", str(both), "-o", str(tmp_path / "two.png"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "left out" not in err and float(re.search(r"\.\. ([\d.]+) s", out).group(1)) > 86_400


def test_a_housekeeping_sid_on_another_apid_is_not_housekeeping(capture: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """docs/telemetry.md defines SID 1 of 3/25 on APID 101 only: on APID 200 it is an unknown
    packet (kept as bytes, exit 0), not housekeeping that then fails to decode."""
    packets = packets_of(capture)
    i = next(k for k, (_o, _b, d) in enumerate(packets) if type(d).__name__ == "Housekeeping")
    body = bytearray(packets[i][1][:-2])
    word = struct.unpack_from(">H", body, 0)[0]
    struct.pack_into(">H", body, 0, (word & ~0x07FF) | 200)
    blobs = [b for _o, b, _d in packets]
    blobs[i] = with_crc(bytes(body))
    path = tmp_path / "apid200.tm"
    path.write_bytes(b"".join(blobs))
    assert main(["decode", str(path), "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    odd = [r for r in rows if r["apid"] == 200]
    assert len(odd) == 1 and odd[0]["packet"] != "housekeeping"
