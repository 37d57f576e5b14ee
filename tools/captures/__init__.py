"""Telemetry captures on the ground: decode formats, CSV export, plots, replay, re-run and the ``replay://`` device."""
