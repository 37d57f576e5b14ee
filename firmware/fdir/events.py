"""A bounded event queue: FDIR pushes events, the flight software drains them into telemetry.

Capacity is fixed at start-up; when the queue is full the oldest undrained event is overwritten and
``dropped`` counts it (a bounded queue never blocks the loop and never grows). An event is a plain
tuple ``(t, event_id, severity, subject, v1, v2, v3)``: mission time (s), :class:`EventId` value,
:class:`Severity` value, subject text (module, sensor, valve or segment), and up to three values
whose units depend on the event (docs/fdir.md lists them).
"""

from __future__ import annotations

from ..types import EventId, Severity

EventRecord = tuple[float, int, int, str, float, float, float]

#: Default severity of each event (PUS service 5 subtype).
SEVERITY: dict[int, int] = {
    EventId.LEAK_SUSPECTED: Severity.LOW,
    EventId.LEAK_CONFIRMED: Severity.HIGH,
    EventId.LEAK_CLEARED: Severity.INFO,
    EventId.RAPID_DEPRESS: Severity.HIGH,
    EventId.ISOLATION_STARTED: Severity.MEDIUM,
    EventId.ISOLATION_STEP: Severity.INFO,
    EventId.LEAK_LOCATED: Severity.HIGH,
    EventId.SEGMENT_SEALED: Severity.MEDIUM,
    EventId.VALVE_REOPENED: Severity.INFO,
    EventId.ISOLATION_FAILED: Severity.HIGH,
    EventId.ESTIMATE_UPDATED: Severity.INFO,
    EventId.SEGMENT_CUT_OFF: Severity.MEDIUM,
    EventId.SENSOR_FAILED: Severity.MEDIUM,
    EventId.SENSOR_RECOVERED: Severity.INFO,
    EventId.VALVE_FAILED: Severity.MEDIUM,
    EventId.MODULE_UNOBSERVABLE: Severity.MEDIUM,
    EventId.MODULE_OBSERVABLE: Severity.INFO,
    EventId.VALVE_MOVED: Severity.INFO,
    EventId.CYCLE_OVERRUN: Severity.LOW,
    EventId.LINK_LOST: Severity.MEDIUM,
    EventId.LINK_RESTORED: Severity.INFO,
    EventId.CONFIG_LOADED: Severity.INFO,
    EventId.MODE_CHANGED: Severity.INFO,
    EventId.PARAMS_LOADED: Severity.INFO,
}


class EventQueue:
    """Fixed-capacity ring of event records. ``push`` never raises and never allocates a slot."""

    __slots__ = ("_buf", "_cap", "_head", "_count", "dropped", "pushed")

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._buf: list[EventRecord | None] = [None] * capacity
        self._cap = capacity
        self._head = 0  # index of the oldest record
        self._count = 0
        self.dropped = 0
        self.pushed = 0

    def push(self, t: float, event_id: int, subject: str = "", v1: float = 0.0, v2: float = 0.0,
             v3: float = 0.0, severity: int | None = None) -> None:
        sev = SEVERITY.get(event_id, Severity.INFO) if severity is None else severity
        rec = (t, int(event_id), int(sev), subject, float(v1), float(v2), float(v3))
        if self._count == self._cap:
            self._buf[self._head] = rec
            self._head = (self._head + 1) % self._cap
            self.dropped += 1
        else:
            self._buf[(self._head + self._count) % self._cap] = rec
            self._count += 1
        self.pushed += 1

    def __len__(self) -> int:
        return self._count

    def pop(self) -> EventRecord | None:
        """The oldest record, or None when empty."""
        if not self._count:
            return None
        rec = self._buf[self._head]
        self._buf[self._head] = None
        self._head = (self._head + 1) % self._cap
        self._count -= 1
        return rec
