"""The board at the edges of docs/protocol.md and docs/config-image.md, as a client written from
the docs finds them: the clock's range, stream counters, enums, reserved types, commits in HIL
mode, generation 0, flash-file superblocks, and the host's reading of a grown IDENTIFY_REPLY."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import zlib

import pytest

from hullwatch.hal import wire
from hullwatch.hal.config_image import encode_image, image_crc
from hullwatch.hal.framing import FrameReader, encode_frame
from hullwatch.hal.wire import MsgType, NakCode
from hullwatch.sim.board_emulator import BoardEmulator, open_flash
from hullwatch.sim.board_flash import BoardFlash, FlashFileError, config_for_scenario
from hullwatch.tools.cli import main

VALUES = tuple([100_000.0] * 18 + [295.0] * 12 + [0.0])


class Host:
    """Frames to and from a BoardEmulator in process (no serial port)."""

    def __init__(self, board: BoardEmulator) -> None:
        self.board = board
        self.reader = FrameReader()
        self.seq = 0

    def raw(self, msg_type: int, payload: bytes = b"") -> list:
        self.seq = (self.seq + 1) & 0xFF
        return self.reader.feed(self.board.receive(encode_frame(msg_type, self.seq, payload)))

    def ask(self, msg: wire.Message):
        frames = self.raw(msg.TYPE, wire.payload_of(msg))
        assert len(frames) == 1, frames
        return wire.decode(frames[0].type, frames[0].payload)


@pytest.fixture
def host() -> Host:
    return Host(BoardEmulator(open_flash(None, config=config_for_scenario("soyuz-ms09"))))


def test_a_stimulus_time_past_2_63_is_refused_and_the_board_keeps_serving(host: Host) -> None:
    host.ask(wire.HilEnter(1))
    nak = host.ask(wire.HilInject(2**64 - 1, 0, VALUES))
    assert isinstance(nak, wire.Nak) and nak.code == NakCode.BAD_ARGUMENT and "2^63" in nak.text
    last = 2**63 - 1
    assert host.ask(wire.HilInject(last, 0, VALUES)).board_time_us == last
    host.ask(wire.HilEnter(0))
    # The clock goes on from the last stimulus and still fits its u64: samples, stream frames.
    assert host.ask(wire.ReadSamples()).board_time_us >= last
    host.ask(wire.StreamSamples(10))
    assert host.board.poll().endswith(b"\x00")
    assert host.board.counters["internal_errors"] == 0


def test_a_stream_frame_that_cannot_be_built_stops_the_stream_not_the_board(host: Host,
                                                                            monkeypatch) -> None:
    host.ask(wire.StreamSamples(10))

    def broken() -> bytes:
        raise struct.error("int too large to convert")

    monkeypatch.setattr(host.board, "_samples_payload", broken)
    assert host.board.poll() == b""
    assert host.board.counters["internal_errors"] == 1
    assert host.board.stream_rate_hz == 0
    monkeypatch.undo()
    assert isinstance(host.ask(wire.Ping(b"ok")), wire.PingReply)


def test_the_stream_counter_starts_at_0_for_each_new_stream(host: Host) -> None:
    def stream_seqs() -> list[int]:
        host.board._stream_due_us = 0  # due now
        return [f.seq for f in FrameReader().feed(host.board.poll())]

    host.ask(wire.StreamSamples(10))
    first = stream_seqs()
    assert first[0] == 0
    host.ask(wire.StreamSamples(5))  # a new rate, the same stream: the count goes on
    assert stream_seqs()[0] == first[-1] + 1
    host.ask(wire.StreamSamples(0))
    host.ask(wire.StreamSamples(10))
    assert stream_seqs()[0] == 0


@pytest.mark.parametrize("enable", [2, 255])
def test_hil_enter_takes_only_0_and_1(host: Host, enable: int) -> None:
    nak = host.ask(wire.HilEnter(enable))
    assert isinstance(nak, wire.Nak) and nak.code == NakCode.BAD_ARGUMENT
    assert not host.board.hil_active


def test_frames_with_the_response_bit_get_no_answer_and_are_counted(host: Host) -> None:
    for msg_type in (0x80, 0x81, 0xB2, 0xFE, 0xFF):
        assert host.raw(msg_type) == []
    assert host.board.counters["unexpected_frames"] == 5
    frames = host.raw(0x7E)  # a reserved request type is answered
    assert wire.decode(frames[0].type, frames[0].payload).code == NakCode.UNKNOWN_TYPE


def test_accepted_counts_the_channels_stimulated_not_the_nans(host: Host) -> None:
    host.ask(wire.HilEnter(1))
    reply = host.ask(wire.HilInject(1_000, 0, (100_000.0, math.nan, math.nan)))
    assert reply.accepted == 1
    assert host.ask(wire.HilInject(2_000, 0, (math.nan, math.nan))).accepted == 0


def test_step_naks_name_the_step(host: Host) -> None:
    nak = host.ask(wire.HilStep(0, 0, VALUES))
    assert nak.code == NakCode.NOT_IN_HIL and nak.text.startswith("HIL_STEP outside HIL mode")


def flash(host: Host, image: bytes):
    """FLASH_BEGIN, the blocks, FLASH_COMMIT; the commit's reply (or NAK)."""
    host.ask(wire.FlashBegin(len(image), image_crc(image)))
    for off in range(0, len(image), 1024):
        host.ask(wire.FlashWrite(off, image[off:off + 1024]))
    return host.ask(wire.FlashCommit())


