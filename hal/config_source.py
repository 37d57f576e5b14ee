"""The TOML source of a board configuration: what a person edits (examples/board.toml).

:func:`load_config` reads a file, :func:`config_from_dict` builds a validated
:class:`~hullwatch.hal.config_model.BoardConfig` from parsed TOML. Every error is a
:class:`~hullwatch.hal.config_model.ConfigSourceError` naming the file, the key and what was
expected (docs/config-image.md, "The TOML source").
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from .config_model import (
    CHANNEL_KIND_NAMES,
    PHYSICAL_BOUNDS,
    VALVE_KIND_NAMES,
    BoardConfig,
    ChannelConfig,
    ConfigSourceError,
    ModuleConfig,
    ValveConfig,
)
from .config_validate import validate_config
from .interfaces import ChannelKind, ValveKind

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
    r.unknown(raw_defaults, set(CHANNEL_KIND_NAMES), "defaults")
    for kind_name, table in raw_defaults.items():
        kind = CHANNEL_KIND_NAMES[kind_name]
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
        if kind_name not in VALVE_KIND_NAMES:
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
            id=vid, kind=VALVE_KIND_NAMES[kind_name], module_a=ends[0],
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
            if kind_name not in CHANNEL_KIND_NAMES:
                raise r.fail(f"{key}.kind", "expected \"pressure\", \"temperature\" or \"flow\", "
                             f"got {kind_name!r}")
            kind = CHANNEL_KIND_NAMES[kind_name]
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
