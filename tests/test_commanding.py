"""Telecommands in process and from stored sequences, in virtual time: services 1, 3, 5, 8, 20,
the bounded queue, the capture, rerun and decode."""

from __future__ import annotations

import json

import pytest

from hullwatch.firmware.commanding import PARAMETER_IDS, parse
from hullwatch.firmware.commanding.reports import verification_body
from hullwatch.firmware.errors import ParameterError
from hullwatch.firmware.fdir.params import default_params, describe, params_from_dict
from hullwatch.firmware.flight import FlightSoftware
from hullwatch.firmware.telemetry import ListSink, fast_decode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.types import EventId, FdirMode, IsolationState
from hullwatch.hal import open as open_device
from hullwatch.tools import cli

E = P.VerificationError


@pytest.fixture
def fs():
    sink = ListSink()
    device = open_device("sim://soyuz-ms09")
    flight = FlightSoftware(device, sinks=[sink])
    flight.sink = sink
    flight.run(1.0)
    yield flight
    flight.close()
    device.close()


def reports(flight, since: int = 0) -> list[P.Packet]:
    return [p for p in (fast_decode(r) for r in flight.sink.packets_list[since:]) if p.apid == P.APID_COMMAND]


def verdicts(flight, receipt) -> list[tuple[int, int]]:
    return [(p.subtype, p.data.error_code) for p in reports(flight)
            if isinstance(p.data, P.VerificationReport) and p.data.request_seq == receipt.seq]


def test_in_process_bad_valve_is_refused_with_a_failure_report(fs):
    receipt = fs.telecommand(P.ValveCommand(99, False))
    assert not receipt and receipt.error == E.BAD_ARGUMENT
    fs.run(1.5)
    assert verdicts(fs, receipt) == [(2, E.BAD_ARGUMENT)]


def test_in_process_value_out_of_wire_range_is_refused(fs):
    receipt = fs.telecommand(P.ValveCommand(300, False))
    assert not receipt
    fs.run(1.5)
    assert verdicts(fs, receipt) == [(2, E.BAD_ARGUMENT)]


def test_mode_and_ack_complete(fs):
    r = fs.telecommand(P.SetFdirMode(FdirMode.PASSIVE))
    a = fs.telecommand(P.Acknowledge(int(EventId.LEAK_CONFIRMED)))
    fs.run(1.5)
    assert fs.fdir.mode == FdirMode.PASSIVE
    assert verdicts(fs, r) == [(1, 0), (7, 0)] and verdicts(fs, a) == [(1, 0), (7, 0)]


def test_queue_overflow_is_reported_for_every_packet(fs):
    sent = [fs.telecommand(P.AreYouAlive()) for _ in range(fs.commanding.queue.capacity + 20)]
    assert sum(1 for r in sent if not r) == 20
    fs.run(1.5)
    codes = [verdicts(fs, r) for r in sent]
    assert codes.count([(2, E.QUEUE_FULL)]) == 20
    assert codes.count([(1, 0), (7, 0)]) == fs.commanding.queue.capacity


def test_beyond_the_refusal_ring_the_loss_is_an_event(fs):
    q = fs.commanding.queue
    raw = fs.commanding.encode(P.AreYouAlive(), 1)
    for _ in range(q.capacity + q.refused_capacity + 5):
        fs.submit(raw)
    events = []
    fs.on_event = events.append
    fs.run(1.5)
    lost = [e for e in events if e[1] == EventId.TELECOMMANDS_LOST]
    assert len(lost) == 1 and lost[0][4] == 5.0
    assert q.health()["lost"] == 5 and q.health()["refused"] == q.refused_capacity


