"""The fault and crew tables of a campaign group: how they are parsed and how a case draws them.

A group (docs/detection.md, "Spec format") may hold, besides its ``[leak]``:

- ``[sensor_fault]``: faults of one channel each, on pressure or temperature channels
  (``channels``), of any kind (``kinds``), with per-kind magnitudes in Pa (``magnitude``) and
  in K (``temperature_magnitude``);
- ``[blind_module]``: every pressure sensor of a module drops out at one time (the module
  becomes unobservable);
- ``[hatch_ops]``: the crew moves a connection to the other state at ``start_s`` and, with
  ``duration_s``, back again (moves the flight software did not command).

Every parameter is drawn from its own generator (see :mod:`.spec`), so adding a table
to a group leaves the draws of the others unchanged. :func:`fault_types` names the faults a
scenario holds (``pressure/bias``, ``temperature/drift``, ``blind_module``...): what the report
counts in its "with a sensor fault" columns.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

SENSOR_FAULT_KINDS = ("bias", "drift", "stuck", "noise", "spike", "dropout")
CHANNEL_TYPES = ("pressure", "temperature")

#: Default pressure fault magnitudes (scenario units): bias Pa, drift Pa/s, noise Pa RMS, spike
#: Pa; stuck and dropout take no magnitude.
DEFAULT_MAGNITUDES: dict[str, Any] = {
    "bias": {"uniform": [-300.0, 300.0]},
    "drift": {"uniform": [-0.5, 0.5]},
    "stuck": 0.0,
    "noise": {"uniform": [10.0, 50.0]},
    "spike": {"uniform": [500.0, 5000.0]},
    "dropout": 0.0,
}

#: Default temperature fault magnitudes: bias K (a step; 0.8 K reads as ~270 Pa), drift K/s
#: (3e-4 K/s is ~1.1 K/h; a failing thermistor of the record drifted 0.36 K/h), noise K RMS,
#: spike K.
DEFAULT_TEMPERATURE_MAGNITUDES: dict[str, Any] = {
    "bias": {"uniform": [-1.5, 1.5]},
    "drift": {"uniform": [-3.0e-4, 3.0e-4]},
    "stuck": 0.0,
    "noise": {"uniform": [0.05, 0.3]},
    "spike": {"uniform": [2.0, 20.0]},
    "dropout": 0.0,
}

SF_KEYS = {"count", "probability", "module", "kinds", "channels", "start_s", "duration_s",
           "magnitude", "temperature_magnitude"}
BLIND_KEYS = {"count", "probability", "module", "start_s"}
HATCH_KEYS = {"count", "probability", "valve", "start_s", "duration_s"}

#: add(path, raw, **parse_dist options): parse a distribution into the group's parameters
AddFn = Callable[..., None]
#: value(path, slot) -> a drawn value; count(prefix) -> how many of a table to draw
ValueFn = Callable[[str, str], Any]
CountFn = Callable[[str], int]


def parse_sensor_fault(sf: Mapping[str, Any], where: str, source: str, add: AddFn,
                       modules: tuple[str, ...], has_leak: bool, error: Callable[..., Exception],
                       unknown: Callable[..., None]) -> None:
    """Parameters of a ``[sensor_fault]`` table (count or probability parsed by the caller)."""
    module_raw = sf.get("module", "leak")
    if module_raw == "leak":
        if not has_leak:
            raise error('"leak" needs a [leak] table in this group', source,
                        f"{where}.sensor_fault.module")
        add("sensor_fault.module", "leak", number=False)
    else:
        add("sensor_fault.module", module_raw, number=False, choices=modules, any_values=modules)
    kinds = sf.get("kinds", list(SENSOR_FAULT_KINDS))
    add("sensor_fault.kind", kinds if isinstance(kinds, (list, dict)) else [kinds],
        number=False, choices=SENSOR_FAULT_KINDS)
    if "channels" in sf:  # absent: pressure only, and nothing drawn (older specs draw as before)
        channels = sf["channels"]
        add("sensor_fault.channels", channels if isinstance(channels, (list, dict)) else [channels],
            number=False, choices=CHANNEL_TYPES)
    add("sensor_fault.start_s", sf.get("start_s", 0.0))
    if "duration_s" in sf:  # absent: the scenario's default (for ever; one sample for a spike)
        add("sensor_fault.duration_s", sf["duration_s"])
    for table, defaults, prefix in (("magnitude", DEFAULT_MAGNITUDES, "sensor_fault.magnitude"),
                                    ("temperature_magnitude", DEFAULT_TEMPERATURE_MAGNITUDES,
                                     "sensor_fault.temperature_magnitude")):
        mags = sf.get(table, {})
        if not isinstance(mags, dict):
            raise error("expected a table of kind = distribution", source,
                        f"{where}.sensor_fault.{table}")
        unknown(mags, set(SENSOR_FAULT_KINDS), source, f"{where}.sensor_fault.{table}")
        for kind in SENSOR_FAULT_KINDS:
            add(f"{prefix}.{kind}", mags.get(kind, defaults[kind]))


def parse_blind_module(bm: Mapping[str, Any], where: str, source: str, add: AddFn,
                       modules: tuple[str, ...], has_leak: bool,
                       error: Callable[..., Exception]) -> None:
    """Parameters of a ``[blind_module]`` table (count or probability parsed by the caller)."""
    module_raw = bm.get("module", "any")
    if module_raw == "leak":
        if not has_leak:
            raise error('"leak" needs a [leak] table in this group', source,
                        f"{where}.blind_module.module")
        add("blind_module.module", "leak", number=False)
    else:
        add("blind_module.module", module_raw, number=False, choices=modules, any_values=modules)
    add("blind_module.start_s", bm.get("start_s", 0.0))


def parse_hatch_ops(ho: Mapping[str, Any], where: str, source: str, add: AddFn,
                    valves: tuple[str, ...], error: Callable[..., Exception]) -> None:
    """Parameters of a ``[hatch_ops]`` table (count or probability parsed by the caller)."""
    if not valves:
        raise error("the base scenario has no connections for the crew to operate", source,
                    f"{where}.hatch_ops")
    add("hatch_ops.valve", ho.get("valve", "any"), number=False, choices=valves, any_values=valves)
    add("hatch_ops.start_s", ho.get("start_s", 0.0))
    if "duration_s" in ho:
        add("hatch_ops.duration_s", ho["duration_s"])


def draw_sensor_faults(n: int, value: ValueFn, channel_index: Callable[[str, int], int],
                       leak_module: str | None, has_channel_type: bool,
                       has_duration: bool, sensors: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """``n`` sensor faults in the scenario format. ``channel_index(slot, count)`` draws a
    channel number in 1..count; ``sensors`` maps a module to its (pressure, temperature)
    sensor counts. A module without channels of the drawn type gets the other type."""
    faults = []
    for j in range(n):
        slot = f"sensor_fault[{j}]"
        module = value("sensor_fault.module", f"{slot}.module")
        if module == "leak":
            module = leak_module
        kind = value("sensor_fault.kind", f"{slot}.kind")
        ctype = value("sensor_fault.channels", f"{slot}.channel_type") if has_channel_type else "pressure"
        n_p, n_t = sensors.get(module, (3, 2))
        if ctype == "temperature" and n_t == 0:
            ctype = "pressure"
        elif ctype == "pressure" and n_p == 0:
            ctype = "temperature"
        if ctype == "temperature":
            sensor = f"{module}.t{channel_index(f'{slot}.channel', n_t)}"
            magnitude = value(f"sensor_fault.temperature_magnitude.{kind}", f"{slot}.magnitude")
        else:
            sensor = f"{module}.p{channel_index(f'{slot}.channel', n_p)}"
            magnitude = value(f"sensor_fault.magnitude.{kind}", f"{slot}.magnitude")
        fault = {"sensor": sensor, "kind": kind,
                 "start_s": float(value("sensor_fault.start_s", f"{slot}.start_s")),
                 "magnitude": float(magnitude)}
        if has_duration:
            fault["duration_s"] = float(value("sensor_fault.duration_s", f"{slot}.duration_s"))
        faults.append(fault)
    return faults


def draw_blind_modules(n: int, value: ValueFn, leak_module: str | None) -> list[dict[str, Any]]:
    out = []
    for j in range(n):
        slot = f"blind_module[{j}]"
        module = value("blind_module.module", f"{slot}.module")
        out.append({"module": leak_module if module == "leak" else module,
                    "start_s": float(value("blind_module.start_s", f"{slot}.start_s"))})
    return out


def draw_hatch_ops(n: int, value: ValueFn, initially_open: Mapping[str, bool],
                   has_duration: bool) -> list[dict[str, Any]]:
    """Crew hatch operations in the scenario format: each drawn operation moves its connection
    to the state other than its initial one at ``start_s`` and, with a duration, back."""
    ops = []
    for j in range(n):
        slot = f"hatch_ops[{j}]"
        valve = value("hatch_ops.valve", f"{slot}.valve")
        start = float(value("hatch_ops.start_s", f"{slot}.start_s"))
        was_open = initially_open.get(valve, True)
        ops.append({"valve": valve, "at_s": start, "open": not was_open})
        if has_duration:
            ops.append({"valve": valve, "at_s": start + float(value("hatch_ops.duration_s",
                                                                     f"{slot}.duration_s")),
                        "open": was_open})
    return ops


def blind_dropouts(blind: list[dict[str, Any]], sensors: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """The sensor faults of blind modules: a dropout of every pressure channel at start_s."""
    return [{"sensor": f"{b['module']}.p{k + 1}", "kind": "dropout", "start_s": float(b["start_s"])}
            for b in blind for k in range(sensors.get(b["module"], (3, 2))[0])]


def module_sensors(scenario: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Module name -> (pressure, temperature) sensor counts of a scenario dict."""
    sens = scenario.get("sensors", {}) if isinstance(scenario.get("sensors", {}), dict) else {}
    n_p = int(sens.get("pressure_per_module", 3))
    n_t = int(sens.get("temperature_per_module", 2))
    return {str(m["name"]): (int(m.get("pressure_sensors", n_p)), int(m.get("temperature_sensors", n_t)))
            for m in scenario.get("modules", []) if isinstance(m, dict) and "name" in m}


