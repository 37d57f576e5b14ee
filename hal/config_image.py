"""The board configuration image: its byte layout, its TOML source, and their validation.

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

Calibration of a channel (SI units: Pa, K, kg/s)::

    value = offset + gain * counts + temp_coeff * (T - 295.0 K)

``counts`` are the board's 24-bit unsigned ADC counts (0 .. 16777215); ``T`` is the temperature
of the channel's module in K (the board uses its first temperature channel; temperature channels
themselves have ``temp_coeff`` 0).

Raises :class:`~hullwatch.hal.errors.ConfigImageError` (or a subclass below) for every invalid
image or source; the message names the file, the key or byte offset, and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import re
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import construct as cs

from .errors import ConfigImageError
from .framing import MAX_PAYLOAD
from .interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind

MAGIC = b"HWCI"
FORMAT_VERSION = 1
HEADER_SIZE = 12  #: magic, format version, flags, reserved, body length
CRC_SIZE = 4
TAG_SIZE = 32  #: HMAC-SHA256
MIN_KEY_SIZE = 16  #: bytes; shorter HMAC keys are refused
MAX_KEY_SIZE = 64  #: bytes; a board's superblock holds at most this much key
MAX_IMAGE_SIZE = 64 * 1024  #: no board slot is larger; decode refuses anything bigger

COUNTS_MIN = 0
COUNTS_MAX = (1 << 24) - 1  #: 24-bit ADC (BMP388/MS5611 class sensors deliver 24-bit raw values)
REFERENCE_TEMPERATURE_K = 295.0  #: temp_coeff is per kelvin away from this (cabin gas; docs/architecture.md, "Defaults")

MAX_ID_LENGTH = 63
MAX_TABLE_ENTRIES = 255  #: table counts are u8
NO_MODULE = 0xFF  #: module_b of a repress valve

#: Generations are u32 serial numbers (RFC 1982 arithmetic, :func:`generation_newer`); 0 means
#: "none" and is skipped when the counter wraps from GENERATION_MAX to 1.
GENERATION_MAX = 0xFFFFFFFF
_SERIAL_HALF = 1 << 31

SAMPLE_RATE_RANGE_HZ = (1, 1000)
OVERSAMPLING_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128)
VOLUME_RANGE_M3 = (0.01, 10000.0)
ACTUATION_TIMEOUT_RANGE_S = (0.01, 600.0)
#: Plausible physical bounds of a valid range, per channel kind: (low, high, unit).
PHYSICAL_BOUNDS: dict[ChannelKind, tuple[float, float, str]] = {
    ChannelKind.PRESSURE: (0.0, 500_000.0, "Pa"),
    ChannelKind.TEMPERATURE: (1.0, 1000.0, "K"),
    ChannelKind.FLOW: (-10.0, 10.0, "kg/s"),
}

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_KIND_NAMES = {"pressure": ChannelKind.PRESSURE, "temperature": ChannelKind.TEMPERATURE,
               "flow": ChannelKind.FLOW}
_VALVE_KIND_NAMES = {"hatch": ValveKind.HATCH, "valve": ValveKind.VALVE, "repress": ValveKind.REPRESS}


# --------------------------------------------------------------------------------------------
# Errors


class ConfigSourceError(ConfigImageError):
    """An invalid TOML source or decoded table. ``source`` is the file (or ``image``), ``key``
    the offending key such as ``channels[3].gain``."""

    def __init__(self, message: str, source: str | None = None, key: str | None = None) -> None:
        where = (f"{source}: " if source else "") + (f"{key}: " if key else "")
        super().__init__(where + message)
        self.source = source
        self.key = key


class ImageFormatError(ConfigImageError):
    """Bytes that are not a well-formed image. ``offset`` is the byte offset of the problem."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"at byte offset {offset}: {message}")
        self.offset = offset


class ImageCrcError(ImageFormatError):
    """The image's CRC-32 does not match its bytes."""


