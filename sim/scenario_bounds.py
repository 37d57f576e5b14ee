"""Bounds on every scenario value: physical ranges, the telemetry time range, name rules, counts
that the telemetry packets and the board protocol can carry, and cross-field checks.

:func:`check_bounds` runs on every scenario :func:`hullwatch.sim.scenario.scenario_from_dict`
builds, after the type checks, so a value that parses but makes no physical sense (a discharge
coefficient of 50, a volume of 1e308 m^3, 1e-300 K, a crew of 10^9, a start in 2200) is refused
with a :class:`~hullwatch.sim.errors.ScenarioError` naming the source, the key and the range,
instead of running and giving a meaningless verdict or an empty capture. docs/scenarios.md
("Bounds") lists the same table.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from .errors import ScenarioError

if TYPE_CHECKING:  # scenario.py imports this module
    from .scenario import Scenario

#: CUC coarse time is a u32 of seconds since 1970-01-01: the last second telemetry can stamp.
CUC_MAX_S = 2**32 - 1
#: Longest run, s (a year of mission time).
MAX_DURATION_S = 366 * 86400.0
#: Module names ride in 16-byte event subjects, with their channel ids ("<module>.p16"): 12
#: characters leave room for the suffix. Valve and repress ids are subjects themselves: 16.
MAX_MODULE_NAME = 12
MAX_VALVE_ID = 16
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: Scenario names: 1-128 printable characters (no control characters: they are printed and
#: name capture files).
MAX_SCENARIO_NAME = 128
#: Per-kind channel and valve counts are u8 in the raw-samples and housekeeping packets.
MAX_PER_KIND = 255
MAX_MODULES = 64
MAX_SENSORS_PER_MODULE = 16
#: The layout report carries the layout as JSON behind a u16 length.
MAX_LAYOUT_JSON = 65535
MAX_LEAKS = 64
MAX_SENSOR_FAULTS = 1024
MAX_VALVE_FAULTS = 255
MAX_REPRESS_EVENTS = 10_000
MAX_HATCH_OPS = 10_000
MAX_CREW_LOCATIONS = 10_000

#: (section, field) -> (low, high, unit); ``None`` as section: top level. Bounds are inclusive
#: unless the low bound is 0.0 and marked exclusive by EXCLUSIVE_LOW.
BOUNDS: dict[tuple[str | None, str], tuple[float, float, str]] = {
    (None, "duration_s"): (0.0, MAX_DURATION_S, "s"),
    (None, "seed"): (0, 2**63 - 1, ""),
    ("modules", "volume_m3"): (0.01, 10_000.0, "m^3"),
    ("modules", "pressure_pa"): (0.0, 200_000.0, "Pa"),
    ("modules", "temperature_k"): (150.0, 400.0, "K"),
    ("modules", "amplitude_k"): (0.0, 50.0, "K"),
    ("modules", "sensor_offset_k"): (-50.0, 50.0, "K"),
    ("modules", "pressure_sensors"): (0, MAX_SENSORS_PER_MODULE, ""),
    ("modules", "temperature_sensors"): (0, MAX_SENSORS_PER_MODULE, ""),
    ("connections", "diameter_m"): (0.0, 2.0, "m"),
    ("connections", "cd"): (0.0, 1.0, ""),
    ("connections", "actuation_s"): (0.01, 300.0, "s"),
    ("repress", "tank_pressure_pa"): (0.0, 5.0e7, "Pa"),
    ("repress", "tank_temperature_k"): (150.0, 400.0, "K"),
    ("repress", "diameter_m"): (0.0, 0.1, "m"),
    ("repress", "cd"): (0.0, 1.0, ""),
    ("repress", "actuation_s"): (0.01, 300.0, "s"),
    ("leaks", "diameter_m"): (0.0, 1.0, "m"),
    ("leaks", "cd"): (0.0, 1.0, ""),
    ("leaks", "start_s"): (0.0, MAX_DURATION_S, "s"),
    ("leaks", "duration_s"): (0.0, math.inf, "s"),
    ("sensor_faults", "start_s"): (0.0, MAX_DURATION_S, "s"),
    ("sensor_faults", "duration_s"): (0.0, math.inf, "s"),
    ("sensor_faults", "magnitude"): (-1.0e6, 1.0e6, "unit of the channel"),
    ("valve_faults", "start_s"): (0.0, MAX_DURATION_S, "s"),
    ("hatch_ops", "at_s"): (0.0, MAX_DURATION_S, "s"),
    ("sensors", "pressure_per_module"): (0, MAX_SENSORS_PER_MODULE, ""),
    ("sensors", "temperature_per_module"): (0, MAX_SENSORS_PER_MODULE, ""),
    ("sensors", "pressure_noise_pa"): (0.0, 1000.0, "Pa"),
    ("sensors", "pressure_quantum_pa"): (0.0, 1000.0, "Pa"),
    ("sensors", "pressure_bias_pa"): (0.0, 10_000.0, "Pa"),
    ("sensors", "pressure_tempco_pa_per_k"): (0.0, 1000.0, "Pa/K"),
    ("sensors", "temperature_noise_k"): (0.0, 10.0, "K"),
    ("sensors", "temperature_quantum_k"): (0.0, 10.0, "K"),
    ("sensors", "temperature_bias_k"): (0.0, 10.0, "K"),
    ("sensors", "flow_noise_kg_s"): (0.0, 1.0, "kg/s"),
    ("sensors", "flow_quantum_kg_s"): (0.0, 1.0, "kg/s"),
    ("sensors", "reference_k"): (150.0, 400.0, "K"),
    ("thermal", "orbit_period_s"): (60.0, 1.0e6, "s"),
    ("thermal", "amplitude_k"): (0.0, 50.0, "K"),
    ("thermal", "drift_amplitude_k"): (0.0, 50.0, "K"),
    ("thermal", "drift_period_s"): (60.0, 1.0e8, "s"),
    ("crew", "count"): (0, 100, "persons"),
    ("crew", "o2_kg_per_person_day"): (0.0, 10.0, "kg/day"),
    ("crew", "activity_fraction"): (0.0, 1.0, ""),
    ("crew", "mismatch_kg_per_day"): (0.0, 100.0, "kg/day"),
    ("crew", "mismatch_period_s"): (60.0, 1.0e8, "s"),
}
#: Fields whose low bound excludes the bound itself (a diameter of 0 is no hole).
EXCLUSIVE_LOW = {("modules", "pressure_pa"), ("connections", "diameter_m"), ("connections", "cd"),
                 ("repress", "tank_pressure_pa"), ("repress", "diameter_m"), ("repress", "cd"),
                 ("leaks", "diameter_m"), ("leaks", "cd"), ("leaks", "duration_s"),
                 (None, "duration_s")}
#: Fields where an infinite high bound is meaningful ("for ever").
MAY_BE_INFINITE = {("leaks", "duration_s"), ("sensor_faults", "duration_s")}


def check_bounds(s: "Scenario", source: str) -> None:
    """Raise ScenarioError (``source``, key) for the first value outside the bounds above, a
    name that breaks the name rules, a count the packets cannot carry, or an inconsistent pair."""

    def fail(key: str, message: str) -> ScenarioError:
        return ScenarioError(message, source=source, key=key)

    def bound(section: str | None, name: str, value: Any, key: str) -> None:
        lo, hi, unit = BOUNDS[(section, name)]
        exclusive = (section, name) in EXCLUSIVE_LOW
        ok = (value > lo if exclusive else value >= lo) and value <= hi
        if isinstance(value, float) and not math.isfinite(value):
            ok = ok and (section, name) in MAY_BE_INFINITE and value > 0
        if not ok:
            low = f"> {lo:g}" if exclusive else f">= {lo:g}"
            unit_text = f" {unit}" if unit else ""
            raise fail(key, f"expected a value {low} and <= {hi:g}{unit_text}, got {value!r}")

    def record(section: str, item: Any, key: str) -> None:
        for (sec, name) in BOUNDS:
            if sec == section and getattr(item, name) is not None:  # None: an optional key unset
                bound(section, name, getattr(item, name), f"{key}.{name}")

    if not (0 < len(s.name) <= MAX_SCENARIO_NAME and s.name.isprintable() and s.name.strip()):
        raise fail("name", f"expected 1-{MAX_SCENARIO_NAME} printable characters, got {s.name!r}")
    bound(None, "duration_s", s.duration_s, "duration_s")
    bound(None, "seed", s.seed, "seed")
    if not 0.0 <= s.start_utc <= CUC_MAX_S:
        raise fail("start_utc", "expected a date-time between 1970-01-01T00:00:00Z and "
                   "2106-02-07T06:28:15Z (telemetry time is CUC: 4 bytes of seconds since 1970)")
    if s.start_utc + s.duration_s > CUC_MAX_S:
        raise fail("duration_s", f"the run would end {s.start_utc + s.duration_s - CUC_MAX_S:.0f} s "
                   "after 2106-02-07T06:28:15Z, the last time telemetry (CUC) can stamp")

    for section in ("sensors", "thermal", "crew"):  # first: modules take their defaults from them
        record(section, getattr(s, section), section)
    locations = getattr(s.crew, "locations", ())
    if len(locations) > MAX_CREW_LOCATIONS:
        raise fail("crew.locations", f"at most {MAX_CREW_LOCATIONS} entries, got {len(locations)}")
    for i, loc in enumerate(locations):
        if not (math.isfinite(loc.at_s) and 0.0 <= loc.at_s <= MAX_DURATION_S):
            raise fail(f"crew.locations[{i}].at_s", f"expected a value >= 0 and <= {MAX_DURATION_S:g} s, "
                       f"got {loc.at_s!r}")
    if len(s.modules) > MAX_MODULES:
        raise fail("modules", f"at most {MAX_MODULES} modules, got {len(s.modules)}")
    for i, m in enumerate(s.modules):
        _name(fail, m.name, f"modules[{i}].name", MAX_MODULE_NAME, "module name")
        record("modules", m, f"modules[{i}]")
    for i, c in enumerate(s.connections):
        _name(fail, c.id, f"connections[{i}].id", MAX_VALVE_ID, "valve id")
        record("connections", c, f"connections[{i}]")
    for i, r in enumerate(s.repress):
        _name(fail, r.id, f"repress[{i}].id", MAX_VALVE_ID, "repress valve id")
        record("repress", r, f"repress[{i}]")
        if len(r.events) > MAX_REPRESS_EVENTS:
            raise fail(f"repress[{i}].events", f"at most {MAX_REPRESS_EVENTS} events, got {len(r.events)}")
        for j, (start, duration) in enumerate(r.events):
            if not (math.isfinite(start) and math.isfinite(duration) and start + duration <= MAX_DURATION_S):
                raise fail(f"repress[{i}].events[{j}]", f"expected finite times ending by "
                           f"{MAX_DURATION_S:g} s, got [{start!r}, {duration!r}]")
    for table, limit in (("leaks", MAX_LEAKS), ("sensor_faults", MAX_SENSOR_FAULTS),
                         ("valve_faults", MAX_VALVE_FAULTS), ("hatch_ops", MAX_HATCH_OPS)):
        items = getattr(s, table, ())
        if len(items) > limit:
            raise fail(table, f"at most {limit} entries, got {len(items)}")
        for i, item in enumerate(items):
            record(table, item, f"{table}[{i}]")

    p, t, f = s.channel_ids()
    for kind, ids in (("pressure", p), ("temperature", t), ("flow", f)):
        if len(ids) > MAX_PER_KIND:
            raise fail("modules", f"{len(ids)} {kind} channels; telemetry packets carry at most "
                       f"{MAX_PER_KIND} per kind")
    valves = s.valve_ids()
    if len(valves) > MAX_PER_KIND:
        raise fail("connections", f"{len(valves)} valves (connections and repress); telemetry "
                   f"packets carry at most {MAX_PER_KIND}")
    size = layout_json_bound(s)
    if size > MAX_LAYOUT_JSON:
        raise fail("modules", f"the station's layout needs up to {size} bytes of JSON in the layout "
                   f"report, more than {MAX_LAYOUT_JSON}; use fewer modules or sensors")

    # Cross-field checks.
    for i, m in enumerate(s.modules):
        amplitude = s.thermal.amplitude_k if m.amplitude_k is None else m.amplitude_k
        coldest = m.temperature_k - amplitude - s.thermal.drift_amplitude_k
        if coldest < 150.0:
            raise fail(f"modules[{i}].temperature_k",
                       f"with thermal swings of {amplitude:g} + "
                       f"{s.thermal.drift_amplitude_k:g} K the gas would fall to {coldest:g} K, "
                       "below 150 K")
    for i, r in enumerate(s.repress):
        module = next(m for m in s.modules if m.name == r.module)
        if r.tank_pressure_pa <= module.pressure_pa:
            raise fail(f"repress[{i}].tank_pressure_pa",
                       f"expected a tank pressure above the module's {module.pressure_pa:g} Pa "
                       f"(it must push gas in), got {r.tank_pressure_pa:g} Pa")


def _name(fail: Any, value: str, key: str, limit: int, what: str) -> None:
    if not (value.isascii() and NAME_RE.match(value) and len(value) <= limit):
        raise fail(key, f"expected a {what} of 1-{limit} ASCII letters, digits, '-' or '_' "
                   f"starting with a letter or digit (it travels in telemetry), got {value!r}")


def layout_json_bound(s: "Scenario") -> int:
    """An upper bound, in bytes, of the layout report's JSON for this station: fixed text per
    entry (keys, quotes, the longest kind name, two floats of at most 24 characters) plus its
    names."""
    p, t, f = s.channel_ids()
    module_of_flow = {r.id: r.module for r in s.repress}
    size = 120
    size += sum(48 + len(m.name) for m in s.modules)
    for ids in (p, t):
        size += sum(112 + len(cid) + len(cid.rpartition(".")[0]) for cid in ids)
    size += sum(112 + len(cid) + len(module_of_flow[cid[:-5]]) for cid in f)
    size += sum(110 + len(c.id) + len(c.modules[0]) + len(c.modules[1]) for c in s.connections)
    size += sum(110 + len(r.id) + len(r.module) for r in s.repress)
    return size
