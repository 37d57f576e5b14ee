"""Least-squares slopes of a sampled signal over a bank of windows, in O(1) per sample.

The signal is a segment's gas inventory expressed in Pa (see :mod:`.leak`). The least-squares slope
over the last ``N`` samples needs ``sum(y)`` and ``sum(k*y)`` over the window; both are differences
of prefix sums, kept in a ring of ``cap = N_max + 1`` entries. The prefix sums are exact integers
(fixed point, ``1/Q`` Pa per count), so a day of updates accumulates no rounding error and a window
of any length costs the same.

    numerator = 2*sum(k*y) - (2*k_last - N + 1)*sum(y)        (exact integer)
    slope     = numerator / (2 * N(N^2-1)/12) * Q^-1 * f      (Pa/s)
    sd(slope) = sigma * sqrt(12 / (N (N^2 - 1))) * f          (white noise sigma, Pa)

The noise sigma is estimated from first differences: var(y[k] - y[k-1]) = 2 sigma^2 for white
noise; an exponentially weighted mean and mean square (cumulative until ``noise_tau`` worth of
samples) remove the slope's share.

Everything is sized in :meth:`__init__`; :meth:`push` and :meth:`slope` allocate nothing.
"""

from __future__ import annotations

import math

#: Fixed-point scale of the prefix sums: counts per Pa. 1e-4 Pa is far below any sensor noise.
Q = 10000.0


class SlopeBank:
    """Prefix-sum ring for one segment. ``k`` counts samples since the last :meth:`reset`."""

    __slots__ = (
        "cap", "f", "r0", "r1", "c0", "c1", "k", "y0", "y_prev", "m1", "m2",
        "alpha_min", "noise_min2", "n_steady",
    )

    def __init__(self, max_samples: int, rate_hz: float, noise_tau_s: float, noise_min: float) -> None:
        self.cap = max_samples + 1
        self.f = rate_hz
        self.r0 = [0] * self.cap
        self.r1 = [0] * self.cap
        self.alpha_min = 1.0 / max(1.0, noise_tau_s * rate_hz)
        self.noise_min2 = noise_min * noise_min
        # The weight of the noise estimate at sample k >= 1 (the k-th difference) is
        # max(1/k, alpha_min); from k = n_steady on it is alpha_min for good (1/k only falls).
        n = max(1, int(1.0 / self.alpha_min))
        while 1.0 / n >= self.alpha_min:
            n += 1
        while n > 1 and 1.0 / (n - 1) < self.alpha_min:
            n -= 1
        self.n_steady = n
        self.reset(0.0)

    def reset(self, y0: float) -> None:
        """Forget everything; the next sample is index 0. ``y0`` is the fixed-point origin."""
        self.r0[0] = 0
        self.r1[0] = 0
        self.c0 = 0
        self.c1 = 0
        self.k = 0
        self.y0 = y0
        self.y_prev = y0
        self.m1 = 0.0
        self.m2 = 0.0

    def copy(self) -> "SlopeBank":
        """An independent bank holding the same samples (it goes on from where this one is)."""
        other = SlopeBank.__new__(SlopeBank)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        other.r0 = list(self.r0)
        other.r1 = list(self.r1)
        return other

    def push(self, y: float) -> None:
        k = self.k
        yq = int((y - self.y0) * Q)
        c0 = self.c0 + yq
        c1 = self.c1 + k * yq
        self.c0 = c0
        self.c1 = c1
        self.k = k + 1
        j = (k + 1) % self.cap
        self.r0[j] = c0
        self.r1[j] = c1
        # Noise: exponentially weighted mean and mean square of the first differences,
        # cumulative (weight 1/k) until the weight reaches alpha_min.
        if k >= self.n_steady:
            a = self.alpha_min
        elif k:
            a = 1.0 / k
            if a < self.alpha_min:
                a = self.alpha_min
        else:
            self.y_prev = y
            return
        d = y - self.y_prev
        self.y_prev = y
        m1 = self.m1
        self.m1 = m1 + a * (d - m1)
        m2 = self.m2
        self.m2 = m2 + a * (d * d - m2)

    def bridge(self, level: float, n: int) -> None:
        """Push ``n`` samples at ``level`` (Pa) for cycles whose data never came (a short outage
        of the device link), so the windows keep their time base. They are not measurements:
        the noise estimate is left as it is. (A hold at the recent mean, not a line to the first
        sample after the gap: a line between two single noisy samples carries their noise as a
        slope, three times the white-noise spread of a 2 s window over a 1 s gap.) ``n`` at most
        ``cap``: older samples would fall out of every window."""
        m1, m2 = self.m1, self.m2
        for _ in range(n):
            self.push(level)
        self.m1, self.m2 = m1, m2  # (push's noise update undone: these are not measurements)

    def sigma(self) -> float:
        """White-noise standard deviation of the signal, Pa (never below ``noise_min``)."""
        v = 0.5 * (self.m2 - self.m1 * self.m1)
        if v < self.noise_min2:
            v = self.noise_min2
        return math.sqrt(v)

    def slope(self, n: int) -> float:
        """Least-squares slope (Pa/s) over the last ``n`` samples; needs ``k >= n >= 2``."""
        return self.slope_scaled(n, slope_scale(n, self.f))

    def slope_scaled(self, n: int, scale: float) -> float:
        """:meth:`slope` with its scale precomputed: ``scale == slope_scale(n, rate_hz)``."""
        k = self.k
        j = (k - n) % self.cap
        a0 = self.c0 - self.r0[j]
        num = 2 * (self.c1 - self.r1[j]) - (2 * k - n - 1) * a0
        return num * scale

    def slope_all(self) -> float:
        """Least-squares slope (Pa/s) over every sample since the reset (``k >= 2``)."""
        k = self.k
        num = 2 * self.c1 - (k - 1) * self.c0
        return num * (6.0 * self.f / (Q * k * (k * k - 1)))

    def mean(self, n: int) -> float:
        """Mean (Pa) of the last ``n`` samples; needs ``k >= n >= 1``."""
        j = (self.k - n) % self.cap
        return (self.c0 - self.r0[j]) / (Q * n) + self.y0

    def mean_all(self) -> float:
        """Mean (Pa) of every sample since the reset (``k >= 1``)."""
        return self.c0 / (Q * self.k) + self.y0

    def level(self) -> float:
        """The last sample, Pa."""
        return self.y_prev


def slope_scale(n: int, rate_hz: float) -> float:
    """Pa/s per unit of the exact integer numerator of the slope over ``n`` samples."""
    return 6.0 * rate_hz / (Q * n * (n * n - 1))


def slope_sd_factor(n: int, rate_hz: float) -> float:
    """sd of the least-squares slope (Pa/s) per unit white-noise sigma (Pa) over ``n`` samples."""
    return math.sqrt(12.0 / (n * (n * n - 1.0))) * rate_hz
