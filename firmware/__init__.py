"""The flight software: executive, FDIR and telemetry.

Layering (docs/architecture.md): firmware imports only hal's interfaces, clock, errors and codec
compiler. It never imports ``hullwatch.sim`` or ``hullwatch.tools``, so it cannot tell a simulated
station from a real board.
"""

# Loaded first on purpose: hal's package init installs the import guard of the compiled modules
# (hal/compiled.py), so a compiled module of this package is used only while it matches its source.
from ..hal import interfaces as _interfaces  # noqa: F401
