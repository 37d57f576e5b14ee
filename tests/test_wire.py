"""Board wire protocol: framing, CRC, COBS, every message declaration, and the fast paths.

Golden frames come from docs/protocol.md's worked example; one frame is built by hand (an
independent oracle: COBS and CRC-16/CCITT-FALSE written out here); every message type round-trips
through construct; the struct fast paths agree with construct byte for byte.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from hullwatch.hal import wire
from hullwatch.hal.errors import ProtocolError
from hullwatch.hal.framing import MAX_PAYLOAD, MAX_WIRE_FRAME, FrameReader, crc16, encode_frame


def crc16_by_hand(data: bytes) -> int:
    """CRC-16/CCITT-FALSE bit by bit: poly 0x1021, init 0xFFFF, no reflection, no xorout."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_by_hand(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def test_crc16_check_value_and_oracle():
    assert crc16(b"123456789") == 0x29B1
    rng = random.Random(1)
    for n in (0, 1, 2, 17, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == crc16_by_hand(data)


def test_worked_example_from_protocol_doc():
    # docs/protocol.md, "Worked example": IDENTIFY with seq 0x2A, from a 1.2, a 1.1 and a 1.0 host.
    assert (wire.PROTOCOL_MAJOR, wire.PROTOCOL_MINOR) == (1, 2)
    assert wire.encode(wire.Identify(), 0x2A) == bytes.fromhex("06012a0102a00100")
    assert wire.encode(wire.Identify(1, 1), 0x2A) == bytes.fromhex("07012a0101906300")
    assert wire.encode(wire.Identify(1, 0), 0x2A) == bytes.fromhex("04012a0103804200")
    assert wire.encode(wire.ReadSamples(), 0x2B) == bytes.fromhex("05102b8b7500")
    reply = wire.IdentifyReply(1, 1, 1, 0, 0, "HWB-0001", 6, 21, 7, 2, 4096, 1024, 1100, 0, 1,
                               0x1C291CA3, 0x03, 10)
    expected = bytes.fromhex(
        "06 81 2a 01 01 01 01 0e 08 48 57 42 2d 30 30 30 31 06 15 07 02 01 02 10"
        "02 04 03 04 4c 01 01 01 07 01 1c 29 1c a3 03 04 0a e7 3a 00")
    assert wire.encode(reply, 0x2A) == expected
    (frame,) = FrameReader().feed(expected)
    assert wire.decode(frame.type, frame.payload) == reply


# docs/protocol.md, "Worked example": a 1.1 HIL_INJECT with the valve block, and its reply.
INJECT_DECODED = bytes.fromhex(
    "31 2c 00 00 00 00 11 e1 a3 00 00 02 47 c3 50 00 43 93 80 00 00 03 27 10 00 00 ff ff 97 fb")
INJECT_WIRE = bytes.fromhex(
    "03 31 2c 01 01 01 04 11 e1 a3 01 05 02 47 c3 50 04 43 93 80 01 04 03 27"
    "10 01 05 ff ff 97 fb 00")
INJECT = wire.HilInject(300_000_000, 0, (100_000.0, 295.0),
                        wire.ValveStimulus(0, (10_000, 0, wire.FEEDBACK_RELEASE)))


def test_worked_hil_inject_with_valve_block():
    # Independent oracle: the doc's field-by-field layout, CRC and COBS written out by hand.
    body = (bytes([0x31, 0x2C]) + struct.pack(">QBB", 300_000_000, 0, 2) + struct.pack(">2f", 1e5, 295.0)
            + bytes([0, 3]) + struct.pack(">3H", 10_000, 0, 0xFFFF))
    assert body + struct.pack(">H", crc16_by_hand(body)) == INJECT_DECODED
    assert cobs_by_hand(INJECT_DECODED) + b"\x00" == INJECT_WIRE
    assert wire.encode(INJECT, 0x2C) == INJECT_WIRE
    (frame,) = FrameReader().feed(INJECT_WIRE)
    assert (frame.type, frame.seq) == (wire.MsgType.HIL_INJECT, 0x2C)
    assert wire.decode(frame.type, frame.payload) == INJECT
    assert wire.decode_payload(frame.type, frame.payload) == INJECT
    assert wire.encode(wire.HilInjectReply(300_000_000, 2), 0x2C) == bytes.fromhex(
        "03 b1 2c 01 01 01 04 11 e1 a3 04 02 3c 03 00")


def test_hil_inject_without_valve_block_is_the_1_0_form():
    legacy = wire.HilInject(300_000_000, 0, (100_000.0, 295.0))
    payload = wire.encode_payload(legacy)
    assert payload == INJECT_DECODED[2:20] and len(payload) == 10 + 4 * 2
    assert wire.decode(wire.MsgType.HIL_INJECT, payload).valves is None
    # An empty block is still a block (two bytes), distinct from no block.
    empty = wire.HilInject(300_000_000, 0, (100_000.0, 295.0), wire.ValveStimulus(0, ()))
    assert wire.encode_payload(empty) == payload + b"\x00\x00" == wire.encode_fast(empty)
    assert wire.decode(wire.MsgType.HIL_INJECT, payload + b"\x00\x00") == empty


@pytest.mark.parametrize("tail, offset", [(b"\x00", 18), (b"\x00\x02\x27\x10", 18),
                                          (b"\x00\x01\x27\x10\x00", 22)])
def test_hil_inject_bad_valve_block_names_the_offset(tail, offset):
    payload = wire.encode_payload(wire.HilInject(1, 0, (1.0, 2.0))) + tail
    with pytest.raises(ProtocolError, match=f"offset {offset}"):
        wire.decode(wire.MsgType.HIL_INJECT, payload)  # fast path
    with pytest.raises(ProtocolError, match=f"offset {offset}"):
        wire.decode_payload(wire.MsgType.HIL_INJECT, payload)  # construct


def test_feedback_counts_rounds_clamps_and_releases():
    assert wire.feedback_counts([0.0, 1.0, 0.5, 0.12345, 0.99996, -0.2, 1.7, math.nan]) == (
        0, 10_000, 5_000, 1_235, 10_000, 0, 10_000, wire.FEEDBACK_RELEASE)
    assert wire.feedback_counts(()) == ()


def test_frame_built_by_hand_matches_encoder():
    payload = bytes([0x00, 0x01, 0x00, 0x00, 0xFF])  # zeros everywhere: COBS has work to do
    body = bytes([0x12, 0x07]) + payload
    crc = crc16_by_hand(body)
    by_hand = cobs_by_hand(body + struct.pack(">H", crc)) + b"\x00"
    assert encode_frame(0x12, 0x07, payload) == by_hand


def test_long_frame_cobs_blocks_and_limits():
    payload = bytes(range(1, 256)) * 4 + bytes(80)  # > 254 non-zero run, then zeros
    payload = payload[:MAX_PAYLOAD]
    frame = encode_frame(0x22, 1, payload)
    assert len(frame) <= MAX_WIRE_FRAME
    assert frame.count(0) == 1 and frame[-1] == 0
    (got,) = FrameReader().feed(frame)
    assert got.payload == payload
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        encode_frame(0x22, 1, payload + b"x")


def test_reader_resynchronises_and_counts():
    good = wire.encode(wire.Ping(b"abc"), 5)
    reader = FrameReader()
    # garbage without delimiter, then a frame: the garbage merges into the frame -> dropped.
    assert reader.feed(b"\x11\x22\x33" + good) == []
    assert reader.errors == 1
    # the next frame is found again, split across reads at every position
    frames = []
    for i in range(len(good)):
        frames += reader.feed(good[i:i + 1])
    assert len(frames) == 1 and frames[0].payload == b"abc" and frames[0].seq == 5
    # bad CRC: flip a payload bit
    bad = bytearray(good)
    bad[4] ^= 0x01
    assert reader.feed(bytes(bad)) == []
    assert reader.crc_errors + reader.cobs_errors == 2
    # short frame (3 bytes decoded), empty frames (double delimiters) are ignored silently
    assert reader.feed(b"\x00\x00" + b"\x03\x01\x02" + b"\x00") == []
    assert reader.short_frames == 1
    # truncated COBS block (the code byte promises more than there is)
    assert reader.feed(encode_frame(1, 2)[:3] + b"\x00") == []
    assert reader.errors == 4
    assert reader.dropped_bytes > 0


def test_reader_bounds_oversized_frames():
    reader = FrameReader()
    junk = b"\x01" * (3 * MAX_WIRE_FRAME)
    for i in range(0, len(junk), 100):
        assert reader.feed(junk[i:i + 100]) == []
        assert reader.pending <= MAX_WIRE_FRAME
    good = wire.encode(wire.Ping(b"ok"), 9)
    (frame,) = reader.feed(b"\x00" + good)
    assert frame.payload == b"ok"
    assert reader.oversized == 1
    assert reader.dropped_bytes == len(junk)


def test_reader_never_raises_on_noise():
    rng = random.Random(7)
    reader = FrameReader()
    for _ in range(200):
        reader.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    good = wire.encode(wire.Ping(b"x"), 1)
    frames = reader.feed(b"\x00" + good)
    assert frames and frames[-1].payload == b"x"


SAMPLE_MESSAGES = [
    wire.Identify(1, 0),
    wire.IdentifyReply(1, 0, 1, 2, 3, "hwb-emu-0001", 6, 31, 6, 2, 16384, 1024, 1100, 255, 0, 0, 0x1F, 10),
    wire.Ping(b""), wire.Ping(bytes(range(256))), wire.PingReply(b"\x00\x00"),
    wire.Reset(1), wire.ResetReply(),
    wire.DescribeModule(3), wire.ModuleEntry(3, "zvezda", 75.0),
    wire.DescribeChannel(0), wire.ChannelEntry(0, "zvezda.p1", 0, 4, 30000.0, 125000.0, 0.0, 0.5, -0.75),
    wire.DescribeValve(5), wire.ValveEntry(5, "progress-air", 2, 4, wire.NO_MODULE, 2.0),
    wire.ReadSamples(),
    wire.Samples(2**40 + 5, 7, (wire.ChannelSample(-1, 101325.0, 0, 0), wire.ChannelSample(2**24 - 1, -0.5, wire.AGE_NEVER, 3)),
                 (wire.ValveState(255, 10000, 0),)),
    wire.Samples(0, 0, (), ()),
    wire.StreamSamples(50), wire.StreamSamplesReply(10),
    wire.StreamFrame(99, 8, (wire.ChannelSample(5, 1.5, 100, 1),), ()),
    wire.CommandValve(2, 1), wire.CommandValveReply(2, wire.ValveState(1, 5000, 0)),
    wire.ReadValves(), wire.ValvesReply((wire.ValveState(0, 0, 0), wire.ValveState(1, 10000, 2))),
    wire.FlashInfo(),
    wire.FlashInfoReply(16384, 1024, 0, 255, 0, 3, (wire.SlotInfo(3, 1, 1895, 0xDEADBEEF), wire.SlotInfo(0, 0, 0, 0))),
    wire.FlashBegin(4096, 0x12345678), wire.FlashBeginReply(1, 4096),
    wire.FlashWrite(1024, bytes(1024)), wire.FlashWriteReply(2048),
    wire.FlashRead(1, 0, 512), wire.FlashReadReply(1, 0, b"\xff" * 512),
    wire.FlashCrc(0, 0, 1895), wire.FlashCrcReply(0xCAFEBABE),
    wire.FlashCommit(), wire.FlashCommitReply(1, 2, 0x01020304),
    wire.FlashAbort(), wire.FlashAbortReply(),
    wire.HilEnter(1), wire.HilEnterReply(1),
    wire.HilInject(7_200_000_000, 3, (101325.0, 295.5, -0.25)), wire.HilInjectReply(7_200_000_000, 3),
    wire.HilInject(1, 0, (), wire.ValveStimulus(2, (0, 10_000, 0xFFFF))),
    wire.HilInject(2, 0, (1.0,), wire.ValveStimulus(0, ())),
    wire.HilStep(300_000_000, 0, (100_000.0, 295.0), wire.ValveStimulus(0, (10_000, 0, 0xFFFF))),
    wire.HilStep(5, 1, (1.5,)),
    wire.HilStepReply(300_000_000, 7, (wire.ChannelSample(10_000_000, 100_000.0, 0, 0),), (wire.ValveState(1, 10_000, 0),)),
    wire.Nak(wire.NakCode.HIL_NOT_ALLOWED, wire.MsgType.HIL_ENTER, "HIL not allowed (généré)"),
]


def test_every_message_type_has_a_case():
    assert {type(m).TYPE for m in SAMPLE_MESSAGES} == set(wire.MsgType)


@pytest.mark.parametrize("msg", SAMPLE_MESSAGES, ids=lambda m: type(m).__name__)
def test_roundtrip_construct_and_frame(msg):
    payload = wire.encode_payload(msg)
    assert wire.decode_payload(msg.TYPE, payload) == msg
    frames = FrameReader().feed(wire.encode(msg, 200))
    assert len(frames) == 1 and frames[0].type == msg.TYPE and frames[0].seq == 200
    assert frames[0].payload == payload  # the fast path, where there is one, builds the same bytes
    assert wire.decode(msg.TYPE, payload) == msg
    greedy = msg.TYPE in (wire.MsgType.PING, wire.MsgType.PING_REPLY, wire.MsgType.FLASH_WRITE,
                          wire.MsgType.FLASH_READ_REPLY)  # end in "the rest of the payload"
    if payload and not greedy:
        with pytest.raises(ProtocolError, match="malformed|expected"):
            wire.decode(msg.TYPE, payload[:-1])
    if msg.TYPE == wire.MsgType.IDENTIFY_REPLY:
        # frozen, it may only grow: a later board's appended fields are ignored (protocol.md)
        assert wire.decode(msg.TYPE, payload + b"\x00") == msg
    elif not greedy:
        with pytest.raises(ProtocolError, match="trailing|malformed|expected"):
            wire.decode(msg.TYPE, payload + b"\x00")


def test_field_out_of_range_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="CommandValve"):
        wire.encode_payload(wire.CommandValve(256, 1))
    with pytest.raises(ProtocolError, match="unknown message type"):
        wire.decode_payload(0x7E, b"")


