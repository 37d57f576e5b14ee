"""Enumerations shared by FDIR and telemetry (u8/u16 on the wire). Pinned: telemetry, FDIR, the
dictionary and ground tools all use these values."""

from __future__ import annotations

import enum


class FdirMode(enum.IntEnum):
    OFF = 0  #: FDIR does nothing (telemetry still flows)
    PASSIVE = 1  #: detects and reports, commands nothing
    ACTIVE = 2  #: detects, isolates, seals


class ModuleStatus(enum.IntEnum):
    NOMINAL = 0
    SUSPECTED = 1  #: its segment's leak test is past "suspected"
    LEAKING = 2  #: its segment has a confirmed leak
    ISOLATING = 3  #: isolation in progress and this module is still a candidate
    SEALED = 4  #: located leaking module, kept sealed
    DEGRADED = 5  #: fewer than two valid pressure sensors
    NO_DATA = 6  #: no valid pressure sensor: the module is unobservable (MODULE_UNOBSERVABLE)


class SensorHealth(enum.IntEnum):
    OK = 0
    FAILED_RANGE = 1
    FAILED_STALE = 2
    FAILED_STUCK = 3
    FAILED_DISAGREE = 4
    FAILED_RATE = 5  #: a temperature reading changed faster than gas can (step, spike, burst)


class ValveHealth(enum.IntEnum):
    OK = 0
    FAILED = 1  #: feedback disagreed with the command after the actuation timeout


class IsolationState(enum.IntEnum):
    IDLE = 0
    SPLITTING = 1  #: valves commanded, waiting for actuation
    OBSERVING = 2  #: watching which segment still loses gas
    LOCATED = 3
    SEALED = 4
    FAILED = 5  #: could not narrow down (e.g. valves failed); the leak stays reported


class Severity(enum.IntEnum):
    """PUS service 5 subtype: 1 informative, 2 low, 3 medium, 4 high severity."""

    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4


class EventId(enum.IntEnum):
    """Every FDIR/executive event. Parameters (subject and up to three values with units) are
    defined per event in the telemetry dictionary."""

    LEAK_SUSPECTED = 1
    LEAK_CONFIRMED = 2
    LEAK_CLEARED = 3
    RAPID_DEPRESS = 4
    ISOLATION_STARTED = 5
    ISOLATION_STEP = 6
    LEAK_LOCATED = 7
    SEGMENT_SEALED = 8
    VALVE_REOPENED = 9
    ISOLATION_FAILED = 10
    ESTIMATE_UPDATED = 11
    SEGMENT_CUT_OFF = 12
    SENSOR_FAILED = 20
    SENSOR_RECOVERED = 21
    VALVE_FAILED = 22
    MODULE_UNOBSERVABLE = 23
    MODULE_OBSERVABLE = 24
    VALVE_MOVED = 25
    CYCLE_OVERRUN = 30
    LINK_LOST = 31
    LINK_RESTORED = 32
    CONFIG_LOADED = 33
    MODE_CHANGED = 34
    PARAMS_LOADED = 35
    TELECOMMANDS_LOST = 40  #: telecommands dropped unread (queue and refusal ring full, or the OS)
