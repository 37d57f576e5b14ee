"""The CLI and ground tools, one subpackage per concern: ``cli`` (the ``hullwatch`` command),
``closed_loop`` (run the flight software against a device), ``captures`` (telemetry captures on the
ground), ``board`` (flashing, HIL device, pytest plugin) and ``campaign`` (Monte Carlo campaigns).

Module paths of the previous flat layout that the documentation showed (``hullwatch.tools.runner``,
``hullwatch.tools.replayer``, ...) still import, for one release: importing one issues a
``DeprecationWarning`` and yields the very same module object as its new home (:data:`MOVED`).
The aliases are served by a finder rather than by files at the old paths, so the moved files keep
their history as renames.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module name (under hullwatch.tools) -> its new home (under hullwatch.tools)
MOVED: dict[str, str] = {
    "runner": "closed_loop.runner",
    "replayer": "captures.replay",
    "rerun": "captures.rerun",
    "capture_plot": "captures.plot",
    "flashing": "board.flashing",
    "hil_device": "board.hil_device",
    "pytest_plugin": "board.pytest_plugin",
    "campaign_exec": "campaign.executor",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``hullwatch.tools.<old>`` to the module now at ``hullwatch.tools.<new>``."""

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package != __name__ or leaf not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}"
        # stacklevel 2 names the importing line: the import machinery's own frames are skipped
        warnings.warn(f"{spec.name} is deprecated; import {new} instead", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported under its new name."""


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
