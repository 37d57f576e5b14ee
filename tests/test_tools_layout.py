"""tools/ is organised in folders: few top-level modules, and the old module paths still import
(with a DeprecationWarning) as the very same module objects as their new homes. No source file of
the package is over 600 lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"

MOVED = {
    "runner": "closed_loop.runner",
    "replayer": "captures.replay",
    "rerun": "captures.rerun",
    "capture_plot": "captures.plot",
    "flashing": "board.flashing",
    "hil_device": "board.hil_device",
    "pytest_plugin": "board.pytest_plugin",
    "campaign_exec": "campaign.executor",
}


def test_at_most_twelve_modules_at_the_top_of_tools() -> None:
    top = sorted(p.name for p in TOOLS.glob("*.py"))
    assert len(top) <= 12, top


#: the longest a source file of the package may be
MAX_SOURCE_LINES = 600


def too_long(root: Path) -> list[str]:
    """``"<path>: <n> lines"`` for every ``.py`` under ``root`` longer than MAX_SOURCE_LINES."""
    return [f"{p.relative_to(root)}: {n} lines" for p in sorted(root.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_SOURCE_LINES]


def test_no_source_file_is_over_600_lines() -> None:
    root = TOOLS.parent
    assert not [x for folder in ("firmware", "hal", "sim", "tools") for x in too_long(root / folder)]


def test_the_length_rule_catches_a_long_file(tmp_path: Path) -> None:
    (tmp_path / "fits.py").write_text("x = 1\n" * MAX_SOURCE_LINES)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (MAX_SOURCE_LINES + 1))
    assert too_long(tmp_path) == ["pkg/long.py: 601 lines"]


def test_every_concern_is_a_package() -> None:
    for name in ("cli", "captures", "board", "campaign", "closed_loop", "ground"):
        assert (TOOLS / name / "__init__.py").is_file(), name


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_path_warns_and_is_the_new_module(old: str, new: str) -> None:
    # a fresh interpreter: in this one the alias may already be imported (no second warning)
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module('hullwatch.tools.{old}')\n"
        f"new = importlib.import_module('hullwatch.tools.{new}')\n"
        "assert old is new, (old, new)\n"
        "msgs = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]\n"
        f"assert any('hullwatch.tools.{new}' in m for m in msgs), msgs\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_new_paths_import_without_deprecation_warnings() -> None:
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        + "".join(f"importlib.import_module('hullwatch.tools.{new}')\n" for new in MOVED.values())
        + "importlib.import_module('hullwatch.tools.cli')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_pytest_plugin_entry_point_names_the_new_module() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="pytest11") if ep.name == "hullwatch"]
    assert ep.value == "hullwatch.tools.board.pytest_plugin"


GROUND_NAMES = ("iter_capture", "iter_packet_batches", "iter_raw_packets", "PacketBatch", "Skip", "CapturedPacket")


@pytest.mark.parametrize("name", GROUND_NAMES)
def test_capture_readers_moved_to_ground_keep_their_old_name(name: str) -> None:
    import hullwatch.firmware.telemetry as telemetry
    import hullwatch.tools.ground as ground

    with pytest.warns(DeprecationWarning, match=f"telemetry.{name} is deprecated.*hullwatch.tools.ground"):
        old = getattr(telemetry, name)
    assert old is getattr(ground, name)


@pytest.mark.parametrize("leaf", ["capture", "bulk", "dictionary"])
def test_ground_modules_keep_their_old_module_path(leaf: str) -> None:
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module('hullwatch.firmware.telemetry.{leaf}')\n"
        f"assert old is importlib.import_module('hullwatch.tools.ground.{leaf}')\n"
        "assert any(issubclass(w.category, DeprecationWarning) for w in caught)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_unknown_telemetry_name_is_still_an_attribute_error() -> None:
    import hullwatch.firmware.telemetry as telemetry

    with pytest.raises(AttributeError, match="no_such_name"):
        telemetry.no_such_name  # noqa: B018


def test_the_repository_refers_to_its_own_docs_only() -> None:
    """docs/architecture.md is the reference: no file points to a design note outside the
    repository, nor to issue numbers. (firmware/fdir/ is left to its own rewrite.)"""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (path.suffix not in (".py", ".md", ".toml") or rel.parts[0] in (".venv", "build", ".git")
                or rel.parts[:2] == ("firmware", "fdir") or path.name == "test_tools_layout.py"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "DESIGN.md" in text or re.search(r"\(issue \d+", text):
            offenders.append(str(rel))
    assert offenders == []
