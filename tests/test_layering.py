"""Layering (DESIGN.md): importing the flight software loads no hullwatch.sim or hullwatch.tools
module, and hal loads nothing else of ours. Run in a fresh interpreter so other tests' imports
do not mask a violation."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import hullwatch.firmware
import hullwatch.hal

PROBE = """
import importlib, pkgutil, sys
import {package} as root
names = [m.name for m in pkgutil.walk_packages(root.__path__, root.__name__ + ".")]
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in {forbidden!r}))
print(len(names))
if bad:
    sys.exit("imported " + ", ".join(bad))
"""


def _probe(package: str, forbidden: tuple[str, ...]) -> int:
    result = subprocess.run([sys.executable, "-c", PROBE.format(package=package, forbidden=forbidden)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_firmware_imports_no_sim_or_tools():
    modules = [m.name for m in pkgutil.walk_packages(hullwatch.firmware.__path__, "hullwatch.firmware.")]
    assert "hullwatch.firmware.telemetry.packets" in modules
    assert _probe("hullwatch.firmware", ("hullwatch.sim", "hullwatch.tools")) == len(modules)


def test_hal_imports_nothing_else_of_ours():
    _probe("hullwatch.hal", ("hullwatch.sim", "hullwatch.tools", "hullwatch.firmware"))


def test_probe_detects_a_violation():
    # the probe itself must be able to fail: firmware does import hal's interfaces
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(package="hullwatch.firmware", forbidden=("hullwatch.hal",))],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "hullwatch.hal.interfaces" in result.stderr
