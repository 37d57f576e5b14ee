"""The monitor page rendered by a real browser: headless Chromium (Debian's ``chromium``; .ci/run
installs it) loads the page of a soyuz-ms09 capture, takes a screenshot, and the diagram shows
soyuz-om sealed, both in the DOM and in the pixels."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import tornado.websocket
from PIL import Image

from hullwatch.tools.monitor import open_monitor

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: the sealed module's fill (monitor.css --sealed, #7048e8)
SEALED_RGB = (0x70, 0x48, 0xE8)

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="needs Debian's chromium (.ci/run installs it)")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium that talks to nothing but the page (a fresh profile each time)."""
    assert CHROMIUM is not None, "chromium is not installed: apt-get install -y chromium"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--window-size=1400,1100", "--virtual-time-budget=10000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("browser")
    capture = tmp / "ms09.tm"
    # 430 s of soyuz-ms09: the leak starts at 300 s, soyuz-om is sealed at about 420 s
    r = subprocess.run(["hullwatch", "run", "--until", "430", "--capture", str(capture), "--quiet"],
                       capture_output=True, text=True)
    assert "SEALED in soyuz-om" in r.stdout, r.stdout + r.stderr
    with open_monitor("127.0.0.1:0", capture=str(capture)) as mon:
        assert mon.source is not None and mon.source.done.wait(20)
        yield mon.url, tmp


def test_diagram_shows_the_sealed_module(page) -> None:
    url, tmp = page
    dom = chromium(tmp / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    sealed = re.search(r'<g class="module sealed[^"]*" data-module="soyuz-om" data-marks="([^"]*)">(.*?)</g>', html)
    assert sealed, "soyuz-om is not drawn sealed"
    assert "SEALED" in sealed.group(2)
    assert re.search(r'data-module="soyuz-dm" data-marks="[^"]*cut-off', html), "soyuz-dm behind it is not cut off"
    assert re.search(r'data-valve="om-rassvet" data-state="closed"', html)
    assert "SEGMENT SEALED soyuz-om" in html  # the event log
    assert html.count('class="main-svg"') >= 4  # plotly drew the four plots
    assert '<section id="commands" class="panel wide" hidden=""' in html  # no TC link: no command panel

    shot = tmp / "monitor.png"
    r = chromium(tmp / "profile-shot", f"--screenshot={shot}", url)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 1100)
    diagram = img.crop((0, 0, 1400, 420))  # the station panel is at the top of the page
    colours = diagram.getcolors(1400 * 420)
    sealed_px = sum(n for n, rgb in colours if all(abs(a - b) <= 6 for a, b in zip(rgb, SEALED_RGB)))
    assert sealed_px > 2000, f"only {sealed_px} pixels of the sealed colour in the diagram"


class DevTools:
    """Headless Chromium driven over its DevTools protocol (a websocket, here tornado's client):
    load a page, then read its DOM whenever the test wants, while the page keeps running."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1100",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:  # type: ignore[union-attr]
            m = re.search(r"DevTools listening on ws://([^/]+)/", line)
            if m:
                self.http = f"http://{m.group(1)}"
                break
        else:
            raise AssertionError("chromium did not open its DevTools port")
        self.loop = asyncio.new_event_loop()
        self.ws = None
        self.next_id = 0

    def _page_socket(self) -> str:
        with urllib.request.urlopen(self.http + "/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def call(self, method: str, **params: object) -> dict:
        async def go() -> dict:
            if self.ws is None:
                self.ws = await tornado.websocket.websocket_connect(self._page_socket(), max_message_size=1 << 28)
            self.next_id += 1
            await self.ws.write_message(json.dumps({"id": self.next_id, "method": method, "params": params}))
            while True:
                msg = json.loads(await asyncio.wait_for(self.ws.read_message(), 30))
                if msg.get("id") == self.next_id:
                    return msg.get("result", {})

        return self.loop.run_until_complete(go())

    def html(self) -> str:
        return self.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                         returnByValue=True)["result"]["value"]

    def close(self) -> None:
        async def shut() -> None:
            if self.ws is not None:
                self.ws.close()  # tornado writes the close frame on the loop it runs on

        self.loop.run_until_complete(shut())
        self.loop.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.mark.slow
def test_page_follows_a_replay_live(tmp_path: Path) -> None:
    """The page is open before any telemetry; a replay at 100x then drives it over UDP and the
    websocket: the diagram, the panels and the plots follow without a reload."""
    capture = tmp_path / "ms09.tm"
    subprocess.run(["hullwatch", "run", "--until", "450", "--capture", str(capture), "--quiet"],
                   capture_output=True, check=True)
    with open_monitor("127.0.0.1:0", tm="udp://127.0.0.1:0") as mon:
        host, port = mon.source.address  # type: ignore[union-attr]
        browser = DevTools(tmp_path / "profile")
        try:
            browser.call("Page.navigate", url=mon.url)
            deadline = time.monotonic() + 30
            while not mon.server.clients and time.monotonic() < deadline:  # the page connected
                time.sleep(0.1)
            assert mon.server.clients, "the page never opened its websocket"
            assert 'data-module="soyuz-om"' not in browser.html()  # nothing received yet
            subprocess.run(["hullwatch", "replay", str(capture), "--to", f"udp://{host}:{port}", "--speed", "100"],
                           capture_output=True, check=True, timeout=60)
            deadline = time.monotonic() + 15
            html = browser.html()
            while "SEGMENT SEALED soyuz-om" not in html and time.monotonic() < deadline:
                time.sleep(0.5)
                html = browser.html()
            time.sleep(1.0)  # one more update and redraw
            html = browser.html()
        finally:
            browser.close()
    assert re.search(r'<g class="module sealed[^"]*" data-module="soyuz-om"', html), "the diagram did not follow"
    assert "SEGMENT SEALED soyuz-om" in html and "T+0:07:" in html  # the header followed too
    assert html.count('class="main-svg"') >= 4 and "points per module" in html


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hullwatch.firmware.commanding") is None,
                    reason="the flight software's telecommand path is not in this tree")
def test_page_buttons_command_a_run_and_show_the_reports(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        tc = f"udp://127.0.0.1:{s.getsockname()[1]}"
    run = subprocess.Popen(["hullwatch", "run", "--speed", "10", "--until", "300", "--tc", tc, "--monitor",
                            "127.0.0.1:0", "--capture", str(tmp_path / "c.tm"), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        url = run.stdout.readline().split("monitor: ", 1)[1].strip()  # type: ignore[union-attr]
        browser = DevTools(tmp_path / "profile")
        browser.call("Page.navigate", url=url)
        html = ""
        deadline = time.monotonic() + 30
        while 'id="commands" class="panel wide">' not in html and time.monotonic() < deadline:
            time.sleep(0.3)
            html = browser.html()
        assert 'id="commands" class="panel wide">' in html, "no command panel with a TC link"
        browser.call("Runtime.evaluate", expression="document.querySelector('#commands button[data-mode=passive]').click()")
        deadline = time.monotonic() + 20
        while 'data-outcome="completed"' not in html and time.monotonic() < deadline:
            time.sleep(0.3)
            html = browser.html()
        row = re.search(r'<tr data-outcome="completed" data-command="set FDIR mode PASSIVE">(.*?)</tr>', html)
        assert row, "the action and its outcome are not on the page"
        assert "1/1 acceptance success" in row.group(1) and "1/7 completion success" in row.group(1)
    finally:
        if browser is not None:
            browser.close()
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
