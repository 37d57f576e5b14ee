"""``hullwatch monitor`` over real HTTP and a real websocket while ``hullwatch replay`` paces a
run's telemetry at 100x real time over real UDP; on a capture, read once or followed; and beside
``hullwatch run --monitor``."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
import tornado.websocket

from hullwatch.firmware.telemetry import iter_capture, iter_raw_packets
from hullwatch.tools.monitor import open_monitor

HULLWATCH = [sys.executable, "-m", "hullwatch.tools"]


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; whether it held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def get_json(url: str) -> dict:
    return json.loads(get(url)[2])


class MonitorProcess:
    """``hullwatch monitor ARGS`` in a subprocess; the page URL and the UDP address it printed."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*HULLWATCH, "monitor", *args, "--http", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        m = re.match(r"hullwatch monitor: (http://127\.0\.0\.1:\d+/) showing (.+); Ctrl-C to stop", line)
        assert m, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")  # type: ignore[union-attr]
        self.url, self.showing = m.group(1), m.group(2)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


async def _live(url: str, until: float) -> list[dict]:
    """Messages of the live feed until ``until`` (monotonic) or the run's seal shows."""
    ws = await tornado.websocket.websocket_connect(url.replace("http://", "ws://") + "ws")
    await ws.write_message(json.dumps({"window_s": 600, "points": 300}))
    messages = []
    try:
        while time.monotonic() < until:
            try:
                text = await asyncio.wait_for(ws.read_message(), timeout=max(0.1, until - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if text is None:
                break
            messages.append(json.loads(text))
    finally:
        ws.close()
    return messages


def test_page_api_and_live_feed_during_a_replay_at_100x(tmp_path: Path) -> None:
    capture = tmp_path / "run.tm"
    subprocess.run([*HULLWATCH, "run", "--until", "450", "--capture", str(capture), "--quiet"], check=True,
                   capture_output=True)
    mon = MonitorProcess("--tm", "udp://127.0.0.1:0")
    try:
        status, ctype, page = get(mon.url)
        assert status == 200 and ctype.startswith("text/html")
        assert b'src="static/plotly.min.js"' in page
        assert not re.search(rb"(src|href)=\"(https?:)?//", page), "the page must load nothing from elsewhere"
        status, _, js = get(mon.url + "static/plotly.min.js")
        assert status == 200 and len(js) > 1_000_000
        assert get(mon.url + "static/monitor.js")[0] == 200
        assert get_json(mon.url + "api/state")["modules"] == []  # nothing received yet

        run = subprocess.Popen([*HULLWATCH, "replay", str(capture), "--to", mon.showing, "--speed", "100"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: get_json(mon.url + "api/state")["link"]["packets"] > 0, 20)
            during = get_json(mon.url + "api/state")
            messages = asyncio.run(_live(mon.url, time.monotonic() + 3.0))
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, err
        assert during["modules"] and not during.get("source_done")
        assert messages[0]["type"] == "series"
        updates = [m for m in messages if m["type"] == "update"]
        assert len(updates) >= 4  # four a second
        rows = sum(len(m["series"]["t"]) for m in updates)
        assert rows > 0
        for m in updates:  # thinned to the window: 600 s in 300 points, one row per 2 s bucket at most
            buckets = [int(t // 2.0) for t in m["series"]["t"]]
            assert len(set(buckets)) == len(buckets), m["series"]["t"]

        sent = sum(1 for _ in iter_raw_packets(capture))
        assert wait_for(lambda: get_json(mon.url + "api/state")["link"]["packets"] >= sent, 10)
        state = get_json(mon.url + "api/state?events=50")
        link = state["link"]
        assert (link["packets"], link["sequence_gaps"], link["crc_errors"], link["malformed"]) == (sent, 0, 0, 0)
        modules = {m["name"]: m for m in state["modules"]}
        assert set(modules) == {"soyuz-dm", "soyuz-om", "rassvet", "zarya", "zvezda", "usos"}
        assert "sealed" in modules["soyuz-om"]["marks"] and "cut-off" in modules["soyuz-dm"]["marks"]
        assert 70000 < modules["soyuz-om"]["pressure_pa"] < 100000
        assert modules["usos"]["pressure_mmhg"] == pytest.approx(modules["usos"]["pressure_pa"] / 133.322387415)
        names = [e["name"] for e in state["events"]]
        fdir = [n for n in names if n != "CYCLE_OVERRUN"]  # a busy machine may overrun at 100x
        assert fdir[0] == "LEAK_SUSPECTED" and "SEGMENT_SEALED" in fdir
        sealed = state["events"][names.index("SEGMENT_SEALED")]
        assert sealed["utc"].startswith("2018-08-29T20:0") and sealed["text"].startswith("SEGMENT SEALED soyuz-om")
        assert state["fdir"]["isolation_state"] == "SEALED"
        series = get_json(mon.url + "api/series?window=all&points=100")
        assert 40 <= len(series["t"]) <= 101 and len(series["pressure_pa"]) == 6
        with pytest.raises(urllib.error.HTTPError):
            get(mon.url + "api/series?window=-5")
    finally:
        code, err = mon.stop()
    assert code == 0, err


def test_capture_read_once_and_followed(tmp_path: Path) -> None:
    capture = tmp_path / "ms09.tm"
    subprocess.run([*HULLWATCH, "run", "--until", "430", "--capture", str(capture), "--quiet"], check=True,
                   capture_output=True)
    data = capture.read_bytes()
    with open_monitor("127.0.0.1:0", capture=str(capture)) as mon:
        assert mon.source is not None and mon.source.done.wait(20)
        state = get_json(mon.url + "api/state")
        assert state["source_done"] and "sealed" in {m["name"]: m for m in state["modules"]}["soyuz-om"]["marks"]

    growing = tmp_path / "growing.tm"
    growing.write_bytes(data[:5000])  # the layout report (3.9 kB) and part of a packet
    with open_monitor("127.0.0.1:0", capture=str(growing), follow=True) as mon:
        assert wait_for(lambda: get_json(mon.url + "api/state")["modules"] != [], 5)
        with open(growing, "ab") as f:
            for start in range(5000, len(data), 700_000):  # appended in pieces cutting packets
                f.write(data[start:start + 700_000])
                f.flush()
                time.sleep(0.3)
        events = sum(1 for _, _, p in iter_capture(capture) if p.service == 5)
        assert events >= 8
        assert wait_for(lambda: get_json(mon.url + "api/state")["event_count"] == events, 10)
        state = get_json(mon.url + "api/state")
        assert state["link"]["skipped_bytes"] == 0 and not state["source_done"]
        assert state["link"]["packets"] == sum(1 for _ in iter_raw_packets(capture))


def test_damaged_capture_exits_3_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    capture = tmp_path / "bad.tm"
    subprocess.run([*HULLWATCH, "run", "--until", "20", "--capture", str(capture), "--quiet"],  # exit 1: no leak yet
                   capture_output=True)
    raw = bytearray(capture.read_bytes())
    raw[5000:5010] = b"\xff" * 10
    capture.write_bytes(bytes(raw))
    mon = MonitorProcess(str(capture))
    assert wait_for(lambda: get_json(mon.url + "api/state")["source_done"], 10)
    assert get_json(mon.url + "api/state")["link"]["skipped_bytes"] > 0
    code, err = mon.stop()
    assert code == 3 and "damaged capture" in err
    for args in (["monitor"], ["monitor", str(capture), "--tm", "udp://127.0.0.1:1"],
                 ["monitor", "--tm", "tcp://x:1"], ["monitor", str(tmp_path / "missing.tm")],
                 ["monitor", "--tm", "udp://127.0.0.1:0", "--http", "127.0.0.1:http"],
                 ["monitor", "--tm", "udp://127.0.0.1:0", "--follow"]):
        r = subprocess.run([*HULLWATCH, *args], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("hullwatch: error:"), (args, r.stderr)


def test_run_with_monitor_serves_the_run(tmp_path: Path) -> None:
    proc = subprocess.Popen([*HULLWATCH, "run", "--until", "430", "--capture", str(tmp_path / "r.tm"),
                             "--monitor", "127.0.0.1:0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            m = re.match(r"monitor: (http://\S+)", line)
            url = url or (m.group(1) if m else None)
            if line.startswith("run finished"):
                break
        assert url is not None
        state = get_json(url + "api/state")
        assert state["source"] == "hullwatch run soyuz-ms09"
        assert "sealed" in {m["name"]: m for m in state["modules"]}["soyuz-om"]["marks"]
        assert state["link"]["packets"] == sum(1 for _ in iter_raw_packets(tmp_path / "r.tm"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
