"""``hullwatch dictionary``: every packet and event definition as JSON."""

from __future__ import annotations

import json

from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.telemetry.events import EVENT_DEFS
from hullwatch.firmware.types import EventId
from hullwatch.tools.cli import main


def _dictionary(capsys) -> dict:
    assert main(["dictionary"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_packet_with_apid_service_subtype_and_fields(capsys):
    d = _dictionary(capsys)
    packets = {p["name"]: p for p in d["packets"]}
    assert set(packets) == {pd.name for pd in P.PACKET_DEFS}
    raw = packets["raw_samples"]
    assert (raw["apid"], raw["type"], raw["service"], raw["subtype"], raw["sid"]) == (P.APID_RAW, "TM", 3, 25, 2)
    fields = {f["name"]: f for f in raw["fields"]}
    assert fields["pressure"]["type"] == "f64[n_pressure]" and fields["pressure"]["unit"] == "Pa"
    assert fields["temperature"]["unit"] == "K" and fields["flow"]["unit"] == "kg/s"
    assert fields["sid"]["value"] == 2
    hk = {f["name"]: f for f in packets["housekeeping"]["fields"]}
    module = {f["name"]: f for f in hk["modules"]["fields"]}
    assert module["leak_rate_kg_s"] == {"name": "leak_rate_kg_s", "type": "f64", "unit": "kg/s",
                                        "description": "estimated leak rate of its segment, positive = loss"}
    assert hk["cycle_time_us"]["unit"] == "us"
    assert packets["valve_command"]["type"] == "TC" and packets["valve_command"]["function_id"] == 1
    assert packets["event_high"]["subtype"] == 4
    assert all(f["type"] for p in d["packets"] for f in p["fields"])


def test_headers_and_time(capsys):
    d = _dictionary(capsys)
    primary = {f["name"]: f for f in d["headers"]["primary"]}
    bits = {f["name"]: f for f in primary["packet_id"]["fields"]}
    assert bits["apid"]["type"] == "u11 (bits)" and bits["version"]["value"] == 0
    tm = {f["name"]: f for f in d["headers"]["tm_secondary"]}
    assert tm["cuc_seconds"]["unit"] == "s" and tm["cuc_seconds"]["type"] == "u32"
    assert "CRC-16/CCITT-FALSE" in d["packet_error_control"]


def test_every_event_with_value_names_and_units(capsys):
    d = _dictionary(capsys)
    events = {e["name"]: e for e in d["events"]}
    assert set(events) == set(EventId.__members__)
    located = events["LEAK_LOCATED"]
    assert located["id"] == 7 and located["severity_name"] == "HIGH"
    assert [(v["name"], v["unit"]) for v in located["values"]] == [
        ("hole_diameter_m", "m"), ("reserve_time_s", "s"), ("leak_rate_kg_s", "kg/s")]
    assert [v["name"] for v in events["CYCLE_OVERRUN"]["values"]] == ["cycle_time_s", "period_s", "count"]
    assert all(len(e["values"]) == 3 for e in d["events"])
    assert len(EVENT_DEFS) == len(d["events"])


def test_enums_match_the_code(capsys):
    d = _dictionary(capsys)
    assert d["enums"]["FdirMode"] == {"OFF": 0, "PASSIVE": 1, "ACTIVE": 2}
    assert d["enums"]["EventId"]["LEAK_LOCATED"] == 7
    assert d["enums"]["SampleStatus"]["STALE"] == 1


def test_output_file(tmp_path, capsys):
    out = tmp_path / "dict.json"
    assert main(["dictionary", "--compact", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    text = out.read_text()
    assert text.count("\n") == 1 and json.loads(text)["format"] == 1