class ImageTagError(ConfigImageError):
    """The HMAC tag is missing (``missing`` True) or does not match the key."""

    def __init__(self, message: str, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


# --------------------------------------------------------------------------------------------
# Plain objects


@dataclass(frozen=True, slots=True)
class ModuleConfig:
    """A pressurised module the board's channels and valves refer to."""

    name: str
    volume_m3: float


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One sensor channel with its calibration and valid range (SI units of its kind).

    ``offset`` in the kind's unit, ``gain`` in unit per count, ``temp_coeff`` in unit per K.
    """

    id: str
    kind: ChannelKind
    module: str
    offset: float
    gain: float
    temp_coeff: float
    valid_min: float
    valid_max: float

    def calibrate(self, counts: int, temperature_k: float = REFERENCE_TEMPERATURE_K) -> float:
        """Physical value for raw ADC ``counts`` at sensor temperature ``temperature_k``."""
        return (self.offset + self.gain * counts
                + self.temp_coeff * (temperature_k - REFERENCE_TEMPERATURE_K))

    def counts_for(self, value: float, temperature_k: float = REFERENCE_TEMPERATURE_K) -> int:
        """The ADC counts a sensor reading ``value`` produces: the inverse of :meth:`calibrate`,
        rounded and clamped to the ADC's range (how the emulator turns a stimulated physical
        value into counts)."""
        raw = (value - self.offset
               - self.temp_coeff * (temperature_k - REFERENCE_TEMPERATURE_K)) / self.gain
        if not math.isfinite(raw):
            return COUNTS_MAX if raw > 0 else COUNTS_MIN
        return min(COUNTS_MAX, max(COUNTS_MIN, round(raw)))

    def counts_span(self) -> tuple[float, float]:
        """The physical values the ADC range can express at the reference temperature."""
        a, b = self.calibrate(COUNTS_MIN), self.calibrate(COUNTS_MAX)
        return (a, b) if a <= b else (b, a)

    def effective_range(self) -> tuple[float, float] | None:
        """The valid range intersected with :meth:`counts_span`; None when empty."""
        lo_c, hi_c = self.counts_span()
        lo, hi = max(self.valid_min, lo_c), min(self.valid_max, hi_c)
        return (lo, hi) if lo < hi else None


@dataclass(frozen=True, slots=True)
class ValveConfig:
    """A hatch or valve joining ``module_a`` and ``module_b``, or a repress valve into
    ``module_a`` (``module_b`` None). ``actuation_timeout_s``: how long the board waits for the
    position feedback to follow a command."""

    id: str
    kind: ValveKind
    module_a: str
    module_b: str | None
    actuation_timeout_s: float


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """The content of a configuration image.

    ``generation`` orders images: a board boots the valid slot with the highest generation.
    A source file leaves it 0; ``hullwatch flash`` sets it to the board's generation + 1.
    """

    board_id: str
    generation: int
    sample_rate_hz: int
    oversampling: int
    hil_allowed: bool
    modules: tuple[ModuleConfig, ...]
    channels: tuple[ChannelConfig, ...]
    valves: tuple[ValveConfig, ...]
    format_version: int = FORMAT_VERSION

    def with_generation(self, generation: int) -> "BoardConfig":
        return dataclasses.replace(self, generation=generation)

    def channel(self, channel_id: str) -> ChannelConfig:
        for ch in self.channels:
            if ch.id == channel_id:
                return ch
        raise KeyError(channel_id)

    def layout(self) -> Layout:
        """The hal :class:`Layout` this configuration gives a board: channels by kind in table
        order, valid ranges as configured."""

        def infos(kind: ChannelKind) -> tuple[ChannelInfo, ...]:
            return tuple(ChannelInfo(c.id, c.kind, c.module, c.valid_min, c.valid_max)
                         for c in self.channels if c.kind == kind)

        return Layout(
            modules=tuple(ModuleInfo(m.name, m.volume_m3) for m in self.modules),
            pressure=infos(ChannelKind.PRESSURE),
            temperature=infos(ChannelKind.TEMPERATURE),
            flow=infos(ChannelKind.FLOW),
            valves=tuple(ValveInfo(v.id, v.kind, v.module_a, v.module_b, v.actuation_timeout_s)
                         for v in self.valves),
        )


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An image read back from bytes: its configuration, CRC-32, size and whether it is tagged."""

    config: BoardConfig
    crc32: int
    size: int
    tagged: bool


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
# Encode / decode


