"""The TC link end to end: telecommands built by spacepackets, sent over a real UDP socket to a
running flight software, every service 1 report read back from its UDP telemetry."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("spacepackets")

from hullwatch.firmware.telemetry import packets as P  # noqa: E402

from tc_live import END, LiveFlight, pus_tc, stages  # noqa: E402

E = P.VerificationError


@pytest.fixture(scope="module")
def live():
    flight = LiveFlight(until=600.0, speed=5.0)
    yield flight
    flight.stop()


def test_ping_gets_acceptance_alive_and_completion(live):
    live.send(pus_tc(17, 1, seq=42))
    got = live.reports(seq=42, until_stage={7, 8})
    assert [p.name for p in got] == ["verification_acceptance_success", "alive_report",
                                     "verification_completion_success"]
    assert all(p.data.request_apid == 100 for p in got if isinstance(p.data, P.VerificationReport))


def _valve(index: int, open_: int) -> bytes:
    return struct.pack(">HBB", 1, index, open_)


def _flip_last(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 0xFF])


BAD = {
    "bad CRC": (lambda: _flip_last(pus_tc(17, 1, seq=50)), E.BAD_CRC),
    "unknown service": (lambda: pus_tc(99, 1, seq=51), E.UNKNOWN_COMMAND),
    "unknown subtype": (lambda: pus_tc(17, 9, seq=52), E.UNKNOWN_COMMAND),
    "unknown function": (lambda: pus_tc(8, 1, struct.pack(">HB", 9, 0), seq=53), E.UNKNOWN_COMMAND),
    "data too long": (lambda: pus_tc(8, 1, _valve(0, 1) + b"\x00", seq=54), E.WRONG_LENGTH),
    "data too short": (lambda: pus_tc(8, 1, struct.pack(">HB", 1, 0), seq=55), E.WRONG_LENGTH),
    "length field": (lambda: pus_tc(17, 1, seq=56) + b"\x00", E.WRONG_LENGTH),
    "bad valve index": (lambda: pus_tc(8, 1, _valve(99, 0), seq=57), E.BAD_ARGUMENT),
    "bad open flag": (lambda: pus_tc(8, 1, _valve(0, 7), seq=58), E.BAD_ARGUMENT),
    "bad mode": (lambda: pus_tc(8, 1, struct.pack(">HB", 2, 7), seq=59), E.BAD_ARGUMENT),
    "unknown event id": (lambda: pus_tc(8, 1, struct.pack(">HH", 3, 999), seq=60), E.BAD_ARGUMENT),
    "unknown parameter": (lambda: pus_tc(20, 1, struct.pack(">HB", 9999, 0), seq=61), E.UNKNOWN_PARAMETER),
    "wrong APID": (lambda: pus_tc(17, 1, seq=62, apid=55), E.ILLEGAL_APID),
    "bad hk interval": (lambda: pus_tc(3, 31, struct.pack(">BHI", 1, 1, 150), seq=63), E.BAD_ARGUMENT),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_packet_gets_its_failure_report_and_the_loop_goes_on(live, case):
    make, code = BAD[case]
    raw = make()
    live.send(raw)
    seq = int.from_bytes(raw[2:4], "big") & 0x3FFF
    got = live.reports(seq=seq, until_stage=END)
    assert stages(got) == [(2, code)], got
    assert got[-1].data.detail  # the reason, in words
    live.send(pus_tc(17, 1, seq=100 + seq))  # still alive
    assert stages(live.reports(seq=100 + seq, until_stage=END)) == [(1, 0), (7, 0)]


def test_garbage_shorter_than_a_header_is_reported(live):
    live.send(b"\x18\x64")
    got = live.reports(until_stage=END)
    assert stages(got)[-1] == (2, E.WRONG_LENGTH)
    assert got[-1].data.request_word == 0x18640000


def test_valve_command_reports_start_then_completion_after_travel(live):
    live.send(pus_tc(8, 1, _valve(4, 0), seq=70))
    got = live.reports(seq=70, until_stage=END, timeout=20)
    assert stages(got) == [(1, 0), (3, 0), (7, 0)]
    assert got[2].time_utc - got[1].time_utc > 1.0  # the hatch took its actuation time
    live.send(pus_tc(8, 1, _valve(4, 1), seq=71))
    assert stages(live.reports(seq=71, until_stage=END, timeout=20)) == [(1, 0), (3, 0), (7, 0)]


def test_parameter_report_and_refused_value(live):
    live.send(pus_tc(20, 1, struct.pack(">HB", 0, 14) + b"leak.miss_prob", seq=80))
    got = live.reports(seq=80, until_stage=END)
    report = [p.data for p in got if isinstance(p.data, P.ParameterReport)]
    assert report == [P.ParameterReport(19, "leak.miss_prob", [0.01])]
    live.send(pus_tc(20, 3, struct.pack(">HBBd", 19, 0, 1, 0.7), seq=81))
    got = live.reports(seq=81, until_stage=END)
    assert stages(got) == [(1, 0), (4, E.PARAMETERS_INVALID)]
    assert got[-1].data.detail == "telecommand 20/3: leak.miss_prob: expected a number in (0, 0.5), got 0.7"


def test_commands_over_the_link_are_in_the_capture_and_rerun_without_difference(tmp_path):
    from hullwatch.tools.ground import iter_capture
    from hullwatch.tools.captures.rerun import rerun_capture

    cap = tmp_path / "live.tm"
    run = LiveFlight(until=600.0, speed=10.0, capture=str(cap))
    try:
        run.send(pus_tc(8, 1, struct.pack(">HB", 2, 1), seq=1))  # mode passive
        assert stages(run.reports(seq=1, until_stage=END)) == [(1, 0), (7, 0)]
        run.send(pus_tc(20, 3, struct.pack(">HBBd", 19, 0, 1, 0.02), seq=2))
        assert stages(run.reports(seq=2, until_stage=END)) == [(1, 0), (3, 0), (7, 0)]
        run.send(pus_tc(8, 1, _valve(4, 0), seq=3))
        assert stages(run.reports(seq=3, until_stage=END, timeout=20)) == [(1, 0), (3, 0), (7, 0)]
        run.send(pus_tc(8, 1, _valve(99, 0), seq=4))
        assert stages(run.reports(seq=4, until_stage=END)) == [(2, E.BAD_ARGUMENT)]
    finally:
        run.stop()
    recorded = [(p.packet.service, p.packet.subtype, p.packet.seq) for p in iter_capture(cap)
                if p.packet.packet_type == P.PacketType.TC]
    assert recorded == [(8, 1, 1), (20, 3, 2), (8, 1, 3), (8, 1, 4)]
    report = rerun_capture(cap)
    assert report.commands == 4
    assert report.identical, report.diffs


def test_superseded_valve_command_gets_a_completion_failure(live):
    live.send(pus_tc(8, 1, _valve(3, 0), seq=90))
    live.send(pus_tc(8, 1, _valve(3, 1), seq=91))  # same cycle, or the next: before the hatch closed
    first = live.reports(seq=90, until_stage=END, timeout=20)
    assert stages(first) == [(1, 0), (3, 0), (8, E.EXECUTION_FAILED)]
    assert "superseded by request 91" in first[-1].data.detail
    assert stages(live.reports(seq=91, until_stage=END, timeout=20))[-1] == (7, 0)


def test_a_burst_is_accounted_for_report_by_report(live):
    """300 pings at once: each one ends with its completion or a QUEUE_FULL refusal."""
    seqs = range(1000, 1300)
    for seq in seqs:
        live.send(pus_tc(17, 1, seq=seq))
    ended: dict[int, tuple[int, int]] = {}

    def note(p: P.Packet) -> bool:
        d = p.data
        if isinstance(d, P.VerificationReport) and d.request_seq in seqs and d.stage in END:
            ended[d.request_seq] = (d.stage, d.error_code)
        return len(ended) == len(seqs)

    live.reports(stop=note, timeout=10)
    assert len(ended) == len(seqs)
    assert set(ended.values()) <= {(7, 0), (2, E.QUEUE_FULL)}


def test_the_minimal_client_in_the_docs_works(tmp_path, capsys):
    """docs/commanding.md's standard-library client, run as written (ports swapped for free ones)."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "commanding.md").read_text()
    code = re.search(r"A minimal client needs nothing but the standard library:\n\n```python\n(.*?)```", doc, re.S).group(1)
    run = LiveFlight(until=600.0, speed=5.0)
    try:
        run.release_tm()
        tm_port = int(run.tm_url.rsplit(":", 1)[1])
        code = code.replace("10025", str(tm_port)).replace("10024", str(run.tc_port))
        code = code.replace("rx.bind(", "rx.settimeout(10); rx.bind(")
        exec(compile(code, "docs/commanding.md", "exec"), {})  # noqa: S102 - the documented example
    finally:
        run.stop()
    assert capsys.readouterr().out.split() == ["1/1", "1/7"]
