"""Thermometer-pair evidence: what a module's two gas temperature channels say about a leak
test when one of them may be lying (docs/fdir.md, "Single-fault robustness").

Each module with two trusted channels has a least-squares bank of their difference
``d = t1 - t2`` (K, one sample per 1 s block). With T their mean, the segment's inventory with
t2 alone is ``Y + k d`` and with t1 alone ``Y - k d``, where ``k = (T_ref / V_seg) P V_m / (2 T^2)``
(:meth:`PairEvidence.gain`, Pa per K). Least-squares slopes are linear, so the slope of either
hypothesis is ``slope(Y) +- k slope(d)``: every window of the leak test can be judged with either
channel left out, at the cost of one more slope.

Three decisions use it, one implementation each:

- :meth:`PairEvidence.judged_slope`: the slope a segment's leak evidence is judged on;
- :meth:`PairEvidence.update_diverging`: the pairs that certainly diverge (their segments are
  judged on every evaluation, since a cold drift can hide a leak);
- :meth:`PairEvidence.arbitrate`: which channel of a disagreeing pair to fail.
"""

from __future__ import annotations

import math
from typing import Sequence

from .slope import SlopeBank, slope_sd_factor

#: A pair's difference bank needs this many samples (one per block) before its slope and noise
#: are trusted.
MIN_D_SAMPLES = 10


