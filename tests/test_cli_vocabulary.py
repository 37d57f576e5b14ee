"""One vocabulary of flags: the same flag for the same idea in every verb, one time syntax,
usage errors that name the verb, the flag and the value, with a did-you-mean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hullwatch.tools.cli import build_parser, main
from hullwatch.tools.errors import InputError
from hullwatch.tools.timeparse import parse_duration, parse_time, parse_time_spec
from hullwatch.tools.units import hours_minutes, kg_day, kpa_mmhg, plural, size_text


@pytest.mark.parametrize("argv", [
    ["board-info", "--device", "emuboard://x"],
    ["board-info", "--port", "emuboard://x"],
    ["flash", "b.toml", "--device", "emuboard://x"],
    ["flash", "b.toml", "--port", "emuboard://x"],
    ["replay", "c.tm", "--device", "udp://127.0.0.1:9"],
    ["replay", "c.tm", "--to", "udp://127.0.0.1:9"],
    ["board", "--device", "loop://"],
    ["board", "--port", "loop://"],
    ["run", "--device", "sim://"],
    ["run", "--port", "sim://"],
])
def test_device_flag_everywhere_with_its_aliases(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.device == argv[argv.index(next(a for a in argv if a in ("--device", "--port", "--to"))) + 1]


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_unknown_option_shows_the_verbs_usage_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(["run", "--untill", "5m"], capsys)
    assert err.startswith("usage: hullwatch run ")
    assert "hullwatch run: error: unrecognized arguments: --untill 5m (did you mean --until?)" in err
    err = _usage_error(["decode", "x.tm", "--formt", "csv"], capsys)
    assert err.startswith("usage: hullwatch decode ") and "did you mean --format?" in err


def test_misspelt_verb_and_choice_get_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert "did you mean 'decode'?" in _usage_error(["decod", "x.tm"], capsys)
    err = _usage_error(["run", "--mode", "pasive"], capsys)
    assert err.startswith("usage: hullwatch run") and "did you mean 'passive'?" in err


def test_time_syntax_is_the_same_in_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    p = build_parser()
    assert p.parse_args(["run", "--until", "1h30m"]).until == 5400.0
    assert p.parse_args(["decode", "x.tm", "--since", "15m"]).since == ("mission", 900.0)
    assert p.parse_args(["decode", "x.tm", "--until", "2018-08-29T21:00:00Z"]).until[0] == "utc"
    assert p.parse_args(["plot", "x.tm", "-o", "a.png", "--since", "15m"]).since == "15m"
    for argv in (["run", "--until", "soon"], ["decode", "x.tm", "--since", "soon"],
                 ["plot", "x.tm", "-o", "a.png", "--until", "soon"]):
        err = _usage_error(argv, capsys)
        assert f"argument {argv[-2]}: 'soon': expected" in err


def test_time_parser() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200 and parse_duration("1d") == 86400
    assert parse_duration("1h 30m") == 5400 and parse_duration("15min") == 900 and parse_duration("0.5h") == 1800
    assert parse_time_spec("600") == ("mission", 600.0)
    assert parse_time("2018-08-29T21:00:00Z", epoch_utc=1535572800.0) == 3600.0
    for bad in ("", "ten", "5x", "-3", "0", "inf", "nan"):
        with pytest.raises(InputError, match="--until"):
            parse_duration(bad)


def test_plot_format_checked_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(["run", "--plot", str(tmp_path / "a.xyz")], capsys)
    assert "argument --plot:" in err and "cannot write '.xyz'" in err and ".png" in err
    assert list(tmp_path.iterdir()) == []  # nothing ran, no capture written
    assert build_parser().parse_args(["run", "--plot", "out"]).plot == "out.png"


def test_tm_url_names_the_flag_and_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(["run", "--tm", "udp://nosuchhost.invalid:9"], capsys)
    assert "argument --tm: 'udp://nosuchhost.invalid:9': cannot resolve host 'nosuchhost.invalid'" in err
    err = _usage_error(["run", "--tm", "tcp://127.0.0.1:9"], capsys)
    assert "expected udp://HOST:PORT" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("hullwatch ")


def _capture(tmp_path: Path) -> Path:
    cap = tmp_path / "a.tm"
    assert main(["run", "--until", "30", "--capture", str(cap), "--quiet"]) == 0
    return cap


@pytest.mark.parametrize("verb", [["decode"], ["plot", "-o", "PNG"], ["replay", "--device", "udp://127.0.0.1:9"],
                                  ["rerun"]])
def test_a_file_that_is_not_a_capture_exits_2(verb: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes, not telemetry\n" * 10)
    argv = [verb[0], str(text), *[a.replace("PNG", str(tmp_path / "x.png")) for a in verb[1:]]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{text}: not a telemetry capture" in err and "Traceback" not in err


def test_empty_capture_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "e.tm"
    empty.write_bytes(b"")
    assert main(["decode", str(empty)]) == 0
    assert "warning" in capsys.readouterr().err
    for argv in (["plot", str(empty), "-o", str(tmp_path / "e.png")], ["rerun", str(empty)],
                 ["replay", str(empty), "--device", "udp://127.0.0.1:9", "--fast"]):
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert "warning" in err and "empty capture" in err, argv
    assert not (tmp_path / "e.png").exists()


def test_rerun_capture_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = _capture(tmp_path)
    capsys.readouterr()
    again = tmp_path / "again.tm"
    again.write_bytes(b"x")
    assert main(["rerun", str(cap), "--capture", str(again)]) == 2
    assert "--force" in capsys.readouterr().err and again.read_bytes() == b"x"
    assert main(["rerun", str(cap), "--capture", str(again), "--force", "--no-progress"]) == 0
    assert "re-run telemetry:" in capsys.readouterr().out


def test_dask_missing_names_the_pip_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert main(["campaign", "smoke", "-o", str(tmp_path / "c"), "--dask-local", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'hullwatch[dask]'" in err and "Traceback" not in err


def test_display_units() -> None:
    assert kpa_mmhg(101325.0) == "101.3 kPa (760 mmHg)"
    assert kg_day(0.000252) == "21.8 kg/day"
    assert hours_minutes(10320) == "2 h 52 min" and hours_minutes(360) == "6 min"
    assert hours_minutes(100) == "1 min 40 s" and hours_minutes(45) == "45 s" and hours_minutes(7200) == "2 h"
    assert plural(1, "module") == "1 module" and plural(0, "hatch", "hatches") == "0 hatches"
    assert size_text(29_328_447) == "29.3 MB" and size_text(812) == "812 B" and size_text(352_000_000) == "352 MB"


@pytest.mark.parametrize("argv, start, code", [
    (["run", "--scenario", "no-such-preset", "--no-capture"], "--scenario no-such-preset: no such preset", 2),
    (["run", "--fdir", "no-such.toml", "--no-capture"], "--fdir no-such.toml: no such file", 2),
    (["run", "--device", "serial:///dev/ttyHULLWATCH-NONE", "--no-capture"],
     "--device serial:///dev/ttyHULLWATCH-NONE: no such serial port", 4),
    (["board-info", "--port", "/dev/ttyHULLWATCH-NONE"], "--device /dev/ttyHULLWATCH-NONE: no such serial port", 4),
    (["board", "--pty", "--spin-us", "-5"], "--spin-us: expected 0 .. 1000000 microseconds, got -5.0", 2),
    (["board", "--pty", "--spin-us", "nan"], "--spin-us: expected 0 .. 1000000 microseconds, got nan", 2),
])
def test_errors_name_the_flag_and_the_value(argv: list[str], start: str, code: int,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith(f"hullwatch: error: {start}") and err.count("\n") == 1, err


def test_replay_destination_error_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = _capture(tmp_path)
    capsys.readouterr()
    assert main(["replay", str(cap), "--to", "udp://nosuchhost.invalid:9"]) in (2, 4)
    assert "--device udp://nosuchhost.invalid:9: cannot resolve host 'nosuchhost.invalid'" in capsys.readouterr().err
