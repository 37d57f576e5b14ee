"""Clocks. All time in the flight software comes from an injected clock (DESIGN.md).

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

    def sleep_until(self, t: float) -> None:
        # Sleep most of the way, then spin the last ~0.5 ms: time.sleep overshoots by up to a
        # scheduler tick, and the p99 lateness target is 1 ms.
        while True:
            remaining = (t - self.now()) / self.speed
            if remaining <= 0:
                return
            if remaining > 0.0015:
                time.sleep(remaining - 0.001)
            elif remaining > 0.0002:
                time.sleep(0)
