"""Scenarios: a station, its disturbances and faults, as a validated, immutable description.

A scenario is a TOML file (or a dict with the same keys) naming the station topology (modules,
hatches and valves, repress supplies), the sensors per module, the leaks, the sensor and valve
faults, the thermal and crew disturbances, the start time, the duration and the seed. Every key,
its unit and its default is listed in ``docs/scenarios.md``; the tables in this module are the
single source of those defaults (a test checks the page against them).

Public API (pinned in docs/architecture.md)::

    load_scenario(name_or_path) -> Scenario        # a preset name or a TOML file
    scenario_from_dict(data, source) -> Scenario   # campaigns build scenarios from dicts
    preset_names() -> list[str]
    preset_description(name) -> str
    preset_dict(name) -> dict                      # a fresh, mutable copy of a preset

Raises :class:`~hullwatch.sim.errors.ScenarioError` naming the file, the key path (for example
``leaks[0].diameter_m``) and what was expected. Unknown keys are errors too: a misspelt key
would otherwise silently fall back to its default.

The scenario dataclasses live in :mod:`.scenario_model` and the value checker in
:mod:`.scenario_check`; both are re-exported here.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ScenarioError
from .scenario_bounds import MAX_MODULES, MAX_SENSORS_PER_MODULE, check_bounds
from .scenario_check import INF, REQUIRED, Field, _Checker, _describe
from .scenario_model import (
    ConnectionSpec,
    CrewLocationSpec,
    CrewSpec,
    HatchOpSpec,
    LeakSpec,
    ModuleSpec,
    RepressSpec,
    Scenario,
    SensorFaultSpec,
    SensorSpec,
    ThermalSpec,
    ValveFaultSpec,
)

__all__ = [
    "INF", "REQUIRED", "Field", "Scenario", "ModuleSpec", "ConnectionSpec", "RepressSpec", "LeakSpec",
    "SensorFaultSpec", "ValveFaultSpec", "HatchOpSpec", "CrewLocationSpec", "SensorSpec",
    "ThermalSpec", "CrewSpec", "scenario_from_dict", "load_scenario", "preset_names",
    "preset_text", "preset_dict", "preset_description", "all_fields", "SECTIONS",
]

SENSOR_FAULT_KINDS = ("bias", "drift", "stuck", "noise", "spike", "dropout")
VALVE_FAULT_KINDS = ("stuck_open", "stuck_closed", "feedback_mismatch")
CONNECTION_KINDS = ("hatch", "valve")

#: Per-kind defaults of a connection's diameter (m) and actuation time (s) when not given.
CONNECTION_DEFAULTS = {"hatch": (0.8, 5.0), "valve": (0.05, 2.0)}


# --------------------------------------------------------------------------------------------
# Field tables: key, kind, default, unit, description (see scenario_check.Field).

TOP_FIELDS: tuple[Field, ...] = (
    Field("name", "str", REQUIRED, "", "scenario name (shown by `hullwatch scenarios`)"),
    Field("description", "str", "", "", "one line saying what the scenario exercises"),
    Field("start_utc", "utc", REQUIRED, "UTC", "mission time 0 as a UTC date-time, e.g. "
          "2018-08-29T20:00:00Z (telemetry time stamps count from it)"),
    Field("duration_s", "float", REQUIRED, "s", "how long a run lasts", "pos"),
    Field("seed", "int", 0, "", "seed of every random stream (sensor noise, unit biases, thermal "
          "phases); `sim://...?seed=N` overrides it", "nonneg"),
)

MODULE_FIELDS: tuple[Field, ...] = (
    Field("name", "str", REQUIRED, "", "module name, unique; channel ids start with it"),
    Field("volume_m3", "float", REQUIRED, "m^3", "free (gas) volume", "pos"),
    Field("pressure_pa", "float", 101325.0, "Pa", "initial total pressure", "pos"),
    Field("temperature_k", "float", 295.0, "K", "mean gas temperature (the thermal cycle swings "
          "around it)", "pos"),
    Field("pressure_sensors", "int", None, "", "pressure sensors in this module "
          "(default: sensors.pressure_per_module)", "nonneg"),
    Field("temperature_sensors", "int", None, "", "temperature sensors in this module "
          "(default: sensors.temperature_per_module)", "nonneg"),
    Field("sensor_offset_k", "float", 0.0, "K", "stratification: this module's temperature "
          "sensors read the mean gas temperature plus this (they sit where the air is warmer, "
          "> 0, or cooler, < 0, than the module's mean)"),
    Field("amplitude_k", "float", None, "K", "largest orbital swing of this module's gas "
          "temperature, replacing thermal.amplitude_k for it (70-100 % of it is drawn as there; "
          "default: thermal.amplitude_k)", "nonneg"),
)

CONNECTION_FIELDS: tuple[Field, ...] = (
    Field("id", "str", REQUIRED, "", "valve id as the flight software sees it, unique"),
    Field("kind", "str", "hatch", "", "`hatch` or `valve`", CONNECTION_KINDS),
    Field("modules", "pair", REQUIRED, "", "the two modules it joins, `[a, b]`"),
    Field("diameter_m", "float", None, "m", "flow diameter when fully open (default: hatch 0.8, "
          "valve 0.05)", "pos"),
    Field("cd", "float", 0.7, "", "discharge coefficient", "pos"),
    Field("actuation_s", "float", None, "s", "time to travel fully open <-> closed (default: "
          "hatch 5, valve 2)", "pos"),
    Field("open", "bool", True, "", "initial (and initially commanded) state"),
)

REPRESS_FIELDS: tuple[Field, ...] = (
    Field("id", "str", REQUIRED, "", "repress valve id, unique among valves; its flow meter is "
          "`<id>.flow`"),
    Field("module", "str", REQUIRED, "", "module the gas flows into"),
    Field("tank_pressure_pa", "float", 2.0e6, "Pa", "supply tank pressure (held constant)", "pos"),
    Field("tank_temperature_k", "float", 295.0, "K", "supply gas temperature", "pos"),
    Field("diameter_m", "float", 0.001, "m", "flow-limiting orifice diameter", "pos"),
    Field("cd", "float", 0.7, "", "discharge coefficient of the orifice", "pos"),
    Field("actuation_s", "float", 1.0, "s", "valve travel time", "pos"),
    Field("events", "events", (), "s", "scheduled repressurisations `[[start_s, duration_s], ...]`: "
          "the valve is commanded open at start_s and closed duration_s later"),
)

LEAK_FIELDS: tuple[Field, ...] = (
    Field("module", "str", REQUIRED, "", "module with the hole"),
    Field("diameter_m", "float", REQUIRED, "m", "hole diameter", "pos"),
    Field("cd", "float", 0.7, "", "discharge coefficient (about 0.6-0.8 for a clean hole; less "
          "for a partly covered one)", "pos"),
    Field("start_s", "float", 0.0, "s", "mission time the hole opens", "nonneg"),
    Field("duration_s", "float", INF, "s", "how long it stays open (default: for ever)", "pos"),
)

HATCH_OP_FIELDS: tuple[Field, ...] = (
    Field("valve", "str", REQUIRED, "", "connection id (a hatch or valve between two modules; "
          "not a repress valve)"),
    Field("at_s", "float", REQUIRED, "s", "mission time the crew starts moving it", "nonneg"),
    Field("open", "bool", REQUIRED, "", "true: the crew opens it; false: the crew closes it"),
)

SENSOR_FAULT_FIELDS: tuple[Field, ...] = (
    Field("sensor", "str", REQUIRED, "", "channel id, e.g. `soyuz-om.p2`, `zvezda.t1`, "
          "`progress-air.flow`"),
    Field("kind", "str", REQUIRED, "", "`bias` (step of `magnitude`), `drift` (`magnitude` per "
          "second since start_s), `stuck` (holds the value it read at start_s), `noise` (extra "
          "noise of RMS `magnitude`), `spike` (adds `magnitude` to one sample, or to every sample "
          "for duration_s if given), `dropout` (no new samples: STALE, or NO_DATA if the channel "
          "never produced one)", SENSOR_FAULT_KINDS),
    Field("start_s", "float", 0.0, "s", "mission time the fault begins", "nonneg"),
    Field("duration_s", "float", None, "s", "how long it lasts (default: for ever; one sample "
          "for a spike)", "pos"),
    Field("magnitude", "float", 0.0, "Pa, K or kg/s (per s for drift)", "size of the fault in "
          "the channel's unit"),
)

VALVE_FAULT_FIELDS: tuple[Field, ...] = (
    Field("valve", "str", REQUIRED, "", "connection or repress id"),
    Field("kind", "str", REQUIRED, "", "`stuck_open` (travels open and ignores commands), "
          "`stuck_closed` (travels closed and ignores commands), `feedback_mismatch` (moves as "
          "commanded but its position feedback freezes at start_s)", VALVE_FAULT_KINDS),
    Field("start_s", "float", 0.0, "s", "mission time the fault begins", "nonneg"),
)

SENSOR_FIELDS: tuple[Field, ...] = (
    Field("pressure_per_module", "int", 3, "", "pressure sensors per module (`<module>.p1`..)",
          "nonneg"),
    Field("temperature_per_module", "int", 2, "", "temperature sensors per module "
          "(`<module>.t1`..)", "nonneg"),
    Field("pressure_noise_pa", "float", 2.0, "Pa", "white noise RMS (BMP388/MS5611 class: "
          "1.2-3)", "nonneg"),
    Field("pressure_quantum_pa", "float", 0.25, "Pa", "output resolution (0: none)", "nonneg"),
    Field("pressure_bias_pa", "float", 50.0, "Pa", "unit bias, drawn per sensor uniformly in "
          "+-this", "nonneg"),
    Field("pressure_tempco_pa_per_k", "float", 0.75, "Pa/K", "offset drift with temperature, "
          "drawn per sensor uniformly in +-this", "nonneg"),
    Field("temperature_noise_k", "float", 0.01, "K", "white noise RMS", "nonneg"),
    Field("temperature_quantum_k", "float", 0.002, "K", "output resolution (0: none)", "nonneg"),
    Field("temperature_bias_k", "float", 0.05, "K", "unit bias, drawn per sensor uniformly in "
          "+-this", "nonneg"),
    Field("flow_noise_kg_s", "float", 2.0e-5, "kg/s", "repress flow meter noise RMS", "nonneg"),
    Field("flow_quantum_kg_s", "float", 1.0e-6, "kg/s", "flow meter resolution (0: none)",
          "nonneg"),
    Field("reference_k", "float", 295.0, "K", "temperature at which pressure sensors read "
          "without temperature offset", "pos"),
)

THERMAL_FIELDS: tuple[Field, ...] = (
    Field("orbit_period_s", "float", 5400.0, "s", "period of the orbital (day/night) cycle",
          "pos"),
    Field("amplitude_k", "float", 0.5, "K", "largest orbital swing of a module's gas "
          "temperature (each module draws 70-100 % of it and its own phase lag)", "nonneg"),
    Field("drift_amplitude_k", "float", 0.4, "K", "largest slow drift (a sine of "
          "drift_period_s with a random phase per module)", "nonneg"),
    Field("drift_period_s", "float", 86400.0, "s", "period of the slow drift", "pos"),
)

CREW_LOCATION_FIELDS: tuple[Field, ...] = (
    Field("at_s", "float", REQUIRED, "s", "mission time from which the crew is in `modules` "
          "(strictly later than the previous location's)", "nonneg"),
    Field("modules", "names", REQUIRED, "", "modules where the crew uses oxygen from at_s on, "
          "shared equally (at least one; no repeats)"),
)

CREW_FIELDS: tuple[Field, ...] = (
    Field("count", "int", 0, "", "crew members on board (0: no oxygen use or generation)",
          "nonneg"),
    Field("o2_kg_per_person_day", "float", 0.84, "kg/day", "mean oxygen use per person", "nonneg"),
    Field("modules", "names", (), "", "modules where the crew uses oxygen, shared equally, "
          "until the first of `locations` (required when count > 0, unless a location starts "
          "at 0)"),
    Field("generator_module", "str", "", "", "module of the oxygen generator, which adds the "
          "mean use plus the mismatch (required when count > 0)"),
    Field("activity_fraction", "float", 0.1, "", "use swings by +-this fraction over a day "
          "(work vs sleep)", "frac"),
    Field("mismatch_kg_per_day", "float", 0.3, "kg/day", "amplitude of the slowly varying "
          "generation-minus-use mismatch", "nonneg"),
    Field("mismatch_period_s", "float", 21600.0, "s", "period of that mismatch", "pos"),
    Field("locations", "tables", (), "", "where the crew is over mission time: a list of "
          "`[[crew.locations]]` tables (below); before the first one, `modules`",
          fields=CREW_LOCATION_FIELDS),
)

#: section key -> (fields, is a list of tables)
SECTIONS: dict[str, tuple[tuple[Field, ...], bool]] = {
    "modules": (MODULE_FIELDS, True),
    "connections": (CONNECTION_FIELDS, True),
    "repress": (REPRESS_FIELDS, True),
    "leaks": (LEAK_FIELDS, True),
    "sensor_faults": (SENSOR_FAULT_FIELDS, True),
    "valve_faults": (VALVE_FAULT_FIELDS, True),
    "hatch_ops": (HATCH_OP_FIELDS, True),
    "sensors": (SENSOR_FIELDS, False),
    "thermal": (THERMAL_FIELDS, False),
    "crew": (CREW_FIELDS, False),
}


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    """Validate ``data`` (the keys of docs/scenarios.md) and build a :class:`Scenario`.

    ``source`` names the origin in error messages (a path, ``preset:NAME``, a campaign case).
    ``start_utc`` may be a timezone-aware ``datetime`` (as tomllib returns) or an ISO 8601 string.

    Raises:
        ScenarioError: naming ``source``, the key path and what was expected.
    """
    ck = _Checker(source)
    top = ck.table(data, TOP_FIELDS, "", extra=tuple(SECTIONS))

    def section(key: str) -> Any:
        fields, is_list = SECTIONS[key]
        raw = data.get(key, [] if is_list else {})
        if not is_list:
            return ck.table(raw, fields, key)
        if not isinstance(raw, (list, tuple)):
            raise ck.fail(key, f"expected a list of tables ([[{key}]]), got {_describe(raw)}")
        return [ck.table(item, fields, f"{key}[{i}]") for i, item in enumerate(raw)]

    sensors = SensorSpec(**section("sensors"))
    thermal = ThermalSpec(**section("thermal"))
    crew_raw = section("crew")
    crew_raw["modules"] = tuple(crew_raw["modules"])
    crew_raw["locations"] = tuple(CrewLocationSpec(**loc) for loc in crew_raw["locations"])
    crew = CrewSpec(**crew_raw)

    modules = []
    names: dict[str, int] = {}
    for i, m in enumerate(section("modules")):
        if m["name"] in names:
            raise ck.fail(f"modules[{i}].name", f"duplicate module name {m['name']!r} "
                          f"(also modules[{names[m['name']]}])")
        if not m["name"] or any(c in m["name"] for c in ". \t"):
            raise ck.fail(f"modules[{i}].name", "expected a non-empty name without dots or spaces, "
                          f"got {m['name']!r}")
        names[m["name"]] = i
        if m["pressure_sensors"] is None:
            m["pressure_sensors"] = sensors.pressure_per_module
        if m["temperature_sensors"] is None:
            m["temperature_sensors"] = sensors.temperature_per_module
        # Counts are bounded here, before channels are made for them (a count of 10**9 would
        # exhaust memory long before check_bounds sees it at the end).
        for kind in ("pressure_sensors", "temperature_sensors"):
            if not 0 <= m[kind] <= MAX_SENSORS_PER_MODULE:
                key = f"modules[{i}].{kind}" if data["modules"][i].get(kind) is not None else \
                    f"sensors.{kind.split('_')[0]}_per_module"
                raise ck.fail(key, f"expected an integer in [0, {MAX_SENSORS_PER_MODULE}], got {m[kind]!r}")
        modules.append(ModuleSpec(**m))
        if len(modules) > MAX_MODULES:
            raise ck.fail("modules", f"expected at most {MAX_MODULES} modules ([[modules]] tables)")
    if not modules:
        raise ck.fail("modules", "expected at least one [[modules]] table")

    def module_ref(name: str, key: str) -> None:
        if name not in names:
            raise ck.fail(key, f"unknown module {name!r}; modules are " + ", ".join(names))

    valve_ids: dict[str, str] = {}

    def new_valve_id(vid: str, key: str) -> None:
        if not vid or any(c in vid for c in ". \t"):
            raise ck.fail(key, f"expected a non-empty id without dots or spaces, got {vid!r}")
        if vid in valve_ids:
            raise ck.fail(key, f"duplicate valve id {vid!r} (also {valve_ids[vid]})")
        valve_ids[vid] = key

    connections = []
    for i, c in enumerate(section("connections")):
        path = f"connections[{i}]"
        new_valve_id(c["id"], f"{path}.id")
        a, b = c["modules"]
        module_ref(a, f"{path}.modules")
        module_ref(b, f"{path}.modules")
        if a == b:
            raise ck.fail(f"{path}.modules", f"expected two different modules, got [{a!r}, {b!r}]")
        diameter, actuation = CONNECTION_DEFAULTS[c["kind"]]
        c["diameter_m"] = diameter if c["diameter_m"] is None else c["diameter_m"]
        c["actuation_s"] = actuation if c["actuation_s"] is None else c["actuation_s"]
        connections.append(ConnectionSpec(**c))

    repress = []
    for i, r in enumerate(section("repress")):
        new_valve_id(r["id"], f"repress[{i}].id")
        module_ref(r["module"], f"repress[{i}].module")
        repress.append(RepressSpec(**r))

    leaks = []
    for i, lk in enumerate(section("leaks")):
        module_ref(lk["module"], f"leaks[{i}].module")
        leaks.append(LeakSpec(**lk))

    p_ids, t_ids, f_ids = _channel_ids(modules, repress)
    channels = set(p_ids) | set(t_ids) | set(f_ids)
    sensor_faults = []
    for i, sf in enumerate(section("sensor_faults")):
        if sf["sensor"] not in channels:
            raise ck.fail(f"sensor_faults[{i}].sensor", f"unknown channel {sf['sensor']!r}; "
                          "expected <module>.pN, <module>.tN or <repress-id>.flow of this station")
        if sf["duration_s"] is None:
            sf["duration_s"] = 0.0 if sf["kind"] == "spike" else INF
        sensor_faults.append(SensorFaultSpec(**sf))

    valve_faults = []
    for i, vf in enumerate(section("valve_faults")):
        if vf["valve"] not in valve_ids:
            raise ck.fail(f"valve_faults[{i}].valve", f"unknown valve {vf['valve']!r}; valves are "
                          + (", ".join(valve_ids) or "(none)"))
        valve_faults.append(ValveFaultSpec(**vf))

    for i, loc in enumerate(crew.locations):
        path = f"crew.locations[{i}]"
        if i and loc.at_s <= crew.locations[i - 1].at_s:
            raise ck.fail(f"{path}.at_s", f"expected a time later than crew.locations[{i - 1}].at_s "
                          f"({crew.locations[i - 1].at_s:g} s), got {loc.at_s:g}")
        if not loc.modules:
            raise ck.fail(f"{path}.modules", "expected at least one module")
        for j, name in enumerate(loc.modules):
            module_ref(name, f"{path}.modules[{j}]")
            if name in loc.modules[:j]:
                raise ck.fail(f"{path}.modules[{j}]", f"module {name!r} listed twice")
    if crew.count > 0:
        at_start = bool(crew.locations) and crew.locations[0].at_s == 0.0
        if not crew.modules and not at_start:
            raise ck.fail("crew.modules", "expected at least one module when crew.count > 0 "
                          "(or a crew.locations entry at at_s = 0)")
        for j, name in enumerate(crew.modules):
            module_ref(name, f"crew.modules[{j}]")
        if not crew.generator_module:
            raise ck.fail("crew.generator_module", "expected a module name when crew.count > 0")
        module_ref(crew.generator_module, "crew.generator_module")

    hatch_ops = []
    seen_ops: dict[tuple[str, float], int] = {}
    connection_ids = [c.id for c in connections]
    for i, op in enumerate(section("hatch_ops")):
        if op["valve"] not in connection_ids:
            what = ("a repress valve (its schedule is repress.events)" if op["valve"] in valve_ids
                    else "unknown valve")
            raise ck.fail(f"hatch_ops[{i}].valve", f"{what} {op['valve']!r}; expected a connection "
                          "id: " + (", ".join(connection_ids) or "(none)"))
        slot = (op["valve"], op["at_s"])
        if slot in seen_ops:
            raise ck.fail(f"hatch_ops[{i}].at_s", f"{op['valve']!r} is already operated at "
                          f"{op['at_s']:g} s (hatch_ops[{seen_ops[slot]}])")
        seen_ops[slot] = i
        hatch_ops.append(HatchOpSpec(**op))

    scenario = Scenario(
        name=top["name"], description=top["description"], source=source,
        start_utc=top["start_utc"], duration_s=top["duration_s"], seed=top["seed"],
        modules=tuple(modules), connections=tuple(connections), repress=tuple(repress),
        leaks=tuple(leaks), sensor_faults=tuple(sensor_faults), valve_faults=tuple(valve_faults),
        sensors=sensors, thermal=thermal, crew=crew, hatch_ops=tuple(hatch_ops),
    )
    check_bounds(scenario, source)  # physical ranges, time range, names, counts (scenario_bounds)
    return scenario


def _channel_ids(modules: list[ModuleSpec], repress: list[RepressSpec]) -> tuple[list[str], ...]:
    p = [f"{m.name}.p{k + 1}" for m in modules for k in range(m.pressure_sensors)]
    t = [f"{m.name}.t{k + 1}" for m in modules for k in range(m.temperature_sensors)]
    f = [f"{r.id}.flow" for r in repress]
    return p, t, f


# --------------------------------------------------------------------------------------------
# Presets and files.

_PRESET_PACKAGE = "hullwatch.sim.presets"


def _preset_files() -> dict[str, Any]:
    root = resources.files(_PRESET_PACKAGE)
    return {p.name[:-5]: p for p in root.iterdir() if p.name.endswith(".toml")}


def preset_names() -> list[str]:
    """Names of the built-in presets, sorted."""
    return sorted(_preset_files())


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``. Raises ScenarioError for an unknown name."""
    files = _preset_files()
    if name not in files:
        raise ScenarioError(f"no preset named {name!r}; presets: " + ", ".join(sorted(files)))
    return files[name].read_text(encoding="utf-8")


