"""The factory configuration of an emulated board: the image it ships with, wired to a scenario's
station (the simulated device's layout exactly, with nominal calibrations)."""

from __future__ import annotations

from typing import Any, Mapping

from ..hal.config_model import BoardConfig, ChannelConfig, ModuleConfig, ValveConfig
from ..hal.config_validate import validate_config
from ..hal.interfaces import ChannelKind
from .device import build_layout
from .scenario import Scenario, load_scenario, scenario_from_dict

DEFAULT_BOARD_ID = "hwb-emu-0001"  #: the emulator's default board (examples/board.toml targets it)

#: Nominal calibrations: ``value = offset + gain * counts`` over the 24-bit ADC range. Each
#: covers the simulated device's valid range (hullwatch.sim.device) with room to spare.
PRESSURE_CAL = dict(offset=0.0, gain=0.01, temp_coeff=0.0)  # 0 .. 167772 Pa, 0.01 Pa steps
TEMPERATURE_CAL = dict(offset=200.0, gain=1e-5, temp_coeff=0.0)  # 200 .. 367.8 K
FLOW_CAL = dict(offset=-0.1, gain=1e-7, temp_coeff=0.0)  # -0.1 .. 1.58 kg/s


def config_for_scenario(scenario: Scenario | str | Mapping[str, Any],
                        board_id: str = DEFAULT_BOARD_ID, *, sample_rate_hz: int = 10,
                        oversampling: int = 16, hil_allowed: bool = True) -> BoardConfig:
    """The configuration that wires a board to a scenario's station (a preset name, a path, a
    scenario dict or a loaded :class:`~hullwatch.sim.scenario.Scenario`): the simulated device's layout exactly
    (same channel and valve ids, order, valid ranges and actuation timeouts), with the nominal
    calibrations above. Raises ScenarioError / ConfigSourceError when it cannot.
    """

    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    elif isinstance(scenario, Mapping):
        scenario = scenario_from_dict(dict(scenario), source=str(scenario.get("name", "<dict>")))
    layout = build_layout(scenario)
    cal = {ChannelKind.PRESSURE: PRESSURE_CAL, ChannelKind.TEMPERATURE: TEMPERATURE_CAL,
           ChannelKind.FLOW: FLOW_CAL}
    channels = tuple(
        ChannelConfig(c.id, c.kind, c.module, valid_min=c.valid_min, valid_max=c.valid_max,
                      **cal[c.kind])
        for c in layout.pressure + layout.temperature + layout.flow
    )
    config = BoardConfig(
        board_id=board_id, generation=0, sample_rate_hz=sample_rate_hz, oversampling=oversampling,
        hil_allowed=hil_allowed,
        modules=tuple(ModuleConfig(m.name, m.volume_m3) for m in layout.modules),
        channels=channels,
        valves=tuple(ValveConfig(v.id, v.kind, v.module_a, v.module_b, v.actuation_timeout_s)
                     for v in layout.valves),
    )
    validate_config(config, source=f"scenario {scenario.name}")
    return config


def default_factory_config(board_id: str = DEFAULT_BOARD_ID) -> BoardConfig:
    """The configuration a new emulated board ships with: :func:`config_for_scenario` of the
    soyuz-ms09 preset. examples/board.toml is the same configuration as a TOML source."""
    return config_for_scenario("soyuz-ms09", board_id)
