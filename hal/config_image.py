"""The board configuration image: its byte layout, encoded and decoded.

What ``hullwatch flash`` writes to the USB sensor board and what the board (or its emulator)
boots from. The byte layout is declared once, with construct, in :data:`IMAGE`; callers see
:func:`encode_image` / :func:`decode_image` and the plain dataclasses below. docs/config-image.md
is the byte-level reference.

Image layout (little-endian, as a Cortex-M reads it from flash)::

    0   4  magic "HWCI"
    4   2  format_version u16 (1)
    6   1  flags: bit0 HIL allowed, bit1 HMAC tag present
    7   1  reserved, 0
    8   4  body_length u32
    12  n  body: board id, generation, sample rate, oversampling, module, channel, valve tables
    .  32  HMAC-SHA256(key, bytes 0 .. 12+body_length)   only if flags bit1
    .   4  CRC-32 (IEEE 802.3, zlib.crc32) over every byte before it

Raises :class:`~hullwatch.hal.errors.ConfigImageError` (or a subclass,
:mod:`~hullwatch.hal.config_model`) for every invalid image or source; the message names the file,
the key or byte offset, and what was expected.

The configuration's plain objects live in :mod:`~hullwatch.hal.config_model`, its rules in
:mod:`~hullwatch.hal.config_validate`, its TOML source in :mod:`~hullwatch.hal.config_source` and
its text forms in :mod:`~hullwatch.hal.config_text`; every public name of those is re-exported
here, so ``hullwatch.hal.config_image`` stays the one import for the whole format.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from typing import Any

import construct as cs

from .config_model import (  # noqa: F401 - re-exported: the format's public names
    ACTUATION_TIMEOUT_RANGE_S, CHANNEL_KIND_NAMES, COUNTS_MAX, COUNTS_MIN, CRC_SIZE, FORMAT_VERSION,
    GENERATION_MAX, HEADER_SIZE, MAGIC, MAX_ID_LENGTH, MAX_IMAGE_SIZE, MAX_KEY_SIZE,
    MAX_TABLE_ENTRIES, MIN_KEY_SIZE, NO_MODULE, OVERSAMPLING_CHOICES, PHYSICAL_BOUNDS,
    REFERENCE_TEMPERATURE_K, SAMPLE_RATE_RANGE_HZ, TAG_SIZE, VALVE_KIND_NAMES, VOLUME_RANGE_M3,
    BoardConfig, ChannelConfig, ConfigSourceError, DecodedImage, ImageCrcError, ImageFormatError,
    ImageTagError, ModuleConfig, ValveConfig,
)
from .config_source import config_from_dict, load_config  # noqa: F401 - re-exported
from .config_text import config_to_toml, summary_lines  # noqa: F401 - re-exported
from .config_validate import samples_payload_size, validate_config  # noqa: F401 - re-exported
from .errors import ConfigImageError  # noqa: F401 - re-exported

__all__ = [
    # the byte form (this module)
    "IMAGE", "encode_image", "decode_image", "image_size", "image_crc", "crc32", "hmac_tag",
    "check_key", "generation_newer", "generation_after",
    # re-exported: the plain objects, limits and errors (config_model)
    "ACTUATION_TIMEOUT_RANGE_S", "CHANNEL_KIND_NAMES", "COUNTS_MAX", "COUNTS_MIN", "CRC_SIZE",
    "FORMAT_VERSION", "GENERATION_MAX", "HEADER_SIZE", "MAGIC", "MAX_ID_LENGTH", "MAX_IMAGE_SIZE",
    "MAX_KEY_SIZE", "MAX_TABLE_ENTRIES", "MIN_KEY_SIZE", "NO_MODULE", "OVERSAMPLING_CHOICES",
    "PHYSICAL_BOUNDS", "REFERENCE_TEMPERATURE_K", "SAMPLE_RATE_RANGE_HZ", "TAG_SIZE",
    "VALVE_KIND_NAMES", "VOLUME_RANGE_M3", "BoardConfig", "ChannelConfig", "ConfigImageError",
    "ConfigSourceError", "DecodedImage", "ImageCrcError", "ImageFormatError", "ImageTagError",
    "ModuleConfig", "ValveConfig",
    # re-exported: the rules, the TOML source, the text forms
    "samples_payload_size", "validate_config", "config_from_dict", "load_config", "config_to_toml",
    "summary_lines",
]

#: Half the u32 serial-number space (RFC 1982): the largest step that still reads as newer.
_SERIAL_HALF = 1 << 31


# --------------------------------------------------------------------------------------------
# The declaration

_Name = cs.PascalString(cs.Int8ul, "ascii")

_Module = cs.Struct(
    "name" / _Name,
    "volume_m3" / cs.Float64l,
)

_Channel = cs.Struct(
    "at" / cs.Tell,  # byte offset, for error messages; builds nothing
    "id" / _Name,
    "kind" / cs.Enum(cs.Int8ul, pressure=0, temperature=1, flow=2),
    "module" / cs.Int8ul,  # index into the module table
    "offset" / cs.Float64l,
    "gain" / cs.Float64l,
    "temp_coeff" / cs.Float64l,
    "valid_min" / cs.Float64l,
    "valid_max" / cs.Float64l,
)

_Valve = cs.Struct(
    "at" / cs.Tell,
    "id" / _Name,
    "kind" / cs.Enum(cs.Int8ul, hatch=0, valve=1, repress=2),
    "module_a" / cs.Int8ul,
    "module_b" / cs.Int8ul,  # NO_MODULE for a repress valve
    "actuation_timeout_s" / cs.Float64l,
)

_Body = cs.Struct(
    "board_id" / _Name,
    "generation" / cs.Int32ul,
    "sample_rate_hz" / cs.Int16ul,
    "oversampling" / cs.Int8ul,
    "modules" / cs.PrefixedArray(cs.Int8ul, _Module),
    "channels" / cs.PrefixedArray(cs.Int8ul, _Channel),
    "valves" / cs.PrefixedArray(cs.Int8ul, _Valve),
    cs.Terminated,  # the tables end exactly at body_length
)

_Signed = cs.Struct(
    "magic" / cs.Const(MAGIC),
    "format_version" / cs.Int16ul,
    "flags" / cs.FlagsEnum(cs.Int8ul, hil_allowed=0x01, tagged=0x02),
    "reserved" / cs.Const(0, cs.Int8ul),
    "body" / cs.Prefixed(cs.Int32ul, _Body),
)

#: The whole image: the signed part, the optional HMAC tag, the CRC-32 over all of it.
IMAGE = cs.Struct(
    "signed" / cs.RawCopy(_Signed),
    "tag" / cs.If(cs.this.signed.value.flags.tagged, cs.Bytes(TAG_SIZE)),
    "crc32" / cs.Checksum(
        cs.Int32ul,
        zlib.crc32,
        lambda ctx: ctx.signed.data + (ctx.tag or b""),
    ),
)


# --------------------------------------------------------------------------------------------
# Generations, CRCs, tags


def generation_newer(a: int, b: int) -> bool:
    """True when generation ``a`` is newer than ``b``.

    Generations are compared as u32 serial numbers (RFC 1982): ``a`` is newer when
    ``(a - b) mod 2^32`` is in 1 .. 2^31 - 1, so the counter wraps from 4294967295 to 1 and a
    board can be flashed forever. 0 means "no image": every other generation is newer than 0,
    0 is newer than nothing. Two generations exactly 2^31 apart are unordered (neither is newer).
    """
    if a == 0:
        return False
    if b == 0:
        return True
    return 0 < (a - b) % (GENERATION_MAX + 1) < _SERIAL_HALF


def generation_after(generation: int) -> int:
    """The generation that follows ``generation`` (0: none yet -> 1; 4294967295 wraps to 1)."""
    return 1 if generation >= GENERATION_MAX else generation + 1


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, as zlib.crc32) of ``data``."""
    return zlib.crc32(data) & 0xFFFFFFFF


