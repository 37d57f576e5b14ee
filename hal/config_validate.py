"""The rules of a board configuration, shared by the TOML loader, the image encoder, the board's
decoder and the host's check of what a board describes (docs/config-image.md, "Checked").

:func:`validate_config` raises :class:`~hullwatch.hal.config_model.ConfigSourceError` naming the
first bad key (``channels[3].gain``) and what was expected.
"""

from __future__ import annotations

import math
import re

from .config_model import (
    ACTUATION_TIMEOUT_RANGE_S,
    COUNTS_MAX,
    COUNTS_MIN,
    FORMAT_VERSION,
    MAX_ID_LENGTH,
    MAX_TABLE_ENTRIES,
    OVERSAMPLING_CHOICES,
    PHYSICAL_BOUNDS,
    SAMPLE_RATE_RANGE_HZ,
    VOLUME_RANGE_M3,
    BoardConfig,
    ChannelConfig,
    ConfigSourceError,
)
from .framing import MAX_PAYLOAD
from .interfaces import ChannelKind, ValveKind

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def samples_payload_size(channels: int, valves: int) -> int:
    """Bytes of the SAMPLES payload of a board with these counts (docs/protocol.md): it must
    fit MAX_PAYLOAD, which bounds the tables an image may carry."""
    return 11 + 13 * channels + 4 * valves


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
