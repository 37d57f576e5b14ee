"""What a closed-loop run did: its events, the scenario's truth and the decisions, as plain data
(filled by :func:`hullwatch.tools.closed_loop.runner.run_scenario`, judged by
:mod:`hullwatch.tools.closed_loop.verdict`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One FDIR/executive event. ``values`` are SI (their meaning per event: ``hullwatch
    dictionary``); ``utc`` is the mission time as UTC seconds since 1970."""

    t: float
    name: str
    subject: str
    values: tuple[float, float, float]
    severity: str
    utc: float
    #: False when its telemetry report was disabled (service 5) at the time: FDIR acted on it,
    #: the ground did not see it
    reported: bool = True


@dataclass(frozen=True, slots=True)
class LeakTruth:
    module: str
    start_s: float
    diameter_m: float
    cd: float


@dataclass(slots=True)
class RunResult:
    """What a run did. Times are mission seconds (None when it did not happen).

    ``verdict`` is one line; ``correct`` is True/False when the device knows the truth (a sim
    device), None otherwise.
    """

    device: str
    scenario: str | None
    seed: int | None
    mode: str
    epoch_utc: float
    events: list[RunEvent] = field(default_factory=list)
    leaks: list[LeakTruth] = field(default_factory=list)
    leak_start: float | None = None
    detected: float | None = None
    confirmed: float | None = None
    rapid: float | None = None
    located: float | None = None
    sealed: float | None = None
    located_module: str | None = None
    sealed_modules: list[str] = field(default_factory=list)
    #: ground truth: the smallest set of modules a correct isolation seals (sim devices only)
    must_seal: list[str] = field(default_factory=list)
    hole_diameter_m: float | None = None
    reserve_time_s: float | None = None
    leak_rate_kg_s: float | None = None
    valves_commanded: int = 0
    verdict: str = ""
    correct: bool | None = None
    simulated_s: float = 0.0
    #: mission time the run reached (s since mission time 0); a paced run starts a little after 0
    end_s: float = 0.0
    wall_s: float = 0.0
    cycles: int = 0
    overruns: int = 0
    max_cycle_time_s: float = 0.0
    mean_cycle_time_s: float = 0.0
    capture: str | None = None
    health: dict[str, Any] = field(default_factory=dict)
    #: the device link was down at the end of the run (lost and not restored): the decisions
    #: were made on stale data; ``link_lost_at`` is when it went (mission s, None if unknown)
    stale_data: bool = False
    link_lost_at: float | None = None

    @property
    def leak_starts(self) -> list[float]:
        return [lk.start_s for lk in self.leaks]

    @property
    def speedup(self) -> float:
        """Simulated seconds per wall second."""
        return self.simulated_s / self.wall_s if self.wall_s > 0 else math.inf

    def first(self, name: str) -> RunEvent | None:
        for e in self.events:
            if e.name == name:
                return e
        return None

    def named(self, name: str) -> list[RunEvent]:
        return [e for e in self.events if e.name == name]