class PairEvidence:
    """The per-module pair-difference banks and the decisions made on them (thermometer pairs;
    :class:`PressurePairEvidence` for pressure sensor pairs).

    Args:
        n_modules: modules of the layout.
        max_blocks: samples the longest bank keeps (blocks).
        block_rate_hz: blocks per second.
        noise_tau_s: time constant of the banks' noise estimate, s.
        volume: per module, m3.
    """

    #: the sign of the inventory's move per unit of ``d`` with the second channel alone:
    #: t2 alone reads the module ``d / 2`` colder than the pair's mean, i.e. more gas (+k d)
    SIGN = 1.0

    def __init__(self, n_modules: int, max_blocks: int, block_rate_hz: float, noise_tau_s: float,
                 volume: Sequence[float]) -> None:
        # (Their noise floor is in K: 1e-4 K, far below any thermometer's noise.)
        self.banks = [SlopeBank(max(2, max_blocks), block_rate_hz, noise_tau_s, 1e-4) for _ in range(n_modules)]
        #: per module: its trusted pair's channel indices, or None
        self.pair: list[tuple[int, int] | None] = [None] * n_modules
        #: modules whose pair certainly diverges (bit mask), from :meth:`update_diverging`
        self.div_mask = 0
        self._volume = volume

    def set_pair(self, m: int, pair: tuple[int, int] | None) -> bool:
        """Module ``m``'s trusted pair is now ``pair``; True (and its bank restarted) if it changed."""
        if pair == self.pair[m]:
            return False
        self.pair[m] = pair
        self.banks[m].reset(0.0)
        return True

    def restart(self, m: int | None = None) -> None:
        """Restart module ``m``'s bank, or every bank (None: the unit biases were just learned,
        every difference stepped)."""
        for bank in self.banks if m is None else (self.banks[m],):
            bank.reset(0.0)

    def push(self, diff: Sequence[float]) -> None:
        """One block's pair differences (K), per module."""
        banks = self.banks
        for m, pr in enumerate(self.pair):
            if pr is not None:
                banks[m].push(diff[m])

    def gain(self, scale: float, pressure: float, temperature: float, m: int) -> float:
        """k of module ``m``'s pair, Pa per K: how far the segment's inventory moves per kelvin of
        the pair's difference when one channel is left out, ``scale * P V_m / (2 T^2)`` with
        ``scale`` = T_ref / V_seg, ``pressure`` in Pa and ``temperature`` in K."""
        return scale * pressure * self._volume[m] / (2.0 * temperature * temperature)

    def judged_slope(self, terms: Sequence[tuple[int, int, float]], scale: float, n: int, slope: float,
                     sd: float, dead: float, z: float, block_n: int, pressure: Sequence[float],
                     temperature: Sequence[float]) -> float:
        """The inventory slope (Pa/s) a segment's leak evidence is judged on, over the last ``n``
        cycles: the slope of ``Y`` as it would be with the thermometer most able to fake or hide
        a leak left out. ``terms`` are the segment's inventory terms (pressure module, module,
        volume), ``sd`` the slope's standard deviation, ``dead`` the dead band (Pa/s), ``z`` the
        suspect threshold, ``block_n`` cycles per block. Under a single fault:

        - a pair whose difference certainly diverges (|slope(d)| beyond ``z`` of its noise)
          holds the fault: of its two hypotheses the one with less loss counts, unless it would
          mean gas appearing (a gain beyond the dead band and ``z`` deviations, which no
          unmetered station does): then the other one counts. So a thermometer drifting warm
          cannot fake a leak, and one drifting cold cannot hide one;
        - otherwise the part of any pair's |slope(d)| beyond one deviation of its noise is
          taken as doubt against the leak (the pair's noise must not tax every test).
        """
        nd = n // block_n if n >= 2 * block_n else 2
        pairs = self.pair
        best = None
        doubt = 0.0
        for mp, m, _v in terms:
            if pairs[m] is None:
                continue
            bank = self.banks[m]
            if bank.k < MIN_D_SAMPLES:
                continue  # (a pair just formed: its noise is not known yet)
            w = nd if bank.k >= nd else bank.k
            a = abs(bank.slope(w))
            sd_d = bank.sigma() * slope_sd_factor(w, bank.f)
            if a <= sd_d:
                continue
            k = self.gain(scale, pressure[mp], temperature[m], m)
            if a > z * sd_d and k * a > dead:
                hi = slope + k * a
                # (A gain is implausible only beyond the noise of both slopes.)
                gain_limit = dead + z * math.sqrt(sd * sd + k * k * sd_d * sd_d)
                cand = hi if hi <= gain_limit else slope - k * a
                if best is None or cand > best:
                    best = cand
            elif k * (a - sd_d) > doubt:
                doubt = k * (a - sd_d)
        return best if best is not None else slope + doubt

    def update_diverging(self, scales: Sequence[float], deads: Sequence[float], z: float, max_blocks: int,
                         pressure: Sequence[float], temperature: Sequence[float]) -> int:
        """Find the modules whose pair certainly diverges over the last ``max_blocks`` blocks (at
        most), fast enough to move their segment's inventory by more than its dead band;
        ``scales`` and ``deads`` give each module's segment T_ref / V_seg and dead band (Pa/s).
        Sets and returns :attr:`div_mask`."""
        mask = 0
        for m, pr in enumerate(self.pair):
            if pr is None:
                continue
            bank = self.banks[m]
            w = bank.k if bank.k < max_blocks else max_blocks
            if w < MIN_D_SAMPLES:
                continue
            a = abs(bank.slope(w))
            k = self.gain(scales[m], pressure[m], temperature[m], m)
            if a > z * bank.sigma() * slope_sd_factor(w, bank.f) and k * a > deads[m]:
                mask |= 1 << m
        self.div_mask = mask
        return mask

    def arbitrate(self, m: int, inventory: SlopeBank, rate_hz: float, n_cycles: int, min_cycles: int,
                  block_n: int, scale: float, dead: float, z: float, pressure: float,
                  temperature: float) -> int | None:
        """The channel of module ``m``'s disagreeing pair to fail, or None (too little history,
        or evidence too weak to tell). ``inventory`` is its segment's slope bank (at
        ``rate_hz``), judged over the last ``n_cycles`` at most and at least ``min_cycles``; the
        liar is the one whose exclusion leaves the segment's inventory flatter: under a single
        fault with no leak, the one that makes gas appear or vanish. The two hypotheses must
        differ in flatness by more than the dead band plus ``z`` deviations: a small module in a
        large segment moves its inventory less than the station's own oxygen balance does, and
        a choice on that would be a coin toss that fails the healthy channel half the time.
        Undecided, the pair stays, and its hypotheses keep judging the leak evidence."""
        pr = self.pair[m]
        db = self.banks[m]
        n = min(inventory.k, db.k * block_n, n_cycles) // block_n
        if pr is None or n * block_n < min_cycles:
            return None
        k = self.gain(scale, pressure, temperature, m)
        s_y = inventory.slope(n * block_n)
        s_d = db.slope(n)
        only_second = s_y + self.SIGN * k * s_d  # pr[0] left out
        only_first = s_y - self.SIGN * k * s_d  # pr[1] left out
        sd = math.sqrt((inventory.sigma() * slope_sd_factor(n * block_n, rate_hz)) ** 2
                       + (k * db.sigma() * slope_sd_factor(n, db.f)) ** 2)
        gain = dead + z * sd
        if only_second > gain >= only_first:
            return pr[1]  # with pr[1] alone gas would appear: pr[1] lies
        if only_first > gain >= only_second:
            return pr[0]
        margin = abs(only_second) - abs(only_first)
        if abs(margin) <= gain:
            return None
        return pr[0] if margin < 0.0 else pr[1]


class PressurePairEvidence(PairEvidence):
    """The same evidence for a module whose pressure is the mean of exactly two voting sensors
    (three are voted by mid-value select, which no single sensor moves; with two, one drifting
    sensor moves the mean by half its drift: a leak, unless judged). ``d = p1 - p2``, bias
    corrected, Pa, one block mean per housekeeping period. With p2 alone the module reads
    ``d / 2`` lower than the mean, so the segment's inventory is ``Y - k d`` with
    ``k = (T_ref / V_seg) V_m / (2 T)`` (Pa per Pa), and with p1 alone ``Y + k d``."""

    SIGN = -1.0

    def gain(self, scale: float, pressure: float, temperature: float, m: int) -> float:
        """k of module ``m``'s pressure pair, Pa of inventory per Pa of difference:
        ``scale * V_m / (2 T)`` with ``scale`` = T_ref / V_seg and ``temperature`` in K
        (``pressure`` is not used: the inventory is linear in it)."""
        return scale * self._volume[m] / (2.0 * temperature)
