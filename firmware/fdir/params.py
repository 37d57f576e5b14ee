"""The FDIR parameter table: immutable, validated before it is activated (cFS tables are the model).

A table is built from TOML: the built-in ``defaults.toml`` next to this module, overridden key by key
by a user table. Every value is checked (type, range, cross-field rules) before a table object
exists, so the flight loop only ever sees a valid table. Tables are frozen dataclasses: swapping the
active table (at start or by telecommand) is one reference assignment.

Units are SI and named in each key (``_s``, ``_pa``, ``_k``, ``_kg_s``...). docs/fdir.md documents
every key with its unit, default and meaning.

Raises :class:`~hullwatch.firmware.errors.ParameterError` naming the file and the key
(``my.toml: leak.miss_prob: expected a number in (0, 0.5), got 0.7``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..errors import ParameterError
from ..param_bounds import check_table

DEFAULTS_NAME = "defaults.toml"


def _p(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
       hi_open: bool = False, unit: str = "") -> Any:
    """A field with its valid range ``lo..hi`` (open or closed ends) and unit, for validation."""
    return field(metadata={"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "unit": unit})


@dataclass(frozen=True, slots=True)
class ExecutiveParams:
    period_s: float = _p(0.001, 10.0, unit="s")
    housekeeping_period_s: float = _p(0.001, 3600.0, unit="s")
    layout_period_s: float = _p(1.0, 86400.0, unit="s")
    overrun_event_min_interval_s: float = _p(0.0, 86400.0, unit="s")


@dataclass(frozen=True, slots=True)
class SensorParams:
    pressure_min_pa: float = _p(0.0, 1e6, unit="Pa")
    pressure_max_pa: float = _p(0.0, 1e6, lo_open=True, unit="Pa")
    temperature_min_k: float = _p(0.0, 1000.0, unit="K")
    temperature_max_k: float = _p(0.0, 1000.0, lo_open=True, unit="K")
    range_fail_s: float = _p(0.0, 3600.0, unit="s")
    stale_fail_s: float = _p(0.0, 3600.0, lo_open=True, unit="s")
    stuck_fail_s: float = _p(1.0, 86400.0, unit="s")
    stuck_tolerance_pa: float = _p(0.0, 1000.0, unit="Pa")
    disagree_pa: float = _p(0.0, 1e5, lo_open=True, unit="Pa")
    disagree_fail_s: float = _p(0.0, 3600.0, lo_open=True, unit="s")
    bias_learn_s: float = _p(0.0, 3600.0, unit="s")
    bias_max_pa: float = _p(0.0, 1e5, lo_open=True, unit="Pa")
    recover_s: float = _p(0.0, 86400.0, unit="s")
    temperature_rate_max_k_s: float = _p(0.0, 100.0, lo_open=True, unit="K/s")
    temperature_rate_window_s: float = _p(0.2, 60.0, unit="s")
    temperature_stuck_fail_s: float = _p(1.0, 86400.0, unit="s")
    temperature_stuck_tolerance_k: float = _p(0.0, 10.0, unit="K")
    temperature_disagree_k: float = _p(0.0, 50.0, lo_open=True, unit="K")
    temperature_estimate_rate_k_s: float = _p(0.0, 1.0, unit="K/s")


@dataclass(frozen=True, slots=True)
class LeakParams:
    false_alarm_prob: float = _p(0.0, 0.5, lo_open=True, hi_open=True)
    miss_prob: float = _p(0.0, 0.5, lo_open=True, hi_open=True)
    windows_s: tuple[float, ...] = _p(0.2, 86400.0, unit="s")
    noise_tau_s: float = _p(0.1, 86400.0, unit="s")
    noise_min_pa: float = _p(0.0, 1e4, lo_open=True, unit="Pa")
    warmup_s: float = _p(0.0, 3600.0, unit="s")
    link_bridge_s: float = _p(0.0, 60.0, unit="s")
    flow_uncertainty: float = _p(0.0, 1.0)
    known_loss_kg_s: float = _p(0.0, 100.0, unit="kg/s")
    dead_band_pa_s: float = _p(0.0, 1e4, unit="Pa/s")
    transient_mask_s: float = _p(0.0, 3600.0, unit="s")
    rapid_dpdt_pa_s: float = _p(0.0, 1e6, lo_open=True, unit="Pa/s")
    rapid_window_s: float = _p(0.2, 60.0, unit="s")
    clear_s: float = _p(0.0, 86400.0, unit="s")
    split_allowance_kg_s: float = _p(0.0, 100.0, unit="kg/s")


@dataclass(frozen=True, slots=True)
class IsolationParams:
    discharge_coefficient: float = _p(0.0, 1.0, lo_open=True)
    reserve_floor_pa: float = _p(0.0, 1e6, lo_open=True, unit="Pa")
    observe_min_s: float = _p(0.0, 3600.0, unit="s")
    observe_timeout_s: float = _p(0.0, 86400.0, lo_open=True, unit="s")
    healthy_fraction: float = _p(0.0, 1.0, lo_open=True, hi_open=True)
    max_attempts: int = _p(0, 100)


@dataclass(frozen=True, slots=True)
class ValveParams:
    open_threshold: float = _p(0.0, 1.0, hi_open=True)
    feedback_tolerance: float = _p(0.0, 1.0, lo_open=True, hi_open=True)
    timeout_margin_s: float = _p(0.0, 3600.0, unit="s")
    split_pa: float = _p(0.0, 1e5, unit="Pa")


@dataclass(frozen=True, slots=True)
class PhysicsParams:
    gas_constant_j_kg_k: float = _p(1.0, 1e5, unit="J/(kg K)")
    gamma: float = _p(1.0, 2.0, lo_open=True)
    reference_temperature_k: float = _p(1.0, 1000.0, unit="K")


@dataclass(frozen=True, slots=True)
class SlowLeakParams:
    """The long-horizon (slow) leak detector and its location schedule (fdir/slowleak.py,
    fdir/locate.py)."""

    detect: int = _p(0, 1)
    decimation_s: float = _p(1.0, 3600.0, unit="s")
    windows_s: tuple[float, ...] = _p(1.0, 7 * 86400.0, unit="s")
    floor_kg_s: float = _p(0.0, 1.0, unit="kg/s")
    swing_kg_s: float = _p(0.0, 1.0, unit="kg/s")
    excursion_kg: float = _p(0.0, 1000.0, unit="kg")
    generator_module: str = _p()
    branch_crew_kg_s: float = _p(0.0, 1.0, unit="kg/s")
    branch_excursion_pa: float = _p(0.0, 1e4, unit="Pa")
    noise_min_pa: float = _p(0.0, 1e4, lo_open=True, unit="Pa")
    clear_s: float = _p(0.0, 7 * 86400.0, unit="s")
    locate: int = _p(0, 2)
    watch_min_s: float = _p(0.0, 86400.0, unit="s")
    watch_max_s: float = _p(0.0, 7 * 86400.0, lo_open=True, unit="s")
    act_timeout_s: float = _p(0.0, 7 * 86400.0, lo_open=True, unit="s")


@dataclass(frozen=True, slots=True)
class EstimateParams:
    """Estimates after sealing (fdir/estimate.py)."""

    period_s: float = _p(0.1, 3600.0, unit="s")
    hole_target: float = _p(0.0, 1.0, lo_open=True)
    reserve_target: float = _p(0.0, 1.0, lo_open=True)
    confidence_z: float = _p(0.0, 10.0, lo_open=True)
    min_s: float = _p(0.0, 86400.0, unit="s")
    max_s: float = _p(0.0, 7 * 86400.0, lo_open=True, unit="s")


@dataclass(frozen=True, slots=True)
class FdirParams:
    """The whole FDIR table. ``source`` names where it came from (for events and messages)."""

    executive: ExecutiveParams
    sensors: SensorParams
    leak: LeakParams
    isolation: IsolationParams
    valves: ValveParams
    physics: PhysicsParams
    slowleak: SlowLeakParams
    estimate: EstimateParams
    source: str = "defaults"


_SECTIONS: dict[str, type] = {
    "executive": ExecutiveParams,
    "sensors": SensorParams,
    "leak": LeakParams,
    "isolation": IsolationParams,
    "valves": ValveParams,
    "physics": PhysicsParams,
    "slowleak": SlowLeakParams,
    "estimate": EstimateParams,
}


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["lo"], meta["hi"]
    if lo is None and hi is None:
        return "any"
    left = "(" if meta["lo_open"] else "["
    right = ")" if meta["hi_open"] else "]"
    unit = f" {meta['unit']}" if meta["unit"] else ""
    return f"{left}{lo:g}, {hi:g}{right}{unit}"


def _check_number(value: Any, meta: Mapping[str, Any], want_int: bool, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if want_int else "a number"
        raise ParameterError(f"expected {kind} in {_range_text(meta)}, got {value!r}", source, key)
    if want_int and not isinstance(value, int):
        raise ParameterError(f"expected an integer in {_range_text(meta)}, got {value!r}", source, key)
    if not math.isfinite(value):
        raise ParameterError(f"expected a finite number in {_range_text(meta)}, got {value!r}", source, key)
    lo, hi = meta["lo"], meta["hi"]
    bad = (lo is not None and (value < lo or (meta["lo_open"] and value == lo))) or (
        hi is not None and (value > hi or (meta["hi_open"] and value == hi))
    )
    if bad:
        raise ParameterError(f"expected a number in {_range_text(meta)}, got {value!r}", source, key)
    return int(value) if want_int else float(value)


def _build_section(cls: type, data: Mapping[str, Any], source: str, section: str) -> Any:
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(cls)}
    for name in data:
        if name not in known:
            raise ParameterError(
                f"unknown key; expected one of {', '.join(sorted(known))}", source, f"{section}.{name}"
            )
    for name, f in known.items():
        key = f"{section}.{name}"
        if name not in data:
            raise ParameterError("missing key", source, key)
        value = data[name]
        meta = f.metadata
        if f.type in ("tuple[float, ...]",):
            if not isinstance(value, list) or not value:
                raise ParameterError(f"expected a non-empty list of numbers, got {value!r}", source, key)
            items = tuple(_check_number(v, meta, False, source, f"{key}[{i}]") for i, v in enumerate(value))
            if any(b <= a for a, b in zip(items, items[1:])):
                raise ParameterError(f"expected strictly increasing values, got {list(items)}", source, key)
            values[name] = items
        elif f.type == "str":
            # A module name (matched against the device layout when FDIR starts).
            if not isinstance(value, str) or len(value) > 16 or not value.isprintable():
                raise ParameterError(f"expected a name of at most 16 printable characters, got {value!r}",
                                     source, key)
            values[name] = value
        else:
            values[name] = _check_number(value, meta, f.type == "int", source, key)
    return cls(**values)


def _merge(base: dict[str, Any], over: Mapping[str, Any], source: str) -> dict[str, Any]:
    out = {k: dict(v) for k, v in base.items()}
    for section, table in over.items():
        if section not in _SECTIONS:
            raise ParameterError(f"unknown section; expected one of {', '.join(_SECTIONS)}", source, section)
        if not isinstance(table, Mapping):
            raise ParameterError(f"expected a table [{section}], got {table!r}", source, section)
        out[section].update(table)
    return out


def _cross_check(p: FdirParams, source: str) -> None:
    s, e, leak = p.sensors, p.executive, p.leak
    if s.pressure_max_pa <= s.pressure_min_pa:
        raise ParameterError(
            f"expected more than sensors.pressure_min_pa ({s.pressure_min_pa:g} Pa), got {s.pressure_max_pa:g}",
            source, "sensors.pressure_max_pa")
    if s.temperature_max_k <= s.temperature_min_k:
        raise ParameterError(
            f"expected more than sensors.temperature_min_k ({s.temperature_min_k:g} K), got {s.temperature_max_k:g}",
            source, "sensors.temperature_max_k")
    ratio = e.housekeeping_period_s / e.period_s
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise ParameterError(
            f"expected a whole multiple of executive.period_s ({e.period_s:g} s), got {e.housekeeping_period_s:g}",
            source, "executive.housekeeping_period_s")
    if leak.windows_s[0] < 2 * e.period_s:
        raise ParameterError(
            f"expected windows of at least 2 cycles ({2 * e.period_s:g} s), got {leak.windows_s[0]:g}",
            source, "leak.windows_s[0]")
    if leak.rapid_window_s < 2 * e.period_s:
        raise ParameterError(
            f"expected at least 2 cycles ({2 * e.period_s:g} s), got {leak.rapid_window_s:g}",
            source, "leak.rapid_window_s")
    if s.temperature_rate_window_s < 2 * e.period_s:
        raise ParameterError(
            f"expected at least 2 cycles ({2 * e.period_s:g} s), got {s.temperature_rate_window_s:g}",
            source, "sensors.temperature_rate_window_s")
    _cross_check_slow(p, source)
    if p.valves.open_threshold >= 1.0 - p.valves.feedback_tolerance:
        raise ParameterError(
            "expected open_threshold below 1 - feedback_tolerance, so a fully open valve reads open",
            source, "valves.open_threshold")


def _cross_check_slow(p: FdirParams, source: str) -> None:
    sl, e = p.slowleak, p.executive
    ratio = sl.decimation_s / e.period_s
    if abs(ratio - round(ratio)) > 1e-6 * ratio:
        raise ParameterError(
            f"expected a whole multiple of executive.period_s ({e.period_s:g} s), got {sl.decimation_s:g}",
            source, "slowleak.decimation_s")
    if sl.windows_s[0] < 4 * sl.decimation_s:
        raise ParameterError(
            f"expected windows of at least 4 decimated samples ({4 * sl.decimation_s:g} s), got "
            f"{sl.windows_s[0]:g}", source, "slowleak.windows_s[0]")
    if sl.watch_max_s < sl.watch_min_s:
        raise ParameterError(f"expected at least slowleak.watch_min_s ({sl.watch_min_s:g} s), got "
                             f"{sl.watch_max_s:g}", source, "slowleak.watch_max_s")
    if p.estimate.max_s < p.estimate.min_s:
        raise ParameterError(f"expected at least estimate.min_s ({p.estimate.min_s:g} s), got "
                             f"{p.estimate.max_s:g}", source, "estimate.max_s")


def params_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> FdirParams:
    """Build a validated table from ``data`` (a parsed TOML document) laid over the defaults.

    ``data`` may hold any subset of keys. Raises ParameterError naming ``source`` and the key.
    """
    merged = _merge(_default_dict(), data, source)
    sections = {name: _build_section(cls, merged[name], source, name) for name, cls in _SECTIONS.items()}
    params = FdirParams(**sections, source=source)
    _cross_check(params, source)
    check_table(params, source)  # cost and consistency of the whole table (firmware/param_bounds.py)
    return params


def load_params(path: str | Path) -> FdirParams:
    """Load a user parameter table (TOML) laid over the defaults.

    Raises:
        ParameterError: the file is not valid TOML (with line and column) or a key is invalid.
        FileNotFoundError / PermissionError: the file cannot be read (the CLI reports these).
    """
    path = Path(path)
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"not valid TOML: {exc}", str(path)) from exc
    return params_from_dict(data, str(path))


def _default_dict() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(DEFAULTS_NAME).read_text(encoding="utf-8")
    return tomllib.loads(text)


def default_params() -> FdirParams:
    """The built-in table (``defaults.toml``), validated."""
    return params_from_dict({}, "defaults")


def describe(params: FdirParams) -> dict[str, dict[str, Any]]:
    """The table as plain nested dicts (for telemetry, docs checks and reports)."""
    out: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        section = getattr(params, name)
        out[name] = {f.name: getattr(section, f.name) for f in fields(section)}
    return out


def units() -> dict[str, str]:
    """``section.key`` -> unit (empty when dimensionless), for every key of the table."""
    return {f"{name}.{f.name}": f.metadata["unit"] for name, cls in _SECTIONS.items() for f in fields(cls)}
