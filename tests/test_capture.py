"""Captures: writer and sinks, the streaming resynchronising reader, the bulk path."""

from __future__ import annotations

import io
import os
import random
import socket

import pytest

from hullwatch.firmware.telemetry import (
    CaptureSink,
    CaptureWriter,
    ListSink,
    TelemetryEmitter,
    UdpSink,
    decode,
    encode,
    fast_decode,
)
from hullwatch.firmware.telemetry import packets as P
from hullwatch.tools.ground import Skip, iter_capture, iter_packet_batches, iter_raw_packets

from telemetry_samples import EPOCH, sample_packets, soyuz_layout


def _stream(n_cycles: int = 60) -> list[bytes]:
    """A realistic packet stream: layout, raw samples every cycle, housekeeping, events, commands."""
    layout = soyuz_layout()
    sink = ListSink()
    em = TelemetryEmitter([sink], layout, EPOCH)
    frame = layout.new_frame()
    rng = random.Random(5)
    for cycle in range(n_cycles):
        t = cycle * 0.1
        em.emit_layout_if_due(t)
        frame.pressure[:] = [101325.0 + rng.gauss(0, 3) for _ in frame.pressure]
        em.emit_raw(frame, cycle, t)
        if cycle % 10 == 0:
            em.emit(sample_packets()[0].data, t)
    return sink.packets_list + [encode(p) for p in sample_packets()]


def _read(data: bytes, **kw) -> tuple[list, list[Skip]]:
    skips: list[Skip] = []
    return list(iter_capture(data, on_skip=skips.append, **kw)), skips


def test_writer_and_reader_round_trip(tmp_path):
    packets = _stream()
    path = tmp_path / "run.tm"
    with CaptureWriter(path) as writer:
        for raw in packets:
            writer.write(raw)
        writer.write(sample_packets()[3])  # a Packet is encoded on the way
    got, skips = _read(path.read_bytes())
    assert skips == []
    assert [c.raw for c in got] == packets + [encode(sample_packets()[3])]
    assert [c.packet for c in got[:-1]] == [decode(r) for r in packets]
    offsets = [0]
    for raw in packets:
        offsets.append(offsets[-1] + len(raw))
    assert [c.offset for c in got] == offsets
    assert list(iter_capture(path)) == got  # a path reads the same as bytes


@pytest.mark.parametrize("chunk_size", [7, 100, 4096, 1 << 20])
def test_garbage_between_packets_is_skipped_and_reported(chunk_size):
    packets = _stream()
    rng = random.Random(chunk_size)
    data = bytearray()
    expected_skips = []
    for i, raw in enumerate(packets):
        if i % 7 == 3:
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            expected_skips.append((len(data), len(garbage)))
            data += garbage
        data += raw
    got, skips = _read(bytes(data), chunk_size=chunk_size)
    assert [c.raw for c in got] == packets
    assert [(s.offset, s.length) for s in skips] == expected_skips
    assert all(s.reason for s in skips)


def test_bit_flip_drops_only_that_packet():
    packets = _stream(30)
    data = bytearray(b"".join(packets))
    victim = 12
    start = sum(len(p) for p in packets[:victim])
    data[start + 40] ^= 0x01
    got, skips = _read(bytes(data))
    assert [c.raw for c in got] == packets[:victim] + packets[victim + 1:]
    assert skips == [Skip(start, len(packets[victim]), f"CRC mismatch in a {len(packets[victim])}-byte packet")]


def test_truncated_last_packet_is_reported():
    packets = _stream(10)
    data = b"".join(packets)
    cut = data[:-5]
    got, skips = _read(cut)
    assert [c.raw for c in got] == packets[:-1]
    start = len(data) - len(packets[-1])
    assert len(skips) == 1 and skips[0].offset == start and skips[0].length == len(packets[-1]) - 5
    assert "truncated" in skips[0].reason
    got, skips = _read(data + b"\x08\x65")  # a tail too short for any header
    assert len(got) == len(packets) and skips == [Skip(len(data), 2, skips[0].reason)]
    assert "too short" in skips[0].reason


def test_corrupted_length_field_resynchronises():
    packets = _stream(20)
    data = bytearray(b"".join(packets))
    start = sum(len(p) for p in packets[:5])
    data[start + 4] = 0xFF  # length now says ~65 kB: no CRC can check, the reader slides on
    got, skips = _read(bytes(data), chunk_size=512)
    assert [c.raw for c in got] == packets[:5] + packets[6:]
    assert [(s.offset, s.length) for s in skips] == [(start, len(packets[5]))]


def test_undecodable_but_well_framed_packet_is_skipped_by_length():
    raw = encode(sample_packets()[3])
    body = raw[:19] + (999).to_bytes(2, "big") + raw[21:-2]  # unknown event id, valid CRC
    bad = body + P.crc16(body).to_bytes(2, "big")
    good = encode(sample_packets()[0])
    got, skips = _read(good + bad + good)
    assert [c.offset for c in got] == [0, len(good) + len(bad)]
    assert len(skips) == 1 and skips[0].offset == len(good) and "unknown event id 999" in skips[0].reason


def test_reader_streams_in_bounded_reads():
    data = b"".join(_stream(200))

    class Recording(io.BytesIO):
        sizes: list[int] = []

        def read(self, n: int = -1) -> bytes:
            assert 0 < n <= 4096
            self.sizes.append(n)
            return super().read(n)

    source = Recording(data)
    reader = iter_capture(source, chunk_size=4096)
    next(reader)
    assert len(source.sizes) == 1  # the first packet comes before the rest of the file is read
    assert sum(1 for _ in reader) + 1 == len(_stream(200))
    progress: list[int] = []
    list(iter_capture(data, chunk_size=4096, on_progress=progress.append))
    assert sum(progress) == len(data)


