"""The fixed-rate executive: rate groups on absolute deadlines, driven by an injected clock.

Cycle ``k`` is due at ``t0 + k * period`` (computed, never accumulated, so there is no drift).
Each rate group runs every ``every``-th cycle (the FDIR group every cycle at 10 Hz, housekeeping
every 10th at 1 Hz). The executive sleeps on the device's clock until the next deadline
(python-can's periodic sender is the model):

- a lockstep (virtual) clock advances the plant by exactly one period per cycle: deterministic,
  as fast as the code runs;
- a wall clock (``hal.WallClock(speed)``) runs in real time or ``speed`` times faster.

Each cycle is timed with ``time.perf_counter``. An *overrun* is a cycle whose execution took
longer than its real-time budget (``period / speed``; ``period`` on a virtual clock, as it would on
the flight computer), or, on a wall clock, a deadline missed altogether: the executive then skips
the missed cycles rather than running a burst of late ones, and counts them. Every overrun calls
``on_overrun``; the flight software throttles the event it raises.

The first :meth:`Executive.run` collects the heap once and freezes it (``gc.freeze``) before
the first deadline: a full collection must scan every object the start-up left (tens of
thousands: the scenario, the tables, imported modules) and takes 5-15 ms, which at 100 Hz is a
missed cycle. Frozen, those objects are never scanned again; the loop's own garbage is young and
goes in the cheap generation-0 collections. A lockstep run has no deadline to miss but gains the
same way, if less: the collector's time inside a soyuz-ms09 loop falls from about 1.4 to 0.4 us
per cycle (measured with ``gc.callbacks``). :meth:`Executive.close` (called by
``FlightSoftware.close``) unfreezes them.

Nothing escapes a cycle: an exception from a rate group is counted in ``errors`` (per group), its
text kept in ``last_error``, and the loop goes on.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from typing import Callable

from ..hal.clock import Clock

#: Lateness samples kept (a bounded ring) for the wall-clock benchmark and housekeeping.
LATENESS_RING = 1 << 16


@dataclass(slots=True)
class RateGroup:
    """``fn(cycle, t)`` runs every ``every``-th cycle, after the groups listed before it."""

    name: str
    every: int
    fn: Callable[[int, float], None]
    errors: int = 0
    last_error: str = ""


class Executive:
    """Runs rate groups at a fixed period on ``clock``. See the module docstring.

    Attributes (read by housekeeping and the runner):
        cycles: cycles run.
        cycle_time_s / max_cycle_time_s: execution time of the last / longest cycle (wall s).
        total_cycle_time_s: sum of all cycle execution times.
        overruns: cycles over budget plus deadlines skipped.
        skipped: deadlines skipped because the loop fell a whole period behind (wall clock).
        errors: exceptions caught from rate groups, all groups.
        lateness_s: ring of the latest cycle-start lateness samples (wall s; wall clock only).
    """

    def __init__(self, clock: Clock, period_s: float, groups: list[RateGroup],
                 on_overrun: Callable[[float, float, int], None] | None = None) -> None:
        if period_s <= 0:
            raise ValueError(f"period must be > 0 s, got {period_s}")
        self.clock = clock
        self.period = period_s
        self.groups = groups
        self.on_overrun = on_overrun
        self.virtual = bool(getattr(clock, "virtual", False))
        speed = getattr(clock, "speed", 1.0)
        self.speed = speed if isinstance(speed, (int, float)) and speed > 0 else 1.0
        self.budget_s = period_s if self.virtual else period_s / self.speed
        self.cycles = 0
        self.cycle_time_s = 0.0
        self.max_cycle_time_s = 0.0
        self.total_cycle_time_s = 0.0
        self.overruns = 0
        self.skipped = 0
        self.errors = 0
        self.last_error = ""
        self.lateness_s = [0.0] * LATENESS_RING
        self.lateness_n = 0
        self.max_lateness_s = 0.0
        self.t0 = math.nan
        self.k = 0
        self._stop = False
        self._heap_frozen = False

    def close(self) -> None:
        """Hand the heap this executive froze back to the collector (``gc.unfreeze``), so that
        the objects of a finished run can be freed. Idempotent; the executive may run again
        (and freezes again). Another executive running in the same process at the
        same time would lose its frozen heap too: run one at a time."""
        if self._heap_frozen:
            self._heap_frozen = False
            gc.unfreeze()

    def stop(self) -> None:
        """Ask the loop to return after the current cycle (from a rate group or a callback)."""
        self._stop = True

    def run(self, until_s: float, t0: float | None = None) -> None:
        """Run cycles with deadlines in ``[t0, until_s)`` (mission s); ``t0`` defaults to now.

        May be called again to continue from where it stopped (deadlines stay on the same grid).
        """
        clock = self.clock
        sleep_until = clock.sleep_until
        period = self.period
        # (group, every, fn) once per call: no attribute look-ups per cycle.
        plan = [(g, g.every, g.fn) for g in self.groups]
        perf = time.perf_counter
        if not self._heap_frozen:  # before t0: this takes milliseconds
            self._heap_frozen = True
            gc.collect()
            gc.freeze()  # see the module docstring: no full collection in a cycle
        if math.isnan(self.t0):
            self.t0 = clock.now() if t0 is None else t0
            self.k = 0
        base = self.t0
        k = self.k
        virtual = self.virtual
        budget = self.budget_s
        ring = self.lateness_s
        mask = LATENESS_RING - 1
        limit = until_s - 1e-9 * period
        self._stop = False
        while not self._stop:
            deadline = base + k * period
            if deadline >= limit:
                break
            sleep_until(deadline)
            start = perf()
            if not virtual:
                late = (clock.now() - deadline) / self.speed
                ring[self.lateness_n & mask] = late
                self.lateness_n += 1
                if late > self.max_lateness_s:
                    self.max_lateness_s = late
            for g, every, fn in plan:
                if every == 1 or k % every == 0:
                    try:
                        fn(k, deadline)
                    except Exception as exc:  # noqa: BLE001 - nothing escapes a cycle
                        g.errors += 1
                        self.errors += 1
                        g.last_error = self.last_error = f"{g.name}: {type(exc).__name__}: {exc}"
            took = perf() - start
            self.cycle_time_s = took
            self.total_cycle_time_s += took
            if took > self.max_cycle_time_s:
                self.max_cycle_time_s = took
            self.cycles += 1
            k += 1
            if took > budget:
                self._overrun(deadline, took)
            if not virtual:
                # Fell a whole period behind: skip the missed deadlines instead of bursting.
                behind = clock.now() - (base + k * period)
                if behind > period:
                    missed = int(behind // period)
                    k += missed
                    self.skipped += missed
                    self.overruns += missed - 1  # _overrun below counts one
                    self._overrun(deadline, took)
        self.k = k

    def _overrun(self, t: float, took: float) -> None:
        self.overruns += 1
        if self.on_overrun is not None:
            try:
                self.on_overrun(t, took, self.overruns)
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                self.last_error = f"on_overrun: {type(exc).__name__}: {exc}"

    def lateness(self) -> list[float]:
        """The recorded cycle-start lateness samples (wall s), oldest first (at most the ring)."""
        n = self.lateness_n
        if n <= LATENESS_RING:
            return self.lateness_s[:n]
        i = n & (LATENESS_RING - 1)
        return self.lateness_s[i:] + self.lateness_s[:i]

    @property
    def mean_cycle_time_s(self) -> float:
        return self.total_cycle_time_s / self.cycles if self.cycles else 0.0
