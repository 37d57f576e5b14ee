"""Isolation, the slow location schedule and the estimates after sealing talk to the FDIR core
through one declared interface (firmware/fdir/port.py, SegmentHost), checked from their source:
everything they take from their host is declared there, and the core provides all of it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from hullwatch.firmware.fdir import estimate, isolation, locate
from hullwatch.firmware.fdir.core import Fdir
from hullwatch.firmware.fdir.params import default_params
from hullwatch.firmware.fdir.port import SegmentHost
from hullwatch.sim.device import open_url

CLIENTS = [isolation, locate, estimate]


def declared_members() -> set[str]:
    """Names SegmentHost declares: annotated attributes, properties and methods."""
    tree = ast.parse(inspect.getsource(SegmentHost))
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    names = set()
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return names


def host_uses(source: str) -> set[str]:
    """Attribute names taken from the host in ``source``: ``self.host.X`` and ``f.X`` where a
    local ``f`` was bound to ``self.host``, and any other route to the core (an import of
    ``core``, ``self.fdir``) as the pseudo-name ``<core>``."""
    tree = ast.parse(source)
    used: set[str] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.ImportFrom) and fn.module and fn.module.split(".")[-1] == "core":
            used.add("<core>")
        if not isinstance(fn, (ast.FunctionDef, ast.Module)):
            continue
        aliases = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and _is_self_host(node.value):
                aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(fn):
            if not isinstance(node, ast.Attribute):
                continue
            if _is_self_host(node.value) or (isinstance(node.value, ast.Name) and node.value.id in aliases):
                used.add(node.attr)
            if node.attr == "fdir" and isinstance(node.value, ast.Name) and node.value.id == "self":
                used.add("<core>")
    return used


def _is_self_host(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "host"
            and isinstance(node.value, ast.Name) and node.value.id == "self")


@pytest.mark.parametrize("module", CLIENTS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_isolation_side_uses_only_the_declared_interface(module):
    used = host_uses(Path(module.__file__).read_text())
    assert used, "the checker found no use of the host at all: it is not reading this module"
    undeclared = used - declared_members()
    assert not undeclared, f"{module.__name__} uses {sorted(undeclared)} of the FDIR beyond SegmentHost"


def test_the_checker_catches_a_private_reach_into_the_core():
    probe = (
        "from .core import Fdir\n"
        "class X:\n"
        "    def step(self):\n"
        "        f = self.host\n"
        "        f._fb_prev[0] = 1\n"
        "        self.host.isolator.state = 0\n"
    )
    assert host_uses(probe) == {"<core>", "_fb_prev", "isolator"}
    assert host_uses(probe) - declared_members() == {"<core>", "_fb_prev", "isolator"}


def test_the_core_provides_every_declared_member():
    device = open_url("sim://soyuz-ms09")
    fdir = Fdir(device.layout, default_params(), device.command_valve)
    missing = [name for name in sorted(declared_members()) if not hasattr(fdir, name)]
    assert not missing, f"Fdir lacks {missing} of SegmentHost"
    assert isinstance(fdir.pressure, list) and len(fdir.pressure) == fdir.n_modules
    assert fdir.generator_module == fdir.module_names.index("zvezda")