def test_bulk_batches_agree_with_the_packet_reader():
    packets = _stream(100)
    data = b"\x00garbage" + b"".join(packets)
    skips: list[Skip] = []
    rows = []
    for batch in iter_packet_batches(data, on_skip=skips.append, chunk_size=2048):
        headers = batch.headers()
        for i, h in enumerate(headers):
            raw = batch.buffer[batch.starts[i]:batch.starts[i] + batch.lengths[i]]
            rows.append((int(h["offset"]), raw, h))
    assert skips == [Skip(0, 8, "no valid packet header")]
    assert [r[1] for r in rows] == packets
    for offset, raw, h in rows:
        p = fast_decode(raw)
        assert (h["apid"], h["seq"], h["packet_type"], h["service"], h["subtype"]) == (
            p.apid, p.seq, p.packet_type, p.service, p.subtype)
        assert h["time_utc"] == p.time_utc and h["msg_counter"] == p.msg_counter and h["dest_id"] == p.dest_id
        key = int.from_bytes(raw[19:21] if p.packet_type == 0 else raw[11:13], "big")
        assert h["key"] == (key if len(raw) - (21 if p.packet_type == 0 else 13) >= 2 else -1)
    assert [o for o, _ in iter_raw_packets(data)] == [r[0] for r in rows]


def test_crc_check_can_be_turned_off_for_speed():
    packets = _stream(5)
    data = bytearray(b"".join(packets))
    data[len(packets[0]) + 30] ^= 0x80  # damages a value inside packet 1, not its framing
    got, skips = _read(bytes(data), verify_crc=False)
    assert len(got) == len(packets) and skips == []


def test_capture_sink_writes_through_and_never_raises(tmp_path):
    path = tmp_path / "live.tm"
    sink = CaptureSink(path)
    raw = encode(sample_packets()[1])
    sink.write(raw)
    assert os.path.getsize(path) == len(raw)  # on disk before close: a crash loses nothing written
    sink.close()
    sink.write(raw)  # after close: counted, not raised
    assert (sink.packets, sink.errors) == (1, 1)


def test_udp_sink_sends_datagrams_and_counts_failures():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2.0)
    port = receiver.getsockname()[1]
    sink = UdpSink("127.0.0.1", port)
    raws = [encode(p) for p in sample_packets()[:3]]
    for raw in raws:
        sink.write(raw)
    assert [receiver.recvfrom(70000)[0] for _ in raws] == raws
    receiver.close()
    sink.write(b"x" * 70000)  # larger than any datagram: an error, counted
    assert sink.packets == 3 and sink.errors >= 1
    sink.close()


def test_parallel_framing_matches_sequential_on_a_damaged_capture(tmp_path):
    packets = _stream(400)
    rng = random.Random(9)
    data = bytearray(b"".join(packets))
    for _ in range(12):  # bit flips anywhere, some near segment boundaries
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    data[20000:20000] = b"\x08" * 50  # garbage that looks like the start of a header
    data = data[:-7]
    path = tmp_path / "damaged.tm"
    path.write_bytes(bytes(data))

    def read(**kw):
        skips: list[Skip] = []
        offsets = []
        for batch in iter_packet_batches(path, on_skip=skips.append, **kw):
            offsets += (batch.starts + batch.base).tolist()
            assert [batch.buffer[s:s + n] for s, n in zip(batch.starts, batch.lengths)] == [
                bytes(data[o:o + n]) for o, n in zip((batch.starts + batch.base).tolist(), batch.lengths)]
        return offsets, skips

    reference = read()
    assert reference == ([c.offset for c in iter_capture(path)], _read(bytes(data))[1])
    for segment in (3000, 4096, 65536):
        assert read(workers=2, chunk_size=segment) == reference, segment


def test_the_batch_api_selects_and_decodes_only_what_is_asked():
    raw = encode(sample_packets()[3])
    body = raw[:19] + (999).to_bytes(2, "big") + raw[21:-2]  # an event with an unknown id, valid CRC
    bad = body + P.crc16(body).to_bytes(2, "big")
    data = b"".join(_stream(30)) + bad
    expected = [c for c in iter_capture(data)]
    (batch,) = list(iter_packet_batches(data))
    raw_idx = batch.select(apid=P.APID_RAW, service=3, key=P.SID_RAW_SAMPLES)
    assert [(batch.offset(i), p) for i, p in batch.packets(raw_idx)] == [
        (c.offset, c.packet) for c in expected if isinstance(c.packet.data, P.RawSamples)]
    assert len(raw_idx) > 30  # the stream's 30, and sample_packets' one
    events = batch.select(apid=P.APID_EVENT, service=5)
    skips = []
    decoded = list(batch.packets(events, skips.append))
    # the good events, each at its offset as the streaming reader gives it; the bad one reported
    assert [(batch.offset(i), p) for i, p in decoded] == [
        (c.offset, c.packet) for c in expected if c.packet.apid == P.APID_EVENT]
    assert len(skips) == 1 and skips[0].offset == len(data) - len(bad) and "999" in skips[0].reason
    assert batch.raw(int(events[-1])) == bad
    telecommands = batch.select(telecommands=True)
    assert {batch.offset(i) for i in telecommands} == {
        c.offset for c in expected if c.packet.packet_type == P.PacketType.TC}
    assert batch.headers() is batch.headers()  # computed once per batch
