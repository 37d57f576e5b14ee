"""The monitor's state, built from real packets: link health, event log (unknown ids too), the
diagram's marks, plot series and their decimation."""

from __future__ import annotations

import struct

import pytest

from hullwatch.firmware.telemetry import (
    EVENT_DEFS,
    Event,
    EventId,
    Housekeeping,
    LayoutReport,
    ModuleHk,
    ModuleStatus,
    Severity,
    ValveHk,
    crc16,
    encode,
    layout_to_json,
    make_packet,
)
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind
from hullwatch.tools.monitor import MonitorState
from hullwatch.tools.monitor.eventlog import mission_text
from hullwatch.tools.monitor.series import SeriesStore
from hullwatch.tools.monitor.station import diagram_positions, segments

EPOCH = 1535572800.0  # 2018-08-29T20:00:00Z
NAMES = ["soyuz-dm", "soyuz-om", "rassvet", "zarya", "usos"]


def station() -> Layout:
    """A chain soyuz-dm - soyuz-om - rassvet - zarya - usos, plus a repress valve into zarya."""
    modules = tuple(ModuleInfo(n, v) for n, v in zip(NAMES, (4.0, 6.0, 17.0, 72.0, 726.0)))
    pressure = tuple(ChannelInfo(f"{m}.p{j}", ChannelKind.PRESSURE, m, 0.0, 120000.0) for m in NAMES for j in (1, 2, 3))
    temperature = tuple(ChannelInfo(f"{m}.t1", ChannelKind.TEMPERATURE, m, 200.0, 350.0) for m in NAMES)
    valves = tuple(ValveInfo(f"{a}-{b}", ValveKind.HATCH, a, b, 5.0) for a, b in zip(NAMES, NAMES[1:]))
    valves += (ValveInfo("air", ValveKind.REPRESS, "zarya", None, 2.0),)
    return Layout(modules, pressure, temperature, (), valves)


class Sender:
    """Encodes packets the way the flight software does, with per-APID sequence counts."""

    def __init__(self) -> None:
        self.seq: dict[int, int] = {}

    def __call__(self, data: object, t: float) -> bytes:
        pkt = make_packet(data, time_utc=EPOCH + t)
        pkt.seq = self.seq.get(pkt.apid, 0)
        self.seq[pkt.apid] = (pkt.seq + 1) % 16384
        return encode(pkt)


def hk(status: list[int], valves_open: list[bool], pressure: float = 100000.0) -> Housekeeping:
    return Housekeeping(2, 4, 10, 30, 50, 0, True, 0, 0,
                        [ModuleHk(pressure - i, 295.0, 1000.0 + i, 2.5e-4 if s == ModuleStatus.SEALED else 0.0, s)
                         for i, s in enumerate(status)],
                        [ValveHk(int(o), 1.0 if o else 0.0, 0) for o in valves_open] + [ValveHk(0, 0.0, 0)])


def fed(sender: Sender | None = None) -> tuple[MonitorState, Sender]:
    send = sender or Sender()
    state = MonitorState("test")
    state.ingest(send(LayoutReport(EPOCH, layout_to_json(station())), 0.0))
    return state, send


def test_sealed_module_and_the_one_it_cuts_off() -> None:
    state, send = fed()
    nominal = [ModuleStatus.NOMINAL] * 5
    state.ingest(send(hk(nominal, [True] * 4), 1.0))
    snap = state.snapshot()
    assert [m["marks"] for m in snap["modules"]] == [[]] * 5
    sealed = list(nominal)
    sealed[1] = ModuleStatus.SEALED
    # soyuz-om sealed: both its hatches closed, so soyuz-dm behind it is cut off
    state.ingest(send(hk(sealed, [False, False, True, True]), 2.0))
    snap = state.snapshot()
    marks = {m["name"]: m["marks"] for m in snap["modules"]}
    assert marks == {"soyuz-dm": ["cut-off"], "soyuz-om": ["sealed"], "rassvet": [], "zarya": [], "usos": []}
    assert snap["modules"][0]["pressure_pa"] == pytest.approx(100000.0)
    assert snap["modules"][0]["pressure_mmhg"] == pytest.approx(100000.0 / 133.322387415)
    nodes = {n["name"]: n for n in snap["diagram"]["nodes"]}
    assert nodes["soyuz-om"]["marks"] == ["sealed"]
    edges = {e["id"]: e["state"] for e in snap["diagram"]["edges"]}
    assert edges == {"soyuz-dm-soyuz-om": "closed", "soyuz-om-rassvet": "closed", "rassvet-zarya": "open",
                     "zarya-usos": "open", "air": "closed"}
    assert snap["fdir"]["isolation_state"] == "SEALED" and snap["fdir"]["mode"] == "ACTIVE"


