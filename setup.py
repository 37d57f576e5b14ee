"""Build script for the compiled per-cycle modules; everything else is in pyproject.toml.

The modules that run on every cycle of the flight loop (and of a HIL exchange) are compiled to C
extensions with Cython, from the same ``.py`` files: one source, interpreted or compiled, never a
second implementation. Cython compiles them with Python's semantics (annotations are not used as
C types, ``annotation_typing=False``): the compiled module computes what the interpreted one
does, bit for bit, about 20 % faster (docs/architecture.md, "Compiled per-cycle modules").

Beside each extension the build writes ``<extension file>.src-sha256``, the SHA-256 of the source
it was compiled from. At import, :mod:`hullwatch.hal.compiled` uses an extension only while its
source still has that digest; an edited source runs interpreted (with a warning) until the next
``pip install -e .``.

Every extension is optional: without a C compiler the install still succeeds and everything runs
interpreted. ``HULLWATCH_COMPILE=0`` at install time builds no extension at all.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The per-cycle modules (import names); their sources are mapped by pyproject's package-dir.
COMPILED = [
    # flight loop
    "hullwatch.firmware.executive",
    "hullwatch.firmware.flight",
    "hullwatch.firmware.commanding.service",
    "hullwatch.firmware.fdir.core",
    "hullwatch.firmware.fdir.isolation",
    "hullwatch.firmware.fdir.pairs",
    "hullwatch.firmware.fdir.sensors",
    "hullwatch.firmware.fdir.slope",
    "hullwatch.firmware.fdir.slowleak",
    "hullwatch.firmware.fdir.thermo",
    "hullwatch.firmware.fdir.topology",
    "hullwatch.firmware.fdir.valves",
    "hullwatch.firmware.telemetry.emitter",
    "hullwatch.firmware.telemetry.fastcodec",
    "hullwatch.firmware.telemetry.headers",
    "hullwatch.firmware.telemetry.rawencode",
    "hullwatch.firmware.telemetry.sinks",
    # hal: frames, the board link and its codecs
    "hullwatch.hal.board_link",
    "hullwatch.hal.codec",
    "hullwatch.hal.config_model",
    "hullwatch.hal.framing",
    "hullwatch.hal.interfaces",
    "hullwatch.hal.serial_device",
    "hullwatch.hal.wire",
    # the simulated station and the board emulator
    "hullwatch.sim.board_channels",
    "hullwatch.sim.board_emulator",
    "hullwatch.sim.board_valves",
    "hullwatch.sim.device",
    "hullwatch.sim.lookahead",
    "hullwatch.sim.plant",
    "hullwatch.sim.sensors",
    "hullwatch.sim.urlhandler.protocol_emuboard",
    # the HIL device (plant in, board out)
    "hullwatch.tools.board.hil_device",
]

#: Where each top-level subpackage's source lives (pyproject.toml, tool.setuptools.package-dir).
FOLDERS = {"hullwatch.firmware": "firmware", "hullwatch.hal": "hal", "hullwatch.sim": "sim",
           "hullwatch.tools": "tools"}

SOURCE_DIGEST_SUFFIX = ".src-sha256"


def source_of(module: str) -> str:
    """The ``.py`` file of ``module`` (a name from COMPILED), relative to this directory."""
    top, rest = ".".join(module.split(".")[:2]), module.split(".")[2:]
    return os.path.join(FOLDERS[top], *rest) + ".py"


class BuildRecordingSources(build_ext):
    """build_ext that compiles in parallel and records each extension's source digest."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        super().run()
        for ext in self.extensions:
            out = Path(self.get_ext_fullpath(ext.name))
            record = out.with_name(out.name + SOURCE_DIGEST_SUFFIX)
            if out.exists():
                digest = hashlib.sha256(Path(source_of(ext.name)).read_bytes()).hexdigest()
                record.write_text(digest + "\n")
            elif record.exists():
                record.unlink()  # an optional extension that failed: no stale record


def extensions() -> list[Extension]:
    if os.environ.get("HULLWATCH_COMPILE", "1") == "0":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # a build environment without Cython: interpreted only
        return []
    exts = [Extension(name, [source_of(name)], optional=True) for name in COMPILED]
    return cythonize(
        exts, build_dir=os.path.join("build", "cython"), quiet=True, nthreads=os.cpu_count() or 1,
        compiler_directives={"language_level": 3, "annotation_typing": False, "binding": True},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildRecordingSources})
