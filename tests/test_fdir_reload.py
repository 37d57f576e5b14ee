"""A parameter table loaded mid-run (telecommand) must leave FDIR working: the fresh detector
slots get mapped to the current segments at the next frame, even though no valve moved."""

from __future__ import annotations

from hullwatch import hal
from hullwatch.firmware.fdir.params import default_params, params_from_dict
from hullwatch.firmware.flight import FlightSoftware
from hullwatch.firmware.types import EventId


def _run_with_reload(params, reload_at: float, until: float):
    dev = hal.open("sim://soyuz-ms09")
    events = []
    fs = FlightSoftware(dev, on_event=events.append)
    fs.run(reload_at)
    assert fs.telecommand(params)
    fs.run(until)
    names = [(EventId(e[1]).name, e[3]) for e in events]
    health = fs.health()
    fs.close()
    dev.close()
    return names, health, fs


def test_leak_after_a_parameter_reload_is_still_detected_located_and_sealed():
    names, health, fs = _run_with_reload(default_params(), 100.0, 700.0)
    assert health["executive"]["errors"] == 0, health["executive"]["last_error"]
    assert names[0] == ("PARAMS_LOADED", "fdir")
    assert ("LEAK_CONFIRMED", "station") in names  # the whole station is one segment
    assert ("LEAK_LOCATED", "soyuz-om") in names
    assert ("SEGMENT_SEALED", "soyuz-om") in names
    assert fs.fdir.sealed_mask == 1 << fs.layout.module_index("soyuz-om")


def test_reload_during_the_leak_with_a_new_table_restarts_the_test_and_finds_it():
    # loaded after the leak began (300 s) but before confirmation: the detectors restart after
    # the transient mask, measure the slope afresh and still confirm it
    params = params_from_dict({"leak": {"false_alarm_prob": 1e-6}}, "<test>")
    names, health, _ = _run_with_reload(params, 320.0, 900.0)
    assert health["executive"]["errors"] == 0, health["executive"]["last_error"]
    assert ("LEAK_LOCATED", "soyuz-om") in names