def image_crc(image: bytes) -> int:
    """The CRC-32 that identifies an image: over every byte but the last four (which store it
    when the image is intact). What FLASH_BEGIN declares, a slot header and FLASH_INFO carry.
    (The CRC-32 over the whole image, stored CRC included, is the same constant for every
    intact image, so it cannot identify one.)"""
    return crc32(image[:-CRC_SIZE])


def hmac_tag(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, hashlib.sha256).digest()


def check_key(key: bytes) -> bytes:
    """Return ``key`` if it is usable as an HMAC key; raise ConfigImageError otherwise."""
    if len(key) < MIN_KEY_SIZE:
        raise ConfigImageError(f"HMAC key is {len(key)} bytes; expected at least {MIN_KEY_SIZE}")
    return key


# --------------------------------------------------------------------------------------------
# Encode / decode


def encode_image(config: BoardConfig, key: bytes | None = None) -> bytes:
    """Build the image bytes of ``config``, HMAC-tagged when ``key`` is given.

    ``config`` is validated first (:func:`validate_config`); raises ConfigSourceError naming the
    field when it is invalid, ConfigImageError when the key is too short.
    """
    validate_config(config, source="image")
    module_index = {m.name: i for i, m in enumerate(config.modules)}
    body = dict(
        board_id=config.board_id,
        generation=config.generation,
        sample_rate_hz=config.sample_rate_hz,
        oversampling=config.oversampling,
        modules=[dict(name=m.name, volume_m3=m.volume_m3) for m in config.modules],
        channels=[dict(id=c.id, kind=c.kind.name.lower(), module=module_index[c.module],
                       offset=c.offset, gain=c.gain, temp_coeff=c.temp_coeff,
                       valid_min=c.valid_min, valid_max=c.valid_max) for c in config.channels],
        valves=[dict(id=v.id, kind=v.kind.name.lower(), module_a=module_index[v.module_a],
                     module_b=NO_MODULE if v.module_b is None else module_index[v.module_b],
                     actuation_timeout_s=v.actuation_timeout_s) for v in config.valves],
    )
    signed_value = dict(
        format_version=config.format_version,
        flags=dict(hil_allowed=config.hil_allowed, tagged=key is not None),
        body=body,
    )
    # The tag signs the bytes of the signed part, so build that part first.
    tag = hmac_tag(check_key(key), _Signed.build(signed_value)) if key is not None else None
    return IMAGE.build(dict(signed=dict(value=signed_value), tag=tag))


