"""FDIR stage 2b: the long-horizon (slow) leak detector, for leaks of about a kilogram a day.

The fast test (:mod:`.leak`) cannot call a slope below its dead band a leak (0.005 Pa/s: about
4.6 kg/day in the open 900 m3 station). Below that, what the station does by itself dominates:
the crew's oxygen use and the generator's output differ by up to about 0.5 kg/day, slowly
varying (hours), and the crew's use swings by +-10 % over a day. These are not white noise, so a
longer window alone does not beat them; but they are *bounded*: they move the gas mass by at most
a few tenths of a kilogram either way. A disturbance bounded by +-M kg adds at most ``3 M / T``
to the least-squares rate over a window T, so over a day it fades while a leak does not.

Per connected segment (the fast detector's slots, reset whenever the fast slot resets), the
inventory signal Y (Pa at the reference temperature, :mod:`.leak`) is averaged over
``decimation_s`` (1 min) and fed to a :class:`~.slope.SlopeBank` at that rate. Every decimated
sample, each window T of ``windows_s`` that is filled (1 h .. 24 h), and the window of every
sample since the reset while it is shorter than the longest, is judged on the *mass* rate (from
the first window's length on: nothing is judged in the first ``windows_s[0]`` after a reset)::

    rate_T  = -slope_T * V_seg / (R T_ref)                                  (kg/s, loss positive)
    band_T  = floor_kg_s + min(swing_kg_s, 3 * excursion_kg / T)
              + known_loss_kg_s * V_seg / V_station
              + the fast test's allowances of the segment, as a mass rate: crew oxygen use where
                crew may be cut off from the generator, temperature-estimate drift
    z_T     = (rate_T - band_T) / sd(rate_T)

with ``sd`` from the white-noise level of the decimated signal, and the fast test's thresholds:
(a window whose statistic passes the suspect threshold must also survive leaving out any one
sensor of a pair, thermometers or the two voting pressure sensors of a module: the rate either
channel of a module's pair alone would change, from the slope of the pair's difference over the
same window, is taken off first, as in the fast test)
``z >= z(1-alpha)`` SUSPECTED, ``z >= z(1-alpha) + z(1-beta)`` CONFIRMED, raised as the usual
``LEAK_SUSPECTED`` / ``LEAK_CONFIRMED`` events (values: rate kg/s, z, segment volume m3). A
confirmed slow leak is handed to the location schedule (:mod:`.locate`) with its rate beyond the
band (``rate_T - band_T``), a lower bound of the leak that no nominal swing inflates, and a
:class:`~.leakbound.LeakBound` that keeps that bound up to date while the schedule splits the
segment (at the alarm it is often a tiny share of the leak). The slow state clears
(``LEAK_CLEARED``) when its statistic stays below the suspect threshold for ``clear_s``.

Per cycle the detector costs one call per segment (an add and a count); the slopes run once per
decimated sample. Everything is sized at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .leakbound import LeakBound
from .machines import LEAK_TRANSITIONS, LeakState, check
from .pairs import PairEvidence
from .params import FdirParams
from .slope import SlopeBank, slope_scale, slope_sd_factor

if TYPE_CHECKING:
    from .core import Fdir

_NOMINAL = int(LeakState.NOMINAL)
_SUSPECTED = int(LeakState.SUSPECTED)
_CONFIRMED = int(LeakState.CONFIRMED)


class SlowLeakDetector:
    """Decimated slope banks and a slow leak state per slot of the owning :class:`Fdir`."""

    def __init__(self, fdir: "Fdir", params: FdirParams) -> None:
        p = params.slowleak
        self.fdir = fdir
        self.params = p
        self.enabled = bool(p.detect)
        n_slots = fdir.n_modules
        self.decim = max(1, round(p.decimation_s / params.executive.period_s))
        self.rate_hz = 1.0 / (self.decim * params.executive.period_s)
        self.win_n = [max(2, round(w * self.rate_hz)) for w in p.windows_s]
        self.n_max = self.win_n[-1]
        self.n_min = self.win_n[0]
        self.win_scale = [slope_scale(n, self.rate_hz) for n in self.win_n]
        self.win_sdf = [slope_sd_factor(n, self.rate_hz) for n in self.win_n]
        fdir.booking.resize_coarse(self.decim, self.n_max)  # repress gas per decimated sample
        self.win_band = [self.band(n / self.rate_hz) for n in self.win_n]
        self.banks = [SlopeBank(self.n_max, self.rate_hz, p.windows_s[0], p.noise_min_pa)
                      for _ in range(n_slots)]
        self.mask = [0] * n_slots
        self.state = [_NOMINAL] * n_slots
        self.t_above = [0.0] * n_slots
        self.rate = [0.0] * n_slots  # kg/s at the last transition
        #: kg/s: the best window's rate beyond its band, a lower bound of the leak (what the
        #: location schedule sizes its decisions by: the rate itself may hold a nominal swing)
        self.excess = [0.0] * n_slots
        self.z = [0.0] * n_slots  # last best statistic (for reports and tests)
        self.samples = 0  # decimated samples judged, all slots (health)
        self.generator = _module_index(fdir, p.generator_module)  # the schedule's crew side
        self.v_station = sum(fdir.volume)
        self.known_loss = params.leak.known_loss_kg_s
        self.z_suspect, self.z_confirm = fdir.z_suspect, fdir.z_confirm
        # Per module: each pair's difference (its two thermometers; its two pressure sensors
        # when exactly two vote), averaged like Y and kept in a bank of its own, so a slow
        # window can ask what either channel alone would make of the gas.
        d_blocks = max(1, round(p.decimation_s / params.executive.housekeeping_period_s))
        self.pair_kinds = [SlowPairBanks(evidence, fdir.n_modules, d_blocks, self.n_max, self.rate_hz,
                                         p.windows_s[0]) for evidence in (fdir.pairs, fdir.ppairs)]

    def band(self, window_s: float) -> float:
        """The nominal systematic rate (kg/s) over a window of ``window_s``, before per-segment terms."""
        p = self.params
        return p.floor_kg_s + min(p.swing_kg_s, 3.0 * p.excursion_kg / window_s)

    def segment_band(self, slot: int) -> float:
        """Per-segment part of the dead band (kg/s): the known loss by volume, plus what the
        fast test allows the segment beyond its table dead band (``Fdir.slot_dead``: crew
        oxygen use where crew may be cut off from the generator, temperature-estimate drift),
        as a mass rate. One rule for both tests."""
        f = self.fdir
        volume = f.slot_volume[slot]
        extra = f.slot_dead[slot] - f.dead_band
        band = self.known_loss * volume / self.v_station
        if extra > 0.0:
            band += extra * volume / (f.r_gas * f.t_ref)
        return band

    # -- hooks called by Fdir -------------------------------------------------------------

    def reset(self, slot: int) -> None:
        """The fast slot restarted (hook in ``Fdir._reset_slot``): restart the slow one. A slot
        that now holds another segment also forgets its slow leak state."""
        self.banks[slot].k = -1  # the next decimated sample resets the bank at its own level
        mask = self.fdir.slot_mask[slot]
        if mask != self.mask[slot]:
            self.mask[slot] = mask
            self.state[slot] = _NOMINAL
            self.z[slot] = 0.0

    def block(self) -> None:
        """The 1 s housekeeping block is done (hook in ``Fdir.step``, after the sensor stages
        closed theirs): average each module's pair differences (thermometers, K; pressure
        sensors, Pa) into their slow banks."""
        f = self.fdir
        thermo, pressure = self.pair_kinds
        thermo.block(f.thermo.diff)
        pressure.block(f.sensors.diff)

    def doubt(self, slot: int, n: int) -> float:
        """How much of the slot's slow inventory slope (Pa/s, over the last ``n`` decimated
        samples) one sensor could explain: the largest of ``k e`` over the segment's modules and
        their pairs, ``k`` the pair's gain (:meth:`.pairs.PairEvidence.gain`: ``T_ref/V_seg * P
        V_m / (2 T^2)`` for thermometers, ``T_ref/V_seg * V_m / (2 T)`` for pressure sensors),
        ``e`` the part of the pair difference's |slope| beyond one standard deviation of its
        noise (the fast test's rule: a sensor going wrong makes it significant; the pair's own
        noise would otherwise tax every test)."""
        f = self.fdir
        return self.doubt_of(f.slot_members[slot], f.slot_volume[slot], n)

    def doubt_of(self, members: list[int], volume: float, n: int) -> float:
        """:meth:`doubt` for the modules ``members`` of total volume ``volume`` (m3), whichever
        segments they are in (Pa/s of their summed inventory, over ``n`` decimated samples): the
        largest over their thermometer pairs and pressure pairs (one sensor at a time)."""
        f = self.fdir
        P = f.sensors.pressure
        T = f.thermo.temperature
        scale = f.t_ref / volume
        worst = 0.0
        for kind in self.pair_kinds:
            for m in members:
                d = kind.doubt(m, n, scale, P[m], T[m])
                if d > worst:
                    worst = d
        return worst

    # -- the test (once per decimated sample) ----------------------------------------------

    def sample(self, slot: int, y: float, t: float) -> None:
        """One decimated inventory sample ``y`` of the slot at mission time ``t``: the mean (Pa)
        of the fast inventory over the last :attr:`decim` cycles. Hook in ``Fdir._detect``,
        called whenever the fast bank holds a multiple of ``decim`` samples since its reset;
        the fast bank's running sums give the mean, so nothing is accumulated twice. Runs the
        slow test."""
        bank = self.banks[slot]
        if bank.k < 0:
            bank.reset(y)
        bank.push(y)
        if not self.enabled:
            return
        k = bank.k
        if k < self.n_min:
            return
        f = self.fdir
        mask = f.slot_mask[slot]
        if f.sealed_mask and mask & ~f.sealed_mask == 0:
            return  # the sealed leak itself: the estimator watches it
        self.samples += 1
        vol = f.slot_volume[slot]
        if vol <= 0.0:
            return  # a slot not yet mapped to a segment
        to_kg = vol / (f.r_gas * f.t_ref)
        seg_band = self.segment_band(slot)
        sigma = bank.sigma()
        best_z = -1e300
        best_rate = best_band = 0.0
        zs = self.z_suspect
        for j, n in enumerate(self.win_n):
            if n > k:
                break
            sd = sigma * self.win_sdf[j]
            band = self.win_band[j] + seg_band
            z, rate = self._judge(bank.slope_scaled(n, self.win_scale[j]), sd, band, to_kg)
            if z >= zs:
                z -= self.doubt(slot, n) / sd  # evidence must survive leaving out any one sensor
                z -= self._metered(slot, n) / (sd * to_kg)
            if z > best_z:
                best_z, best_rate, best_band = z, rate, band
        if k < self.n_max and k not in self.win_n:
            # The growing window: everything since the reset, until the longest window fills.
            sd = sigma * slope_sd_factor(k, self.rate_hz)
            band = self.band(k / self.rate_hz) + seg_band
            z, rate = self._judge(bank.slope_all(), sd, band, to_kg)
            if z >= zs:
                z -= self.doubt(slot, k) / sd
                z -= self._metered(slot, k) / (sd * to_kg)
            if z > best_z:
                best_z, best_rate, best_band = z, rate, band
        self.z[slot] = best_z
        self.excess[slot] = best_rate - best_band
        self._decide(slot, best_z, best_rate, t)

    def _metered(self, slot: int, n: int) -> float:
        """The loss rate (kg/s) the slot's last ``n`` decimated samples may show from repress
        gas booked by a meter off by ``leak.flow_uncertainty`` (:mod:`.booking`)."""
        f = self.fdir
        booking = f.booking
        if not booking.modules:
            return 0.0
        booked = booking.booked_kg(f.slot_members[slot], n, coarse=True)
        return booking.allowance_kg_s(booked, n / self.rate_hz, f.params.leak.flow_uncertainty) if booked else 0.0

    @staticmethod
    def _judge(slope: float, slope_sd: float, band: float, to_kg: float) -> tuple[float, float]:
        rate = -slope * to_kg
        return (rate - band) / (slope_sd * to_kg), rate

    def _decide(self, slot: int, z: float, rate: float, t: float) -> None:
        st = self.state[slot]
        if z >= self.z_suspect:
            self.t_above[slot] = t
            if z >= self.z_confirm:
                if st != _CONFIRMED:
                    self._transition(slot, _CONFIRMED, rate, z, t)
            elif st == _NOMINAL:
                self._transition(slot, _SUSPECTED, rate, z, t)
        elif st != _NOMINAL and t - self.t_above[slot] > self.params.clear_s:
            self._transition(slot, _NOMINAL, rate, z, t)

    def _transition(self, slot: int, new: int, rate: float, z: float, t: float) -> None:
        f = self.fdir
        ok, event = check(LEAK_TRANSITIONS, self.state[slot], new)
        if not ok:
            f.transition_errors += 1
            return
        self.state[slot] = new
        self.rate[slot] = rate
        if f.state[slot] == _CONFIRMED or f._quiet(slot):
            return  # the fast test already confirmed this segment, or isolation owns it
        if event is not None:
            f.events.push(t, event, f.segment_subject(slot), rate, z, f.slot_volume[slot])
        if new == _CONFIRMED:
            f.locator.request(slot, self.excess[slot], t, rate, LeakBound(self, slot, self.excess[slot]))

    # -- queries ------------------------------------------------------------------------------

    def slot_rate(self, slot: int) -> tuple[float, float, float]:
        """(rate kg/s, its 1-sigma kg/s, window s) over the longest filled slow window of the
        slot, or (0, inf, 0) while fewer than two decimated samples exist."""
        bank = self.banks[slot]
        k = bank.k
        if k < 2:
            return 0.0, float("inf"), 0.0
        n = min(k, self.n_max)
        f = self.fdir
        to_kg = f.slot_volume[slot] / (f.r_gas * f.t_ref)
        slope = bank.slope(n)
        return -slope * to_kg, bank.sigma() * slope_sd_factor(n, self.rate_hz) * to_kg, n / self.rate_hz


def _module_index(fdir: "Fdir", name: str) -> int:
    """Layout index of module ``name``; -1 when empty or not in the layout."""
    try:
        return fdir.module_names.index(name) if name else -1
    except ValueError:
        return -1


class SlowPairBanks:
    """One kind of pair as the slow test sees it (thermometer pairs or pressure sensor pairs,
    from their :class:`~.pairs.PairEvidence`): each module's pair difference averaged over
    ``d_blocks`` housekeeping blocks into a slope bank of its own at the slow test's rate
    ``rate_hz``, holding ``n_max`` samples (noise time constant ``tau_s``)."""

    def __init__(self, evidence: PairEvidence, n_modules: int, d_blocks: int, n_max: int,
                 rate_hz: float, tau_s: float) -> None:
        self.evidence = evidence
        self.d_blocks = d_blocks
        self.rate_hz = rate_hz
        self.acc = [0.0] * n_modules
        self.cnt = [0] * n_modules
        self.pair: list[tuple[int, int] | None] = [None] * n_modules
        self.banks = [SlopeBank(n_max, rate_hz, tau_s, 1e-6) for _ in range(n_modules)]

    def block(self, diff: list[float]) -> None:
        """One block's pair differences, per module (the evidence's unit: K or Pa)."""
        pairs = self.evidence.pair
        for m, pr in enumerate(pairs):
            if pr != self.pair[m]:
                self.pair[m] = pr
                self.banks[m].k = -1
                self.acc[m] = 0.0
                self.cnt[m] = 0
            if pr is None:
                continue
            c = self.cnt[m] + 1
            self.acc[m] += diff[m]
            if c < self.d_blocks:
                self.cnt[m] = c
                continue
            mean = self.acc[m] / c
            self.acc[m] = 0.0
            self.cnt[m] = 0
            bank = self.banks[m]
            if bank.k < 0:
                bank.reset(mean)
            bank.push(mean)

    def doubt(self, m: int, n: int, scale: float, pressure: float, temperature: float) -> float:
        """Pa/s of inventory module ``m``'s pair could explain over the last ``n`` samples (0
        without a pair or history): its gain times the part of |slope(d)| beyond one deviation."""
        bank = self.banks[m]
        if self.pair[m] is None or bank.k < 2:
            return 0.0
        w = n if bank.k >= n else bank.k
        excess = abs(bank.slope(w)) - bank.sigma() * slope_sd_factor(w, self.rate_hz)
        if excess <= 0.0:
            return 0.0
        return self.evidence.gain(scale, pressure, temperature, m) * excess
