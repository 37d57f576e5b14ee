"""hullwatch plot: a readable figure from a capture, in bounded memory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hullwatch.tools.captures.plot import BinnedSeries, collect, parse_time
from hullwatch.tools.captures.plot_render import pack_badges
from hullwatch.tools.cli import main
from hullwatch.tools.errors import InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ms09(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plot") / "ms09.tm"
    assert main(["run", "--scenario", "soyuz-ms09", "--seed", "7", "--until", "480", "--capture", str(path),
                 "--quiet"]) == 0
    return path


def test_cli_writes_a_png(ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ms09.png"
    assert main(["plot", str(ms09), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    msg = capsys.readouterr().out
    assert "6 modules" in msg and "480 housekeeping samples" in msg
    assert "events" in msg and " 0 events" not in msg


def test_cli_narrows_modules_and_time(ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "om.png"
    assert main(["plot", str(ms09), "-o", str(out), "--modules", "soyuz-om,usos",
                 "--since", "5m", "--until", "360"]) == 0
    msg = capsys.readouterr().out
    assert "2 modules, 61 housekeeping samples" in msg
    assert "mission time 300.0 s .. 360.0 s" in msg
    # a UTC time works too: mission time 0 of soyuz-ms09 is 2018-08-29T20:00:00Z
    assert main(["plot", str(ms09), "-o", str(out), "--since", "2018-08-29T20:06:00Z"]) == 0
    assert "mission time 360.0 s" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--modules", "soyuz-om,nauka"], "unknown module(s) nauka; the capture has soyuz-dm, soyuz-om"),
    (["--since", "9000"], "no housekeeping packets in the requested time range"),
])
def test_cli_bad_input(ms09: Path, tmp_path: Path, argv: list[str], words: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(ms09), "-o", str(tmp_path / "x.png"), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, words", [
    (["--since", "yesterday"], "argument --since: 'yesterday': expected mission time"),
    (["--until", "2x"], "argument --until: '2x': expected mission time"),
    (["-o", "a.xyz"], "matplotlib cannot write '.xyz' images"),
])
def test_cli_usage_errors_before_reading(ms09: Path, argv: list[str], words: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Times and the image format are checked when the arguments are parsed: usage, exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["plot", str(ms09), "-o", "x.png", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and words in err and err.startswith("usage: hullwatch plot")


def test_cli_output_without_suffix_gets_png(ms09: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(ms09), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {tmp_path / 'out.png'}:" in capsys.readouterr().out


def test_cli_capture_without_layout(ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hullwatch.tools.ground import iter_capture

    bad = tmp_path / "nolayout.tm"
    bad.write_bytes(b"".join(p.raw for p in iter_capture(ms09) if p.packet.name != "layout"))
    assert main(["plot", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert "no layout report" in capsys.readouterr().err


def test_cli_damaged_capture_plots_the_rest(ms09: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(ms09.read_bytes())
    data[len(data) // 2] ^= 0x04
    bad = tmp_path / "damaged.tm"
    bad.write_bytes(bytes(data))
    assert main(["plot", str(bad), "-o", str(tmp_path / "d.png")]) == 3
    captured = capsys.readouterr()
    assert "damaged capture" in captured.err
    assert (tmp_path / "d.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("text, seconds", [
    ("3600", 3600.0), ("90s", 90.0), ("15m", 900.0), ("15min", 900.0), ("2h", 7200.0), ("1d", 86400.0),
    ("2.5h", 9000.0),
])
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


def test_parse_time_utc_and_errors() -> None:
    assert parse_time("2018-08-29T21:00:00Z", epoch_utc=1535572800.0) == 3600.0
    with pytest.raises(InputError, match="needs the capture's epoch"):
        parse_time("2018-08-29T21:00:00Z")
    with pytest.raises(InputError, match="expected mission time"):
        parse_time("soon")


def test_binned_series_is_exact_while_it_fits() -> None:
    b = BinnedSeries(2, max_bins=100)
    for i in range(80):
        b.add(float(i), [float(i), 2.0 * i])
    t, mean, lo, hi = b.result()
    assert list(t) == [float(i) for i in range(80)]
    assert list(mean[:, 1]) == [2.0 * i for i in range(80)]
    assert (lo == hi).all() and b.width == 1.0


def test_binned_series_stays_bounded_and_keeps_min_max_mean() -> None:
    rng = np.random.default_rng(1)
    n = 100_000
    ys = rng.normal(size=n)
    ys[12345] = math.nan  # ignored
    b = BinnedSeries(1, max_bins=64, chunk=1000)
    for i, y in enumerate(ys):
        b.add(float(i), [y])
    t, mean, lo, hi = b.result()
    assert len(t) <= 64 and b.width == 2048.0  # 1 s doubled until 100,000 s fit in 64 bins
    finite = np.where(np.isnan(ys), 0.0, ys)
    w = int(b.width)
    for k in (0, 10, len(t) - 1):
        seg = ys[k * w:(k + 1) * w]
        seg = seg[~np.isnan(seg)]
        assert lo[k, 0] == seg.min() and hi[k, 0] == seg.max()
        assert mean[k, 0] == pytest.approx(seg.mean(), rel=1e-9)
    assert np.nanmin(lo) == np.nanmin(finite[~np.isnan(ys)])


def test_collect_memory_does_not_grow_with_the_capture() -> None:
    """One week of 1 Hz housekeeping in a stream: the result is max_bins long, events bounded."""
    from hullwatch.firmware.telemetry.layoutjson import layout_to_json
    from hullwatch.firmware.telemetry.packets import (
        Event, EventId, Housekeeping, LayoutReport, ModuleHk, Packet, PacketType, Severity)
    from hullwatch.hal.interfaces import Layout, ModuleInfo

    epoch = 1.5e9
    layout = Layout((ModuleInfo("a", 10.0), ModuleInfo("b", 20.0)), (), (), (), ())
    report = LayoutReport(epoch, layout_to_json(layout))
    mods = [ModuleHk(101300.0, 295.0, 400.0, 0.0, 0), ModuleHk(101200.0, 296.0, 800.0, 1e-4, 0)]
    hk = Housekeeping(2, 0, 0, 1, 1, 0, True, 0, 0, mods, [])

    def packets():
        for s in range(7 * 86400):
            yield 0, Packet(101, 0, PacketType.TM, 3, 25, epoch + s, data=hk)
            if s % 1000 == 0:
                yield 0, Packet(103, 0, PacketType.TM, 5, 1, epoch + s,
                                data=Event(EventId.SENSOR_RECOVERED, "a.p1", (0.0, 0.0, 0.0), Severity.INFO))

    data = collect(packets(), max_bins=500, max_events=60, layout_report=report)
    assert len(data.t) <= 500 and data.housekeeping == 7 * 86400
    assert len(data.events) == 60 and data.events_dropped == 605 - 60
    assert data.mean["inventory_mol"][:, 1].tolist() == [800.0] * len(data.t)


@pytest.mark.parametrize("fracs", [
    [0.5] * 9,  # all at the same time
    [0.1, 0.1, 0.11, 0.12, 0.9, 0.99, 1.0, 1.0],
    [i / 60 for i in range(60)],
])
def test_event_badges_never_overlap(fracs: list[float]) -> None:
    width = 0.021
    placed = pack_badges(sorted(fracs), width)
    assert len(placed) == len(fracs)
    for row in {r for _, r in placed}:
        xs = sorted(x for x, r in placed if r == row)
        assert all(b - a >= width - 1e-12 for a, b in zip(xs, xs[1:]))
        assert xs[-1] <= 1.0 + 1e-12


def test_fast_collect_agrees_with_packet_by_packet(ms09: Path) -> None:
    """The numpy housekeeping columns (derived from the declaration) give the same series as
    decoding every packet through the telemetry decoder."""
    from hullwatch.tools.ground import iter_capture
    from hullwatch.tools.captures.plot import collect_capture

    slow = collect(((p.offset, p.packet) for p in iter_capture(ms09)), modules=["usos", "soyuz-om"],
                   since=30.0, max_bins=100)
    fast = collect_capture(str(ms09), modules=["usos", "soyuz-om"], since=30.0, max_bins=100)
    assert fast.housekeeping == slow.housekeeping == 480 - 30
    assert np.array_equal(fast.t, slow.t)
    for key in slow.mean:
        assert np.array_equal(fast.mean[key], slow.mean[key], equal_nan=True)
        assert np.array_equal(fast.lo[key], slow.lo[key], equal_nan=True)
    assert [(e.t, e.name) for e in fast.events] == [(e.t, e.name) for e in slow.events]