def test_housekeeping_off_on_and_period(fs):
    def hk_times(since):
        return [round(p.time_utc - fs.tm.epoch_utc, 3) for p in (fast_decode(r) for r in fs.sink.packets_list[since:])
                if isinstance(p.data, P.Housekeeping)]
    fs.telecommand(P.DisableHousekeeping([1]))
    fs.run(1.1)
    n = len(fs.sink.packets_list)
    fs.run(5.0)
    assert hk_times(n) == []
    fs.telecommand(P.EnableHousekeeping([1]))
    fs.telecommand(P.SetHousekeepingPeriod([(1, 2000)]))
    fs.run(5.1)
    n = len(fs.sink.packets_list)
    fs.run(12.0)
    assert hk_times(n) == [6.0, 8.0, 10.0]


def test_raw_samples_can_be_disabled(fs):
    fs.telecommand(P.DisableHousekeeping([2]))
    fs.run(1.2)
    n = len(fs.sink.packets_list)
    fs.run(3.0)
    assert not any(isinstance(fast_decode(r).data, P.RawSamples) for r in fs.sink.packets_list[n:])


def test_disabled_event_is_not_reported_but_fdir_still_acts(fs):
    fs.telecommand(P.DisableEvents([int(EventId.MODE_CHANGED)]))
    fs.run(1.2)
    n = len(fs.sink.packets_list)
    fs.telecommand(P.SetFdirMode(FdirMode.PASSIVE))
    fs.run(2.0)
    assert fs.fdir.mode == FdirMode.PASSIVE
    assert not any(isinstance(fast_decode(r).data, P.Event) for r in fs.sink.packets_list[n:])
    fs.telecommand(P.EnableEvents([int(EventId.MODE_CHANGED)]))
    fs.telecommand(P.SetFdirMode(FdirMode.ACTIVE))
    fs.run(3.0)
    assert any(isinstance(fast_decode(r).data, P.Event) for r in fs.sink.packets_list[n:])


def test_parameter_set_is_validated_exactly_as_the_file(fs):
    bad = fs.telecommand(P.SetParameter(0, "isolation.max_attempts", [2.5]))
    good = fs.telecommand(P.SetParameter(PARAMETER_IDS["leak.windows_s"], "", [2.0, 8.0, 64.0]))
    fs.run(1.5)
    fail = [p.data for p in reports(fs) if isinstance(p.data, P.VerificationReport) and p.data.request_seq == bad.seq][-1]
    with pytest.raises(ParameterError) as file_error:
        params_from_dict({"isolation": {"max_attempts": 2.5}}, "telecommand 20/3")
    assert (fail.stage, fail.error_code, fail.detail) == (4, E.PARAMETERS_INVALID, str(file_error.value))
    assert verdicts(fs, good) == [(1, 0), (3, 0), (7, 0)]
    assert fs.params.leak.windows_s == (2.0, 8.0, 64.0)
    assert P.ParameterReport(20, "leak.windows_s", [2.0, 8.0, 64.0]) in [p.data for p in reports(fs)]


def test_load_params_refused_table_keeps_the_old_one(fs):
    before = fs.params
    r = fs.telecommand(P.LoadFdirParams("[leak]\nmiss_prob = 0.9\n"))
    fs.run(1.5)
    assert fs.params is before
    assert verdicts(fs, r) == [(1, 0), (4, E.PARAMETERS_INVALID)]


def test_valve_command_not_allowed_while_isolating():
    sink = ListSink()
    device = open_device("sim://soyuz-ms09")
    flight = FlightSoftware(device, sinks=[sink])
    try:
        t = 300.0
        while flight.fdir.isolator.state not in (IsolationState.SPLITTING, IsolationState.OBSERVING) and t < 600:
            t += 1.0
            flight.run(t)
        assert flight.fdir.isolator.state in (IsolationState.SPLITTING, IsolationState.OBSERVING)
        receipt = flight.telecommand(P.ValveCommand(0, True))
        assert not receipt and receipt.error == E.NOT_ALLOWED_IN_MODE
    finally:
        flight.close()
        device.close()


