"""The compiled per-cycle modules (setup.py, hal/compiled.py): the install compiles them, an
extension runs only while it matches its source, and a compiled run writes the very capture an
interpreted one does."""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hullwatch.hal import compiled

ROOT = Path(__file__).resolve().parents[1]


def _listed() -> list[str]:
    """setup.py's COMPILED list, read from its source (importing setup.py would run setup())."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["COMPILED"]:
            return [elt.value for elt in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("setup.py has no COMPILED list")


def _extension_of(module: str) -> Path | None:
    spec = importlib.machinery.PathFinder.find_spec(
        module, [str(Path(__import__(module.rpartition(".")[0], fromlist=["_"]).__path__[0]))])
    if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        return None
    return Path(spec.origin)  # type: ignore[arg-type]


# -- the decision ------------------------------------------------------------------------------

def test_the_extension_is_chosen_only_when_its_record_matches_the_source(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("X = 1\n")
    ext = tmp_path / "m.cpython-311-x86_64-linux-gnu.so"
    ext.write_bytes(b"\x7fELF")
    record = Path(str(ext) + compiled.SOURCE_DIGEST_SUFFIX)
    assert compiled.choose(str(ext), str(source), pure=False) == compiled.NO_RECORD
    record.write_text(hashlib.sha256(b"X = 1\n").hexdigest() + "\n")
    assert compiled.choose(str(ext), str(source), pure=False) == compiled.COMPILED
    assert compiled.choose(str(ext), str(source), pure=True) == compiled.PURE
    source.write_text("X = 2\n")  # edited after the build
    assert compiled.choose(str(ext), str(source), pure=False) == compiled.STALE
    # An install of extensions only: nothing else could run.
    assert compiled.choose(str(ext), None, pure=True) == compiled.COMPILED


# -- the install ------------------------------------------------------------------------------

def test_the_install_compiled_every_listed_module() -> None:
    """The test environment is the README's install: every per-cycle module has an extension
    built from its current source (else the speed figures of bench/ would not hold)."""
    if os.environ.get(compiled.ENV_PURE) == "1":
        pytest.skip("HULLWATCH_PURE=1: this run is interpreted on purpose")
    listed = _listed()
    assert len(listed) == len(set(listed)) >= 30
    missing, stale = [], []
    for module in listed:
        ext = _extension_of(module)
        if ext is None:
            missing.append(module)
            continue
        source = ext.parent / (module.rpartition(".")[2] + ".py")
        if compiled.choose(str(ext), str(source), pure=False) != compiled.COMPILED:
            stale.append(module)
    assert not missing, f"not compiled (is a C compiler installed? then `pip install -e .`): {missing}"
    assert not stale, f"edited since compiled (`pip install -e .` rebuilds): {stale}"


def test_imported_per_cycle_modules_report_compiled() -> None:
    if os.environ.get(compiled.ENV_PURE) == "1":
        pytest.skip("HULLWATCH_PURE=1: this run is interpreted on purpose")
    import hullwatch.firmware.fdir.core as core

    assert core.__file__.endswith(".so")
    assert compiled.report()["hullwatch.firmware.fdir.core"] == compiled.COMPILED


def test_pure_runs_every_module_interpreted() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import hullwatch.firmware.fdir.core as c, hullwatch.hal.framing as f; "
         "from hullwatch.hal import compiled; print(c.__file__); print(f.__file__); "
         "print(sorted(set(compiled.report().values())))"],
        env={**os.environ, compiled.ENV_PURE: "1"}, capture_output=True, text=True, check=True).stdout
    core_file, framing_file, ways = out.splitlines()
    assert core_file.endswith("core.py") and framing_file.endswith("framing.py")
    assert ways == repr([compiled.PURE])


def test_an_edited_source_runs_interpreted_with_a_warning(tmp_path: Path) -> None:
    """A real extension beside a source edited after the build: the guard loads the source."""
    ext = _extension_of("hullwatch.firmware.fdir.slope")
    if ext is None:
        pytest.skip("no compiled build (test_the_install_compiled_every_listed_module says why)")
    pkg = tmp_path / "guardprobe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    shutil.copy(ext, pkg / ext.name)
    shutil.copy(str(ext) + compiled.SOURCE_DIGEST_SUFFIX, pkg / (ext.name + compiled.SOURCE_DIGEST_SUFFIX))
    source = pkg / "slope.py"
    shutil.copy(ext.parent / "slope.py", source)
    guard = compiled.CompiledGuard("guardprobe.", pure=False)

    spec = guard.find_spec("guardprobe.slope", [str(pkg)])
    assert spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)

    source.write_text(source.read_text() + "# edited\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = guard.find_spec("guardprobe.slope", [str(pkg)])
    assert spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    assert spec.origin == str(source)
    assert guard.decisions["guardprobe.slope"] == compiled.STALE
    assert any(issubclass(w.category, RuntimeWarning) and "slope.py changed" in str(w.message)
               for w in caught)

    # Not hullwatch's: the guard leaves other packages to the usual finders.
    assert compiled.CompiledGuard("hullwatch.").find_spec("guardprobe.slope", [str(pkg)]) is None


@pytest.mark.slow
def test_a_compiled_run_writes_the_same_capture_as_an_interpreted_one(tmp_path: Path) -> None:
    """Same scenario, same seed, 20 minutes of soyuz-ms09 with its leak found and sealed: the
    capture files are identical byte for byte (every sample, estimate and event)."""
    captures = {}
    for name, pure in (("compiled", "0"), ("interpreted", "1")):
        cap = tmp_path / f"{name}.tm"
        subprocess.run([sys.executable, "-m", "hullwatch.tools", "run", "--until", "20m", "--capture",
                        str(cap), "--quiet", "--no-progress"],
                       env={**os.environ, compiled.ENV_PURE: pure}, capture_output=True, text=True,
                       check=True, cwd=tmp_path)
        captures[name] = cap.read_bytes()
    assert len(captures["compiled"]) > 1_000_000
    assert captures["compiled"] == captures["interpreted"]
