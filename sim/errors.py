"""The sim exception tree."""

from __future__ import annotations


class SimError(Exception):
    """Base of every error raised by hullwatch.sim."""


class ScenarioError(SimError, ValueError):
    """A scenario is invalid or cannot be found. The message names the file, the key and what was
    expected, e.g. ``soyuz.toml: modules[2].volume_m3: expected a number > 0, got -3``."""

    def __init__(self, message: str, source: str | None = None, key: str | None = None) -> None:
        where = ""
        if source:
            where += f"{source}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.source = source
        self.key = key
