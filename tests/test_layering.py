"""Layering (docs/architecture.md, "Layering"), checked two ways.

By the source (AST, every import statement of every module, top-level or inside a function):

- firmware imports of ours only firmware itself and hal's interfaces, clock and errors, and the
  codec compiler (hal/codec.py: pure functions over construct declarations, no device code); and
  none of the ground libraries (numpy, matplotlib, dask, pyarrow);
- sim imports of ours only sim itself and hal;
- hal imports of ours only hal.

By running it: importing every firmware (hal) module in a fresh interpreter loads no module of the
layers above, nor a ground library. A probe feeds the checker a module that breaks the rule, so
these tests can fail.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hullwatch.firmware
import hullwatch.hal

ROOT = Path(__file__).resolve().parents[1]

#: layer -> what of ours it may import (a module and everything under it)
ALLOWED: dict[str, tuple[str, ...]] = {
    "firmware": ("hullwatch.firmware", "hullwatch.hal.interfaces", "hullwatch.hal.clock", "hullwatch.hal.errors",
                 "hullwatch.hal.codec"),
    "sim": ("hullwatch.sim", "hullwatch.hal"),
    "hal": ("hullwatch.hal",),
}
#: third-party libraries a layer must not import (ground work: bulk numerics, plots, clusters, tables)
FORBIDDEN_LIBRARIES: dict[str, tuple[str, ...]] = {
    "firmware": ("numpy", "matplotlib", "dask", "distributed", "pyarrow"),
    "sim": ("matplotlib", "dask", "distributed", "pyarrow"),
    "hal": ("numpy", "matplotlib", "dask", "distributed", "pyarrow"),
}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imported_names(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import statement in ``source``, relative imports
    resolved against ``module``. ``from X import y`` yields ``X.y`` (y may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == "__future__":
                continue
            names.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return names


def violations(folder: Path, layer: str) -> list[str]:
    """Every import in ``folder`` (the ``hullwatch.<layer>`` package) that breaks the layer's rule,
    as ``path:line: name``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).with_suffix("").parts
        is_package = rel[-1] == "__init__"
        module = ".".join(("hullwatch", layer) + (rel[:-1] if is_package else rel))
        for line, name in imported_names(path.read_text(encoding="utf-8"), module, is_package):
            ours = name.startswith("hullwatch.")
            if (ours and not _under(name, ALLOWED[layer])) or _under(name, FORBIDDEN_LIBRARIES[layer]):
                found.append(f"{path.relative_to(folder.parent)}:{line}: {name}")
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_its_rule_allows(layer: str) -> None:
    assert violations(ROOT / layer, layer) == []


def test_the_checker_sees_every_kind_of_breach(tmp_path: Path) -> None:
    # the probe: a firmware tree that breaks the rule in each way the checker must catch
    pkg = tmp_path / "firmware"
    (pkg / "telemetry").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .types import X\nfrom ..hal.interfaces import Frame\n")
    (pkg / "telemetry" / "__init__.py").write_text("")
    (pkg / "telemetry" / "reader.py").write_text(
        "import numpy as np\n"
        "from ...hal import wire\n"
        "from ...hal.serial_device import SerialBoardDevice\n"
        "def late():\n"
        "    from hullwatch.tools.ground import capture\n"
        "    from ...sim import plant\n"
        "    import matplotlib.pyplot\n"
    )
    found = violations(pkg, "firmware")
    assert [f.split(": ")[1] for f in found] == [
        "numpy", "hullwatch.hal.wire", "hullwatch.hal.serial_device.SerialBoardDevice",
        "hullwatch.tools.ground.capture", "hullwatch.sim.plant", "matplotlib.pyplot",
    ]
    assert found[0].startswith("firmware/telemetry/reader.py:1:")
    # ...while what the rule allows passes: the package's own modules and hal's interfaces
    assert not any("types" in f or "interfaces" in f for f in found)


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


def _probe(package: str, forbidden: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE.format(package=package, forbidden=forbidden)],
                          capture_output=True, text=True, timeout=120)


def test_importing_the_flight_software_loads_no_upper_layer_nor_ground_library() -> None:
    modules = [m.name for m in pkgutil.walk_packages(hullwatch.firmware.__path__, "hullwatch.firmware.")]
    assert "hullwatch.firmware.telemetry.packets" in modules
    result = _probe("hullwatch.firmware", ("hullwatch.sim", "hullwatch.tools") + FORBIDDEN_LIBRARIES["firmware"])
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) == len(modules)


def test_importing_hal_loads_nothing_else_of_ours() -> None:
    result = _probe("hullwatch.hal", ("hullwatch.sim", "hullwatch.tools", "hullwatch.firmware"))
    assert result.returncode == 0, result.stderr


def test_the_runtime_probe_can_fail() -> None:
    # firmware does import hal's interfaces, so forbidding hal must fail and name it
    result = _probe("hullwatch.firmware", ("hullwatch.hal",))
    assert result.returncode != 0 and "hullwatch.hal.interfaces" in result.stderr