def samples_payload_size(channels: int, valves: int) -> int:
    """Bytes of the SAMPLES payload of a board with these counts (docs/protocol.md): it must
    fit MAX_PAYLOAD, which bounds the tables an image may carry."""
    return 11 + 13 * channels + 4 * valves


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
            id=str(c.id), kind=_KIND_NAMES[str(c.kind)],
            module=module_name(c.module, c.at, f"channel {c.id!r}"),
            offset=c.offset, gain=c.gain, temp_coeff=c.temp_coeff,
            valid_min=c.valid_min, valid_max=c.valid_max,
        ))
    valves = []
    for v in body.valves:
        if not isinstance(v.kind, str):
            raise ImageFormatError(f"valve {v.id!r} has unknown kind {int(v.kind)}", offset=v.at)
        valves.append(ValveConfig(
            id=str(v.id), kind=_VALVE_KIND_NAMES[str(v.kind)],
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


# --------------------------------------------------------------------------------------------
# Validation (shared by the TOML loader, the encoder and the board's decoder)


def _check_id(value: str, source: str, key: str, what: str) -> None:
    if not value or len(value) > MAX_ID_LENGTH or not _ID_RE.match(value):
        raise ConfigSourceError(
            f"expected {what}: 1-{MAX_ID_LENGTH} ASCII letters, digits, '_', '-', '.', starting "
            f"with a letter or digit; got {value!r}", source, key)


def _check_range(value: float, lo: float, hi: float, unit: str, source: str, key: str,
                 what: str = "a number") -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigSourceError(f"expected {what} in {unit} between {lo:g} and {hi:g}, got {value!r}",
                                source, key)


def validate_config(config: BoardConfig, source: str = "config") -> None:
    """Check everything the board relies on; raise ConfigSourceError naming the first bad key.

    Ranges and units, duplicate module/channel/valve ids, references to unknown modules or repress
    valves, channel ids that break the naming convention (``<module>.p1``, ``<module>.t1``,
    ``<repress-id>.flow``), and calibrations that leave no value of the ADC range valid.
    """
    _check_id(config.board_id, source, "board_id", "a board id")
    if config.format_version != FORMAT_VERSION:
        raise ConfigSourceError(f"expected {FORMAT_VERSION}, got {config.format_version}", source,
                                "format_version")
    if not 0 <= config.generation <= 0xFFFFFFFF:
        raise ConfigSourceError(f"expected 0 .. 4294967295, got {config.generation}", source,
                                "generation")
    lo, hi = SAMPLE_RATE_RANGE_HZ
    if not lo <= config.sample_rate_hz <= hi:
        raise ConfigSourceError(f"expected an integer rate in Hz between {lo} and {hi}, got "
                                f"{config.sample_rate_hz}", source, "sample_rate_hz")
    if config.oversampling not in OVERSAMPLING_CHOICES:
        raise ConfigSourceError(f"expected one of {', '.join(map(str, OVERSAMPLING_CHOICES))} "
                                f"(samples averaged per output sample), got {config.oversampling}",
                                source, "oversampling")
    for table, entries in (("modules", config.modules), ("channels", config.channels),
                           ("valves", config.valves)):
        if len(entries) > MAX_TABLE_ENTRIES:
            raise ConfigSourceError(f"at most {MAX_TABLE_ENTRIES} entries, got {len(entries)}",
                                    source, table)
    if not config.modules:
        raise ConfigSourceError("expected at least one module", source, "modules")
    samples = samples_payload_size(len(config.channels), len(config.valves))
    if samples > MAX_PAYLOAD:
        # Every channel and valve travels in one SAMPLES frame (docs/protocol.md).
        raise ConfigSourceError(
            f"{len(config.channels)} channels and {len(config.valves)} valves make a SAMPLES "
            f"payload of {samples} bytes (11 + 13 x channels + 4 x valves), more than the "
            f"protocol's {MAX_PAYLOAD}; at most {(MAX_PAYLOAD - 11 - 4 * len(config.valves)) // 13} "
            f"channels with {len(config.valves)} valves", source, "channels")

    modules: dict[str, int] = {}
    for i, m in enumerate(config.modules):
        _check_id(m.name, source, f"modules[{i}].name", "a module name")
        if m.name in modules:
            raise ConfigSourceError(f"duplicate module {m.name!r} (also modules[{modules[m.name]}])",
                                    source, f"modules[{i}].name")
        modules[m.name] = i
        _check_range(m.volume_m3, *VOLUME_RANGE_M3, "m^3", source, f"modules[{i}].volume_m3",
                     "a volume")

    valves: dict[str, int] = {}
    for i, v in enumerate(config.valves):
        key = f"valves[{i}]"
        _check_id(v.id, source, f"{key}.id", "a valve id")
        if v.id in valves:
            raise ConfigSourceError(f"duplicate valve id {v.id!r} (also valves[{valves[v.id]}])",
                                    source, f"{key}.id")
        valves[v.id] = i
        names = [v.module_a] + ([] if v.module_b is None else [v.module_b])
        for name in names:
            if name not in modules:
                raise ConfigSourceError(f"unknown module {name!r}; the modules table has "
                                        f"{', '.join(modules)}", source, f"{key}.modules")
        if v.kind == ValveKind.REPRESS:
            if v.module_b is not None:
                raise ConfigSourceError("a repress valve feeds one module; expected modules = "
                                        f"[\"<module>\"], got two", source, f"{key}.modules")
        else:
            if v.module_b is None:
                raise ConfigSourceError(f"a {v.kind.name.lower()} joins two modules; expected "
                                        "modules = [\"<a>\", \"<b>\"]", source, f"{key}.modules")
            if v.module_a == v.module_b:
                raise ConfigSourceError(f"a {v.kind.name.lower()} joins two different modules, got "
                                        f"{v.module_a!r} twice", source, f"{key}.modules")
        _check_range(v.actuation_timeout_s, *ACTUATION_TIMEOUT_RANGE_S, "s", source,
                     f"{key}.actuation_timeout_s", "a timeout")

    channels: dict[str, int] = {}
    for i, c in enumerate(config.channels):
        key = f"channels[{i}]"
        _check_id(c.id, source, f"{key}.id", "a channel id")
        if c.id in channels:
            raise ConfigSourceError(f"duplicate channel id {c.id!r} (also channels[{channels[c.id]}])",
                                    source, f"{key}.id")
        channels[c.id] = i
        if c.module not in modules:
            raise ConfigSourceError(f"unknown module {c.module!r}; the modules table has "
                                    f"{', '.join(modules)}", source, f"{key}.module")
        _check_channel_name(c, config, valves, source, key)
        lo, hi, unit = PHYSICAL_BOUNDS[c.kind]
        kind = c.kind.name.lower()
        for field in ("offset", "gain", "temp_coeff"):
            value = getattr(c, field)
            if not math.isfinite(value):
                raise ConfigSourceError(f"expected a finite number, got {value!r}", source,
                                        f"{key}.{field}")
        if c.gain == 0:
            raise ConfigSourceError(f"expected a non-zero gain in {unit} per count", source,
                                    f"{key}.gain")
        if c.kind == ChannelKind.TEMPERATURE and c.temp_coeff != 0:
            raise ConfigSourceError("a temperature channel is its own temperature; expected "
                                    f"temp_coeff = 0, got {c.temp_coeff!r}", source,
                                    f"{key}.temp_coeff")
        _check_range(c.valid_min, lo, hi, unit, source, f"{key}.valid_min", f"a {kind}")
        _check_range(c.valid_max, lo, hi, unit, source, f"{key}.valid_max", f"a {kind}")
        if c.valid_min >= c.valid_max:
            raise ConfigSourceError(f"expected valid_max > valid_min ({c.valid_min:g} {unit}), got "
                                    f"{c.valid_max:g} {unit}", source, f"{key}.valid_max")
        if c.effective_range() is None:
            a, b = c.counts_span()
            raise ConfigSourceError(
                f"calibration makes the valid range empty: counts {COUNTS_MIN}..{COUNTS_MAX} map to "
                f"{a:g}..{b:g} {unit} (offset {c.offset:g} {unit}, gain {c.gain:g} {unit}/count) "
                f"but the valid range is {c.valid_min:g}..{c.valid_max:g} {unit}",
                source, f"{key}.gain")


def _check_channel_name(c: ChannelConfig, config: BoardConfig, valves: dict[str, int],
                        source: str, key: str) -> None:
    """Channel ids follow docs/architecture.md: ``<module>.pN``, ``<module>.tN``, ``<repress>.flow``."""
    prefix, _, suffix = c.id.rpartition(".")
    if c.kind == ChannelKind.FLOW:
        if suffix != "flow":
            raise ConfigSourceError(f"a flow channel is named \"<repress-valve-id>.flow\", got "
                                    f"{c.id!r}", source, f"{key}.id")
        index = valves.get(prefix)
        valve = None if index is None else config.valves[index]
        if valve is None or valve.kind != ValveKind.REPRESS:
            raise ConfigSourceError(f"flow channel {c.id!r} names no repress valve {prefix!r} of "
                                    "the valves table", source, f"{key}.id")
        if valve.module_a != c.module:
            raise ConfigSourceError(f"repress valve {prefix!r} feeds {valve.module_a!r}, but the "
                                    f"channel says module {c.module!r}", source, f"{key}.module")
        return
    letter = "p" if c.kind == ChannelKind.PRESSURE else "t"
    if prefix != c.module or not re.fullmatch(letter + r"[1-9][0-9]?", suffix):
        raise ConfigSourceError(
            f"a {c.kind.name.lower()} channel of module {c.module!r} is named "
            f"\"{c.module}.{letter}<N>\" (N = 1..99), got {c.id!r}", source, f"{key}.id")


# --------------------------------------------------------------------------------------------
# TOML source

_TOP_KEYS = {"board_id", "sample_rate_hz", "oversampling", "hil_allowed", "defaults", "modules",
             "channels", "valves"}
_CAL_KEYS = ("offset", "gain", "temp_coeff", "valid_min", "valid_max")
_CHANNEL_KEYS = {"id", "kind", "module", *_CAL_KEYS}
_VALVE_KEYS = {"id", "kind", "modules", "actuation_timeout_s"}


def load_config(path: str | Path) -> BoardConfig:
    """Read and validate a TOML configuration source (see examples/board.toml).

    Raises ConfigSourceError naming the file and the key; FileNotFoundError if it is missing.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigSourceError(f"not UTF-8 text (byte offset {exc.start})", str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigSourceError(f"not valid TOML: {exc}", str(path)) from exc
    return config_from_dict(data, source=str(path))


class _Reader:
    """Typed access to a TOML table that names the key in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ConfigSourceError:
        return ConfigSourceError(message, self.source, key)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        return value

    def array(self, data: Mapping[str, Any], key: str, name: str) -> list[Any]:
        value = data.get(name, [])
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array of tables ([[{name}]]), got "
                            f"{type(value).__name__}")
        return value

    def unknown(self, data: Mapping[str, Any], allowed: set[str], key: str) -> None:
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise self.fail(where, "unknown key; expected one of " + ", ".join(sorted(allowed)))

    def string(self, data: Mapping[str, Any], name: str, key: str) -> str:
        if name not in data:
            raise self.fail(key, "missing; expected a string")
        value = data[name]
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def integer(self, data: Mapping[str, Any], name: str, key: str, unit: str) -> int:
        if name not in data:
            raise self.fail(key, f"missing; expected an integer in {unit}")
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer in {unit}, got {value!r}")
        return value

    def number(self, value: Any, key: str, unit: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number in {unit}, got {value!r}")
        return float(value)

    def boolean(self, data: Mapping[str, Any], name: str, key: str) -> bool:
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value


def _cal_unit(kind: ChannelKind, field: str) -> str:
    unit = PHYSICAL_BOUNDS[kind][2]
    return {"gain": f"{unit} per count", "temp_coeff": f"{unit} per K"}.get(field, unit)


def config_from_dict(data: Mapping[str, Any], source: str = "config") -> BoardConfig:
    """Build and validate a BoardConfig from parsed TOML (the schema is in docs/config-image.md).

    A channel's ``kind`` and ``module`` may be left out: they follow from its id (``zvezda.p1``
    is a pressure channel of ``zvezda``; ``<repress>.flow`` a flow channel of the module the
    repress valve feeds). Calibration and range keys missing from a channel come from
    ``[defaults.<kind>]``. Generation is 0 (``hullwatch flash`` assigns it).
    """
    r = _Reader(source)
    r.table(data, "")
    r.unknown(data, _TOP_KEYS, "")
    board_id = r.string(data, "board_id", "board_id")
    sample_rate = r.integer(data, "sample_rate_hz", "sample_rate_hz", "Hz")
    oversampling = r.integer(data, "oversampling", "oversampling", "samples per output sample")
    hil_allowed = r.boolean(data, "hil_allowed", "hil_allowed")

    defaults: dict[ChannelKind, dict[str, tuple[float, str]]] = {k: {} for k in ChannelKind}
    raw_defaults = r.table(data.get("defaults", {}), "defaults")
    r.unknown(raw_defaults, set(_KIND_NAMES), "defaults")
    for kind_name, table in raw_defaults.items():
        kind = _KIND_NAMES[kind_name]
        table = r.table(table, f"defaults.{kind_name}")
        r.unknown(table, set(_CAL_KEYS), f"defaults.{kind_name}")
        for field, value in table.items():
            key = f"defaults.{kind_name}.{field}"
            defaults[kind][field] = (r.number(value, key, _cal_unit(kind, field)), key)

    modules = []
    for i, m in enumerate(r.array(data, "modules", "modules")):
        key = f"modules[{i}]"
        m = r.table(m, key)
        r.unknown(m, {"name", "volume_m3"}, key)
        name = r.string(m, "name", f"{key}.name")
        if "volume_m3" not in m:
            raise r.fail(f"{key}.volume_m3", "missing; expected a volume in m^3")
        modules.append(ModuleConfig(name, r.number(m["volume_m3"], f"{key}.volume_m3", "m^3")))

    valves = []
    for i, v in enumerate(r.array(data, "valves", "valves")):
        key = f"valves[{i}]"
        v = r.table(v, key)
        r.unknown(v, _VALVE_KEYS, key)
        vid = r.string(v, "id", f"{key}.id")
        kind_name = r.string(v, "kind", f"{key}.kind")
        if kind_name not in _VALVE_KIND_NAMES:
            raise r.fail(f"{key}.kind", "expected \"hatch\", \"valve\" or \"repress\", got "
                         f"{kind_name!r}")
        ends = v.get("modules")
        if not (isinstance(ends, list) and 1 <= len(ends) <= 2
                and all(isinstance(e, str) for e in ends)):
            raise r.fail(f"{key}.modules", "expected [\"<module>\", \"<module>\"] (one module for "
                         f"a repress valve), got {ends!r}")
        if "actuation_timeout_s" not in v:
            raise r.fail(f"{key}.actuation_timeout_s", "missing; expected a timeout in s")
        valves.append(ValveConfig(
            id=vid, kind=_VALVE_KIND_NAMES[kind_name], module_a=ends[0],
            module_b=ends[1] if len(ends) == 2 else None,
            actuation_timeout_s=r.number(v["actuation_timeout_s"], f"{key}.actuation_timeout_s", "s"),
        ))
    repress_module = {v.id: v.module_a for v in valves if v.kind == ValveKind.REPRESS}

    channels = []
    for i, c in enumerate(r.array(data, "channels", "channels")):
        key = f"channels[{i}]"
        c = r.table(c, key)
        r.unknown(c, _CHANNEL_KEYS, key)
        cid = r.string(c, "id", f"{key}.id")
        prefix, _, suffix = cid.rpartition(".")
        implied = (ChannelKind.FLOW if suffix == "flow" else ChannelKind.PRESSURE
                   if suffix[:1] == "p" else ChannelKind.TEMPERATURE if suffix[:1] == "t" else None)
        if "kind" in c:
            kind_name = r.string(c, "kind", f"{key}.kind")
            if kind_name not in _KIND_NAMES:
                raise r.fail(f"{key}.kind", "expected \"pressure\", \"temperature\" or \"flow\", "
                             f"got {kind_name!r}")
            kind = _KIND_NAMES[kind_name]
        elif implied is None:
            raise r.fail(f"{key}.kind", f"missing, and id {cid!r} does not imply it; expected "
                         "\"pressure\", \"temperature\" or \"flow\"")
        else:
            kind = implied
        if "module" in c:
            module = r.string(c, "module", f"{key}.module")
        elif kind == ChannelKind.FLOW:
            if prefix not in repress_module:
                raise r.fail(f"{key}.id", f"flow channel {cid!r} names no repress valve {prefix!r} "
                             "of the valves table")
            module = repress_module[prefix]
        else:
            module = prefix
        cal: dict[str, float] = {}
        for field in _CAL_KEYS:
            unit = _cal_unit(kind, field)
            if field in c:
                cal[field] = r.number(c[field], f"{key}.{field}", unit)
            elif field in defaults[kind]:
                cal[field] = defaults[kind][field][0]
            elif field == "temp_coeff":
                cal[field] = 0.0
            else:
                raise r.fail(f"{key}.{field}", f"missing; expected a number in {unit} here or in "
                             f"[defaults.{kind.name.lower()}]")
        channels.append(ChannelConfig(id=cid, kind=kind, module=module, **cal))

    config = BoardConfig(
        board_id=board_id, generation=0, sample_rate_hz=sample_rate, oversampling=oversampling,
        hil_allowed=hil_allowed, modules=tuple(modules), channels=tuple(channels),
        valves=tuple(valves),
    )
    validate_config(config, source)
    return config


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_to_toml(config: BoardConfig, header: str = "") -> str:
    """Render ``config`` as a TOML source that :func:`config_from_dict` reads back equal (except
    the generation, which a source does not carry). ``header`` becomes leading comment lines."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [
        f"board_id = {_toml_str(config.board_id)}",
        f"sample_rate_hz = {config.sample_rate_hz}",
        f"oversampling = {config.oversampling}",
        f"hil_allowed = {'true' if config.hil_allowed else 'false'}",
    ]
    for m in config.modules:
        lines += ["", "[[modules]]", f"name = {_toml_str(m.name)}", f"volume_m3 = {m.volume_m3!r}"]
    for v in config.valves:
        ends = [v.module_a] + ([] if v.module_b is None else [v.module_b])
        lines += ["", "[[valves]]", f"id = {_toml_str(v.id)}", f"kind = \"{v.kind.name.lower()}\"",
                  "modules = [" + ", ".join(map(_toml_str, ends)) + "]",
                  f"actuation_timeout_s = {v.actuation_timeout_s!r}"]
    for c in config.channels:
        unit = PHYSICAL_BOUNDS[c.kind][2]
        lines += ["", "[[channels]]", f"id = {_toml_str(c.id)}", f"kind = \"{c.kind.name.lower()}\"",
                  f"module = {_toml_str(c.module)}",
                  f"offset = {c.offset!r}  # {unit}",
                  f"gain = {c.gain!r}  # {unit} per count",
                  f"temp_coeff = {c.temp_coeff!r}  # {unit} per K from {REFERENCE_TEMPERATURE_K:g} K",
                  f"valid_min = {c.valid_min!r}  # {unit}",
                  f"valid_max = {c.valid_max!r}  # {unit}"]
    return "\n".join(lines) + "\n"


def summary_lines(config: BoardConfig, header: bool = True) -> list[str]:
    """Human-readable description of a configuration (used by ``flash --dry-run`` and
    ``board-info``): header fields (unless ``header`` is False), then the module, channel and
    valve tables."""
    out = [
        f"board id:        {config.board_id}",
        f"format version:  {config.format_version}",
        f"generation:      {config.generation}",
        f"sample rate:     {config.sample_rate_hz} Hz, oversampling x{config.oversampling}",
        f"HIL allowed:     {'yes' if config.hil_allowed else 'no'}",
    ] if header else []
    out += [
        f"modules ({len(config.modules)}):   "
        + ", ".join(f"{m.name} {m.volume_m3:g} m^3" for m in config.modules),
        f"channels ({len(config.channels)}):",
        f"  {'id':<24} {'kind':<11} {'module':<12} {'offset':>10} {'gain':>11} {'tc/K':>8} "
        f"{'valid range':>22}",
    ]
    for c in config.channels:
        unit = PHYSICAL_BOUNDS[c.kind][2]
        out.append(f"  {c.id:<24} {c.kind.name.lower():<11} {c.module:<12} {c.offset:>10.6g} "
                   f"{c.gain:>11.6g} {c.temp_coeff:>8.4g} "
                   f"{f'{c.valid_min:g}..{c.valid_max:g} {unit}':>22}")
    out.append(f"valves ({len(config.valves)}):")
    out.append(f"  {'id':<24} {'kind':<8} {'modules':<28} {'timeout':>8}")
    for v in config.valves:
        ends = v.module_a if v.module_b is None else f"{v.module_a} <-> {v.module_b}"
        out.append(f"  {v.id:<24} {v.kind.name.lower():<8} {ends:<28} {v.actuation_timeout_s:>7g}s")
    return out
