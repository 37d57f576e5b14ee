"""The FDIR state machines: enumerated states and, for each machine, its one transition table.

Each table maps ``(from_state, to_state)`` to the event emitted on that transition (or None). A
transition not in its table is a programming error: :func:`check` refuses it and counts it instead
of raising (nothing in the loop raises), and the counter shows in housekeeping. docs/fdir.md
prints these tables.
"""

from __future__ import annotations

import enum

from ..types import EventId, IsolationState, SensorHealth, ValveHealth


class LeakState(enum.IntEnum):
    """Per connected segment."""

    NOMINAL = 0
    SUSPECTED = 1  #: the slope test passed the false-alarm threshold
    CONFIRMED = 2  #: the slope test passed the false-alarm + miss threshold, or rapid depress


S = SensorHealth
SENSOR_TRANSITIONS: dict[tuple[int, int], EventId | None] = {
    (S.OK, S.FAILED_RANGE): EventId.SENSOR_FAILED,
    (S.OK, S.FAILED_STALE): EventId.SENSOR_FAILED,
    (S.OK, S.FAILED_STUCK): EventId.SENSOR_FAILED,
    (S.OK, S.FAILED_DISAGREE): EventId.SENSOR_FAILED,
    (S.OK, S.FAILED_RATE): EventId.SENSOR_FAILED,
    (S.FAILED_RANGE, S.OK): EventId.SENSOR_RECOVERED,
    (S.FAILED_STALE, S.OK): EventId.SENSOR_RECOVERED,
    (S.FAILED_STUCK, S.OK): EventId.SENSOR_RECOVERED,
    (S.FAILED_DISAGREE, S.OK): EventId.SENSOR_RECOVERED,
    (S.FAILED_RATE, S.OK): EventId.SENSOR_RECOVERED,
}

L = LeakState
LEAK_TRANSITIONS: dict[tuple[int, int], EventId | None] = {
    (L.NOMINAL, L.SUSPECTED): EventId.LEAK_SUSPECTED,
    (L.SUSPECTED, L.CONFIRMED): EventId.LEAK_CONFIRMED,
    (L.NOMINAL, L.CONFIRMED): EventId.LEAK_CONFIRMED,  # rapid depressurisation skips "suspected"
    (L.SUSPECTED, L.NOMINAL): EventId.LEAK_CLEARED,
    (L.CONFIRMED, L.NOMINAL): EventId.LEAK_CLEARED,
}

I = IsolationState
ISOLATION_TRANSITIONS: dict[tuple[int, int], EventId | None] = {
    (I.IDLE, I.SPLITTING): EventId.ISOLATION_STARTED,
    (I.SEALED, I.SPLITTING): EventId.ISOLATION_STARTED,  # a further leak in the healthy part
    (I.FAILED, I.SPLITTING): EventId.ISOLATION_STARTED,  # retry (bounded by max_attempts)
    (I.SPLITTING, I.OBSERVING): EventId.ISOLATION_STEP,
    (I.SPLITTING, I.FAILED): EventId.ISOLATION_FAILED,  # no valve could be closed
    (I.OBSERVING, I.LOCATED): EventId.LEAK_LOCATED,
    (I.OBSERVING, I.FAILED): EventId.ISOLATION_FAILED,
    (I.LOCATED, I.SEALED): EventId.SEGMENT_SEALED,
    (I.SPLITTING, I.IDLE): None,  # mode left ACTIVE mid-way: valves restored
    (I.OBSERVING, I.IDLE): None,
    (I.LOCATED, I.IDLE): None,
    (I.SEALED, I.IDLE): None,  # acknowledged by telecommand
    (I.FAILED, I.IDLE): None,
}

V = ValveHealth
VALVE_TRANSITIONS: dict[tuple[int, int], EventId | None] = {
    (V.OK, V.FAILED): EventId.VALVE_FAILED,
}


def check(table: dict[tuple[int, int], EventId | None], old: int, new: int) -> tuple[bool, EventId | None]:
    """Is ``old -> new`` in ``table``? Returns (allowed, event to emit)."""
    key = (old, new)
    if key in table:
        return True, table[key]
    return False, None
