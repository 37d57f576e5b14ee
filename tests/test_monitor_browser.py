"""The monitor page rendered by a real browser: headless Chromium (Debian's ``chromium``; .ci/run
installs it) loads the page of a soyuz-ms09 capture, takes a screenshot, and the diagram shows
soyuz-om sealed, both in the DOM and in the pixels."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
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

    shot = tmp / "monitor.png"
    r = chromium(tmp / "profile-shot", f"--screenshot={shot}", url)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 1100)
    diagram = img.crop((0, 0, 1400, 420))  # the station panel is at the top of the page
    colours = diagram.getcolors(1400 * 420)
    sealed_px = sum(n for n, rgb in colours if all(abs(a - b) <= 6 for a, b in zip(rgb, SEALED_RGB)))
    assert sealed_px > 2000, f"only {sealed_px} pixels of the sealed colour in the diagram"
