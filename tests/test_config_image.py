"""The configuration image format and its TOML source (hal/config_image.py, docs/config-image.md)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import math
import struct
import tomllib
import zlib
from pathlib import Path

import pytest

from hullwatch.hal.config_image import (
    COUNTS_MAX,
    BoardConfig,
    ChannelConfig,
    ConfigImageError,
    ConfigSourceError,
    ImageCrcError,
    ImageFormatError,
    ImageTagError,
    ModuleConfig,
    ValveConfig,
    config_from_dict,
    config_to_toml,
    decode_image,
    encode_image,
    image_crc,
    image_size,
    load_config,
    summary_lines,
)
from hullwatch.hal.interfaces import ChannelKind, ValveKind
from hullwatch.sim.board_flash import default_factory_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "board.toml"
KEY = bytes(range(32))


def minimal_config(**changes: object) -> BoardConfig:
    cfg = BoardConfig(
        board_id="b", generation=1, sample_rate_hz=10, oversampling=1, hil_allowed=True,
        modules=(ModuleConfig("m", 1.0),),
        channels=(ChannelConfig("m.p1", ChannelKind.PRESSURE, "m", 0.0, 0.01, 0.0, 0.0, 120000.0),),
        valves=(),
    )
    return dataclasses.replace(cfg, **changes)


def example_dict() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


# --------------------------------------------------------------------------------------------
# Golden bytes, built by hand as an independent oracle


def _s(text: str) -> bytes:
    return bytes([len(text)]) + text.encode()


def test_golden_minimal_image() -> None:
    body = (_s("b") + struct.pack("<IHB", 1, 10, 1)
            + b"\x01" + _s("m") + struct.pack("<d", 1.0)
            + b"\x01" + _s("m.p1") + bytes([0, 0]) + struct.pack("<5d", 0.0, 0.01, 0.0, 0.0, 120000.0)
            + b"\x00")
    signed = b"HWCI" + struct.pack("<HBBI", 1, 0x01, 0, len(body)) + body
    golden = signed + struct.pack("<I", zlib.crc32(signed))
    assert len(golden) == 85
    assert encode_image(minimal_config()) == golden
    decoded = decode_image(golden)
    assert decoded.config == minimal_config()
    assert decoded.size == 85 and not decoded.tagged
    assert decoded.crc32 == zlib.crc32(signed) == image_crc(golden)
    assert image_size(golden) == 85


def test_golden_tagged_image() -> None:
    plain = encode_image(minimal_config())
    signed = bytearray(plain[:-4])
    signed[6] |= 0x02  # tag present
    tag = hmac.new(KEY, bytes(signed), hashlib.sha256).digest()
    golden = bytes(signed) + tag + struct.pack("<I", zlib.crc32(bytes(signed) + tag))
    assert encode_image(minimal_config(), key=KEY) == golden
    decoded = decode_image(golden, key=KEY)
    assert decoded.tagged and decoded.config == minimal_config()


def test_whole_image_crc_is_a_constant_so_the_image_crc_excludes_its_field() -> None:
    a = encode_image(minimal_config())
    b = encode_image(minimal_config(generation=2))
    assert zlib.crc32(a) == zlib.crc32(b) == 0x2144DF1C  # the CRC-32 residue
    assert image_crc(a) != image_crc(b)
    assert image_crc(a) == int.from_bytes(a[-4:], "little")


# --------------------------------------------------------------------------------------------
# Round trips


def test_example_is_the_emulator_default_board() -> None:
    config = load_config(EXAMPLE)
    assert config == default_factory_config()
    assert config.board_id == "hwb-emu-0001" and config.generation == 0
    layout = config.layout()
    assert [m.name for m in layout.modules] == ["soyuz-dm", "soyuz-om", "rassvet", "zarya",
                                                "zvezda", "usos"]
    assert len(layout.pressure) == 18 and len(layout.temperature) == 12
    assert [c.id for c in layout.flow] == ["progress-air.flow"]
    assert layout.flow[0].module == "zvezda"
    assert [v.id for v in layout.valves] == ["dm-om", "om-rassvet", "rassvet-zarya",
                                             "zarya-zvezda", "zarya-usos", "progress-air"]
    assert layout.valves[-1].kind == ValveKind.REPRESS and layout.valves[-1].module_b is None


def test_example_matches_the_simulated_station_layout() -> None:
    from hullwatch.sim.device import build_layout
    from hullwatch.sim.scenario import load_scenario

    assert load_config(EXAMPLE).layout() == build_layout(load_scenario("soyuz-ms09"))


@pytest.mark.parametrize("key", [None, KEY])
def test_round_trip_of_the_example(key: bytes | None) -> None:
    config = load_config(EXAMPLE).with_generation(7)
    image = encode_image(config, key=key)
    decoded = decode_image(image, key=key)
    assert decoded.config == config
    assert decoded.tagged == (key is not None)
    assert 1500 < len(image) < 4096


def test_toml_rendering_reads_back_equal(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    path = tmp_path / "rendered.toml"
    path.write_text(config_to_toml(config, header="rendered"))
    assert load_config(path) == config


def test_summary_names_every_channel_and_valve() -> None:
    config = load_config(EXAMPLE)
    text = "\n".join(summary_lines(config))
    for c in config.channels:
        assert c.id in text
    for v in config.valves:
        assert v.id in text
    assert "30000..125000 Pa" in text and "zarya <-> usos" in text


# --------------------------------------------------------------------------------------------
# Calibration


def test_calibration_and_its_inverse() -> None:
    ch = ChannelConfig("m.p1", ChannelKind.PRESSURE, "m", 1000.0, 0.02, 0.75, 0.0, 200000.0)
    assert ch.calibrate(50_000) == pytest.approx(2000.0)
    assert ch.calibrate(50_000, 305.0) == pytest.approx(2007.5)
    for value, temp in ((101325.0, 295.0), (99000.0, 280.0), (1010.0, 300.0)):
        counts = ch.counts_for(value, temp)
        assert abs(ch.calibrate(counts, temp) - value) <= 0.01 + 1e-9  # half a count
    assert ch.counts_for(-1e9) == 0
    assert ch.counts_for(1e12) == COUNTS_MAX
    assert ch.counts_span() == (1000.0, pytest.approx(1000.0 + 0.02 * COUNTS_MAX))
    negative = dataclasses.replace(ch, gain=-0.02, offset=400000.0)
    assert negative.counts_span()[0] < negative.counts_span()[1]
    assert negative.calibrate(negative.counts_for(101325.0)) == pytest.approx(101325.0, abs=0.01)


# --------------------------------------------------------------------------------------------
# Corrupted images: one case per error


def _recrc(signed: bytes) -> bytes:
    return signed + struct.pack("<I", zlib.crc32(signed))


def test_every_single_bit_flip_is_detected() -> None:
    image = encode_image(minimal_config())
    for i in range(len(image)):
        for bit in (0, 7):
            bad = bytearray(image)
            bad[i] ^= 1 << bit
            with pytest.raises(ConfigImageError):
                decode_image(bytes(bad))


@pytest.mark.parametrize("mutate, error, text", [
    (lambda b: b[:10], ImageFormatError, "header truncated"),
    (lambda b: b"XXXX" + b[4:], ImageFormatError, "bad magic"),
    (lambda b: b[:-1], ImageFormatError, "header says 85"),
    (lambda b: b + b"\x00", ImageFormatError, "image is 86 bytes"),
    (lambda b: b[:-4] + b"\x00\x00\x00\x00", ImageCrcError, "CRC-32 mismatch"),
    (lambda b: _recrc(b[:4] + b"\x02\x00" + b[6:-4]), ImageFormatError, "format version 2"),
    (lambda b: _recrc(b[:7] + b"\x01" + b[8:-4]), ImageFormatError, "reserved byte"),
    (lambda b: _recrc(b[:6] + b"\x81" + b[7:-4]), ImageFormatError, "unknown bits"),
    # module index 5 in the channel entry (module table has 1 entry)
    (lambda b: _recrc(b[:39] + b"\x05" + b[40:-4]), ImageFormatError, "module index 5"),
    # channel kind 9
    (lambda b: _recrc(b[:38] + b"\x09" + b[39:-4]), ImageFormatError, "unknown kind 9"),
    # a stray byte after the tables, inside body_length
    (lambda b: _recrc(b[:8] + struct.pack("<I", 70) + b[12:-4] + b"\x00"), ImageFormatError,
     "malformed image body"),
    # body_length one short: the valve table count is cut off
    (lambda b: _recrc(b[:8] + struct.pack("<I", 68) + b[12:-5]), ImageFormatError,
     "malformed image body"),
    # a valid structure whose content does not validate: sample rate 0
    (lambda b: _recrc(b[:18] + b"\x00\x00" + b[20:-4]), ConfigSourceError, "sample_rate_hz"),
])
def test_corrupted_image_errors(mutate, error, text) -> None:  # type: ignore[no-untyped-def]
    image = encode_image(minimal_config())
    with pytest.raises(error, match=text):
        decode_image(mutate(image))


def test_the_error_names_the_byte_offset() -> None:
    image = encode_image(minimal_config())
    bad = _recrc(image[:39] + b"\x05" + image[40:-4])
    with pytest.raises(ImageFormatError) as info:
        decode_image(bad)
    assert info.value.offset == 33  # the channel entry starts here
    assert "at byte offset 33" in str(info.value)


def test_tag_checks() -> None:
    plain = encode_image(minimal_config())
    tagged = encode_image(minimal_config(), key=KEY)
    with pytest.raises(ImageTagError, match="no HMAC tag") as info:
        decode_image(plain, key=KEY)
    assert info.value.missing
    with pytest.raises(ImageTagError, match="does not match") as info:
        decode_image(tagged, key=bytes(32))
    assert not info.value.missing
    assert decode_image(tagged).tagged  # a reader without a key still decodes it
    with pytest.raises(ConfigImageError, match="at least 16"):
        encode_image(minimal_config(), key=b"short")


# --------------------------------------------------------------------------------------------
# TOML validation: one line per rule, the key and the expectation named


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    def mutate(d: dict) -> None:
        node = d
        parts = path.replace("]", "").replace("[", ".").split(".")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        last = parts[-1]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return mutate


_DELETE = object()


def _append(table: str, entry: dict):  # type: ignore[no-untyped-def]
    return lambda d: d[table].append(entry)


CASES = [
    # types and units
    (_set("channels[3].gain", "fast"), "channels[3].gain", "expected a number in Pa per count"),
    (_set("sample_rate_hz", 10.5), "sample_rate_hz", "expected an integer in Hz"),
    (_set("hil_allowed", "yes"), "hil_allowed", "expected true or false"),
    (_set("board_id", _DELETE), "board_id", "missing; expected a string"),
    (_set("modules[1].volume_m3", _DELETE), "modules[1].volume_m3", "missing; expected a volume in m^3"),
    (_set("channels[2].gian", 1.0), "channels[2].gian", "unknown key"),
    (_set("colour", "red"), "colour", "unknown key"),
    (_set("defaults.pressure.gain", _DELETE), "channels[0].gain",
     "here or in [defaults.pressure]"),
    # ranges
    (_set("sample_rate_hz", 0), "sample_rate_hz", "between 1 and 1000"),
    (_set("oversampling", 3), "oversampling", "expected one of 1, 2, 4"),
    (_set("modules[0].volume_m3", -3.0), "modules[0].volume_m3", "in m^3 between 0.01 and 10000"),
    (_set("channels[3].valid_max", 1.5e6), "channels[3].valid_max",
     "expected a pressure in Pa between 0 and 500000"),
    (_set("channels[20].valid_min", 0.0), "channels[20].valid_min",
     "expected a temperature in K between 1 and 1000"),
    (_set("channels[3].valid_min", 126000.0), "channels[3].valid_max", "expected valid_max > valid_min"),
    (_set("valves[0].actuation_timeout_s", 0.0), "valves[0].actuation_timeout_s",
     "timeout in s between 0.01 and 600"),
    (_set("channels[3].gain", 0.0), "channels[3].gain", "non-zero gain"),
    (_set("channels[20].temp_coeff", 0.1), "channels[20].temp_coeff", "expected temp_coeff = 0"),
    (_set("channels[3].offset", math.inf), "channels[3].offset", "finite"),
    # duplicates
    (_set("channels[4].id", "soyuz-dm.p1"), "channels[4].id", "duplicate channel id 'soyuz-dm.p1' (also channels[0])"),
    (_set("valves[3].id", "dm-om"), "valves[3].id", "duplicate valve id 'dm-om' (also valves[0])"),
    (_set("modules[2].name", "soyuz-dm"), "modules[2].name", "duplicate module 'soyuz-dm'"),
    # unknown modules and references
    (_set("valves[2].modules", ["rassvet", "zarja"]), "valves[2].modules", "unknown module 'zarja'"),
    (_append("channels", {"id": "mir.p1"}), "channels[31].module", "unknown module 'mir'"),
    (_append("channels", {"id": "nothing.flow"}), "channels[31].id", "names no repress valve"),
    (_set("channels[0].id", "soyuz-dm.x1"), "channels[0].kind", "does not imply it"),
    (_set("channels[0].module", "zarya"), "channels[0].id", "named \"zarya.p<N>\""),
    (_set("valves[0].modules", ["zarya", "zarya"]), "valves[0].modules", "two different modules"),
    (_set("valves[5].modules", ["zvezda", "zarya"]), "valves[5].modules", "feeds one module"),
    (_set("valves[0].kind", "door"), "valves[0].kind", "expected \"hatch\", \"valve\" or \"repress\""),
    (_set("board_id", "no spaces please"), "board_id", "expected a board id"),
    # calibration that makes the valid range empty
    (_set("channels[0].offset", 200000.0), "channels[0].gain",
     "calibration makes the valid range empty: counts 0..16777215 map to 200000..367772 Pa"),
    (_set("channels[18].gain", -1e-5), "channels[18].gain", "calibration makes the valid range empty"),
]


@pytest.mark.parametrize("mutate, key, text", CASES, ids=[c[1] + ":" + c[2][:24] for c in CASES])
def test_source_validation_names_file_key_and_expectation(mutate, key, text, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = example_dict()
    mutate(data)
    with pytest.raises(ConfigSourceError) as info:
        config_from_dict(copy.deepcopy(data), source="board.toml")
    assert info.value.source == "board.toml"
    assert info.value.key == key
    assert str(info.value).startswith(f"board.toml: {key}: ")
    assert text in str(info.value)


def test_unreadable_sources(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("board_id = \n")
    with pytest.raises(ConfigSourceError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigSourceError, match="not UTF-8"):
        load_config(binary)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")


def test_explicit_kind_module_and_per_channel_calibration() -> None:
    data = example_dict()
    data["channels"][0].update(kind="pressure", module="soyuz-dm", offset=12.5, gain=0.0101,
                               temp_coeff=0.75)
    config = config_from_dict(data, source="x")
    ch = config.channels[0]
    assert (ch.offset, ch.gain, ch.temp_coeff) == (12.5, 0.0101, 0.75)
    assert config.channels[1].gain == 0.01  # the others keep the defaults
    data["channels"][0]["kind"] = "temperature"
    with pytest.raises(ConfigSourceError, match=r"channels\[0\]\.id"):
        config_from_dict(data, source="x")


def test_encoder_refuses_an_invalid_config() -> None:
    bad = minimal_config(valves=(ValveConfig("v", ValveKind.HATCH, "m", "nowhere", 1.0),))
    with pytest.raises(ConfigSourceError, match="unknown module 'nowhere'"):
        encode_image(bad)
