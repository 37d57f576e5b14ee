"""The plant: modules, leaks, sensors, valves, scenarios and the board emulator."""

from ..hal import compiled as _compiled

# Before any module of this package loads: a compiled module is used only while it matches its
# source (hal/compiled.py).
_compiled.install()
