"""The station diagram: where each module is drawn, and what each module and hatch is showing.

Positions come from the topology alone (the device layout): modules are placed in columns by
their distance, in hatches, from the largest module, so a chain of modules reads left to right
and a hub's neighbours share a column. Coordinates are in [0, 1]; the page scales them.

Marks per module, from the latest housekeeping report:

- ``leaking``: FDIR holds a confirmed leak in its segment (status LEAKING);
- ``suspected``: its segment's leak test is past "suspected";
- ``isolating``: isolation is running and the module is still a candidate;
- ``sealed``: the located leaking module, kept sealed (status SEALED);
- ``cut-off``: not sealed itself, but no open hatch joins it to the main segment (the connected
  set of modules, through hatches whose feedback reads open, with the largest volume); sealing a
  hub cuts off the modules behind it;
- ``unobservable``: no valid pressure sensor (status NO_DATA), or reported unobservable by an
  event of FDIR; ``degraded``: one valid pressure sensor left.
"""

from __future__ import annotations

from typing import Any, Sequence

from ...firmware.telemetry import ModuleStatus
from ...hal.interfaces import Layout, ValveKind

#: a valve whose feedback position is at least this is drawn open
OPEN_AT = 0.5

_STATUS_MARK = {
    ModuleStatus.SUSPECTED: "suspected",
    ModuleStatus.LEAKING: "leaking",
    ModuleStatus.ISOLATING: "isolating",
    ModuleStatus.SEALED: "sealed",
    ModuleStatus.DEGRADED: "degraded",
    ModuleStatus.NO_DATA: "unobservable",
}


def diagram_positions(layout: Layout) -> dict[str, tuple[float, float]]:
    """Module name -> (x, y) in [0, 1], columns by hatch distance from the largest module."""
    names = [m.name for m in layout.modules]
    if not names:
        return {}
    adjacent: dict[str, list[str]] = {n: [] for n in names}
    for v in layout.valves:
        if v.module_b is not None and v.module_a in adjacent and v.module_b in adjacent:
            adjacent[v.module_a].append(v.module_b)
            adjacent[v.module_b].append(v.module_a)
    volume = {m.name: m.volume_m3 for m in layout.modules}
    column: dict[str, int] = {}
    base = 0
    # every connected part of the station in turn, largest first module first
    for root in sorted(names, key=lambda n: -volume[n]):
        if root in column:
            continue
        column[root] = base
        frontier = [root]
        while frontier:
            nxt = []
            for n in frontier:
                for other in adjacent[n]:
                    if other not in column:
                        column[other] = column[n] + 1
                        nxt.append(other)
            frontier = nxt
        base = max(column.values()) + 1
    ncols = max(column.values()) + 1
    by_col: dict[int, list[str]] = {}
    for n in names:  # layout order within a column
        by_col.setdefault(column[n], []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    for c, members in by_col.items():
        x = (c + 0.5) / ncols
        for i, n in enumerate(members):
            pos[n] = (round(x, 4), round((i + 0.5) / len(members), 4))
    return pos


def segments(layout: Layout, valve_open: Sequence[bool]) -> list[int]:
    """Segment number per module (layout order): modules joined by open hatches or valves share
    one. Segment 0 is the main one (largest volume); the others follow by volume."""
    names = [m.name for m in layout.modules]
    index = {n: i for i, n in enumerate(names)}
    parent = list(range(len(names)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for v, is_open in zip(layout.valves, valve_open):
        if is_open and v.module_b is not None and v.module_a in index and v.module_b in index:
            parent[find(index[v.module_a])] = find(index[v.module_b])
    volume: dict[int, float] = {}
    for i, m in enumerate(layout.modules):
        volume[find(i)] = volume.get(find(i), 0.0) + m.volume_m3
    order = {root: k for k, root in enumerate(sorted(volume, key=lambda r: (-volume[r], r)))}
    return [order[find(i)] for i in range(len(names))]


def module_marks(status: int | None, segment: int | None, unobservable: bool) -> list[str]:
    """The marks (see the module doc) of one module."""
    marks: list[str] = []
    try:
        mark = _STATUS_MARK.get(ModuleStatus(status)) if status is not None else None
    except ValueError:
        mark = None
    if mark:
        marks.append(mark)
    if segment and mark not in ("sealed", "isolating"):
        marks.append("cut-off")
    if unobservable and "unobservable" not in marks:
        marks.append("unobservable")
    return marks


def diagram(layout: Layout, modules: list[dict[str, Any]], valves: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes (modules with position and marks) and edges (hatches and valves with state) for the
    page. ``modules``/``valves`` are the state records of :mod:`.state` in layout order."""
    pos = diagram_positions(layout)
    nodes = [{"name": m["name"], "x": pos[m["name"]][0], "y": pos[m["name"]][1],
              "volume_m3": m["volume_m3"], "marks": m["marks"], "status": m["status"]}
             for m in modules]
    edges = []
    for info, v in zip(layout.valves, valves):
        edges.append({"id": info.id, "kind": info.kind.name.lower(), "a": info.module_a,
                      "b": info.module_b, "state": v["state"], "health": v["health"],
                      "repress": info.kind == ValveKind.REPRESS})
    return {"nodes": nodes, "edges": edges}