def image_size(data: bytes) -> int:
    """Total size in bytes of the image that starts ``data``, from its header (no checks beyond
    the header). Raises ImageFormatError when the header is not an image header."""
    if len(data) < HEADER_SIZE:
        raise ImageFormatError(f"image header truncated: {len(data)} bytes, expected "
                               f"{HEADER_SIZE}", offset=len(data))
    if data[:4] != MAGIC:
        raise ImageFormatError(f"bad magic {data[:4]!r}, expected {MAGIC!r}", offset=0)
    flags = data[6]
    body_length = int.from_bytes(data[8:12], "little")
    return HEADER_SIZE + body_length + (TAG_SIZE if flags & 0x02 else 0) + CRC_SIZE


def decode_image(data: bytes, key: bytes | None = None, *, require_tag: bool = False) -> DecodedImage:
    """Parse and check image bytes; return its configuration, validated.

    Checks, in order: header, size, CRC-32, structure, HMAC tag (when ``key`` is given, or
    ``require_tag``), then :func:`validate_config`.

    Raises:
        ImageFormatError: not an image, truncated, trailing bytes, bad table index (with offset).
        ImageCrcError: the CRC-32 does not match.
        ImageTagError: ``key`` given (or ``require_tag``) and the tag is missing or wrong.
        ConfigSourceError: well formed but the configuration is invalid (names the key).
    """
    data = bytes(data)
    size = image_size(data)
    version = int.from_bytes(data[4:6], "little")
    if version != FORMAT_VERSION:
        raise ImageFormatError(f"format version {version} not supported, expected "
                               f"{FORMAT_VERSION}", offset=4)
    if data[6] & ~0x03:
        raise ImageFormatError(f"flags {data[6]:#04x} has unknown bits set, expected only 0x01 "
                               "(HIL allowed) and 0x02 (tagged)", offset=6)
    if data[7] != 0:
        raise ImageFormatError(f"reserved byte is {data[7]:#04x}, expected 0", offset=7)
    if size > MAX_IMAGE_SIZE:
        raise ImageFormatError(f"header says {size} bytes, larger than the {MAX_IMAGE_SIZE}-byte "
                               "maximum", offset=8)
    if len(data) != size:
        raise ImageFormatError(f"image is {len(data)} bytes but its header says {size}",
                               offset=min(len(data), size))
    stored = int.from_bytes(data[-CRC_SIZE:], "little")
    computed = image_crc(data)
    if stored != computed:
        raise ImageCrcError(f"CRC-32 mismatch: stored {stored:#010x}, computed {computed:#010x} "
                            f"over bytes 0..{size - CRC_SIZE - 1}", offset=size - CRC_SIZE)
    try:
        parsed = IMAGE.parse(data)
    except cs.ConstructError as exc:
        raise ImageFormatError(f"malformed image body: {exc}", offset=HEADER_SIZE) from exc
    tagged = bool(parsed.signed.value.flags.tagged)
    if key is not None or require_tag:
        if not tagged:
            raise ImageTagError("image carries no HMAC tag and this board requires one",
                                missing=True)
        if key is not None and not hmac.compare_digest(parsed.tag, hmac_tag(key, parsed.signed.data)):
            raise ImageTagError("HMAC tag does not match the board's key", missing=False)
    config = _config_from_parsed(parsed.signed.value)
    validate_config(config, source="image")
    return DecodedImage(config=config, crc32=computed, size=size, tagged=tagged)