def test_fast_verification_bodies_equal_the_declaration():
    for stage in P.VerificationStage:
        report = P.VerificationReport(stage, 100, 1234, 5 if stage in (2, 4, 8) else 0,
                                      "élan " * 80 if stage in (2, 4, 8) else "")
        pdef = P.definition_for(report)
        built = pdef.body.build(pdef.to_container(P.VerificationReport(
            stage, 100, 1234, report.error_code,
            verification_body(stage, P.request_word(100, 1234), 5, report.detail)[7:].decode())))
        assert verification_body(stage, P.request_word(100, 1234), report.error_code, report.detail) == built


def test_every_fdir_parameter_has_a_unique_id():
    names = {f"{s}.{k}" for s, d in describe(default_params()).items() for k in d}
    assert set(PARAMETER_IDS) == names
    assert len(set(PARAMETER_IDS.values())) == len(PARAMETER_IDS) and 0 not in PARAMETER_IDS.values()


def test_parse_layers_match_the_declarations():
    raw = P.encode(P.make_packet(P.SetParameter(19, "", [0.02]), seq=5))
    req = parse(raw)
    assert (req.seq, req.command, req.name) == (5, P.SetParameter(19, "", [0.02]), "set_parameter")


SEQUENCE = """
[[commands]]
at_s = 400
command = "mode"
mode = "passive"

[[commands]]
at_s = 450
command = "valve"
valve = "om-rassvet"
open = false

[[commands]]
at_s = 460
command = "get"
param = "leak.miss_prob"
"""


def test_sequence_runs_in_virtual_time_and_reruns_without_difference(tmp_path, capsys):
    seq = tmp_path / "seq.toml"
    seq.write_text(SEQUENCE)
    cap = tmp_path / "run.tm"
    assert cli.main(["run", "--until", "500", "--commands", str(seq), "--capture", str(cap), "--quiet"]) in (0, 1)
    capsys.readouterr()
    assert cli.main(["decode", str(cap), "--service", "1"]) == 0
    table = capsys.readouterr().out
    assert table.count("completion success") == 3
    assert cli.main(["decode", str(cap)]) == 0
    out = capsys.readouterr().out
    tc = [line for line in out.splitlines() if "(telecommand)" in line]
    assert "set FDIR mode PASSIVE" in tc[0] and "command valve 1 closed (om-rassvet)" in tc[1]
    assert cli.main(["decode", str(cap), "--format", "jsonl", "--apid", "100"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"packet": "parameter_report", "command": "leak.miss_prob (id 19) = 0.01"}.items() <= [
        r for r in rows if r["packet"] == "parameter_report"][0].items()
    assert [r["packet"] for r in rows if r["type"] == "TC"] == ["set_fdir_mode", "valve_command", "report_parameter"]
    assert cli.main(["rerun", str(cap)]) == 0
    assert "no difference" in capsys.readouterr().out


@pytest.mark.parametrize("body,key", [
    ('[[commands]]\ncommand = "ping"\n', "commands[0].at_s"),
    ('[[commands]]\nat_s = 5\ncommand = "valve"\nvalve = "nowhere"\nopen = false\n', "commands[0].valve"),
    ('[[commands]]\nat_s = 5\ncommand = "fly"\n', "commands[0].command"),
    ('[[commands]]\nat_s = 5\ncommand = "mode"\nmode = "loud"\n', "commands[0].mode"),
    ('[[commands]]\nat_s = -1\ncommand = "ping"\n', "commands[0].at_s"),
    ('[[commands]]\nat_s = 5\ncommand = "ping"\nextra = 1\n', "commands[0].extra"),
    ('commands = 3\n', "commands"),
])
def test_bad_sequence_file_exits_2_naming_file_and_key(tmp_path, capsys, body, key):
    seq = tmp_path / "bad.toml"
    seq.write_text(body)
    assert cli.main(["run", "--until", "10", "--commands", str(seq), "--quiet",
                     "--capture", str(tmp_path / "x.tm")]) == 2
    err = capsys.readouterr().err
    assert str(seq) in err and key in err and "Traceback" not in err


def test_commanding_doc_matches_the_code():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "commanding.md").read_text()
    ids = {name: int(i) for i, name in re.findall(r"\| (\d+) \| `([a-z_]+\.[a-z_0-9]+)`", doc)}
    assert ids == PARAMETER_IDS
    ping = P.encode(P.make_packet(P.AreYouAlive(), seq=1, dest_id=16, ack_flags=15))
    valve = P.encode(P.make_packet(P.ValveCommand(4, False), seq=2, dest_id=16, ack_flags=15))
    assert ping.hex(" ") in doc
    assert " | ".join([valve[:11].hex(" "), valve[11:15].hex(" "), valve[15:].hex(" ")]) in doc
    for code in E:
        if code:
            assert f"| {int(code)} | `{code.name}` |" in doc