def test_a_commit_in_hil_mode_runs_the_image_as_a_soft_reset(host: Host) -> None:
    host.ask(wire.HilEnter(1))
    host.ask(wire.HilInject(5_000_000, 0, VALUES))
    host.ask(wire.StreamSamples(10))
    assert flash(host, encode_image(config_for_scenario("soyuz-ms09").with_generation(2))).generation == 2
    ident = host.ask(wire.Identify(1, 2))
    assert ident.generation == 2 and not ident.flags & (wire.BoardFlags.HIL_ACTIVE | wire.BoardFlags.STREAMING)
    assert host.ask(wire.ReadSamples()).board_time_us < 5_000_000  # restarted, as documented


def test_an_image_of_generation_0_is_invalid_not_stale(host: Host) -> None:
    nak = flash(host, encode_image(config_for_scenario("soyuz-ms09").with_generation(0)))
    assert nak.code == wire.nak_code_of(wire.FlashRefusal.INVALID_IMAGE), nak
    assert "generation" in nak.text


def _superblock(path, **fields) -> None:
    """Rewrite fields of a flash file's superblock (offsets of docs/config-image.md), CRC fixed."""
    data = bytearray(path.read_bytes())
    if "block_size" in fields:
        data[6:8] = fields["block_size"].to_bytes(2, "little")
    if "slot_size" in fields:
        data[8:12] = fields["slot_size"].to_bytes(4, "little")
    if "key" in fields:
        key = fields["key"]
        data[44] = len(key)
        data[45:109] = key + bytes(64 - len(key))
    data[109:113] = zlib.crc32(bytes(data[:109])).to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fields, says", [
    ({"block_size": 0}, "block_size 0"),
    ({"block_size": 5000}, "block_size 5000"),
    ({"slot_size": 0}, "slot_size 0"),
    ({"slot_size": 1 << 31}, "slot_size 2147483648"),
    ({"slot_size": 32768}, "truncated"),
    ({"key": b"short"}, "key_length 5"),
])
def test_a_superblock_outside_the_limits_is_refused(tmp_path, fields, says) -> None:
    path = tmp_path / "board.flash"
    open_flash(path)  # a flash file made with the factory image
    _superblock(path, **fields)
    with pytest.raises(FlashFileError, match=says):
        BoardFlash.open(path)
    r = subprocess.run([sys.executable, "-m", "hullwatch.tools", "board", "--pty", "--flash", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and says in r.stderr


def test_the_host_ignores_fields_a_later_board_appends_to_identify_reply() -> None:
    reply = wire.IdentifyReply(1, 3, 1, 0, 0, "HWB-0001", 6, 31, 6, 2, 16384, 1024, 1100, 0, 7, 0x1234,
                               3, 10)
    assert wire.decode(MsgType.IDENTIFY_REPLY, wire.payload_of(reply) + b"\x01\x02\x03\x04\x05") == reply
    with pytest.raises(wire.ProtocolError, match="trailing"):  # everywhere else: an error
        wire.decode(MsgType.STREAM_SAMPLES_REPLY, wire.payload_of(wire.StreamSamplesReply(1)) + b"x")


def test_flash_refuses_an_image_file_of_generation_0(tmp_path, capsys) -> None:
    image = tmp_path / "gen0.img"
    image.write_bytes(encode_image(config_for_scenario("soyuz-ms09").with_generation(0)))
    assert main(["flash", str(image), "--device", "emuboard://gen0-test"]) == 2
    err = capsys.readouterr().err
    assert "generation 0" in err and "Traceback" not in err
