"""Clocks. All time in the flight software comes from an injected clock (docs/architecture.md).

``now()`` is mission time in seconds. ``sleep_until(t)`` returns once mission time has reached
``t`` (absolute deadlines, never ``sleep(period)``: python-can's periodic sender is the model).
"""

from __future__ import annotations

import abc
import time


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> float:
        """Mission time, s."""

    @abc.abstractmethod
    def sleep_until(self, t: float) -> None:
        """Block until mission time ``t`` (s). Returns at once if ``t`` has passed."""

    @property
    def virtual(self) -> bool:
        """True when time only advances by ``sleep_until`` (deterministic runs)."""
        return False


class VirtualClock(Clock):
    """Time advances only when the loop sleeps: as fast as the code runs, deterministic."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def sleep_until(self, t: float) -> None:
        if t > self._t:
            self._t = t

    @property
    def virtual(self) -> bool:
        return True


class WallClock(Clock):
    """Real time, optionally ``speed`` times faster. Mission time 0 is when the clock was made."""

    def __init__(self, speed: float = 1.0, start: float = 0.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._t0 = time.perf_counter()
        self._start = start

    def now(self) -> float:
        return self._start + (time.perf_counter() - self._t0) * self.speed

    #: Wall seconds before a deadline at which sleeping stops and spinning starts. ``time.sleep``
    #: may overshoot by a scheduler tick, and yielding (``sleep(0)``) on a busy machine can give
    #: the core away for a whole time slice, so the last stretch is a plain spin on perf_counter
    #: (p99 lateness target 1 ms).
    SPIN_S = 0.002

    def sleep_until(self, t: float) -> None:
        remaining = (t - self.now()) / self.speed
        if remaining > self.SPIN_S:
            time.sleep(remaining - self.SPIN_S)
        while self.now() < t:
            pass