def fault_types(scenario: Mapping[str, Any]) -> list[str]:
    """The sensor faults a scenario dict holds, one name each, sorted: ``blind_module`` for a
    module all of whose pressure sensors drop out, else ``<channel type>/<kind>`` with channel
    type ``pressure``, ``temperature`` or ``flow``."""
    faults = [f for f in scenario.get("sensor_faults", []) or [] if isinstance(f, dict)]
    sensors = module_sensors(scenario)
    dropouts: dict[str, set[str]] = {}
    for f in faults:
        if f.get("kind") == "dropout" and ".p" in str(f.get("sensor", "")):
            module, ch = str(f["sensor"]).rsplit(".", 1)
            dropouts.setdefault(module, set()).add(ch)
    blind = {m for m, chans in dropouts.items()
             if sensors.get(m, (3, 2))[0] and len(chans) >= sensors.get(m, (3, 2))[0]}
    out = ["blind_module"] * len(blind)
    for f in faults:
        sensor = str(f.get("sensor", ""))
        module, _, ch = sensor.rpartition(".")
        if module in blind and f.get("kind") == "dropout" and ch.startswith("p"):
            continue
        ctype = ("pressure" if ch.startswith("p") else "temperature" if ch.startswith("t")
                 else "flow")
        out.append(f"{ctype}/{f.get('kind')}")
    return sorted(out)
