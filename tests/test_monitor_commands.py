"""Commanding from the page: actions POSTed over real HTTP leave as telecommands over real UDP,
and the verification reports that come back in the telemetry are attached to them."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from telemetry_samples import soyuz_layout

from hullwatch.firmware.telemetry import (
    APID_COMMAND,
    Acknowledge,
    Event,
    EventId,
    FdirMode,
    LayoutReport,
    SetFdirMode,
    Severity,
    VerificationReport,
    VerificationStage,
    decode,
    encode,
    layout_to_json,
    make_packet,
)
from hullwatch.tools.errors import InputError
from hullwatch.tools.monitor import open_monitor
from hullwatch.tools.monitor.commands import REPORT_TIMEOUT_S, Commander

EPOCH = 1535572800.0


def post(url: str, body: object, content_type: str = "application/json", origin: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if origin:
        headers["Origin"] = origin
    req = urllib.request.Request(url + "api/command", data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state", timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def flight():
    """The flight software's TC link as far as this test needs it: a UDP socket that receives."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def report(stage: VerificationStage, seq: int, error: int = 0, t: float = 10.0) -> bytes:
    return encode(make_packet(VerificationReport(stage, APID_COMMAND, seq, error), time_utc=EPOCH + t))


def settle(url: str, predicate, timeout: float = 5.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        s = state(url)
        if predicate(s) or time.monotonic() > end:
            return s
        time.sleep(0.05)


def test_mode_change_sent_and_its_reports_shown(flight: socket.socket) -> None:
    host, port = flight.getsockname()
    with open_monitor("127.0.0.1:0", feed=True, tc=f"udp://{host}:{port}") as mon:
        mon.feed.write(encode(make_packet(LayoutReport(EPOCH, layout_to_json(soyuz_layout())), time_utc=EPOCH)))
        status, record = post(mon.url, {"command": "mode", "mode": "passive"})
        assert status == 202 and record["text"] == "set FDIR mode PASSIVE" and record["outcome"] == "sent"
        raw, _ = flight.recvfrom(65536)
        tc = decode(raw)
        assert (tc.apid, tc.service, tc.subtype, tc.seq, tc.ack_flags) == (APID_COMMAND, 8, 1, record["seq"], 0xF)
        assert tc.data == SetFdirMode(FdirMode.PASSIVE) and tc.dest_id == 17
        for stage in (VerificationStage.ACCEPTANCE_SUCCESS, VerificationStage.COMPLETION_SUCCESS):
            mon.feed.write(report(stage, record["seq"]))
        s = settle(mon.url, lambda s: s["commanding"]["actions"][-1]["outcome"] == "completed")
        action = s["commanding"]["actions"][-1]
        assert [st["stage"] for st in action["stages"]] == ["1/1", "1/7"]
        assert action["outcome"] == "completed" and all(st["rtt_s"] >= 0 for st in action["stages"])
        assert s["commanding"] == {"enabled": True, "to": f"udp://{host}:{port}", "actions": s["commanding"]["actions"]}

        status, record = post(mon.url, {"command": "mode", "mode": "off"})
        flight.recvfrom(65536)
        mon.feed.write(report(VerificationStage.ACCEPTANCE_FAILURE, record["seq"], error=5))
        s = settle(mon.url, lambda s: s["commanding"]["actions"][-1]["outcome"] == "failed")
        (st,) = s["commanding"]["actions"][-1]["stages"]
        assert st["stage"] == "1/2" and st["error"] == "NOT_ALLOWED_IN_MODE" and "NOT_ALLOWED_IN_MODE" in st["text"]
        # a report about someone else's request changes nothing
        mon.feed.write(report(VerificationStage.COMPLETION_SUCCESS, (record["seq"] + 100) % 16384))
        assert settle(mon.url, lambda s: False, 0.3)["commanding"]["actions"][-1]["outcome"] == "failed"


def test_acknowledge_clears_the_alarms_it_covered(flight: socket.socket) -> None:
    host, port = flight.getsockname()
    with open_monitor("127.0.0.1:0", feed=True, tc=f"udp://{host}:{port}") as mon:
        mon.feed.write(encode(make_packet(LayoutReport(EPOCH, layout_to_json(soyuz_layout())), time_utc=EPOCH)))
        for i, sev in enumerate((Severity.HIGH, Severity.INFO, Severity.MEDIUM)):
            mon.feed.write(encode(make_packet(Event(EventId.LEAK_CONFIRMED, "station", (1e-4, 8.0, 900.0), sev),
                                              seq=i, time_utc=EPOCH + i)))
        s = settle(mon.url, lambda s: s["event_count"] == 3)
        assert (s["alarms"], s["alarms_unacknowledged"]) == (2, 2)
        status, record = post(mon.url, {"command": "ack", "event": 0})
        assert status == 202 and record["text"] == "acknowledge all alarms"
        assert decode(flight.recvfrom(65536)[0]).data == Acknowledge(0)
        mon.feed.write(encode(make_packet(Event(EventId.SEGMENT_SEALED, "soyuz-om", (1.0, 6.0, 2e-4), Severity.MEDIUM),
                                          seq=3, time_utc=EPOCH + 5)))  # after the command: not covered
        mon.feed.write(report(VerificationStage.ACCEPTANCE_SUCCESS, record["seq"]))
        mon.feed.write(report(VerificationStage.COMPLETION_SUCCESS, record["seq"]))
        s = settle(mon.url, lambda s: s["alarms_unacknowledged"] == 1)
        assert (s["alarms"], s["alarms_unacknowledged"]) == (3, 1)
        assert [e["acknowledged"] for e in s["events"]] == [True, False, True, False]
        status, record = post(mon.url, {"command": "ack", "event": "SEGMENT_SEALED"})
        assert decode(flight.recvfrom(65536)[0]).data == Acknowledge(int(EventId.SEGMENT_SEALED))


def test_bad_actions_and_requests_are_refused(flight: socket.socket) -> None:
    host, port = flight.getsockname()
    with open_monitor("127.0.0.1:0", feed=True) as mon:
        assert state(mon.url)["commanding"] == {"enabled": False, "to": None, "actions": []}
        assert post(mon.url, {"command": "mode", "mode": "off"})[0] == 409
    with open_monitor("127.0.0.1:0", feed=True, tc=f"udp://{host}:{port}") as mon:
        assert post(mon.url, {"command": "mode", "mode": "sideways"}) == (400, {
            "error": "mode: expected active, passive or off, got 'sideways'"})
        assert post(mon.url, {"command": "launch"})[0] == 400
        assert post(mon.url, {"command": "ack", "event": "NO_SUCH_EVENT"})[0] == 400
        assert post(mon.url, ["mode"])[0] == 400
        assert post(mon.url, {"command": "mode", "mode": "off"}, content_type="text/plain")[0] == 415
        assert post(mon.url, {"command": "mode", "mode": "off"}, origin="http://elsewhere.example")[0] == 403
        flight.settimeout(0.3)
        with pytest.raises(socket.timeout):
            flight.recvfrom(65536)  # none of those was sent
        assert state(mon.url)["commanding"]["actions"] == []


def test_an_action_without_reports_ends_as_no_report(flight: socket.socket) -> None:
    commander = Commander(*flight.getsockname())
    try:
        record = commander.send({"command": "mode", "mode": "active"}, now=1000.0)
        assert commander.records(now=1000.0 + REPORT_TIMEOUT_S - 0.1)[0]["outcome"] == "sent"
        assert commander.records(now=1000.0 + REPORT_TIMEOUT_S + 0.1)[0]["outcome"] == "no report"
        assert record["seq"] == decode(flight.recvfrom(65536)[0]).seq
    finally:
        commander.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("hullwatch.firmware.commanding") is None,
                    reason="the flight software's telecommand path is not in this tree")
