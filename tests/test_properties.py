"""Property-based layer (hypothesis) over the parsers that face hostile input: board frames and
messages (both ends), telemetry packets and captures, configuration images, key files and
scenarios. Each property says which exceptions a parser may raise: anything else is a bug.

Bounded in time: few examples each and no deadline (the suite runs on a shared 2-core machine);
the whole module runs in a few seconds. Fuzzers that found real bugs are kept as regression
tests in tests/test_hostile_board.py, tests/test_capture_hostile.py and friends.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullwatch.firmware.errors import FirmwareError
from hullwatch.tools.ground import iter_capture
from hullwatch.firmware.telemetry.packets import crc16 as tm_crc16
from hullwatch.firmware.telemetry.packets import decode as tm_decode
from hullwatch.hal import wire
from hullwatch.hal.board_check import check_description
from hullwatch.hal.board_link import BoardDescription
from hullwatch.hal.config_image import ConfigImageError, decode_image, encode_image
from hullwatch.hal.keyfile import parse_key
from hullwatch.hal.errors import ProtocolError
from hullwatch.hal.framing import MAX_PAYLOAD, MAX_WIRE_FRAME, FrameReader, RawFrame, encode_frame
from hullwatch.sim.board_emulator import BoardEmulator, open_flash
from hullwatch.sim.board_flash import default_factory_config
from hullwatch.sim.errors import ScenarioError
from hullwatch.sim.scenario import preset_dict, scenario_from_dict

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)
CONFIG = default_factory_config()
IMAGE = encode_image(CONFIG.with_generation(3))
SCENARIO = preset_dict("soyuz-ms09")

any_value = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


# -- board frames ----------------------------------------------------------------------------


@FAST
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=MAX_PAYLOAD),
       st.binary(max_size=300), st.integers(1, 64))
def test_frames_round_trip_after_any_garbage(msg_type: int, seq: int, payload: bytes,
                                             garbage: bytes, chunk: int) -> None:
    """A good frame after any garbage and a delimiter comes out whole, however the bytes are
    chunked; the reader never raises and its buffer stays bounded."""
    frame = encode_frame(msg_type, seq, payload)
    assert len(frame) <= MAX_WIRE_FRAME
    stream = garbage + b"\x00" + frame
    reader = FrameReader()
    out: list[RawFrame] = []
    for i in range(0, len(stream), chunk):
        out += reader.feed(stream[i:i + chunk])
        assert reader.pending < MAX_WIRE_FRAME
    assert out[-1] == RawFrame(msg_type, seq, payload)


@FAST
@given(st.binary(max_size=3000))
def test_frame_reader_never_passes_an_oversized_frame(data: bytes) -> None:
    for f in FrameReader().feed(data):
        assert len(f.payload) <= MAX_PAYLOAD


# -- board messages --------------------------------------------------------------------------


@FAST
@given(st.sampled_from(sorted(wire.DECLARATIONS)), st.binary(max_size=200))
def test_message_decoders_raise_only_protocol_errors(msg_type: int, payload: bytes) -> None:
    try:
        msg = wire.decode(msg_type, payload)
    except ProtocolError:
        return
    # What decodes encodes back to the same bytes (both paths agree on the layout).
    assert wire.encode_payload(msg) == payload


@FAST
@given(st.lists(st.tuples(st.sampled_from([t for t in wire.MsgType if t < 0x80]),
                          st.binary(max_size=40)), max_size=12),
       st.binary(max_size=200))
def test_board_survives_any_request_sequence(requests: list[tuple[int, bytes]], garbage: bytes) -> None:
    """Any requests, well-formed or not, plus garbage: the board answers each with one decodable
    frame of the request's seq and keeps serving."""
    board = BoardEmulator(open_flash(None))
    reader = FrameReader()
    for seq, (msg_type, payload) in enumerate(requests):
        replies = reader.feed(board.receive(encode_frame(msg_type, seq, payload)))
        assert len(replies) == 1 and replies[0].seq == seq
        wire.decode(replies[0].type, replies[0].payload)
    board.receive(garbage)
    replies = reader.feed(board.receive(b"\x00" + wire.encode(wire.Identify(), 200)))
    assert [r.type for r in replies][-1] == wire.MsgType.IDENTIFY_REPLY
    assert board.counters["internal_errors"] == 0


def _description() -> BoardDescription:
    board = BoardEmulator(open_flash(None))
    reader = FrameReader()

    def ask(msg: wire.Message) -> Any:
        (f,) = reader.feed(board.receive(wire.encode(msg, 1)))
        return wire.decode(f.type, f.payload)

    ident = ask(wire.Identify())
    return BoardDescription(
        ident, tuple(ask(wire.DescribeModule(i)) for i in range(ident.module_count)),
        tuple(ask(wire.DescribeChannel(i)) for i in range(ident.channel_count)),
        tuple(ask(wire.DescribeValve(i)) for i in range(ident.valve_count)))


DESCRIPTION = _description()


