"""FDIR stage 2: leak detection per connected segment.

The tested signal of a segment is its gas inventory expressed as a pressure at a reference
temperature::

    Y = T_ref / V_seg * sum_m ( P_m V_m / T_m  -  R * Q_m )        (Pa)

with P_m, T_m the voted pressure and mean temperature of module m, and Q_m the gas (kg) added to
module m so far by measured repress flow. Y is proportional to the mass of gas in the segment, so
the orbital thermal swing (about 346 Pa per K) cancels, and a commanded repress is booked rather
than seen as a pressure rise. A leak of m' kg/s makes Y fall at ``m' R T_ref / V_seg`` Pa/s.

The test is a bank of least-squares slopes of Y over windows of 2 s .. 2048 s (:mod:`.slope`),
each judged as a standardised statistic::

    z_j = (-slope_j - dead_band) / (sigma * sqrt(12 / (N_j (N_j^2 - 1))) * f)

against two thresholds derived from the false-alarm probability alpha and the miss probability
beta: ``z >= z(1-alpha)`` -> SUSPECTED; ``z >= z(1-alpha) + z(1-beta)`` -> CONFIRMED (the rate's
lower confidence bound at 1-beta is itself significant at alpha). Each window is a matched
filter for the leak rate whose statistical floor it is, so the bank reaches within a factor
2^(1/3) of the floor T = (12 k^2 sigma^2 / (f s^2))^(1/3) for every leak size. Long windows are
evaluated every N/10 samples (a window's statistic moves little in a tenth of its length), so
the whole bank costs about one slope evaluation per cycle.

Rapid depressurisation: the slope of Y over ``rapid_window_s`` below ``-rapid_dpdt_pa_s``
confirms a leak at once, provided that slope is also significant at the suspect threshold (in a
small module on its own the short window's noise alone can come near the rate threshold).
"""

from __future__ import annotations

from statistics import NormalDist

from ..param_bounds import window_stride
from .params import FdirParams
from .slope import SlopeBank, slope_scale, slope_sd_factor


def thresholds(params: FdirParams) -> tuple[float, float]:
    """(suspect, confirm) thresholds on the standardised slope: z(1-alpha), z(1-alpha)+z(1-beta)."""
    nd = NormalDist()
    za = nd.inv_cdf(1.0 - params.leak.false_alarm_prob)
    zb = nd.inv_cdf(1.0 - params.leak.miss_prob)
    return za, za + zb


def statistical_floor_s(slope_pa_s: float, sigma_pa: float, rate_hz: float, alpha: float,
                        beta: float) -> float:
    """The statistical floor (docs/detection.md): the window over which a slope ``s`` in white noise ``sigma`` sampled at
    ``f`` reaches k = z(1-alpha) + z(1-beta) standard deviations: (12 k^2 sigma^2/(f s^2))^(1/3)."""
    nd = NormalDist()
    k = nd.inv_cdf(1.0 - alpha) + nd.inv_cdf(1.0 - beta)
    return (12.0 * k * k * sigma_pa * sigma_pa / (rate_hz * slope_pa_s * slope_pa_s)) ** (1.0 / 3.0)


class WindowPlan:
    """Window lengths in samples, their sd factors and the evaluation schedule, fixed at start."""

    def __init__(self, params: FdirParams) -> None:
        dt = params.executive.period_s
        self.rate_hz = 1.0 / dt
        self.n = [max(2, round(w / dt)) for w in params.leak.windows_s]
        self.n_sorted = sorted(self.n)
        self.scale_sorted = [slope_scale(n, self.rate_hz) for n in self.n_sorted]
        self.sdf = [slope_sd_factor(n, self.rate_hz) for n in self.n]
        self.scale = [slope_scale(n, self.rate_hz) for n in self.n]  #: for SlopeBank.slope_scaled
        self.stride = [window_stride(n) for n in self.n]
        period = 1
        for s in self.stride:
            period = period * s // _gcd(period, s)
        self.period = period
        #: schedule[k % period] = window indices to evaluate at sample count k
        self.schedule: list[tuple[int, ...]] = [
            tuple(j for j, s in enumerate(self.stride) if k % s == 0) for k in range(period)
        ]
        self.n_rapid = max(2, round(params.leak.rapid_window_s / dt))
        self.sdf_rapid = slope_sd_factor(self.n_rapid, self.rate_hz)
        self.scale_rapid = slope_scale(self.n_rapid, self.rate_hz)
        self.n_warm = max(2, round(params.leak.warmup_s / dt))
        # The fast series also gives the slow test its decimated means (fdir/slowleak.py), so it
        # holds at least one decimation interval.
        self.n_decim = max(1, round(params.slowleak.decimation_s / dt))
        self.max_n = max(self.n + [self.n_rapid, self.n_decim])

    def new_bank(self, params: FdirParams) -> SlopeBank:
        return SlopeBank(self.max_n, self.rate_hz, params.leak.noise_tau_s, params.leak.noise_min_pa)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a
