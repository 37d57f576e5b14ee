"""The board's modules after their split (docs/architecture.md, "The sensor board"): every name
keeps its old import path, as the very same object, and the per-cycle codec the serial device
packs HIL_STEP with is the declaration's byte for byte."""

from __future__ import annotations

import math

import pytest

from hullwatch.hal import config_image, config_model, config_source, config_text, config_validate, wire
from hullwatch.sim import (board_channels, board_emulator, board_factory, board_flash, board_storage,
                           board_valves)

#: (old module, new module, names moved from the old to the new)
MOVED = [
    (config_image, config_model, ["BoardConfig", "ChannelConfig", "ModuleConfig", "ValveConfig", "DecodedImage",
                                  "ConfigSourceError", "ImageFormatError", "ImageCrcError", "ImageTagError",
                                  "COUNTS_MAX", "REFERENCE_TEMPERATURE_K", "MAX_KEY_SIZE", "MIN_KEY_SIZE",
                                  "GENERATION_MAX", "SAMPLE_RATE_RANGE_HZ", "PHYSICAL_BOUNDS"]),
    (config_image, config_validate, ["validate_config", "samples_payload_size"]),
    (config_image, config_source, ["load_config", "config_from_dict"]),
    (config_image, config_text, ["config_to_toml", "summary_lines"]),
    (board_flash, board_storage, ["FlashStorage", "FileStorage", "PowerCutStorage", "PowerCut", "FlashFileError",
                                  "MemoryStorage", "ERASED"]),
    (board_flash, board_factory, ["DEFAULT_BOARD_ID", "config_for_scenario", "default_factory_config",
                                  "PRESSURE_CAL", "TEMPERATURE_CAL", "FLOW_CAL"]),
    (board_emulator, board_storage, ["MemoryStorage"]),
    (board_emulator, board_channels, ["NOMINAL_INPUT"]),
    (board_emulator, board_valves, ["TRAVEL_FRACTION"]),
]


@pytest.mark.parametrize("old, new, names", MOVED, ids=[f"{o.__name__}<-{n.__name__}" for o, n, _ in MOVED])
def test_a_moved_name_is_the_same_object_at_its_old_path(old, new, names) -> None:
    for name in names:
        assert getattr(old, name) is getattr(new, name), name


def test_config_image_lists_every_name_it_re_exports() -> None:
    missing = [name for name in config_image.__all__ if not hasattr(config_image, name)]
    assert missing == []
    assert {"encode_image", "decode_image", "load_config", "validate_config"} <= set(config_image.__all__)


@pytest.mark.parametrize("values, feedback, valve_first", [
    ((100_000.0, 295.0, math.nan, 0.25), (10_000, 0, wire.FEEDBACK_RELEASE), 0),
    ((1.5,), None, 0),
    ((), (7,), 3),
])
def test_inject_payload_is_the_declared_hil_step_and_inject(values, feedback, valve_first) -> None:
    valves = None if feedback is None else wire.ValveStimulus(valve_first, feedback)
    fast = wire.inject_payload(300_000_000, 2, list(values), None if feedback is None else list(feedback),
                               valve_first)
    for cls in (wire.HilStep, wire.HilInject):
        assert fast == wire.encode_payload(cls(300_000_000, 2, tuple(values), valves))  # construct


def test_channel_bank_reports_stale_and_no_data_as_the_protocol_says() -> None:
    config = board_factory.default_factory_config()
    bank = board_channels.ChannelBank(config.channels)
    n = bank.n
    ages, status = bank.report(0)
    assert status == [int(wire.SampleState.NO_DATA)] * n and ages == [wire.AGE_NEVER] * n
    values = [math.nan] * n
    values[0] = 101_325.0
    bank.convert(values, 0, 1_000)
    ages, status = bank.report(1_500)
    assert status[0] == wire.SampleState.OK and ages[0] == 500
    assert status[1:] == [int(wire.SampleState.NO_DATA)] * (n - 1)
    _, status = bank.report(2_000)  # nothing converted since: the sample is stale
    assert status[0] == wire.SampleState.STALE


def test_valve_bank_de_energised_valves_travel_closed_from_where_they_stand() -> None:
    config = board_factory.default_factory_config()
    bank = board_valves.ValveBank(config.valves, travel_s={}, previous=None, keep=False, initial_open=None,
                                  time_us=0)
    assert [v.position for v in bank.valves] == [0.0 if v.kind == 2 else 1.0 for v in config.valves]
    after = board_valves.ValveBank(config.valves, travel_s={}, previous=bank.valves, keep=False,
                                   initial_open=None, time_us=0)
    assert all(v.target == 0.0 and v.commanded == wire.ValveCommand.NONE for v in after.valves)
    assert [v.position for v in after.valves] == [v.position for v in bank.valves]
    after.advance(10**9)  # 1000 s: every valve has closed
    assert [v.position for v in after.valves] == [0.0] * len(config.valves)