def _config_from_parsed(signed: Any) -> BoardConfig:
    body = signed.body
    modules = tuple(ModuleConfig(str(m.name), float(m.volume_m3)) for m in body.modules)

    def module_name(index: int, at: int, what: str) -> str:
        if index >= len(modules):
            raise ImageFormatError(f"{what} refers to module index {index}, but the module table "
                                   f"has {len(modules)} entries", offset=at)
        return modules[index].name

    channels = []
    for c in body.channels:
        if not isinstance(c.kind, str):
            raise ImageFormatError(f"channel {c.id!r} has unknown kind {int(c.kind)}", offset=c.at)
        channels.append(ChannelConfig(
            id=str(c.id), kind=CHANNEL_KIND_NAMES[str(c.kind)],
            module=module_name(c.module, c.at, f"channel {c.id!r}"),
            offset=c.offset, gain=c.gain, temp_coeff=c.temp_coeff,
            valid_min=c.valid_min, valid_max=c.valid_max,
        ))
    valves = []
    for v in body.valves:
        if not isinstance(v.kind, str):
            raise ImageFormatError(f"valve {v.id!r} has unknown kind {int(v.kind)}", offset=v.at)
        valves.append(ValveConfig(
            id=str(v.id), kind=VALVE_KIND_NAMES[str(v.kind)],
            module_a=module_name(v.module_a, v.at, f"valve {v.id!r}"),
            module_b=None if v.module_b == NO_MODULE else module_name(v.module_b, v.at,
                                                                      f"valve {v.id!r}"),
            actuation_timeout_s=float(v.actuation_timeout_s),
        ))
    return BoardConfig(
        board_id=str(body.board_id), generation=int(body.generation),
        sample_rate_hz=int(body.sample_rate_hz), oversampling=int(body.oversampling),
        hil_allowed=bool(signed.flags.hil_allowed),
        modules=modules, channels=tuple(channels), valves=tuple(valves),
        format_version=int(signed.format_version),
    )