def test_unobservable_and_leaking_marks() -> None:
    state, send = fed()
    status = [ModuleStatus.NO_DATA, ModuleStatus.LEAKING, ModuleStatus.DEGRADED, ModuleStatus.ISOLATING,
              ModuleStatus.SUSPECTED]
    state.ingest(send(hk(status, [True] * 4), 1.0))
    assert [m["marks"] for m in state.snapshot()["modules"]] == [
        ["unobservable"], ["leaking"], ["degraded"], ["isolating"], ["suspected"]]


def test_valve_feedback_against_command() -> None:
    state, send = fed()
    h = hk([0] * 5, [True] * 4)
    h.valves[2] = ValveHk(1, 0.0, 1)  # commanded open, reads closed, failed
    state.ingest(send(h, 1.0))
    v = state.snapshot()["valves"][2]
    assert (v["id"], v["command"], v["state"], v["agree"], v["health"]) == ("rassvet-zarya", "open", "closed", False, "FAILED")


def test_events_named_from_the_dictionary_with_mission_and_utc_times() -> None:
    state, send = fed()
    state.ingest(send(Event(EventId.LEAK_LOCATED, "soyuz-om", (0.0014, 10295.0, 2.52e-4), Severity.HIGH), 415.1))
    state.ingest(send(Event(EventId.SENSOR_FAILED, "zarya.p2", (3.0, 100150.0, 42.5), Severity.MEDIUM), 416.0))
    events = state.snapshot()["events"]
    assert [e["name"] for e in events] == ["LEAK_LOCATED", "SENSOR_FAILED"]
    e = events[0]
    assert e["utc"] == "2018-08-29T20:06:55.100Z"
    assert e["mission_time"] == "T+0:06:55.1"
    assert e["severity"] == "HIGH" and e["alarm"]
    assert e["values"]["hole_diameter_m"] == pytest.approx(0.0014)
    assert "soyuz-om" in e["text"] and "1.4 mm" in e["text"] and "2.86 h" in e["text"]
    sensors = {s["id"]: s for s in state.snapshot()["sensors"]}
    assert sensors["zarya.p2"]["health"] == "FAILED_STUCK" and sensors["zarya.p2"]["bias"] == pytest.approx(42.5)
    assert sensors["zarya.p1"]["health"] == "OK"


def _event_packet(event_id: int, severity: int, t: float, seq: int) -> bytes:
    """An event packet with an id this build may not know, built from a known one's bytes."""
    raw = bytearray(encode(make_packet(Event(EventId.LEAK_CLEARED, "zvezda", (1.5, 2.5, 3.5), Severity(severity)),
                                       seq=seq, time_utc=EPOCH + t)))
    struct.pack_into(">H", raw, 19, event_id)  # the event id is the first field after the headers
    struct.pack_into(">H", raw, len(raw) - 2, crc16(raw[:-2]))
    return bytes(raw)


def test_unknown_event_id_is_shown_generically() -> None:
    state, _ = fed()
    state.ingest(_event_packet(999, 3, 10.0, 0))
    (e,) = state.snapshot()["events"]
    assert e["name"] == "EVENT_999" and e["subject"] == "zvezda" and e["severity"] == "MEDIUM"
    assert e["values"] == {"value1": 1.5, "value2": 2.5, "value3": 3.5}
    assert e["text"].startswith("EVENT 999 zvezda")
    assert state.link.malformed == 0


def test_link_health_counts_gaps_crc_errors_and_malformed() -> None:
    state, send = fed()
    packets = [send(hk([0] * 5, [True] * 4), float(t)) for t in range(1, 11)]
    for i, p in enumerate(packets):
        if i in (3, 4, 7):
            continue  # lost on the way: two gaps, three packets missing
        state.ingest(p)
    bad = bytearray(packets[0])
    bad[30] ^= 0x01
    state.ingest(bytes(bad))
    state.ingest(b"\x00\x01\x02")
    state.ingest(packets[0][:-5])
    link = state.snapshot()["link"]
    assert (link["sequence_gaps"], link["packets_missing"]) == (2, 3)
    assert link["crc_errors"] == 1 and link["malformed"] == 2
    assert link["packets"] == 1 + 7  # the layout report and the seven that arrived


def test_several_packets_in_one_datagram() -> None:
    state, send = fed()
    state.ingest(send(hk([0] * 5, [True] * 4), 1.0) + send(Event(EventId.MODE_CHANGED, "fdir", (2.0, 1.0, 0.0), Severity.INFO), 1.5))
    snap = state.snapshot()
    assert snap["fdir"] is not None and [e["name"] for e in snap["events"]] == ["MODE_CHANGED"]


