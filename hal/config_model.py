"""The board configuration's plain objects: the module, channel and valve tables, their units
and limits, and the exceptions of the configuration layer.

What an image carries (:mod:`hullwatch.hal.config_image` is its byte form,
:mod:`hullwatch.hal.config_source` its TOML source, :mod:`hullwatch.hal.config_validate` the rules
both are held to). docs/config-image.md is the reference.

Calibration of a channel (SI units: Pa, K, kg/s)::

    value = offset + gain * counts + temp_coeff * (T - 295.0 K)

``counts`` are the board's 24-bit unsigned ADC counts (0 .. 16777215); ``T`` is the temperature
of the channel's module in K (the board uses its first temperature channel; temperature channels
themselves have ``temp_coeff`` 0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigImageError
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
_COUNTS_MIN_F, _COUNTS_MAX_F = float(COUNTS_MIN), float(COUNTS_MAX)
REFERENCE_TEMPERATURE_K = 295.0  #: temp_coeff is per kelvin away from this (cabin gas; docs/architecture.md, "Defaults")

MAX_ID_LENGTH = 63
MAX_TABLE_ENTRIES = 255  #: table counts are u8
NO_MODULE = 0xFF  #: module_b of a repress valve

#: Generations are u32 serial numbers (RFC 1982 arithmetic,
#: :func:`~hullwatch.hal.config_image.generation_newer`); 0 means
#: "none" and is skipped when the counter wraps from GENERATION_MAX to 1.
GENERATION_MAX = 0xFFFFFFFF

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

#: Kind names of the TOML source and the image declaration -> the hal enumerations.
CHANNEL_KIND_NAMES = {"pressure": ChannelKind.PRESSURE, "temperature": ChannelKind.TEMPERATURE,
                      "flow": ChannelKind.FLOW}
VALVE_KIND_NAMES = {"hatch": ValveKind.HATCH, "valve": ValveKind.VALVE, "repress": ValveKind.REPRESS}


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


def adc_counts(values: Sequence[float], offsets: Sequence[float], gains: Sequence[float],
               drifts: Sequence[float] | None = None) -> list[int]:
    """The ADC counts of sensors reading ``values``: the inverse calibration
    ``(value - offset - drift) / gain``, rounded and clamped to COUNTS_MIN .. COUNTS_MAX (+inf
    reads COUNTS_MAX, -inf and NaN COUNTS_MIN). Columns, one entry per channel in the same order;
    ``drifts`` are the channels' :meth:`ChannelConfig.drift` at their sensor temperature (None:
    no temperature term). The one implementation of the conversion:
    :meth:`ChannelConfig.counts_for` is its one-channel form, the board emulator converts a whole
    cycle with one call."""
    # Float bounds: a float-to-float comparison is cheaper than float-to-int (same results:
    # both bounds are exact floats).
    if drifts is None:
        return [round(r) if _COUNTS_MIN_F < (r := (x - o) / g) < _COUNTS_MAX_F
                else (COUNTS_MAX if r >= _COUNTS_MAX_F else COUNTS_MIN)
                for x, o, g in zip(values, offsets, gains)]
    return [round(r) if _COUNTS_MIN_F < (r := (x - o - d) / g) < _COUNTS_MAX_F
            else (COUNTS_MAX if r >= _COUNTS_MAX_F else COUNTS_MIN)
            for x, o, g, d in zip(values, offsets, gains, drifts)]


def calibrated_values(counts: Sequence[int], offsets: Sequence[float], gains: Sequence[float],
                      drifts: Sequence[float] | None = None) -> list[float]:
    """The calibration ``offset + gain * counts + drift`` of each channel (columns as in
    :func:`adc_counts`, ``drifts`` None: no temperature term; :meth:`ChannelConfig.calibrate`
    is its one-channel form)."""
    if drifts is None:
        return [o + g * c for c, o, g in zip(counts, offsets, gains)]
    return [o + g * c + d for c, o, g, d in zip(counts, offsets, gains, drifts)]


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

    def drift(self, temperature_k: float) -> float:
        """The temperature term of the calibration at sensor temperature ``temperature_k`` (K),
        in the kind's unit."""
        return self.temp_coeff * (temperature_k - REFERENCE_TEMPERATURE_K)

    def calibrate(self, counts: int, temperature_k: float = REFERENCE_TEMPERATURE_K) -> float:
        """Physical value for raw ADC ``counts`` at sensor temperature ``temperature_k``."""
        return calibrated_values([counts], [self.offset], [self.gain], [self.drift(temperature_k)])[0]

    def counts_for(self, value: float, temperature_k: float = REFERENCE_TEMPERATURE_K) -> int:
        """The ADC counts a sensor reading ``value`` produces: the inverse of :meth:`calibrate`,
        rounded and clamped to the ADC's range (how the emulator turns a stimulated physical
        value into counts; NaN reads COUNTS_MIN)."""
        return adc_counts([value], [self.offset], [self.gain], [self.drift(temperature_k)])[0]

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

