"""`hullwatch run` as a user runs it: real CLI, real loop, what the user sees."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hullwatch.tools.ground.capture import iter_capture
from hullwatch.firmware.telemetry.packets import Event, Housekeeping, LayoutReport, RawSamples
from hullwatch.tools.cli import main
from hullwatch.tools.cli.run import parse_duration
from hullwatch.tools.errors import InputError


def test_no_arguments_runs_ms09_prints_timeline_and_verdict_and_writes_capture(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # The only argument is --until, to keep the test short; everything else is the default.
    assert main(["run", "--until", "8m"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("hullwatch run: soyuz-ms09 (seed 7) on sim://soyuz-ms09")
    story = "\n".join(lines)
    for text in ("leak starts in soyuz-om", "leak suspected", "leak CONFIRMED", "isolation started",
                 "isolation step 1", "leak LOCATED in soyuz-om", "equivalent hole", "reserve",
                 "SEALED soyuz-om"):
        assert text in story, text
    # each timeline line carries UTC and time since the leak start
    located = next(line for line in lines if "leak LOCATED" in line)
    assert "2018-08-29 20:0" in located and "T+1:" in located
    start = next(line for line in lines if "leak starts" in line)
    assert "2018-08-29 20:05:00.0Z" in start and "T+0:00.0" in start
    verdict = next(line for line in lines if line.startswith("verdict: "))
    assert "LEAK SEALED in soyuz-om" in verdict and "(correct)" in verdict
    capture = tmp_path / "soyuz-ms09-seed7.tm"
    assert capture.exists()
    kinds = [type(c.packet.data) for c in iter_capture(capture)]
    assert kinds[0] is LayoutReport
    assert kinds.count(RawSamples) == 4800  # one per cycle: 8 min at 10 Hz
    assert kinds.count(Housekeeping) == 480  # 1 Hz
    assert kinds.count(LayoutReport) == 8  # at start and every 60 s
    assert Event in kinds


def test_plot_capture_seed_and_quiet(tmp_path, capsys):
    png = tmp_path / "run.png"
    cap = tmp_path / "x.tm"
    assert main(["run", "--scenario", "soyuz-ms09", "--seed", "3", "--until", "480",
                 "--capture", str(cap), "--plot", str(png), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    # --quiet: the verdict, the capture with its size, the plot
    assert len(out) == 3 and out[0].startswith("verdict: LEAK SEALED in soyuz-om")
    assert out[1].startswith(f"capture: {cap} (") and out[1].endswith(" MB)")
    assert out[2].startswith(f"plot: {png} (")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cap.stat().st_size > 0


def test_passive_mode_reports_and_commands_nothing(tmp_path, capsys):
    assert main(["run", "--mode", "passive", "--until", "600", "--capture", str(tmp_path / "p.tm")]) == 0
    out = capsys.readouterr().out
    assert "leak CONFIRMED" in out and "isolation" not in out
    assert "passive: no valve commanded" in out


def test_missed_leak_exits_1(tmp_path, capsys):
    # FDIR off: the leak is never reported, and the verdict says so.
    assert main(["run", "--mode", "off", "--until", "400", "--capture", str(tmp_path / "o.tm")]) == 1
    assert "verdict: MISSED" in capsys.readouterr().out


def test_bad_scenario_file_names_file_and_key_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nstart_utc = 2018-01-01T00:00:00Z\nduration_s = -5.0\n')
    assert main(["run", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "duration_s" in err
    assert "Traceback" not in err


def test_bad_parameter_file_names_file_and_key_exit_2(tmp_path, capsys):
    bad = tmp_path / "params.toml"
    bad.write_text("[leak]\nmiss_prob = 0.7\n")
    assert main(["run", "--fdir", str(bad), "--until", "10"]) == 2
    err = capsys.readouterr().err
    assert "params.toml" in err and "leak.miss_prob" in err and "0.7" in err
    bad.write_text("[leak]\nfalse_alarm = 1e-3\n")
    assert main(["run", "--fdir", str(bad), "--until", "10"]) == 2
    assert "leak.false_alarm: unknown key" in capsys.readouterr().err


def test_missing_scenario_and_bad_duration_exit_2(capsys):
    assert main(["run", "--scenario", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # checked when the arguments are parsed
        main(["run", "--until", "ten minutes"])
    assert info.value.code == 2 and "--until" in capsys.readouterr().err


def test_parse_duration():
    assert parse_duration("3600") == 3600.0
    assert parse_duration("90m") == 5400.0
    assert parse_duration("2h") == 7200.0
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("45s") == 45.0
    for bad in ("", "-5", "2x", "h", "0"):
        with pytest.raises(InputError):
            parse_duration(bad)


def test_subprocess_no_traceback_on_bad_input(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[sensors\n")
    proc = subprocess.run([sys.executable, "-m", "hullwatch.tools", "run", "--fdir", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "p.toml" in proc.stderr and "Traceback" not in proc.stderr


def test_timeline_describes_slow_schedule_advice_and_estimates():
    # Each event has its sentence (a describer that raises would drop the line from the run).
    from hullwatch.tools.closed_loop.runner import RunEvent
    from hullwatch.tools.closed_loop.timeline import describe

    close = RunEvent(100.0, "LOCATE_ADVICE", "zarya-usos", (0.0, 5400.0, 2.0), "info", 0.0)
    assert describe(close) == "slow-leak schedule step 2: close zarya-usos, watch the branch it cuts off for 1 h 30 min"
    est = RunEvent(100.0, "ESTIMATE_UPDATED", "prk", (5.0e-4, 7200.0, 0.01), "info", 0.0)
    text = describe(est)
    assert text.startswith("estimate for prk: equivalent hole 0.500 mm (1-sigma 1 %)") and "2 h" in text


def test_a_short_runs_verdict_gives_its_span_in_minutes(capsys):
    """Under 3 min of mission time the verdict says "1 min", not "0.0 h"."""
    assert main(["run", "--scenario", "nominal-24h", "--until", "60", "--no-capture", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "no leak event in 1 min of mission time (correct: no leak)" in out
