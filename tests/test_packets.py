"""Packets: round trips, construct vs fast codec agreement, errors with offsets, counters, emitter."""

from __future__ import annotations

import binascii
import random

import pytest

from hullwatch.firmware.errors import PacketDecodeError, TelemetryError
from hullwatch.firmware.telemetry import (
    EVENT_DEFS,
    ListSink,
    RawSampleEncoder,
    SequenceCounters,
    TelemetryEmitter,
    decode,
    encode,
    fast_decode,
    fast_encode,
    layout_from_json,
    layout_to_json,
    make_packet,
)
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.types import EventId, Severity

from telemetry_samples import EPOCH, raw_samples, sample_data, sample_packets, soyuz_layout


def test_sample_set_covers_every_packet_definition():
    assert {p.name for p in sample_packets()} == {d.name for d in P.PACKET_DEFS}


@pytest.mark.parametrize("packet", sample_packets(), ids=lambda p: p.name)
def test_round_trip_and_fast_decoder_agrees(packet):
    raw = encode(packet)
    assert decode(raw) == packet
    assert fast_decode(raw) == packet
    assert encode(decode(raw)) == raw
    assert fast_encode(packet) == raw
    assert len(raw) == int.from_bytes(raw[4:6], "big") + 7


def test_every_event_id_has_a_definition_of_three_values():
    assert set(EVENT_DEFS) == set(EventId)
    for d in EVENT_DEFS.values():
        assert len(d.values) == 3
        assert all(v.name for v in d.values)


def test_crcmod_c_extension_in_use_and_agrees_with_binascii():
    import sys

    import crcmod  # noqa: F401

    # crcmod silently falls back to pure Python (~50x slower) when its C extension is missing
    assert sys.modules["crcmod.crcmod"]._usingExtension
    fun = P.crc16_ccitt_false.__defaults__[2]  # crcfun(data, crc, table, fun): the CRC routine used
    assert fun.__module__ == "crcmod._crcfunext" or type(fun).__name__ == "builtin_function_or_method"
    rng = random.Random(1)
    for n in (0, 1, 9, 380, 4000):
        buf = bytes(rng.randrange(256) for _ in range(n))
        assert P.crc16_ccitt_false(buf) == binascii.crc_hqx(buf, 0xFFFF) == P.crc16(buf)
    assert P.crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


def test_the_packet_crc_agrees_with_binascii_on_every_buffer_kind_and_alignment():
    # The encoders pass bytes, the readers memoryview slices at any offset, the monitor bytearrays.
    rng = random.Random(2)
    data = bytes(rng.randrange(256) for _ in range(70_000))
    view = memoryview(data)
    for n in (0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 368, 1111, 65_542):
        for start in (0, 1, 3, 5):
            chunk = data[start:start + n]
            expected = binascii.crc_hqx(chunk, 0xFFFF)
            assert P.crc16(chunk) == P.crc16(view[start:start + n]) == P.crc16(bytearray(chunk)) == expected
    packet = P.encode(P.Packet(200, 1, P.PacketType.TM, 128, 7, 1.0e9, 0, 0, b"\x01\x02\x03"))
    assert P.crc16(packet) == 0  # the CRC field closes the CRC over the packet


def test_raw_sample_encoder_matches_construct_for_the_same_frame():
    layout = soyuz_layout()
    enc = RawSampleEncoder(layout, dest_id=3)
    frame = layout.new_frame()
    rng = random.Random(3)
    for cycle in range(50):
        rs = raw_samples(layout, cycle, rng)
        for name in ("pressure", "pressure_status", "temperature", "temperature_status", "flow", "flow_status",
                     "valve_cmd", "valve_fb", "valve_status"):
            getattr(frame, name)[:] = getattr(rs, name)
        t = EPOCH + cycle * 0.1
        raw = enc.encode(frame, cycle, t)
        expected = P.Packet(P.APID_RAW, cycle, P.PacketType.TM, 3, 25, t, cycle, 3, rs)
        secs, frac = P.utc_to_cuc(t)
        expected.time_utc = secs + frac / 65536
        assert raw == encode(expected)
        assert decode(raw) == expected


def test_raw_sample_encoder_rejects_bad_values_without_advancing_counters():
    layout = soyuz_layout()
    seq = SequenceCounters()
    enc = RawSampleEncoder(layout, seq_counters=seq)
    frame = layout.new_frame()
    frame.pressure_status[2] = 256
    with pytest.raises(TelemetryError, match="cycle 4"):
        enc.encode(frame, 4, EPOCH)
    frame.pressure_status[2] = 0
    for bad_time in (-1.0, float("nan"), 2.0**32):
        with pytest.raises(TelemetryError):
            enc.encode(frame, 4, bad_time)
    assert seq.peek(P.APID_RAW) == 0
    assert decode(enc.encode(frame, 4, EPOCH)).data.pressure_status[2] == 0


def test_sequence_counters_wrap_at_14_bits_per_apid():
    seq = SequenceCounters()
    for _ in range(16383):
        seq.next(5)
    assert seq.next(5) == 16383
    assert seq.next(5) == 0
    assert seq.next(6) == 0


