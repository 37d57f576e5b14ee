"""Single-fault checks of the leak evidence (docs/fdir.md, "Stage 1b", and "Stage 1: sensors"
for a module with two pressure sensors).

:class:`SingleFaultChecks` is a part of :class:`~.core.Fdir` (its base class): the pairs whose
difference certainly diverges, the arbitration of a disagreeing thermometer pair, the block
feed of the pressure pairs, the two-sensor rule of the rapid test, and failed valves judged by
the pressures on their two sides. The decisions on a pair's
evidence are made once, in :mod:`.pairs`, for thermometer and pressure pairs alike.
"""

from __future__ import annotations

from typing import Callable

from ..types import SensorHealth
from .booking import RepressBooking
from .isolation import Isolator
from .leak import WindowPlan
from .machines import LeakState
from .pairs import PairEvidence, PressurePairEvidence
from .params import FdirParams
from .sensors import SensorStage
from .slope import SlopeBank
from .thermo import TemperatureStage
from .topology import Topology
from .valves import ValveMonitor

_NOMINAL = int(LeakState.NOMINAL)
_FAILED_DISAGREE = int(SensorHealth.FAILED_DISAGREE)


class SingleFaultChecks:
    """Single-fault checks (a base class of :class:`~.core.Fdir`, which owns the state declared
    here)."""

    sensors: SensorStage
    thermo: TemperatureStage
    pairs: PairEvidence
    ppairs: PressurePairEvidence
    topology: Topology
    isolator: Isolator
    plan: WindowPlan
    banks: list[SlopeBank]
    state: list[int]
    seg_slot: list[int]
    seg_scale: list[float]
    slot_dead: list[float]
    seg_blind: list[bool]
    n_modules: int
    z_suspect: float
    rapid: float
    dt: float
    _seg_scale_m: list[float]
    _seg_dead_m: list[float]
    _n_arbitrate: int
    _n_arbitrate_min: int
    _p_hist: list[list[float]]
    _ps_hist: list[list[int]]
    _p_hist_i: int
    _p_groups: list[tuple[int, ...]]
    _seg_terms: list[tuple[tuple[int, int, float], ...]]
    booking: RepressBooking
    r_gas: float
    params: FdirParams
    observable: list[bool]
    _split_mask: int
    _dp_ref: list[float]
    _fb_prev: list[float]
    valves: ValveMonitor
    _remap_due: bool
    valve_failed: Callable[[int], bool]  #: the core's (report.py)

    def _pressure_split(self) -> None:
        """A failed valve between two modules (its feedback contradicts its command) whose
        modules' voted pressures differ by more than ``valves.split_pa`` is closed, whatever its
        feedback says: modules joined by an open hatch share one pressure. From then on the
        segments take it as closed (``_split_mask``; the segments are recomputed), so isolation
        watches its two sides apart and the leak's volume, hole and reserve are its own side's.
        (A hatch whose position sensor froze at "open" had both its modules sealed, the reserve
        over the joint volume: 13 h instead of 6.6 h.) Checked at housekeeping rate; a valve no
        longer failed is judged by its feedback again."""
        thr = self.params.valves.split_pa
        P = self.sensors.pressure
        observable = self.observable
        valves = self.valves
        ref = self._dp_ref
        full = 1.0 - valves.tol
        mask = self._split_mask
        for i, (a, b) in enumerate(self.topology.ends):
            if b < 0 or not (observable[a] and observable[b]):
                continue
            if not self.valve_failed(i):
                mask &= ~(1 << i)
                # While commanded open and reading open the two sides are one gas: their votes
                # differ only by the modules' residual unit biases, the reference.
                if valves.cmd[i] == 1.0 and self._fb_prev[i] >= full:
                    ref[i] = P[a] - P[b]
            elif not mask >> i & 1 and thr > 0.0 and abs(P[a] - P[b] - ref[i]) > thr:
                mask |= 1 << i  # (NaN reference: never open while watched, never judged)
        if mask != self._split_mask:
            self._split_mask = mask
            self._remap_due = True

    def judged_slope(self, s: int, n: int, slope: float, sd: float, dead: float) -> float:
        """The inventory slope (Pa/s) that segment ``s``'s leak evidence over the last ``n``
        cycles is judged on, from its own ``slope`` (standard deviation ``sd``, dead band
        ``dead``): with the most doubtful thermometer of a pair, then the more doubtful pressure
        sensor of a two-sensor module, left out (:meth:`.pairs.PairEvidence.judged_slope`), and
        the repress gas booked in the window allowed its meter's uncertainty
        (:mod:`.booking`). Used where a leak is called: the leak tests, and isolation's
        "leaking" (a segment is cleared as healthy on its own slope)."""
        terms = self._seg_terms[s]
        scale = self.seg_scale[s]
        P = self.sensors.pressure
        T = self.thermo.temperature
        block_n = self.thermo.block_n
        z = self.z_suspect
        slope = self.pairs.judged_slope(terms, scale, n, slope, sd, dead, z, block_n, P, T)
        slope = self.ppairs.judged_slope(terms, scale, n, slope, sd, dead, z, block_n, P, T)
        booking = self.booking
        if booking.modules:
            booked = booking.booked_kg(self.topology.members[s], n)
            if booked:
                slope += booking.allowance_kg_s(booked, n * self.dt, self.params.leak.flow_uncertainty) \
                    * self.r_gas * scale
        return slope

    def _pressure_pairs_block(self) -> None:
        """A housekeeping block ended: each module's pressure pair (its two voting sensors, when
        exactly two vote) and the pair's mean difference over the block go to the pair
        evidence, as the thermometer pairs' do."""
        sensors = self.sensors
        sensors.end_block()
        ppairs = self.ppairs
        for m, pr in enumerate(sensors.pair):
            ppairs.set_pair(m, pr)
        ppairs.push(sensors.diff)

    def _update_diverging(self) -> None:
        """Judge every window of segments whose thermometer pair or pressure sensor pair
        certainly diverges over the last 10 minutes (at most), not only when Y's own evidence
        passes the suspect threshold: a cold-drifting thermometer can hide a leak."""
        seg_of = self.topology.seg_of
        for m in range(self.n_modules):
            s = seg_of[m]
            self._seg_scale_m[m] = self.seg_scale[s]
            self._seg_dead_m[m] = self.slot_dead[self.seg_slot[s]]
        for pairs in (self.pairs, self.ppairs):
            pairs.update_diverging(self._seg_scale_m, self._seg_dead_m, self.z_suspect,
                                   self._n_arbitrate // self.thermo.block_n, self.sensors.pressure,
                                   self.thermo.temperature)

    def _arbitrate_temperatures(self, t: float) -> None:
        """A module's two thermometers disagree: fail the one whose exclusion leaves the
        segment's inventory flatter (:meth:`.pairs.PairEvidence.arbitrate`). Not while the
        segment is suspected, leaking or being isolated (a leak would bias the choice); the
        doubt term keeps the test honest meanwhile."""
        thermo = self.thermo
        for m in range(self.n_modules):
            if not thermo.disagreeing(m):
                continue
            s = self.topology.seg_of[m]
            slot = self.seg_slot[s]
            if self.state[slot] != _NOMINAL or self.isolator.busy or self.seg_blind[s]:
                continue
            bad = self.pairs.arbitrate(m, self.banks[slot], self.plan.rate_hz, self._n_arbitrate,
                                       self._n_arbitrate_min, thermo.block_n, self.seg_scale[s],
                                       self.slot_dead[slot], self.z_suspect, self.sensors.pressure[m],
                                       thermo.temperature[m])
            if bad is not None:
                thermo.fail(bad, t, _FAILED_DISAGREE, thermo.last(bad))

    def _raw_rapid(self, seg: int) -> bool:
        """At least two fresh raw pressure readings of one module of segment ``seg`` fell faster
        than the rapid threshold over the rapid window (the two-sensor rule)."""
        hist = self._p_hist
        i = self._p_hist_i
        j = (i + 1) % len(hist)  # the oldest entry: one rapid window ago
        now, old = hist[i], hist[j]
        sn, so = self._ps_hist[i], self._ps_hist[j]
        limit = -self.rapid * (len(hist) - 1) * self.dt
        for m in self.topology.members[seg]:
            agree = 0
            for c in self._p_groups[m]:
                if not sn[c] and not so[c] and now[c] - old[c] <= limit:
                    agree += 1
            if agree >= 2:
                return True
        return False