def test_series_window_and_live_rows_are_thinned() -> None:
    state, send = fed()
    for t in range(1, 3601):
        state.ingest(send(hk([0] * 5, [True] * 4, 100000.0 - t), float(t)))
    full = state.series_window(None, 100)
    assert 90 <= len(full["t"]) <= 101
    assert full["t"][-1] == EPOCH + 3600  # the newest row is always there
    assert len(full["pressure_pa"]) == 5 and len(full["pressure_pa"][0]) == len(full["t"])
    window = state.series_window(600, 10000)
    assert len(window["t"]) == 601 and window["t"][0] == EPOCH + 3000
    rows, hint = state.series_since(EPOCH + 3500, 60.0, 6, 0, float("-inf"))
    assert rows["t"] == [EPOCH + t for t in range(3509, 3601, 10)] + [EPOCH + 3600]  # last of each 10 s
    assert hint == state.series.count


def test_series_ring_drops_the_oldest() -> None:
    s = SeriesStore(2, capacity=8)
    for t in range(20):
        s.append(float(t), [[t, t], [0, 0], [0, 0], [0, 0]])
    t, v = s.window(None, 100)
    assert t.tolist() == [float(x) for x in range(12, 20)]
    assert v[:, 0, 1].tolist() == t.tolist()


def test_a_new_run_starts_the_plots_afresh() -> None:
    state, send = fed()
    state.ingest(send(hk([0] * 5, [True] * 4), 1.0))
    assert len(state.series_window(None, 100)["t"]) == 1
    state.ingest(send(LayoutReport(EPOCH + 3600, layout_to_json(station())), 3600.0))
    assert state.series_window(None, 100)["t"] == []
    assert state.epoch_utc == EPOCH + 3600


def test_diagram_positions_and_segments() -> None:
    layout = station()
    pos = diagram_positions(layout)
    xs = [pos[n][0] for n in ["usos", "zarya", "rassvet", "soyuz-om", "soyuz-dm"]]
    assert xs == sorted(xs) and len(set(xs)) == 5  # a chain from the largest module outwards
    assert segments(layout, [False, False, True, True, False]) == [2, 1, 0, 0, 0]


def test_mission_text() -> None:
    assert mission_text(415.1) == "T+0:06:55.1"
    assert mission_text(-3.0) == "T-0:00:03.0"
    assert mission_text(86400 + 61) == "T+24:01:01.0"


def test_segment_subjects_and_unobservable_events() -> None:
    state, send = fed()
    state.ingest(send(hk([0] * 5, [True] * 4), 1.0))
    # seg:0x3 is soyuz-dm and soyuz-om (bits 0 and 1 of the layout's modules)
    state.ingest(send(Event(EventId.SEGMENT_CUT_OFF, "seg:0x3", (2.0, 10.0, 0.0), Severity.MEDIUM), 2.0))
    state.ingest(send(Event(EventId.MODULE_UNOBSERVABLE, "rassvet", (3.0, 100100.0, 0.0), Severity.MEDIUM), 3.0))
    events = state.snapshot()["events"]
    assert events[0]["modules"] == ["soyuz-dm", "soyuz-om"]
    assert events[0]["text"].startswith("SEGMENT CUT OFF soyuz-dm+soyuz-om")
    assert {m["name"]: m["marks"] for m in state.snapshot()["modules"]}["rassvet"] == ["unobservable"]
    state.ingest(send(Event(EventId.MODULE_OBSERVABLE, "rassvet", (2.0, 100100.0, 30.0), Severity.INFO), 4.0))
    assert {m["name"]: m["marks"] for m in state.snapshot()["modules"]}["rassvet"] == []


def test_event_id_without_a_dictionary_entry_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(EVENT_DEFS, EventId.ESTIMATE_UPDATED)
    state, _ = fed()
    state.ingest(_event_packet(int(EventId.ESTIMATE_UPDATED), 1, 5.0, 0))
    (e,) = state.snapshot()["events"]
    assert e["name"] == "ESTIMATE_UPDATED" and e["severity"] == "INFO" and not e["known"]
    assert e["values"] == {"value1": 1.5, "value2": 2.5, "value3": 3.5}


def test_housekeeping_before_any_layout_report_names_modules_by_position() -> None:
    send = Sender()
    state = MonitorState("udp")
    state.ingest(send(hk([ModuleStatus.SEALED] + [ModuleStatus.NOMINAL] * 4, [True] * 4), 30.0))
    snap = state.snapshot()
    assert [m["name"] for m in snap["modules"]] == ["module-1", "module-2", "module-3", "module-4", "module-5"]
    assert snap["modules"][0]["marks"] == ["sealed"] and snap["modules"][1]["pressure_pa"] == pytest.approx(99999.0)
    assert any("no layout report yet" in n for n in snap["notes"])
    state.ingest(send(LayoutReport(EPOCH, layout_to_json(station())), 60.0))
    state.ingest(send(hk([0] * 5, [True] * 4), 61.0))
    snap = state.snapshot()
    assert [m["name"] for m in snap["modules"]] == NAMES and snap["notes"] == []
    assert len(state.series_window(None, 100)["t"]) == 1  # the plots started afresh with the names
