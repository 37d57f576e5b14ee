"""Time series of the housekeeping values per module, kept in a bounded ring, read back over a
window with decimation.

One row per housekeeping report (1 Hz of mission time): the report's UTC time and, per module,
voted pressure (Pa), gas temperature (K), inventory (mol) and segment leak rate (kg/s). The ring
holds :data:`CAPACITY` rows (36 h at 1 Hz); older rows are dropped. Reading a window never
returns more than the asked number of points: rows are thinned by time buckets of
``window / points`` seconds, keeping the last row of each bucket, so a page keeps up with a replay
at any speed by drawing fewer points rather than falling behind.
"""

from __future__ import annotations

import math

import numpy as np

#: rows kept (36 h of 1 Hz housekeeping)
CAPACITY = 131_072

#: the quantities kept per module, in row order, with their units
QUANTITIES: tuple[tuple[str, str], ...] = (
    ("pressure_pa", "Pa"), ("temperature_k", "K"), ("inventory_mol", "mol"), ("leak_rate_kg_s", "kg/s"))


class SeriesStore:
    """A ring of housekeeping rows for ``n_modules`` modules. Not thread-safe: the caller locks."""

    def __init__(self, n_modules: int, capacity: int = CAPACITY) -> None:
        self.n_modules = n_modules
        self.capacity = capacity
        self._t = np.zeros(capacity, np.float64)
        self._v = np.zeros((capacity, len(QUANTITIES), n_modules), np.float64)
        self.count = 0  #: rows ever appended (the ring index of the next row is count % capacity)

    def append(self, utc: float, values: list[list[float]]) -> None:
        """One row: ``values[q][m]`` for quantity ``q`` (QUANTITIES order) and module ``m``."""
        i = self.count % self.capacity
        self._t[i] = utc
        self._v[i] = values
        self.count += 1

    @property
    def first(self) -> int:
        """Index (in ``count`` numbering) of the oldest row still held."""
        return max(0, self.count - self.capacity)

    def last_utc(self) -> float | None:
        return float(self._t[(self.count - 1) % self.capacity]) if self.count else None

    def _rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start <= k < stop`` (count numbering, within the ring) as contiguous copies."""
        idx = np.arange(start, stop) % self.capacity
        return self._t[idx], self._v[idx]

    def since(self, after_utc: float, window_s: float, points: int, start_hint: int = 0
              ) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows newer than ``after_utc``, thinned to at most one per bucket of ``window_s /
        points`` seconds (the bucket grid is fixed in UTC, so successive calls line up). Returns
        ``(t, values, next_hint)``; ``values`` has shape ``(rows, quantities, modules)``.
        ``start_hint`` (the ``next_hint`` of the previous call) saves the search."""
        lo = max(self.first, start_hint)
        if lo >= self.count:
            return np.zeros(0), np.zeros((0, len(QUANTITIES), self.n_modules)), self.count
        t, v = self._rows(lo, self.count)
        keep = t > after_utc
        t, v = t[keep], v[keep]
        return (*_thin(t, v, window_s / max(1, points)), self.count)

    def window(self, window_s: float | None, points: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the last ``window_s`` seconds before the newest row (all rows held when
        None), thinned to at most about ``points`` rows."""
        if not self.count:
            return np.zeros(0), np.zeros((0, len(QUANTITIES), self.n_modules))
        t, v = self._rows(self.first, self.count)
        if window_s is not None:
            keep = t >= t[-1] - window_s
            t, v = t[keep], v[keep]
        span = window_s if window_s is not None else (float(t[-1] - t[0]) if len(t) > 1 else 1.0)
        return _thin(t, v, span / max(1, points))


def _thin(t: np.ndarray, v: np.ndarray, bucket_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the last row of each ``bucket_s``-wide bucket (aligned on multiples of ``bucket_s``)."""
    if len(t) < 2 or not bucket_s > 0 or not math.isfinite(bucket_s):
        return t, v
    b = np.floor(t / bucket_s)
    last = np.empty(len(t), bool)
    last[:-1] = b[1:] != b[:-1]
    last[-1] = True
    if last.all():
        return t, v
    return t[last], v[last]
