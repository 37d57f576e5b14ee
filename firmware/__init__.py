"""The flight software: executive, FDIR and telemetry.

Layering (docs/architecture.md): firmware imports only hal's interfaces, clock, errors and codec compiler. It never imports
``hullwatch.sim`` or ``hullwatch.tools``, so it cannot tell a simulated station from a real board.
"""