def test_example_sequence_file_loads():
    from pathlib import Path

    from hullwatch.tools.commanding import load_sequence

    seq = load_sequence(Path(__file__).resolve().parents[1] / "examples" / "close-hatch.toml",
                        ["dm-om", "om-rassvet", "rassvet-zarya", "zarya-zvezda", "zarya-usos", "repress"])
    assert [c.at_s for c in seq] == [60.0, 120.0, 600.0]
    assert seq[2].command == P.ValveCommand(4, False)


EVERY_VERB = """
[[commands]]
at_s = 1
command = "ping"

[[commands]]
at_s = 1
command = "hk"
period_s = 2

[[commands]]
at_s = 2
command = "hk"
on = false

[[commands]]
at_s = 3
command = "hk"
on = true

[[commands]]
at_s = 4
command = "events"
enable = false
ids = ["CYCLE_OVERRUN", 34]

[[commands]]
at_s = 5
command = "events"
enable = true
ids = [34]

[[commands]]
at_s = 6
command = "params"
file = "tuned.toml"

[[commands]]
at_s = 7
command = "params"
toml = "[leak]\\nmiss_prob = 0.01\\n"

[[commands]]
at_s = 8
command = "set"
param = 20
value = [2.0, 4.0, 8.0, 16.0]

[[commands]]
at_s = 9
command = "get"
param = "leak.windows_s"

[[commands]]
at_s = 10
command = "ack"
event = "LEAK_CONFIRMED"

[[commands]]
at_s = 11
command = "mode"
mode = "off"

[[commands]]
at_s = 12
command = "valve"
valve = 4
open = false
"""


def test_a_sequence_with_every_verb_completes_each_command(tmp_path, capsys):
    (tmp_path / "tuned.toml").write_text("[leak]\nmiss_prob = 0.02\n")
    seq = tmp_path / "every.toml"
    seq.write_text(EVERY_VERB)
    cap = tmp_path / "every.tm"
    cli.main(["run", "--until", "30", "--commands", str(seq), "--capture", str(cap)])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "telecommand " in line]
    assert len(lines) == 13 and all(line.endswith(": completed") for line in lines), out
    assert cli.main(["rerun", str(cap)]) == 0
    assert "telecommands: 13 recorded" in capsys.readouterr().out


