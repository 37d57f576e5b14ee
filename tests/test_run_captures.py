"""`hullwatch run` for a first-time user: captures never overwritten silently, honest verdicts,
words that read well, Ctrl-C that says what was kept, a progress bar on a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from hullwatch.tools.cli import main
from hullwatch.tools.closed_loop.runner import RunEvent
from hullwatch.tools.closed_loop.timeline import describe, segment_text

RUN = [sys.executable, "-m", "hullwatch.tools"]


def _short_scenario(tmp_path: Path, duration_s: float = 120.0) -> Path:
    """soyuz-ms09 cut to ``duration_s`` of mission time (its leak starts at 300 s)."""
    from hullwatch.sim.scenario import load_scenario  # noqa: F401 - the preset must load

    out = subprocess.run(RUN + ["scenarios", "soyuz-ms09", "--toml"], capture_output=True, text=True, check=True).stdout
    path = tmp_path / "short.toml"
    path.write_text(re.sub(r"(?m)^duration_s = .*$", f"duration_s = {duration_s}", out))
    return path


def test_default_capture_gets_a_new_name_instead_of_overwriting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--until", "60", "--quiet"]) == 0
    first = capsys.readouterr().out
    assert re.search(r"^capture: soyuz-ms09-seed7\.tm \([\d.]+ [kM]B\)$", first, re.M), first
    size = (tmp_path / "soyuz-ms09-seed7.tm").stat().st_size
    assert main(["run", "--until", "30", "--quiet"]) == 0
    second = capsys.readouterr().out
    assert "capture: soyuz-ms09-seed7-2.tm (" in second
    assert (tmp_path / "soyuz-ms09-seed7.tm").stat().st_size == size  # untouched
    assert (tmp_path / "soyuz-ms09-seed7-2.tm").stat().st_size < size


def test_existing_capture_file_is_refused_unless_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "mine.tm"
    cap.write_bytes(b"precious")
    assert main(["run", "--until", "30", "--capture", str(cap)]) == 2
    err = capsys.readouterr().err
    assert f"--capture {cap}: exists (8 B)" in err and "--force" in err and err.count("\n") == 1
    assert cap.read_bytes() == b"precious"
    assert main(["run", "--until", "30", "--capture", str(cap), "--force", "--quiet"]) == 0
    assert cap.stat().st_size > 1000


def test_no_capture_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--until", "30", "--no-capture", "--quiet"]) == 0
    assert "capture: none (--no-capture)" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    assert main(["run", "--until", "30", "--no-capture", "--plot", "x.png"]) == 2  # the plot needs it
    assert "--no-capture" in capsys.readouterr().err


def test_until_past_the_scenario_end_stops_at_the_end_with_a_note(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    short = _short_scenario(tmp_path, 120.0)
    assert main(["run", "--scenario", str(short), "--until", "1e9", "--capture", str(tmp_path / "s.tm")]) == 0
    out, err = capsys.readouterr()
    assert "--until 1e+09 s is past the end of scenario" in err and "stopping at its end" in err
    assert "1200 cycles" in out  # 120 s at 10 Hz, not 1e9 s


def test_run_ending_before_the_leak_is_no_leak_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--until", "4m", "--capture", str(tmp_path / "a.tm")]) == 0
    out = capsys.readouterr().out
    assert "verdict: no leak yet (scenario leak at 0:05:00 mission time in soyuz-om; the run ended at 0:04:00)" in out
    assert "leak starts" not in out  # a leak that never happened is not in the timeline
    assert "MISSED" not in out


@pytest.mark.parametrize("miss_prob, code, verdict", [
    # suspects at 2.3 sigma, confirms only at 9.4: a suspicion on noise, never an alarm
    ("1e-12", 0, r"verdict: NOMINAL: no leak alarm in 0\.5 h of mission time; \d+ leak suspicions? "
                 r"\(low severity, not an alarm\), the first at T\+\d+:\d\d \(correct: no leak\)"),
    # confirms at 2.4 sigma: the same noise is now an alarm
    ("0.45", 1, r"verdict: FALSE ALARM: leak confirmed at T\+\d+:\d\d with no leak in the scenario"),
])
def test_a_leak_suspicion_alone_is_not_a_false_alarm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     miss_prob: str, code: int, verdict: str) -> None:
    """LEAK_SUSPECTED is low severity and clears by itself: a leak-free run that raises one is
    correct (exit 0) and its verdict counts it; a LEAK_CONFIRMED there is a false alarm (exit 1).
    A touchy leak test (1 % false-alarm probability per window) makes noise cross the first
    threshold within minutes; the miss probability sets how far the second one is."""
    params = tmp_path / "touchy.toml"
    params.write_text(f"[leak]\nfalse_alarm_prob = 0.01\nmiss_prob = {miss_prob}\n")
    assert main(["run", "--scenario", "nominal-24h", "--until", "30m", "--fdir", str(params),
                 "--no-capture"]) == code
    assert re.search(verdict, capsys.readouterr().out)


def test_missed_says_how_long_after_the_leak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--until", "400", "--mode", "off", "--capture", str(tmp_path / "o.tm")]) == 1
    assert "MISSED: no leak detected in the 1 min 40 s after the leak began (leak in soyuz-om)" in capsys.readouterr().out


def test_verdict_states_the_truth_at_fdirs_cd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--until", "8m", "--capture", str(tmp_path / "m.tm")]) == 0
    out = capsys.readouterr().out
    assert "scenario truth: 2.00 mm hole at Cd 0.35, i.e. 1.41 mm at FDIR's Cd 0.7" in out
    verdict = next(line for line in out.splitlines() if line.startswith("verdict:"))
    assert re.search(r"hole ~1\.\d\d mm at Cd 0\.7 \(truth 2\.00 mm at Cd 0\.35 = 1\.41 mm at Cd 0\.7\)", verdict)
    assert re.search(r"reserve \d+ h \d\d min", verdict)
    # one set of units: kg/day for leaks, no g/s, no bare hours with decimals
    assert "g/s" not in out and not re.search(r"reserve \d+\.\d h", out)


def test_prk_slow_timeline_reads_well(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--scenario", "prk-slow", "--until", "12m", "--no-capture"]) == 0
    out = capsys.readouterr().out
    assert "closing 0" not in out and "1 modules" not in out and "1 segments" not in out
    assert "isolation started: 1 candidate module, already closed off (no hatch or valve to close)" in out
    assert "SEALED prk (10 m3); it was already closed off from the rest of the station" in out


def _ev(name: str, subject: str, values: tuple[float, float, float]) -> RunEvent:
    return RunEvent(0.0, name, subject, values, "HIGH", 0.0)


def test_segment_subjects_render_as_the_event_carries_them() -> None:
    assert segment_text("soyuz-dm", 900.0, 900.0) == "the whole station (900 m3)"
    assert segment_text("soyuz-om+soyuz-dm", 12.0, 900.0) == "the segment soyuz-om+soyuz-dm (12 m3)"
    assert segment_text("zvezda", 174.0, 900.0) == "zvezda (174 m3)"
    # a module named for a larger segment is not given the segment's volume
    assert segment_text("soyuz-dm", 174.0, 900.0, {"soyuz-dm": 4.0}) == "a 174 m3 segment with soyuz-dm"
    assert segment_text("zvezda", 75.0, 900.0, {"zvezda": 75.0}) == "zvezda (75 m3)"
    text = describe(_ev("LEAK_CONFIRMED", "zvezda+prk+poisk", (2e-4, 8.0, 184.0)), 900.0)
    assert text == "leak CONFIRMED in the segment zvezda+prk+poisk (184 m3): losing 17.3 kg/day, test statistic 8.0"
    rapid = describe(_ev("RAPID_DEPRESS", "zvezda", (-40.0, 9.2, 95000.0)))
    assert "kPa/min" in rapid and "mmHg/min" in rapid and "95.0 kPa (713 mmHg)" in rapid


def test_ctrl_c_says_what_was_kept(tmp_path: Path) -> None:
    """A real SIGINT to a real process: exit 130, the mission time reached, the capture kept and
    whole (it decodes without damage)."""
    cap = tmp_path / "day.tm"
    proc = subprocess.Popen(RUN + ["run", "--scenario", "nominal-24h", "--capture", str(cap)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the header: the run has started
    deadline = time.monotonic() + 30
    while (not cap.exists() or cap.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert re.search(r"interrupted \(Ctrl-C\) at mission time \d+:\d\d:\d\d", err), err
    assert f"capture: {cap} (" in err and "kept: intact" in err
    decoded = subprocess.run(RUN + ["decode", str(cap), "--service", "5"], capture_output=True, text=True)
    assert decoded.returncode == 0, decoded.stderr


def test_ctrl_c_in_other_verbs_says_what_was_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "a.tm"
    assert main(["run", "--until", "30", "--capture", str(cap), "--quiet"]) == 0
    capsys.readouterr()
    from hullwatch.tools.cli import decode as cmd_decode

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd_decode, "_decode_rows", interrupted)
    out = tmp_path / "rows.jsonl"
    assert main(["decode", str(cap), "--format", "jsonl", "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert "hullwatch decode: interrupted (Ctrl-C):" in err and f"{cap} is untouched" in err


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """stderr on a real pseudo-terminal: a mission-time progress bar is drawn; not with --no-progress."""
    def stderr_of(*extra: str) -> str:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal's size
        proc = subprocess.Popen(RUN + ["run", "--until", "20m", "--no-capture", "--quiet", *extra],
                                stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
        os.close(master)
        return b"".join(chunks).decode(errors="replace")

    assert "mission time" in stderr_of()
    assert "mission time" not in stderr_of("--no-progress")


def test_segment_subjects_read_as_module_names_in_decode_plot_and_rerun(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """valve-fault seals soyuz-om with rassvet (the hatch between them is stuck open): the
    segment's events carry a segment subject, which every tool shows as the module names."""
    from hullwatch.tools.captures.plot import collect_capture
    from hullwatch.tools.captures.rerun import format_diff, rerun_capture

    cap = tmp_path / "vf.tm"
    assert main(["run", "--scenario", "valve-fault", "--until", "10m", "--capture", str(cap), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["decode", str(cap), "--event", "SEGMENT_SEALED"]) == 0
    table = capsys.readouterr().out
    assert "SEGMENT_SEALED soyuz-om+rassvet modules_sealed=2 segment_volume=23.0 m3" in table
    assert "seg:0x" not in table
    data = collect_capture(str(cap))
    assert any(e.name == "SEGMENT_SEALED" and e.subject == "soyuz-om+rassvet" for e in data.events)
    params = tmp_path / "p.toml"
    params.write_text("[isolation]\ndischarge_coefficient = 0.6\n")
    report = rerun_capture(str(cap), fdir_params=str(params))
    lines = format_diff(report)
    assert any("LEAK_LOCATED" in line and "soyuz-om+rassvet" in line and "hole_diameter" in line for line in lines)
    assert not any("seg:0x" in line for line in lines)


def test_run_plot_zooms_on_the_events(tmp_path: Path) -> None:
    """The run plot's second panel spans the leak story (leak start to sealing), not the whole run."""
    from hullwatch.tools.closed_loop.run_plot import plot_run, zoom_window
    from hullwatch.tools.closed_loop.runner import run_scenario

    cap = tmp_path / "z.tm"
    result = run_scenario("sim://soyuz-ms09", until=1200.0, capture=cap)
    lo, hi = zoom_window(result)
    sealed = result.first("SEGMENT_SEALED")
    assert sealed is not None
    assert lo < 300.0 < sealed.t < hi  # the leak start and the sealing are in the zoom
    assert hi - lo < 0.2 * result.end_s  # and the zoom is a small part of the run
    out = tmp_path / "z.svg"
    plot_run(result, cap, out)
    svg = out.read_text()
    assert "zoom on the events" in svg and "whole run" in svg
