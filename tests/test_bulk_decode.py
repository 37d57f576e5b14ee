"""Bulk capture reading: the vectorised CRC, the length-field walk, the bulk framer against the
byte-by-byte rule, and the numpy column decoders against fast_decode."""

from __future__ import annotations

import binascii
import io
import random

import numpy as np
import pytest

from hullwatch.firmware.telemetry import ListSink, TelemetryEmitter, encode, fast_decode
from hullwatch.tools.ground import bulk
from hullwatch.firmware.telemetry import packets as P
from hullwatch.tools.ground.capture import PacketBatch, Skip, Framer, frame_windows, iter_packet_batches

from telemetry_samples import EPOCH, sample_data, sample_packets, soyuz_layout


def _packet_rows(rng: random.Random, length: int, count: int) -> np.ndarray:
    """``count`` byte strings of ``length`` with a valid CRC-16/CCITT-FALSE at the end."""
    rows = []
    for _ in range(count):
        body = bytes(rng.randrange(256) for _ in range(length - 2))
        rows.append(body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big"))
    return np.frombuffer(b"".join(rows), np.uint8).reshape(count, length).copy()


@pytest.mark.parametrize("length", [3, 4, 5, 13, 21, 64, 65, 308, 370, 371, 1023, 4096])
def test_vectorised_crc_agrees_with_crc_hqx(length):
    rng = random.Random(length)
    rows = _packet_rows(rng, length, 40)
    for i in range(0, 40, 3):  # damage every third row: one bit, somewhere
        bit = rng.randrange(length * 8)
        rows[i, bit // 8] ^= 1 << (bit % 8)
    expected = [binascii.crc_hqx(r.tobytes(), 0xFFFF) == 0 for r in rows]
    assert bulk.crc_ok_rows(rows).tolist() == expected
    assert bulk.crc_ok_rows(rows.copy(), overwrite=True).tolist() == expected
    assert sum(expected) == 40 - 14


def test_every_single_bit_flip_of_a_packet_is_caught():
    raw = encode(sample_packets()[1])  # a raw-samples packet
    n = len(raw) * 8
    rows = np.tile(np.frombuffer(raw, np.uint8), (n + 1, 1))
    for bit in range(n):
        rows[bit, bit // 8] ^= 0x80 >> (bit % 8)
    ok = bulk.crc_ok_rows(rows)
    assert not ok[:n].any() and ok[n]


def test_crc_of_mixed_lengths_goes_by_groups():
    rng = random.Random(4)
    packets = [encode(p) for p in sample_packets()] * 30
    rng.shuffle(packets)
    buf = bytearray(b"".join(packets))
    lengths = np.array([len(p) for p in packets])
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    for i in (3, 50, 200):
        buf[starts[i] + 7] ^= 0x10
    ok = bulk.crc_ok(np.frombuffer(bytes(buf), np.uint8), starts, lengths)
    assert np.flatnonzero(~ok).tolist() == [3, 50, 200]


def _step_walk(buf: bytes, pos: int, limit: int) -> list[tuple[int, int]]:
    out = []
    while pos < limit and pos + 6 <= len(buf):
        total = int.from_bytes(buf[pos + 4:pos + 6], "big") + 7
        if pos + total > len(buf):
            break
        out.append((pos, total))
        pos += total
    return out


def _stream(n_cycles: int, seed: int = 5) -> list[bytes]:
    """A flight-like stream: layout every 60 s, raw samples every cycle, housekeeping at 1 Hz,
    events now and then, a telecommand."""
    layout = soyuz_layout()
    sink = ListSink()
    em = TelemetryEmitter([sink], layout, EPOCH)
    frame = layout.new_frame()
    rng = random.Random(seed)
    hk, event = sample_data(layout)[0], sample_data(layout)[3]
    for cycle in range(n_cycles):
        t = cycle * 0.1
        em.emit_layout_if_due(t)
        frame.pressure[:] = [101325.0 + rng.gauss(0, 3) for _ in frame.pressure]
        em.emit_raw(frame, cycle, t)
        if cycle % 10 == 0:
            em.emit_hk(hk, t)
        if rng.random() < 0.01:
            em.emit_event(event, t)
        if cycle == n_cycles // 2:
            sink.write(encode(P.make_packet(P.ValveCommand(1, True), seq=3)))
    return sink.packets_list


def test_length_walk_finds_the_step_by_step_chain():
    data = b"".join(_stream(3000))
    a = np.frombuffer(data, np.uint8)
    for limit in (len(data), len(data) // 2 + 17):
        walker = bulk.LengthWalker(1 << 20)
        starts, lengths, after = walker.walk(data, a, 0, limit)
        chain = _step_walk(data, 0, limit)
        assert list(zip(starts.tolist(), lengths.tolist())) == chain
        assert after == chain[-1][0] + chain[-1][1]
    # a few packets at a time: each call resumes where the last stopped
    walker = bulk.LengthWalker(100)
    got: list[tuple[int, int]] = []
    pos = 0
    while True:
        starts, lengths, pos = walker.walk(data, a, pos, len(data))
        if not len(starts):
            break
        assert len(starts) <= 100 + 60  # about max_packets (a speculated period may finish)
        got += zip(starts.tolist(), lengths.tolist())
    assert got == _step_walk(data, 0, len(data))


def _damage(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 25)):
        i = rng.randrange(len(out))
        what = rng.randrange(5)
        if what == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif what == 1:
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        elif what == 2:
            del out[i:i + rng.randrange(1, 500)]
        elif what == 3:
            out[i:i + 2] = b"\xff\xff"  # a length field claiming 64 kB
        else:
            out[i:i] = b"\x08" * rng.randrange(1, 40)  # looks like the start of a header
    if rng.random() < 0.4:
        out = out[:-rng.randrange(1, 400)]
    return bytes(out)


def _frame_all(source, bulk_mode: bool, chunk: int) -> tuple[list[tuple[int, int]], list[Skip]]:
    packets: list[tuple[int, int]] = []
    skips: list[Skip] = []
    for _buf, base, starts, lengths, found in frame_windows(source, True, chunk, None, bulk=bulk_mode):
        packets += [(base + s, n) for s, n in zip(starts.tolist(), lengths.tolist())]
        skips += found
    return packets, skips


class _Unseekable(io.RawIOBase):
    """A stream without seek: the reader must carry the unconsumed tail itself."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(b), 777))  # short reads too
        b[:len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("seed", range(6))
def test_bulk_framing_matches_the_byte_by_byte_rule_on_damaged_captures(seed):
    rng = random.Random(seed)
    clean = b"".join(_stream(1500, seed))
    for trial in range(8):
        data = _damage(clean, rng)
        chunk = rng.choice([700, 4096, 65536, 1 << 20])
        reference = _frame_all(data, False, chunk)
        assert _frame_all(data, True, chunk) == reference, (seed, trial, chunk)
        if trial == 0:
            assert _frame_all(io.BufferedReader(_Unseekable(data)), True, chunk) == reference


def test_a_clean_capture_frames_whole():
    packets = _stream(2000)
    data = b"".join(packets)
    found, skips = _frame_all(data, True, 1 << 16)
    assert skips == [] and [n for _, n in found] == [len(p) for p in packets]


def test_header_columns_for_a_telecommand_at_the_very_end():
    tc = encode(P.make_packet(P.AreYouAlive(), seq=9))
    data = encode(sample_packets()[1]) + tc
    [batch] = list(iter_packet_batches(data))
    h = batch.headers()
    assert h["packet_type"].tolist() == [0, 1] and h["seq"][1] == 9 and h["key"][1] == -1
    assert h["offset"].tolist() == [0, len(data) - len(tc)] and h["time_utc"][1] == 0.0


def test_numpy_column_dtypes_decode_like_fast_decode():
    layout = soyuz_layout()
    rng = random.Random(3)
    raws = []
    for cycle in range(50):
        data = sample_data(layout)[1]
        data.cycle = cycle
        data.pressure = [rng.uniform(0, 2e5) for _ in data.pressure]
        raws.append(encode(P.make_packet(data, seq=cycle, time_utc=EPOCH + cycle / 10)))
    counts = (len(layout.pressure), len(layout.temperature), len(layout.flow), len(layout.valves))
    dt = bulk.raw_samples_dtype(*counts)
    assert dt.itemsize == len(raws[0])
    rec = np.frombuffer(b"".join(raws), dt)
    for r, raw in zip(rec, raws):
        d = fast_decode(raw).data
        assert r["data.cycle"] == d.cycle and r["data.pressure"].tolist() == d.pressure
        assert r["data.temperature_status"].tolist() == d.temperature_status
        assert r["data.valve_fb"].tolist() == d.valve_fb and r["data.valve_cmd"].tolist() == d.valve_cmd
    hk = sample_data(layout)[0]
    raw = encode(P.make_packet(hk, time_utc=EPOCH))
    dt = bulk.housekeeping_dtype(len(hk.modules), len(hk.valves))
    [r] = np.frombuffer(raw, dt)
    assert r["data.mode"] == hk.mode and r["data.link_up"] == 1 and r["data.sensors_failed"] == hk.sensors_failed
    assert [r[f"data.modules[{i}].leak_rate_kg_s"] for i in range(len(hk.modules))] == [
        m.leak_rate_kg_s for m in hk.modules]
    assert [r[f"data.valves[{i}].health"] for i in range(len(hk.valves))] == [v.health for v in hk.valves]


def test_batches_are_the_same_packets_whatever_the_window(tmp_path):
    data = b"garbage" + b"".join(_stream(800)) + b"\x08\x66"
    path = tmp_path / "run.tm"
    path.write_bytes(data)
    results = []
    for kw in ({"chunk_size": 5000}, {"chunk_size": 1 << 20}, {"workers": 2, "chunk_size": 20000}):
        skips: list[Skip] = []
        offsets = []
        for batch in iter_packet_batches(path, on_skip=skips.append, **kw):
            assert isinstance(batch, PacketBatch)
            offsets += (batch.starts + batch.base).tolist()
        results.append((offsets, skips))
    assert results[0] == results[1] == results[2]
    assert results[0][1][0] == Skip(0, 7, "no valid packet header") and "trailing" in results[0][1][-1].reason


def test_the_bulk_framer_can_be_told_to_go_byte_by_byte():
    data = b"".join(_stream(300))
    for bulk_mode in (True, False):
        framer = Framer(True, bulk=bulk_mode)
        starts, lengths, used = framer.frame(data, 0, True, [])
        assert used == len(data) and int(lengths.sum()) == len(data)


def test_crc_checks_in_threads_do_not_share_work_buffers():
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(8)
    matrices = [_packet_rows(rng, 370, 300) for _ in range(4)]
    for m in matrices[::2]:
        m[::5, 100] ^= 1
    expected = [bulk.crc_ok_rows(m).tolist() for m in matrices]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(lambda m: bulk.crc_ok_rows(m).tolist(), matrices)) == expected