def test_fast_paths_agree_with_construct():
    rng = random.Random(3)
    for n_ch, n_v in ((0, 0), (1, 0), (31, 6), (80, 12)):
        for _ in range(20):
            channels = tuple(wire.ChannelSample(rng.randrange(-2**31, 2**31), struct.unpack(">f", struct.pack(">f", rng.uniform(-1e6, 1e6)))[0],
                                                rng.randrange(2**32), rng.randrange(4)) for _ in range(n_ch))
            valves = tuple(wire.ValveState(rng.choice((0, 1, 255)), rng.randrange(10001), rng.randrange(4)) for _ in range(n_v))
            msg = wire.Samples(rng.randrange(2**64), rng.randrange(256), channels, valves)
            slow = wire.encode_payload(msg)
            assert wire.encode_fast(msg) == slow
            assert wire.decode_fast(msg.TYPE, slow) == wire.decode_payload(msg.TYPE, slow) == msg
            codec = wire.SamplesCodec(n_ch, n_v)
            cols = ([c.raw for c in channels], [c.value for c in channels], [c.age_us for c in channels],
                    [c.status for c in channels], [v.commanded for v in valves],
                    [v.feedback for v in valves], [v.status for v in valves])
            assert codec.pack(msg.board_time_us, msg.flags, *cols) == slow
            got = codec.unpack(slow)
            assert got[0] == msg.board_time_us and got[1] == msg.flags
            assert [list(x) for x in got[2:]] == [list(x) for x in cols]
        values = tuple(struct.unpack(">f", struct.pack(">f", rng.uniform(0, 2e5)))[0] for _ in range(n_ch))
        stimulus = wire.ValveStimulus(rng.randrange(256), tuple(rng.randrange(2**16) for _ in range(n_v)))
        for valves in (None, stimulus):
            inject = wire.HilInject(rng.randrange(2**64), 0, values, valves)
            assert wire.encode_fast(inject) == wire.encode_payload(inject)
            assert wire.decode_fast(inject.TYPE, wire.encode_payload(inject)) == inject


