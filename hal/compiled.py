"""The import guard of the compiled per-cycle modules: an extension runs only while it matches
its source.

The install compiles the modules that run on every cycle (setup.py, ``COMPILED``) to C extensions
with Cython, from the same ``.py`` files, and writes beside each extension the SHA-256 of the
source it came from (``<extension file>.src-sha256``). Python's import system prefers an extension
to a ``.py`` of the same name, so an edited source would silently run its old compiled self. This
finder (first on ``sys.meta_path``, installed by each hullwatch package before its modules load)
decides instead, for every ``hullwatch.*`` module that has an extension:

- the extension, when its recorded digest equals the digest of the ``.py`` beside it (or there is
  no ``.py``: an install of extensions only);
- the ``.py``, interpreted, otherwise: no record, a different digest (the source was edited since
  the build: a ``RuntimeWarning`` says so once per process, and ``pip install -e .`` rebuilds), or
  the environment variable ``HULLWATCH_PURE`` set to ``1`` (run everything interpreted: to debug,
  profile, or measure coverage line by line).

:func:`report` tells which way each such module went. Module names, files and behaviour are the
same either way; only the speed differs.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

#: Environment variable: ``1`` runs every module interpreted, extensions or not.
ENV_PURE = "HULLWATCH_PURE"
#: Suffix of the file beside an extension that holds its source's SHA-256 (hex, one line).
SOURCE_DIGEST_SUFFIX = ".src-sha256"

COMPILED = "compiled"
PURE = "interpreted: HULLWATCH_PURE=1"
NO_RECORD = "interpreted: the extension has no record of its source"
STALE = "interpreted: the source changed since it was compiled (pip install -e . rebuilds it)"


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def choose(extension: str, source: str | None, pure: bool) -> str:
    """Which way a module with extension file ``extension`` and source ``source`` (None: no
    ``.py`` beside it) loads: :data:`COMPILED` or the reason it runs interpreted."""
    if source is None:
        return COMPILED  # nothing else to run
    if pure:
        return PURE
    try:
        with open(extension + SOURCE_DIGEST_SUFFIX, encoding="ascii") as f:
            recorded = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return NO_RECORD
    return COMPILED if recorded == _digest(source) else STALE


class CompiledGuard(importlib.abc.MetaPathFinder):
    """Meta path finder for the submodules of packages named ``prefix``... (see the module
    docstring). ``decisions`` maps each module it saw with an extension to :func:`choose`'s
    answer."""

    def __init__(self, prefix: str = "hullwatch.", pure: bool | None = None) -> None:
        self.prefix = prefix
        self.pure = os.environ.get(ENV_PURE, "") == "1" if pure is None else pure
        self.decisions: dict[str, str] = {}
        self._warned = False

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if path is None or not fullname.startswith(self.prefix):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader) \
                or spec.origin is None:
            return None  # not ours to decide: the usual finders go on
        source = os.path.join(os.path.dirname(spec.origin), fullname.rpartition(".")[2] + ".py")
        way = choose(spec.origin, source if os.path.exists(source) else None, self.pure)
        self.decisions[fullname] = way
        if way == COMPILED:
            return spec
        if way == STALE and not self._warned:
            self._warned = True
            warnings.warn(f"hullwatch: {source} changed since it was compiled; it and any other "
                          f"such module run interpreted (slower) until `pip install -e .` rebuilds "
                          f"them", RuntimeWarning, stacklevel=2)
        return importlib.util.spec_from_file_location(fullname, source)


def install() -> CompiledGuard:
    """Put the guard first on ``sys.meta_path`` (once per process); returns it."""
    for finder in sys.meta_path:
        if isinstance(finder, CompiledGuard) and finder.prefix == "hullwatch.":
            return finder
    guard = CompiledGuard()
    sys.meta_path.insert(0, guard)
    return guard


def report() -> dict[str, str]:
    """Each hullwatch module imported so far that has an extension, and how it loaded
    (:data:`COMPILED` or the reason it runs interpreted)."""
    return dict(install().decisions)


def summary() -> str:
    """One line for a benchmark's header: how the modules with an extension imported so far
    were loaded (compiled, or why not)."""
    decisions = report()
    if not decisions:
        return "build: interpreted (no compiled module installed; docs/architecture.md)"
    n = sum(way == COMPILED for way in decisions.values())
    line = f"build: {n} of {len(decisions)} per-cycle modules imported run compiled"
    for way in sorted(set(decisions.values()) - {COMPILED}):
        line += f"; {sum(w == way for w in decisions.values())} {way}"
    return line
