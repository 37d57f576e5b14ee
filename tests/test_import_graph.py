"""The modules of hullwatch import each other without cycles (every import statement counts,
inside functions too; imports for type checkers only, under ``if TYPE_CHECKING:``, do not), and no
module takes a private name (``_name``) from another package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_layering import imported_names

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("firmware", "hal", "sim", "tools")
#: being rewritten on its own (the FDIR core and isolation); its internal imports are checked there
EXCLUDED = ("hullwatch.firmware.fdir",)


def _modules() -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("hullwatch",) + (rel[:-1] if rel[-1] == "__init__" else rel))
            found[name] = path
    return found


def runtime_source(source: str) -> str:
    """``source`` without its ``if TYPE_CHECKING:`` blocks: imports made for type checkers only are
    no import-time dependency (they are how a module names a type of a module that imports it)."""
    import ast

    class Strip(ast.NodeTransformer):
        def visit_If(self, node: ast.If) -> Any:
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                    isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                return node.orelse or None
            return self.generic_visit(node)

    return ast.unparse(Strip().visit(ast.parse(source)))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        source = runtime_source(path.read_text(encoding="utf-8"))
        for _line, target in imported_names(source, name, path.name == "__init__.py"):
            # "from pkg import x" names a module or an attribute: the longest module it names
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_parent(a: str, b: str) -> bool:
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycles() -> None:
    graph = _graph()
    # a package's __init__ importing its own submodules is not a cycle of design
    graph = {m: {t for t in ts if not _is_package_parent(m, t)} for m, ts in graph.items()}
    cycles = [c for c in find_cycles(graph) if not all(m.startswith(EXCLUDED) for m in c)]
    assert cycles == []


def test_type_checking_imports_are_not_runtime_edges() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "from .a import x\n"
              "if TYPE_CHECKING:\n"
              "    from .b import Y\n")
    assert [t for _, t in imported_names(runtime_source(source), "p.m", False)] == ["typing.TYPE_CHECKING", "p.a.x"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def private_imports(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """The ``_private`` names ``source`` imports from a module outside its own package."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for line, target in imported_names(source, module, is_package):
        owner, _, leaf = target.rpartition(".")
        if leaf.startswith("_") and not leaf.startswith("__"):
            owner_package = owner.rpartition(".")[0]
            if owner != package and owner_package != package:  # a module of the same package may
                found.append((line, target))
    return found


def test_no_private_name_is_imported_from_another_package() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: {target}"
                 for name, path in _modules().items()
                 for line, target in private_imports(path.read_text(encoding="utf-8"), name,
                                                     path.name == "__init__.py")]
    assert offenders == []


def test_the_private_import_check_can_fail() -> None:
    source = ("from ..closed_loop.runner import _open\n"
              "from .common import _helper\n"
              "from . import _local\n")
    assert private_imports(source, "hullwatch.tools.cli.run", False) == [
        (1, "hullwatch.tools.closed_loop.runner._open")]


#: where every import sits at the top of its module unless a comment says why it is deferred
#: (tests/test_import_style.py checks the whole package, bar the files being restructured)
TOP_IMPORTS = ("firmware/telemetry", "firmware/flight.py", "firmware/executive.py", "hal", "tools/ground",
               "tools/captures", "tools/closed_loop")


def deferred_without_reason(source: str) -> list[int]:
    """Lines of imports inside functions with no ``deferred`` comment on that line or the one above."""
    import ast

    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    here = lines[sub.lineno - 1]
                    above = lines[sub.lineno - 2] if sub.lineno > 1 else ""
                    if "deferred" not in here and "deferred" not in above:
                        found.append(sub.lineno)
    return sorted(set(found))


def test_imports_are_at_the_top_unless_deferred_on_purpose() -> None:
    offenders = []
    for place in TOP_IMPORTS:
        target = ROOT / place
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            offenders += [f"{path.relative_to(ROOT)}:{n}" for n in deferred_without_reason(path.read_text())]
    assert offenders == []


def test_the_deferred_import_check_can_fail() -> None:
    source = ("import os\n"
              "def f():\n"
              "    import json\n"
              "    import serial  # deferred: only for serial ports\n"
              "    # deferred: heavy\n"
              "    import matplotlib\n")
    assert deferred_without_reason(source) == [3]
