"""Dotted keys into nested scenario data (``thermal.amplitude_k``, ``modules.2.volume_m3``): how
campaign specs name the scenario values they draw."""

from __future__ import annotations

from typing import Any


def get_dotted(data: Any, key: str) -> Any:
    """Value at a dotted key (``thermal.amplitude_k``, ``modules.2.volume_m3``); KeyError naming
    the first missing part."""
    cur = data
    for part in key.split("."):
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(part)
    return cur