def preset_dict(name: str) -> dict[str, Any]:
    """A fresh, mutable dict of preset ``name`` (edit it and pass it to scenario_from_dict)."""
    return copy.deepcopy(_parse_toml(preset_text(name), f"preset:{name}"))


def preset_description(name: str) -> str:
    """The one-line description of preset ``name``."""
    return str(preset_dict(name).get("description", ""))


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}", source=source) from exc


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a preset by name, or a scenario TOML file by path.

    Raises:
        ScenarioError: no such preset or file, the file is not TOML, or a key is invalid.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in _preset_files():
        return scenario_from_dict(preset_dict(text), f"preset:{text}")
    path = Path(name_or_path)
    if not path.is_file():
        if path.exists():
            raise ScenarioError("is a directory, expected a scenario TOML file", source=text)
        raise ScenarioError("no such preset or file; presets: " + ", ".join(preset_names()),
                            source=text)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror or exc}", source=text) from exc
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte offset {exc.start})", source=text) from exc
    return scenario_from_dict(_parse_toml(decoded, text), text)


def all_fields() -> list[tuple[str, Field]]:
    """(section, field) pairs of every key a scenario may hold; section "" is the top level."""
    out = [("", f) for f in TOP_FIELDS]
    for section, (fields, _) in SECTIONS.items():
        out += [(section, f) for f in fields]
    return out

