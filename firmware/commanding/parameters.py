"""Service 20: FDIR parameters addressed one at a time, by id or by name.

Every FDIR parameter (``section.key``, as in the parameter file) has a fixed u16 id
(:data:`PARAMETER_IDS`; never reused, new parameters get new ids). A value set by telecommand is
laid over the active table and the whole table is validated by
:func:`~hullwatch.firmware.fdir.params.params_from_dict`, exactly as a parameter file is, so the
same value is refused with the same message either way.

On the wire every value is a float64 (docs/commanding.md); an integer parameter takes a whole
number, and a list parameter (``leak.windows_s``) takes all its items.
"""

from __future__ import annotations

from typing import Any

from ..fdir.params import FdirParams, describe, params_from_dict

#: ``section.key`` -> parameter id. Fixed: an id is never reused or renumbered.
PARAMETER_IDS: dict[str, int] = {
    "executive.period_s": 1,
    "executive.housekeeping_period_s": 2,
    "executive.layout_period_s": 3,
    "executive.overrun_event_min_interval_s": 4,
    "sensors.pressure_min_pa": 5,
    "sensors.pressure_max_pa": 6,
    "sensors.temperature_min_k": 7,
    "sensors.temperature_max_k": 8,
    "sensors.range_fail_s": 9,
    "sensors.stale_fail_s": 10,
    "sensors.stuck_fail_s": 11,
    "sensors.stuck_tolerance_pa": 12,
    "sensors.disagree_pa": 13,
    "sensors.disagree_fail_s": 14,
    "sensors.bias_learn_s": 15,
    "sensors.bias_max_pa": 16,
    "sensors.recover_s": 17,
    "leak.false_alarm_prob": 18,
    "leak.miss_prob": 19,
    "leak.windows_s": 20,
    "leak.noise_tau_s": 21,
    "leak.noise_min_pa": 22,
    "leak.warmup_s": 23,
    "leak.known_loss_kg_s": 24,
    "leak.dead_band_pa_s": 25,
    "leak.transient_mask_s": 26,
    "leak.rapid_dpdt_pa_s": 27,
    "leak.rapid_window_s": 28,
    "leak.clear_s": 29,
    "isolation.discharge_coefficient": 30,
    "isolation.reserve_floor_pa": 31,
    "isolation.observe_min_s": 32,
    "isolation.observe_timeout_s": 33,
    "isolation.healthy_fraction": 34,
    "isolation.max_attempts": 35,
    "valves.open_threshold": 36,
    "valves.feedback_tolerance": 37,
    "valves.timeout_margin_s": 38,
    "physics.gas_constant_j_kg_k": 39,
    "physics.gamma": 40,
    "physics.reference_temperature_k": 41,
    "sensors.temperature_rate_max_k_s": 42,
    "sensors.temperature_rate_window_s": 43,
    "sensors.temperature_stuck_fail_s": 44,
    "sensors.temperature_stuck_tolerance_k": 45,
    "sensors.temperature_disagree_k": 46,
    "sensors.temperature_estimate_rate_k_s": 47,
    "leak.split_allowance_kg_s": 48,
    "slowleak.detect": 49,
    "slowleak.decimation_s": 50,
    "slowleak.windows_s": 51,
    "slowleak.floor_kg_s": 52,
    "slowleak.swing_kg_s": 53,
    "slowleak.excursion_kg": 54,
    "slowleak.generator_module": 55,
    "slowleak.branch_crew_kg_s": 56,
    "slowleak.noise_min_pa": 57,
    "slowleak.clear_s": 58,
    "slowleak.locate": 59,
    "slowleak.watch_min_s": 60,
    "slowleak.watch_max_s": 61,
    "slowleak.act_timeout_s": 62,
    "estimate.period_s": 63,
    "estimate.hole_target": 64,
    "estimate.reserve_target": 65,
    "estimate.confidence_z": 66,
    "estimate.min_s": 67,
    "estimate.max_s": 68,
    "slowleak.branch_excursion_pa": 69,
    "leak.link_bridge_s": 70,
    "leak.flow_uncertainty": 71,
    "valves.split_pa": 72,
}

PARAMETER_NAMES: dict[int, str] = {v: k for k, v in PARAMETER_IDS.items()}

#: the ``source`` named in a refusal of a value set by telecommand
SET_SOURCE = "telecommand 20/3"


class UnknownParameter(LookupError):
    """No FDIR parameter has this id or name."""


def resolve(parameter_id: int, name: str, params: FdirParams) -> tuple[int, str]:
    """``(id, name)`` of the parameter given by id (``parameter_id`` != 0) or by name.

    Raises UnknownParameter naming what was asked for."""
    table = describe(params)
    if parameter_id:
        full = PARAMETER_NAMES.get(parameter_id)
        if full is None:
            raise UnknownParameter(f"no FDIR parameter has id {parameter_id}")
        if name and name != full:
            raise UnknownParameter(f"parameter id {parameter_id} is {full}, not {name}")
    else:
        full = name
    section, _, key = full.partition(".")
    if key not in table.get(section, {}):
        raise UnknownParameter(f"no FDIR parameter is named {full!r}")
    if isinstance(table[section][key], str):
        # (Service 20 carries float64 values: a text parameter is loaded with a table, 8/4.)
        raise UnknownParameter(f"{full} is text, not a number: load it with a parameter table (8/4)")
    return PARAMETER_IDS.get(full, 0), full


def value_of(params: FdirParams, name: str) -> list[float]:
    """The active value of parameter ``name`` as the list of float64 sent on the wire."""
    section, _, key = name.partition(".")
    value = describe(params)[section][key]
    return [float(v) for v in value] if isinstance(value, (tuple, list)) else [float(value)]


def takes_list(params: FdirParams, name: str) -> bool:
    """Whether parameter ``name`` is a list (else it takes exactly one value)."""
    section, _, key = name.partition(".")
    return isinstance(describe(params)[section][key], (tuple, list))


def with_value(params: FdirParams, name: str, values: list[float]) -> FdirParams:
    """A new validated table: ``params`` with parameter ``name`` set to ``values``.

    One value sets a number (a whole float to an integer parameter); a list parameter takes
    every item. Raises :class:`~hullwatch.firmware.errors.ParameterError` (source
    :data:`SET_SOURCE`, the key) when the table refuses it, as it would refuse the file.
    """
    section, _, key = name.partition(".")
    data: dict[str, dict[str, Any]] = {
        s: {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()} for s, d in describe(params).items()}
    current = data[section][key]
    value: Any
    if isinstance(current, list):
        value = list(values)
    elif len(values) != 1:
        value = list(values)
    elif isinstance(current, int) and not isinstance(current, bool) and float(values[0]).is_integer() \
            and abs(values[0]) < 2 ** 53:  # (past 2^53 it stays a float: its bound refuses it, briefly)
        value = int(values[0])
    else:
        value = values[0]
    data[section][key] = value
    return params_from_dict(data, SET_SOURCE)
