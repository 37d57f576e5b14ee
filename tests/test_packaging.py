"""The package maps the four code folders into ``hullwatch.*`` for editable and wheel installs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"firmware", "hal", "sim", "tools"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_is_listed() -> None:
    """A subpackage missing from ``packages`` would be left out of the wheel."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("hullwatch",) + rel))
    assert found == listed


def test_console_script_runs_from_any_directory(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hullwatch.tools", "--help"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout
    assert "usage: hullwatch" in out


@pytest.mark.slow
def test_wheel_holds_the_namespace_and_package_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("hullwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for folder in FOLDERS:
        assert f"hullwatch/{folder}/__init__.py" in names
    assert not any(n.startswith(("firmware/", "hal/", "sim/", "tools/")) for n in names)
    assert any(n.startswith("hullwatch/sim/presets/") and n.endswith(".toml") for n in names)
