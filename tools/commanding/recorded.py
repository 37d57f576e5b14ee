"""The telecommands a capture holds, with the mission times at which to apply them again.

The flight software writes each telecommand it takes from its queue into the capture at the
start of the cycle that applies it, just before its acceptance report, which is stamped with that
cycle's time. So a recorded telecommand is re-applied at the time stamp of the first telemetry
packet after it (``hullwatch rerun``). CUC time stamps are truncated to 1/65536 s, both that one
and those the re-run's cycles are timed from, so the time is taken :data:`MARGIN_S` early: the
flight software applies a stored command at the first cycle due at or after its time, and that is
the recorded cycle (periods are far longer than the margin).
"""

from __future__ import annotations

import os
from typing import Callable

from ..ground.capture import iter_packet_batches
from ..errors import InputError

#: how much earlier than its acceptance report's time stamp a recorded command is re-applied (s)
MARGIN_S = 1e-3
#: recorded telecommands kept in memory at most (every list is bounded)
MAX_RECORDED = 1_000_000


def recorded_commands(path: str | os.PathLike[str], epoch_utc: float,
                      on_skip: Callable[[object], None] | None = None) -> list[tuple[float, bytes]]:
    """``(mission time s, TC packet bytes)`` of every telecommand in the capture, in file order.

    ``epoch_utc`` is the capture's mission time 0 (its layout report's). A telecommand with no
    telemetry after it (the capture ended) is left out: it was never applied. Raises InputError
    beyond :data:`MAX_RECORDED`.
    """
    out: list[tuple[float, bytes]] = []
    pending: list[bytes] = []
    for batch in iter_packet_batches(os.fspath(path), on_skip=on_skip):
        h = batch.headers()
        tc = h["packet_type"] == 1
        if not pending and not tc.any():
            continue
        types = h["packet_type"].tolist()
        times = h["time_utc"].tolist()
        for i, kind in enumerate(types):
            if kind == 1:
                start = int(batch.starts[i])
                pending.append(bytes(batch.buffer[start:start + int(batch.lengths[i])]))
                continue
            if pending:
                if len(out) + len(pending) > MAX_RECORDED:
                    raise InputError(f"{os.fspath(path)}: more than {MAX_RECORDED} telecommands")
                at = round(times[i] - epoch_utc - MARGIN_S, 6)
                out.extend((at, raw) for raw in pending)
                pending = []
    return out
