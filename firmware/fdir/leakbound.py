"""A lower bound of a slow leak's rate that keeps growing while the location schedule runs.

The slow detector (:mod:`.slowleak`) confirms a leak as soon as one window's rate passes that
window's band, so the rate beyond the band at that moment, the L that the location schedule
(:mod:`.locate`) sizes its decisions by, is a lower bound of the leak but often a tiny one: a
0.6 kg/day leak confirmed by a 16 h window whose band is 0.65 kg/day gave L = 0.002 kg/day; a
3 kg/day leak confirmed by the window growing since the start, half of it from before the leak,
gave 0.11 kg/day. A schedule whose decisions hinge on a share of such an L cannot tell a healthy
branch from a leaking one.

The schedule splits the station, so the slot the detector judged is gone; but the gas of the
confirmed segment as a whole does not depend on which of its hatches are closed. A
:class:`LeakBound` takes over a copy of the confirmed slot's slow slope bank and goes on feeding
it the inventory of the same modules, summed across the schedule's splits (sampled once per
housekeeping period, averaged over ``slowleak.decimation_s``; offset once, at the hand-over, to
continue the detector's own series without a step). Every averaged sample it judges the same
windows with the same band as the detector; :attr:`LeakBound.value` (kg/s) is the largest rate
beyond its band, less what one thermometer could explain, among the windows whose evidence
reaches the confirm threshold. It never falls. While a module of the set shares a segment with
a module outside it (a hatch someone opened), gas may cross the set's boundary: the bound stops
taking samples (it keeps its value) until the set is closed again, and then restarts its series.
It also restarts its series when a module's voting pressure sensors or trusted thermometers
change, as the detector's own tests do: the history holds what a failed channel did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .slope import slope_sd_factor

if TYPE_CHECKING:
    from .core import Fdir
    from .slowleak import SlowLeakDetector


class LeakBound:
    """The confirmed segment's rate beyond its band, kept up to date across the schedule's splits."""

    def __init__(self, slow: "SlowLeakDetector", slot: int, value: float) -> None:
        """Take over ``slot``'s slow bank at the confirmation; ``value``: the confirmed rate
        beyond its band (kg/s), where the bound starts."""
        f: "Fdir" = slow.fdir
        self.slow = slow
        self.fdir = f
        self.members = list(f.slot_members[slot])
        self.mask = f.slot_mask[slot]
        self.volume = f.slot_volume[slot]
        self.band_extra = slow.segment_band(slot)  # known loss, crew allowance: as at the alarm
        self.to_kg = self.volume / (f.r_gas * f.t_ref)
        self.value = max(0.0, value)
        self.bank = slow.banks[slot].copy()
        hk = f.params.executive.housekeeping_period_s
        self.ticks = max(1, round(slow.params.decimation_s / hk))
        # The detector's series is the fast slot's inventory (a blind module's pressure taken
        # from a neighbour); continue it without a step.
        self.offset = f.banks[slot].level() - self._inventory()
        self.acc = 0.0
        self.cnt = 0
        self.closed = True
        self.seen = (f.sensors.changed, f.thermo.changed)

    def _inventory(self) -> float:
        """The set's gas as a pressure at the reference temperature over its volume, Pa: the
        fast detector's inventory terms of the segments that make up the set (called only while
        no segment straddles its boundary), so a blind module counts with its segment mates'
        pressure exactly as in the detector's own series."""
        f = self.fdir
        P = f.sensors.pressure
        T = f.thermo.temperature
        Q = f.added_kg
        rg = f.r_gas
        mask = self.mask
        topo = f.topology
        terms = f._seg_terms
        acc = 0.0
        for s in range(topo.n_segments):
            if topo.masks[s] & mask:
                for mp, m, v in terms[s]:
                    acc += P[mp] * v / T[m] - rg * Q[m]
        return acc * f.t_ref / self.volume

    def _set_closed(self) -> bool:
        """No segment joins a module of the set to one outside it."""
        mask = self.mask
        topo = self.fdir.topology
        for s in range(topo.n_segments):
            seg = topo.masks[s]
            if seg & mask and seg & ~mask:
                return False
        return True

    def tick(self) -> None:
        """One sample (call once per housekeeping period while the schedule runs)."""
        if not self._set_closed():
            self.closed = False
            self.acc = 0.0
            self.cnt = 0
            return
        f = self.fdir
        seen = (f.sensors.changed, f.thermo.changed)
        if not self.closed or seen != self.seen:
            # Gas may have crossed the boundary meanwhile, or a channel left or joined the
            # inventory: a new series from here.
            self.closed = True
            self.seen = seen
            self.bank.k = -1
            self.acc = 0.0
            self.cnt = 0
        self.acc += self._inventory() + self.offset
        self.cnt += 1
        if self.cnt < self.ticks:
            return
        y = self.acc / self.cnt
        self.acc = 0.0
        self.cnt = 0
        bank = self.bank
        if bank.k < 0:
            bank.reset(y)
        bank.push(y)
        self._judge()

    def _judge(self) -> None:
        slow = self.slow
        bank = self.bank
        k = bank.k
        if k < slow.n_min:
            return
        sigma = bank.sigma()
        for j, n in enumerate(slow.win_n):
            if n > k:
                break
            self._consider(bank.slope_scaled(n, slow.win_scale[j]), sigma * slow.win_sdf[j],
                           slow.win_band[j], n)
        if k < slow.n_max and k not in slow.win_n:
            self._consider(bank.slope_all(), sigma * slope_sd_factor(k, slow.rate_hz),
                           slow.band(k / slow.rate_hz), k)

    def _consider(self, slope: float, slope_sd: float, band: float, n: int) -> None:
        """One window: slope and its sd (Pa/s), the detector's band for it (kg/s), ``n`` samples."""
        to_kg = self.to_kg
        doubt = self.slow.doubt_of(self.members, self.volume, n)  # Pa/s: one thermometer's share
        excess = (-slope - doubt) * to_kg - band - self.band_extra
        if excess > self.value and excess >= self.slow.z_confirm * slope_sd * to_kg:
            self.value = excess
