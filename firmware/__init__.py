"""The flight software: executive, FDIR and telemetry.

Layering (DESIGN.md): firmware imports only hal's interfaces and errors. It never imports
``hullwatch.sim`` or ``hullwatch.tools``, so it cannot tell a simulated station from a real board.
"""