def test_emitter_sends_each_kind_with_own_sequence_and_time():
    layout = soyuz_layout()
    sink = ListSink()
    em = TelemetryEmitter([sink], layout, EPOCH, dest_id=9)
    frame = layout.new_frame()
    em.emit_layout_if_due(0.0)
    for cycle in range(25):
        em.emit_raw(frame, cycle, cycle * 0.1)
        em.emit_layout_if_due(cycle * 0.1)
    em.emit_hk(sample_data()[0], 1.0)
    em.emit_event(P.Event(EventId.SENSOR_FAILED, "soyuz-om.p2", (3.0, 101300.0, 0.0), Severity.MEDIUM), 2.0)
    decoded = [decode(b) for b in sink.packets_list]
    assert [p.name for p in decoded[:2]] == ["layout", "raw_samples"]
    assert len(decoded) == 1 + 25 + 2
    assert layout_from_json(decoded[0].data.layout_json) == layout
    raws = [p for p in decoded if p.name == "raw_samples"]
    assert [p.seq for p in raws] == list(range(25))
    assert raws[10].time_utc == pytest.approx(EPOCH + 1.0, abs=1 / 65536)
    # 3/25 packets share one message type counter: layout, 25 raws, hk
    assert [p.msg_counter for p in decoded if p.service == 3] == list(range(27))
    assert decoded[-1].data.event_id is EventId.SENSOR_FAILED and decoded[-1].subtype == Severity.MEDIUM
    assert all(p.dest_id == 9 for p in decoded)
    assert em.health()["encode_errors"] == 0


def test_emitter_never_raises_and_counts_failures():
    layout = soyuz_layout()

    class Broken:
        errors = 0

        def write(self, packet: bytes) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            raise OSError("still full")

    em = TelemetryEmitter([Broken()], layout, EPOCH)
    assert em.emit_event(P.Event(EventId.LINK_LOST, "x" * 17, (0.0, 0.0, 0.0), Severity.MEDIUM), 0.0) == b""
    frame = layout.new_frame()
    assert em.emit_raw(frame, 0, 0.0)
    em.close()
    health = em.health()
    assert health["encode_errors"] == 1 and health["sink_errors"] == 2


def test_layout_json_round_trip_and_errors():
    layout = soyuz_layout()
    assert layout_from_json(layout_to_json(layout)) == layout
    with pytest.raises(TelemetryError, match="valves"):
        layout_from_json(layout_to_json(layout).replace('"actuation_timeout_s"', '"x"'))
    with pytest.raises(TelemetryError, match="not JSON"):
        layout_from_json("{")


@pytest.mark.parametrize("mutate, offset, message", [
    (lambda b: b[:5], 0, "too short"),
    (lambda b: bytes([b[0] | 0x20]) + b[1:], 0, "packet version 1"),
    (lambda b: bytes([b[0] & ~0x08]) + b[1:], 0, "secondary header flag"),
    (lambda b: b + b"\x00", 4, "length field says"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), -2, "CRC mismatch"),
])
def test_decode_errors_name_the_byte_offset(mutate, offset, message):
    raw = encode(sample_packets()[3])
    bad = mutate(raw)
    for decoder in (decode, fast_decode):
        with pytest.raises(PacketDecodeError, match=message) as info:
            decoder(bad)
        assert info.value.offset == (offset if offset >= 0 else len(bad) + offset)


def _with_crc(body: bytes) -> bytes:
    return body + P.crc16(body).to_bytes(2, "big")


def test_bad_application_data_is_reported_at_its_offset():
    raw = encode(make_packet(P.Event(EventId.LEAK_SUSPECTED, "m", (0.0, 0.0, 0.0), Severity.LOW), time_utc=EPOCH))
    bad = _with_crc(raw[:19] + (999).to_bytes(2, "big") + raw[21:-2])  # unknown event id
    for decoder in (decode, fast_decode):
        with pytest.raises(PacketDecodeError, match="unknown event id 999") as info:
            decoder(bad)
        assert info.value.offset == 19
    bad_pus = _with_crc(raw[:6] + bytes([0x10]) + raw[7:-2])  # PUS version 1
    for decoder in (decode, fast_decode):
        with pytest.raises(PacketDecodeError) as info:
            decoder(bad_pus)
        assert info.value.offset == 6


def test_unknown_service_keeps_raw_bytes():
    packet = P.Packet(200, 1, P.PacketType.TM, 128, 7, EPOCH, 0, 0, b"\x01\x02\x03")
    raw = encode(packet)
    assert decode(raw) == packet == fast_decode(raw)
    assert decode(raw).name == "unknown"


@pytest.mark.parametrize("encoder", [encode, fast_encode])
def test_encoders_refuse_bad_events(encoder):
    with pytest.raises(TelemetryError, match="subject|ascii|16"):
        encoder(make_packet(P.Event(EventId.LINK_LOST, "a-very-long-subject-id", (0, 0, 0), Severity.LOW)))
    with pytest.raises(TelemetryError, match="ASCII|ascii"):
        encoder(make_packet(P.Event(EventId.LINK_LOST, "modul\u00e9", (0, 0, 0), Severity.LOW)))
    with pytest.raises(TelemetryError):
        encoder(make_packet(P.Event(EventId.LINK_LOST, "m", (0, 0), Severity.LOW)))
    hk = sample_data()[0]
    hk.cycle = -1
    with pytest.raises(TelemetryError):
        encoder(make_packet(hk))


def test_encode_refuses_what_does_not_fit():
    with pytest.raises(TelemetryError, match="cannot be sent"):
        encode(P.Packet(1, 0, P.PacketType.TM, 5, 1, 0.0, 0, 0, P.ValveCommand(1, True)))
    with pytest.raises(TelemetryError, match="header"):
        encode(make_packet(P.AliveReport(), apid=4096))
    with pytest.raises(TelemetryError, match="CUC"):
        encode(make_packet(P.AliveReport(), time_utc=-5.0))
    with pytest.raises(TelemetryError, match="does not fit"):
        encode(make_packet(P.LoadFdirParams("x" * 65530)))
    with pytest.raises(TelemetryError, match="toml_text"):
        encode(make_packet(P.LoadFdirParams("x" * 70000)))
