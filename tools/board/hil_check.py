"""Does a board's configuration fit a scenario's station? One comparison for the pytest plugin
and ``hullwatch run --device``.

:func:`layout_differences` compares the layout a board reports (its configuration image: modules
with volumes, channels with kinds and modules, valves with kinds and the modules they join) with
the layout of the scenario's plant, and lists every difference in words. :func:`check_board`
raises :class:`BoardMismatch` (exit status 2, bad input: the board carries a configuration for
another station) when there is any.
"""

from __future__ import annotations

import math
from typing import Any

from ...hal.interfaces import ChannelInfo, Layout, ValveInfo
from ..errors import InputError

#: Volumes closer than this (relative) are the same: the image stores binary32.
VOLUME_REL_TOL = 1e-4


class BoardMismatch(InputError):
    """The board's configuration does not fit the scenario. ``differences`` lists each one."""

    def __init__(self, message: str, differences: list[str]) -> None:
        super().__init__(message)
        self.differences = differences


def layout_differences(board: Layout, station: Layout) -> list[str]:
    """Every difference between the ``board`` layout and the ``station`` (scenario) layout,
    one sentence each, in the order modules, channels, valves; empty when they fit."""
    out: list[str] = []
    b_mod = {m.name: m for m in board.modules}
    s_mod = {m.name: m for m in station.modules}
    out += [f"module {n} ({s_mod[n].volume_m3:g} m3) is missing on the board" for n in s_mod if n not in b_mod]
    out += [f"module {n} is on the board but not in the scenario" for n in b_mod if n not in s_mod]
    for n, m in s_mod.items():
        if n in b_mod and not math.isclose(b_mod[n].volume_m3, m.volume_m3, rel_tol=VOLUME_REL_TOL):
            out.append(f"module {n}: volume {b_mod[n].volume_m3:g} m3 on the board, "
                       f"{m.volume_m3:g} m3 in the scenario")
    out += _compare("channel", _channels(board), _channels(station), _channel_text)
    out += _compare("valve", {v.id: v for v in board.valves}, {v.id: v for v in station.valves}, _valve_text)
    return out


def check_board(board: Layout, station: Layout, *, board_name: str = "the board",
                scenario_name: str = "the scenario") -> None:
    """Raise :class:`BoardMismatch` naming every difference between the two layouts."""
    diffs = layout_differences(board, station)
    if diffs:
        shown = "; ".join(diffs[:20]) + (f"; ... ({len(diffs) - 20} more)" if len(diffs) > 20 else "")
        raise BoardMismatch(
            f"board {board_name} does not fit scenario {scenario_name!r} ({len(diffs)} "
            f"difference{'s' if len(diffs) != 1 else ''}): {shown}. Flash the board with a "
            "configuration for this station (`hullwatch flash`), or for the emulator `hullwatch "
            "board --scenario NAME`", diffs)


def _channels(layout: Layout) -> dict[str, ChannelInfo]:
    return {c.id: c for c in (*layout.pressure, *layout.temperature, *layout.flow)}


def _channel_text(c: ChannelInfo) -> str:
    return f"{c.kind.name.lower()} in {c.module}"


def _valve_text(v: ValveInfo) -> str:
    joins = f"{v.module_a}-{v.module_b}" if v.module_b is not None else f"into {v.module_a}"
    return f"{v.kind.name.lower()} {joins}"


def _compare(what: str, board: dict[str, Any], station: dict[str, Any], text: Any) -> list[str]:
    out = [f"{what} {k} ({text(v)}) is missing on the board" for k, v in station.items() if k not in board]
    out += [f"{what} {k} ({text(v)}) is on the board but not in the scenario"
            for k, v in board.items() if k not in station]
    for k, v in station.items():
        if k in board and text(board[k]) != text(v):
            out.append(f"{what} {k}: {text(board[k])} on the board, {text(v)} in the scenario")
    return out


__all__ = ["BoardMismatch", "VOLUME_REL_TOL", "check_board", "layout_differences"]
