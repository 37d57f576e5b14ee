"""``hullwatch command`` against a running flight software: each verification stage printed with
its round trip, exit 0 on completion, 1 on a failure report, 4 with no answer, 2 for bad input."""

from __future__ import annotations

import pytest

from hullwatch.tools import cli

pytest.importorskip("spacepackets")  # tc_live builds telecommands with it

from tc_live import LiveFlight, free_udp_port  # noqa: E402


@pytest.fixture(scope="module")
def live():
    flight = LiveFlight(until=600.0, speed=5.0)
    flight.release_tm()  # the command client listens on the telemetry address
    yield flight
    flight.stop()


def command(live, *words: str) -> list[str]:
    return ["command", "--to", live.tc_url, "--tm", live.tm_url, "--timeout", "5", *words]


@pytest.mark.parametrize("words,code,expect", [
    (("ping",), 0, ["1/1  acceptance success", "17/2  alive report", "1/7  completion success"]),
    (("valve", "zarya-usos", "close"), 0, ["1/3  start success", "1/7  completion success"]),
    (("valve", "4", "open"), 0, ["1/7  completion success"]),
    (("valve", "99", "open"), 1, ["1/2  acceptance failure: BAD_ARGUMENT (valve index 99"]),
    (("mode", "passive"), 0, ["1/7  completion success"]),
    (("mode", "active"), 0, ["1/7  completion success"]),
    (("ack",), 0, ["1/7"]),
    (("ack", "LEAK_CONFIRMED"), 0, ["1/7"]),
    (("get", "leak.miss_prob"), 0, ["20/2  leak.miss_prob (id 19) = 0.01"]),
    (("get", "37"), 0, ["20/2  valves.feedback_tolerance (id 37) = 0.1"]),
    (("set", "leak.miss_prob", "0.7"), 1, ["1/4  start failure: PARAMETERS_INVALID (telecommand 20/3: "
                                           "leak.miss_prob: expected a number in (0, 0.5), got 0.7)"]),
    (("set", "leak.miss_prob", "0.02"), 0, ["20/2  leak.miss_prob (id 19) = 0.02", "1/7"]),
    (("hk", "period", "2"), 0, ["1/7"]),
    (("hk", "off"), 0, ["1/7"]),
    (("hk", "on"), 0, ["1/7"]),
    (("events", "disable", "CYCLE_OVERRUN", "34"), 0, ["1/7"]),
    (("events", "enable", "CYCLE_OVERRUN", "34"), 0, ["1/7"]),
])
def test_verbs(live, capsys, words, code, expect):
    assert cli.main(command(live, *words)) == code
    out = capsys.readouterr().out
    for text in expect:
        assert text in out, out
    assert " ms)" in out


def test_params_file(live, capsys, tmp_path):
    good = tmp_path / "p.toml"
    good.write_text("[leak]\nmiss_prob = 0.02\n")
    assert cli.main(command(live, "params", str(good))) == 0
    assert "1/3  start success" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[leak]\nmiss_prob = 0.9\n")
    assert cli.main(command(live, "params", str(bad))) == 1
    assert "PARAMETERS_INVALID" in capsys.readouterr().out


def test_no_answer_exits_4(capsys):
    port, tm = free_udp_port(), free_udp_port()
    code = cli.main(["command", "--to", f"udp://127.0.0.1:{port}", "--tm", f"udp://127.0.0.1:{tm}",
                     "--timeout", "0.5", "ping"])
    assert code == 4
    assert "no answer" in capsys.readouterr().err


@pytest.mark.parametrize("words", [("fly",), ("valve", "3"), ("mode", "loud"), ("set", "leak.miss_prob", "x"),
                                   ("params", "/nonexistent.toml"), ("hk", "period", "0")])
def test_bad_arguments_exit_2(capsys, words):
    port, tm = free_udp_port(), free_udp_port()
    assert cli.main(["command", "--to", f"udp://127.0.0.1:{port}", "--tm", f"udp://127.0.0.1:{tm}",
                     "--timeout", "0.5", *words]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hullwatch: error:") and "Traceback" not in err


def test_run_tc_bad_url_exits_2(capsys, tmp_path):
    assert cli.main(["run", "--until", "5", "--tc", "tcp://x:1", "--quiet", "--capture", str(tmp_path / "x.tm")]) == 2
    assert "--tc" in capsys.readouterr().err


def test_run_tc_address_in_use_exits_4(capsys, tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert cli.main(["run", "--until", "5", "--tc", f"udp://127.0.0.1:{port}", "--quiet",
                         "--capture", str(tmp_path / "x.tm")]) == 4
    assert "cannot listen" in capsys.readouterr().err


def test_run_timeline_shows_each_telecommand_outcome(capsys, tmp_path):
    seq = tmp_path / "seq.toml"
    seq.write_text('[[commands]]\nat_s = 2\ncommand = "set"\nparam = "leak.miss_prob"\nvalue = 0.7\n\n'
                   '[[commands]]\nat_s = 3\ncommand = "valve"\nvalve = "zarya-usos"\nopen = false\n')
    cli.main(["run", "--until", "20", "--commands", str(seq), "--capture", str(tmp_path / "x.tm")])
    out = capsys.readouterr().out
    assert ("telecommand 20/3 set leak.miss_prob = 0.7, seq 0: not started: PARAMETERS_INVALID "
            "(telecommand 20/3: leak.miss_prob: expected a number in (0, 0.5), got 0.7)") in out
    assert "telecommand 8/1 command valve 4 closed (zarya-usos), seq 1: completed" in out


def test_run_tc_and_tm_on_the_same_address_exits_2(capsys, tmp_path):
    port = free_udp_port()
    assert cli.main(["run", "--until", "5", "--tc", f"udp://127.0.0.1:{port}", "--tm", f"udp://127.0.0.1:{port}",
                     "--quiet", "--capture", str(tmp_path / "x.tm")]) == 2
    assert "the same address" in capsys.readouterr().err