def test_fuzzed_packets_each_get_one_acceptance_report_and_the_loop_goes_on(fs):
    """Valid telecommands with random bytes changed, cut or added (CRC fixed or not): every one
    gets exactly one 1/1 or 1/2, nothing raises, and the loop keeps its cycle."""
    import binascii
    import random

    rng = random.Random(13)
    good = [P.encode(P.make_packet(c, seq=0)) for c in (
        P.ValveCommand(1, True), P.SetFdirMode(FdirMode.PASSIVE), P.Acknowledge(0), P.AreYouAlive(),
        P.LoadFdirParams("[leak]\nmiss_prob = 0.02\n"), P.SetParameter(19, "", [0.02]),
        P.ReportParameter(0, "leak.windows_s"), P.EnableEvents([1, 2]), P.SetHousekeepingPeriod([(1, 1000)]),
        P.OneShotHousekeeping([3]))]
    errors_before = fs.executive.errors
    for batch in range(8):
        n0 = len(fs.sink.packets_list)
        for i in range(fs.commanding.queue.capacity):
            raw = bytearray(rng.choice(good))
            for _ in range(rng.randint(1, 3)):
                kind = rng.random()
                if kind < 0.5 and len(raw) > 1:
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
                elif kind < 0.75 and raw:
                    del raw[rng.randrange(len(raw)):]
                else:
                    raw += bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
            if rng.random() < 0.7 and len(raw) >= 4:  # mostly a right CRC: reach the later checks
                raw[2:4] = (0xC000 | (batch * 100 + i)).to_bytes(2, "big")
                if len(raw) >= 8:
                    raw[4:6] = (len(raw) - 7).to_bytes(2, "big")
                    raw[-2:] = binascii.crc_hqx(bytes(raw[:-2]), 0xFFFF).to_bytes(2, "big")
            fs.submit(bytes(raw))
        fs.run(fs.executive.clock.now() + 0.2)
        acceptance = [p for p in (fast_decode(r) for r in fs.sink.packets_list[n0:])
                      if p.apid == P.APID_COMMAND and p.service == 1 and p.subtype in (1, 2)]
        assert len(acceptance) == fs.commanding.queue.capacity
    assert fs.executive.errors == errors_before


def test_lists_longer_than_64_items_are_refused(fs):
    r = fs.telecommand(P.DisableEvents([1] * 65))
    assert not r and r.error == E.BAD_ARGUMENT and "at most 64" in r.detail


def test_a_refused_tc_whose_data_does_not_decode_is_not_recorded(fs):
    """A valve TC with open flag 2 (CRC right) is refused BAD_ARGUMENT and not written to the
    telemetry: a capture reader could not decode it and would call the capture damaged."""
    import binascii

    raw = bytearray(P.encode(P.make_packet(P.ValveCommand(1, True), seq=77)))
    raw[-3] = 2  # the open flag, the last data byte
    raw[-2:] = binascii.crc_hqx(bytes(raw[:-2]), 0xFFFF).to_bytes(2, "big")
    n0 = len(fs.sink.packets_list)
    assert fs.commanding.queue.offer(bytes(raw))
    fs.run(1.5)
    new = fs.sink.packets_list[n0:]
    decoded = [fast_decode(r) for r in new]  # every packet written decodes (nothing damaged)
    assert not any(p.packet_type == P.PacketType.TC for p in decoded)
    failures = [p for p in decoded if isinstance(p.data, P.VerificationReport) and p.data.request_seq == 77]
    assert [(p.subtype, p.data.error_code) for p in failures] == [(2, E.BAD_ARGUMENT)]


def test_set_parameter_value_count_and_huge_integers(fs):
    """Two values for a one-value parameter are a BAD_ARGUMENT at acceptance (docs/commanding.md's
    error table); 1e300 for an integer parameter is refused with a short reason."""
    receipt = fs.telecommand(P.SetParameter(0, "leak.miss_prob", [0.02, 0.03]))
    assert not receipt and receipt.error == E.BAD_ARGUMENT and "takes one" in receipt.detail
    receipt = fs.telecommand(P.SetParameter(0, "isolation.max_attempts", [1e300]))
    assert receipt
    fs.run(1.5)
    failure = [p for p in reports(fs) if isinstance(p.data, P.VerificationReport)
               and p.data.request_seq == receipt.seq and p.subtype == 4]
    assert failure and len(failure[0].data.detail) < 200 and "1e+300" in failure[0].data.detail


def test_a_flood_of_refusals_is_reported_a_bounded_number_per_cycle():
    from hullwatch.firmware.commanding.queue import REFUSALS_PER_CYCLE, TcQueue

    q = TcQueue()
    raw = P.encode(P.make_packet(P.AreYouAlive(), seq=1))
    for _ in range(q.capacity + 1000):
        q.offer(raw)
    reported = 0
    for _cycle in range(10):
        items, refusals, lost = q.take()
        assert len(refusals) <= REFUSALS_PER_CYCLE and lost == 0
        reported += len(refusals)
        if not q.pending:
            break
    assert reported == 1000 and not q.pending
