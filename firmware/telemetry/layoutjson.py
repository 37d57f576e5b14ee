"""The device :class:`~hullwatch.hal.interfaces.Layout` as JSON, carried by the layout report.

Format (keys sorted, compact)::

    {"format": 1,
     "modules": [{"name": "soyuz-om", "volume_m3": 6.0}, ...],
     "pressure": [{"id": "soyuz-om.p1", "kind": "PRESSURE", "module": "soyuz-om",
                   "valid_min": 0.0, "valid_max": 120000.0}, ...],
     "temperature": [...], "flow": [...],
     "valves": [{"id": "om-dm", "kind": "HATCH", "module_a": "soyuz-om", "module_b": "soyuz-dm",
                 "actuation_timeout_s": 5.0}, ...]}

Channel order is the Layout order, which is the order of values in a raw-samples packet.
"""

from __future__ import annotations

import json
from typing import Any

from ...hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind
from ..errors import TelemetryError

LAYOUT_FORMAT = 1


def layout_to_dict(layout: Layout) -> dict[str, Any]:
    def channel(c: ChannelInfo) -> dict[str, Any]:
        return {"id": c.id, "kind": c.kind.name, "module": c.module,
                "valid_min": c.valid_min, "valid_max": c.valid_max}

    return {
        "format": LAYOUT_FORMAT,
        "modules": [{"name": m.name, "volume_m3": m.volume_m3} for m in layout.modules],
        "pressure": [channel(c) for c in layout.pressure],
        "temperature": [channel(c) for c in layout.temperature],
        "flow": [channel(c) for c in layout.flow],
        "valves": [{"id": v.id, "kind": v.kind.name, "module_a": v.module_a, "module_b": v.module_b,
                    "actuation_timeout_s": v.actuation_timeout_s} for v in layout.valves],
    }


def layout_to_json(layout: Layout) -> str:
    """``layout`` as compact JSON with sorted keys (identical layouts give identical text)."""
    return json.dumps(layout_to_dict(layout), sort_keys=True, separators=(",", ":"))


def layout_from_json(text: str) -> Layout:
    """The Layout in ``text``. Raises TelemetryError naming the key that is missing or wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TelemetryError(f"layout report: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TelemetryError("layout report: expected a JSON object")
    if data.get("format") != LAYOUT_FORMAT:
        raise TelemetryError(f"layout report: format {data.get('format')!r}, expected {LAYOUT_FORMAT}")
    where = "layout"
    try:
        where = "modules"
        modules = tuple(ModuleInfo(str(m["name"]), float(m["volume_m3"])) for m in data["modules"])
        channels: dict[str, tuple[ChannelInfo, ...]] = {}
        for group in ("pressure", "temperature", "flow"):
            where = group
            channels[group] = tuple(
                ChannelInfo(str(c["id"]), ChannelKind[c["kind"]], str(c["module"]),
                            float(c["valid_min"]), float(c["valid_max"]))
                for c in data[group])
        where = "valves"
        valves = tuple(
            ValveInfo(str(v["id"]), ValveKind[v["kind"]], str(v["module_a"]),
                      None if v["module_b"] is None else str(v["module_b"]), float(v["actuation_timeout_s"]))
            for v in data["valves"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TelemetryError(f"layout report: {where}: missing or invalid {exc}") from exc
    return Layout(modules, channels["pressure"], channels["temperature"], channels["flow"], valves)