def test_page_commands_a_real_run_over_its_tc_link(tmp_path) -> None:
    """``hullwatch run --tc --monitor``: the page's actions reach the flight software over UDP and
    its reports come back to the page."""
    tc = f"udp://127.0.0.1:{_free_udp_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "hullwatch.tools", "run", "--speed", "10", "--until", "300",
                             "--tc", tc, "--monitor", "127.0.0.1:0", "--capture", str(tmp_path / "c.tm"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        url = line.split("monitor: ", 1)[1].strip()
        assert settle(url, lambda s: s["fdir"] is not None)["commanding"]["to"] == tc
        status, record = post(url, {"command": "mode", "mode": "passive"})
        assert status == 202
        s = settle(url, lambda s: s["commanding"]["actions"][-1]["outcome"] not in ("sent", "in progress"))
        action = s["commanding"]["actions"][-1]
        assert action["outcome"] == "completed", action
        assert [st["stage"] for st in action["stages"]] == ["1/1", "1/7"]
        s = settle(url, lambda s: s["fdir"]["mode"] == "PASSIVE")
        assert s["fdir"]["mode"] == "PASSIVE" and "MODE_CHANGED" in [e["name"] for e in s["events"]]
        status, record = post(url, {"command": "ack", "event": "NO_SUCH"})
        assert status == 400
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


@pytest.mark.parametrize("action, says", [
    ({"command": "ack", "event": 1.5}, "event: expected an event id"),
    ({"command": "ack", "event": True}, "event: expected an event id"),
    ({"command": "ack", "event": -1}, "0..65535"),
    ({"command": "ack", "event": 70000}, "0..65535"),
    ({"command": "mode", "mode": "active", "pad": "x" * 5_000_000}, "pad: not a key"),
])
def test_a_malformed_action_is_refused_and_nothing_rides_along(action, says) -> None:
    from hullwatch.tools.monitor.commands import build

    with pytest.raises(InputError, match=says) as info:
        build(action)
    assert len(str(info.value)) < 200


def test_recorded_telecommands_are_not_link_losses() -> None:
    """A capture holds the TCs the flight software took, with their senders' sequence counts:
    they are counted, but only telemetry counts are checked for gaps."""
    from hullwatch.tools.monitor.link import LinkHealth

    link = LinkHealth()
    for seq in range(5):
        link.packet(101, seq, 100, 0.0)
        link.packet(100, 1000 + 7 * seq, 20, 0.0, telecommand=True)
    link.packet(101, 9, 100, 0.0)
    assert (link.sequence_gaps, link.packets_missing) == (1, 4)
    assert link.to_dict(0.0)["packets_by_apid"] == {"100": 5, "101": 6}


def test_http_port_0_takes_a_free_port_not_the_telemetry_ports() -> None:
    from hullwatch.tools.monitor import open_monitor

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        udp_port = probe.getsockname()[1]
    with open_monitor("127.0.0.1:0", tm=f"udp://127.0.0.1:{udp_port}") as mon:
        assert mon.server.port != udp_port and mon.url.endswith(f":{mon.server.port}/")


def test_a_bad_query_value_is_a_json_400_with_the_reason() -> None:
    with open_monitor("127.0.0.1:0", feed=True) as mon:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(mon.url + "api/state?events=abc", timeout=10)
        assert info.value.code == 400
        assert json.loads(info.value.read()) == {"error": "events: expected an integer, got 'abc'"}
