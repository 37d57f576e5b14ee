"""FDIR stage 3c: hole and reserve estimates that converge after a segment is sealed.

``LEAK_LOCATED`` reports the hole and reserve time from the data seen until the leak was located:
on a 6 or 32 m3 module that is some 10-20 s, so the estimate is loose. The sealed segment's
inventory keeps being sampled (its fast slope bank runs on; only its tests stop), so after
``SEGMENT_SEALED`` the estimate is redone every ``estimate.period_s`` over everything the segment
has shown since it was split off, and reported as ``ESTIMATE_UPDATED`` (subject: the sealed
segment, as ``SEGMENT_SEALED`` names it; values: hole diameter m, reserve time s, relative 1-sigma of the hole).

A choked leak's mass flow is proportional to the pressure, so the inventory of a sealed segment
decays exponentially: ``Y(t) = Y0 exp(-t / tau)``. Over the window since the split (N samples):

    1/tau   = -slope(Y) / mean(Y)                 (slope and mean over the same samples: their
                                                   first-order curvature terms cancel)
    m'      = mean(Y) V / (R T_ref tau)           (mean mass flow over the window, kg/s)
    hole    = choked-orifice diameter for m' at the window's mean pressure mean(Y) T / T_ref and
              the segment's current temperature T, at isolation.discharge_coefficient
    reserve = tau ln(P / P_floor)                 (P: the segment's current voted pressure)

The uncertainty is the white-noise one of the slope: ``s_r = sd(slope) / |slope|``, with
``sd(slope) = sigma sqrt(12 / (N (N^2 - 1))) f``; the hole goes as the square root of the rate
(relative 1-sigma ``s_r / 2``), the reserve time as ``tau`` (``s_r``). Updates stop once
``confidence_z * s_r / 2 <= hole_target`` and ``confidence_z * s_r <= reserve_target`` and at
least ``min_s`` has passed since sealing (that update is the last), or after ``max_s``.

Everything is sized at start-up: one tracked estimate per module at most.
"""

from __future__ import annotations

import math

from ..types import EventId
from .physics import hole_diameter_m, reserve_time_s
from .port import SegmentHost



class Estimator:
    """Tracks sealed segments (``start``) and reports their estimates (``step``, at housekeeping
    rate)."""

    def __init__(self, host: SegmentHost) -> None:
        self.host = host
        n = host.n_modules
        self.masks = [0] * n  # tracked sealed segments (module masks); 0 = free entry
        self.t_sealed = [0.0] * n
        self.t_next = [0.0] * n
        self.updates = 0  # ESTIMATE_UPDATED events sent (health)
        #: last estimate per entry: (hole m, reserve s, hole relative 1-sigma, reserve relative 1-sigma)
        self.last: list[tuple[float, float, float, float] | None] = [None] * n

    def start(self, mask: int, t: float) -> None:
        """Hook: ``mask`` was just sealed (fast isolation or the slow schedule)."""
        for i, m in enumerate(self.masks):
            if m == mask or m == 0:
                self.masks[i] = mask
                self.t_sealed[i] = t
                self.t_next[i] = t + self.host.params.estimate.period_s
                self.last[i] = None
                return

    @property
    def active(self) -> bool:
        return any(self.masks)

    def step(self, t: float) -> None:
        """Report every tracked estimate that is due (called once per housekeeping period)."""
        for i, mask in enumerate(self.masks):
            if mask and t >= self.t_next[i]:
                self._update(i, mask, t)

    def estimate(self, mask: int) -> tuple[float, float, float, float] | None:
        """(hole m, reserve s, hole rel. 1-sigma, reserve rel. 1-sigma) of the sealed segment
        ``mask`` from the samples so far, or None while it is not measurable (not a segment of
        its own, too few samples, or not losing gas)."""
        f = self.host
        seg = f.topology.segment_of_mask(mask)
        if seg < 0:
            return None
        slot = f.seg_slot[seg]
        bank = f.banks[slot]
        k = bank.k
        if k < f.plan.n_warm:
            return None
        slope = bank.slope_all()
        mean = bank.mean_all()
        if slope >= 0.0 or mean <= 0.0:
            return None
        sd = bank.sigma() * math.sqrt(12.0 / (k * (k * k - 1.0))) * f.plan.rate_hz
        rel_rate = sd / -slope
        p = f.params
        members = f.slot_members[slot]
        vol = f.slot_volume[slot]
        P = f.pressure
        T = f.temperature
        pres = sum(P[m] * f.volume[m] for m in members) / vol
        temp = sum(T[m] * f.volume[m] for m in members) / vol
        inv_tau = -slope / mean
        mdot = mean * inv_tau * vol / (f.r_gas * f.t_ref)
        hole = hole_diameter_m(mdot, mean * temp / f.t_ref, temp, p.isolation.discharge_coefficient,
                               p.physics.gamma, p.physics.gas_constant_j_kg_k)
        reserve = reserve_time_s(pres, -pres * inv_tau, p.isolation.reserve_floor_pa)
        if not math.isfinite(reserve):
            return None
        return hole, reserve, 0.5 * rel_rate, rel_rate

    def _update(self, i: int, mask: int, t: float) -> None:
        f = self.host
        p = f.params.estimate
        # Due at sealing + n * period_s (reported on the first housekeeping tick at or after).
        self.t_next[i] += p.period_s
        est = self.estimate(mask)
        since = t - self.t_sealed[i]
        if est is None:
            if since > p.max_s:
                self.masks[i] = 0
            return
        hole, reserve, rel_hole, rel_reserve = est
        self.last[i] = est
        self.updates += 1
        f.events.push(t, EventId.ESTIMATE_UPDATED, f.mask_subject(mask), hole, reserve, rel_hole)
        z = p.confidence_z
        done = z * rel_hole <= p.hole_target and z * rel_reserve <= p.reserve_target and since >= p.min_s
        if done or since >= p.max_s:
            self.masks[i] = 0