def test_nan_survives_inject():
    payload = wire.encode_payload(wire.HilInject(1, 0, (math.nan, 1.0)))
    got = wire.decode(wire.MsgType.HIL_INJECT, payload)
    assert math.isnan(got.values[0]) and got.values[1] == 1.0


def test_samples_codec_rejects_wrong_counts():
    codec = wire.SamplesCodec(2, 1)
    payload = wire.encode_payload(wire.Samples(0, 0, (wire.ChannelSample(0, 0.0, 0, 0),), (wire.ValveState(0, 0, 0),)))
    with pytest.raises(ProtocolError, match="expected 2 channels"):
        codec.unpack(payload)


def test_nak_codes_mirror_board_flash_refusals():
    from hullwatch.sim.board_flash import FlashRefusal

    for r in FlashRefusal:
        assert wire.NakCode(0x20 + r).name == "FLASH_" + r.name


def test_protocol_doc_lists_every_message_and_nak_code():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    for t in wire.MsgType:
        if t & 0x80 and t not in (wire.MsgType.STREAM_FRAME, wire.MsgType.NAK):
            continue  # responses are named in their request's row
        assert f"| 0x{t.value:02X} | {t.name} |" in doc, t.name
    for code in wire.NakCode:
        assert f"| 0x{code.value:02X} | {code.name} |" in doc, code.name