@FAST
@given(st.sampled_from(["modules", "channels", "valves"]), st.data())
def test_host_checks_raise_only_description_errors(table: str, data: st.DataObject) -> None:
    """Any field of any DESCRIBE entry set to any value of its wire type: the host's check either
    accepts it or raises BoardDescriptionError (a ProtocolError), never anything else."""
    entries = list(getattr(DESCRIPTION, table))
    i = data.draw(st.integers(0, len(entries) - 1))
    entry = entries[i]
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(entry)]))
    old = getattr(entry, name)
    if isinstance(old, float):
        value: Any = data.draw(st.floats(allow_nan=True, allow_infinity=True))
    elif isinstance(old, str):
        value = data.draw(st.text(max_size=20))
    else:
        value = data.draw(st.integers(0, 255))
    entries[i] = dataclasses.replace(entry, **{name: value})
    try:
        check_description(dataclasses.replace(DESCRIPTION, **{table: tuple(entries)}))
    except ProtocolError:
        return
    # Accepted: then nothing impossible got through.
    assert not (isinstance(value, float) and not math.isfinite(value)), f"{table}[{i}].{name} = {value}"


# -- telemetry packets and captures ----------------------------------------------------------


@FAST
@given(st.binary(max_size=400))
def test_packet_decoder_raises_only_telemetry_errors(data: bytes) -> None:
    try:
        tm_decode(data)
    except FirmwareError:
        pass


@FAST
@given(st.binary(min_size=6, max_size=300))
def test_packet_decoder_with_a_valid_crc(data: bytes) -> None:
    """Bytes whose length field and CRC are right reach the body decoders: still no other error."""
    body = bytearray(data)
    struct.pack_into(">H", body, 4, len(body) + 2 - 7)
    packet = bytes(body) + struct.pack(">H", tm_crc16(bytes(body)))
    try:
        tm_decode(packet)
    except FirmwareError:
        pass


@FAST
@given(st.binary(max_size=2000))
def test_capture_reader_never_raises_on_damage(data: bytes) -> None:
    """Damage is skipped and reported, never raised; skipped ranges lie inside the data."""
    skipped: list[Any] = []
    for cap in iter_capture(data, on_skip=skipped.append):
        assert 0 <= cap.offset < len(data)
    for skip in skipped:
        assert 0 <= skip.offset and skip.offset + skip.length <= len(data)


# -- configuration images and key files ------------------------------------------------------


@FAST
@given(st.binary(max_size=600))
def test_image_decoder_raises_only_image_errors(data: bytes) -> None:
    try:
        decode_image(data)
    except ConfigImageError:
        pass


@FAST
@given(st.integers(0, len(IMAGE) - 1), st.integers(1, 255))
def test_a_flipped_image_byte_is_always_caught(at: int, xor: int) -> None:
    damaged = bytearray(IMAGE)
    damaged[at] ^= xor
    try:
        decode_image(bytes(damaged))
    except ConfigImageError:
        return
    raise AssertionError(f"byte {at} ^ {xor:#x} went unnoticed")


@FAST
@given(st.floats(1e-6, 1e3), st.floats(0.0, 1e5), st.integers(1, 1000), st.integers(1, 2**32 - 1))
def test_images_round_trip(gain: float, offset: float, rate: int, generation: int) -> None:
    ch = dataclasses.replace(CONFIG.channels[0], gain=gain, offset=offset)
    config = dataclasses.replace(CONFIG, channels=(ch,) + CONFIG.channels[1:], sample_rate_hz=rate,
                                 generation=generation)
    try:
        image = encode_image(config)
    except ConfigImageError:
        return  # e.g. a calibration that leaves the valid range empty
    assert decode_image(image).config == config


@FAST
@given(st.binary(max_size=200))
def test_key_parser_raises_only_image_errors(data: bytes) -> None:
    try:
        key = parse_key(data)
    except ConfigImageError:
        return
    assert 16 <= len(key) <= 64


# -- scenarios -------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


PATHS = _paths(SCENARIO) + [("sensors", "pressure_per_module"), ("thermal", "amplitude_k"),
                            ("crew", "count"), ("leaks", 0, "cd")]


@settings(max_examples=150, deadline=None, database=None)
@given(st.sampled_from(PATHS), any_value)
def test_scenario_loader_raises_only_scenario_errors(path: tuple, value: Any) -> None:
    """Any key of the soyuz-ms09 preset set to any value: a ScenarioError or a scenario whose
    values are all inside the bounds (finite where they must be)."""
    data = copy.deepcopy(SCENARIO)
    node: Any = data
    for k in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(k, {})
        elif isinstance(k, int) and k < len(node):
            node = node[k]
        else:
            return
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node)):
        node[path[-1]] = value
    try:
        s = scenario_from_dict(data, "fuzz.toml")
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        return
    assert all(math.isfinite(m.volume_m3) and 0.01 <= m.volume_m3 <= 1e4 for m in s.modules)
    assert 0 <= s.start_utc and s.start_utc + s.duration_s < 2**32
