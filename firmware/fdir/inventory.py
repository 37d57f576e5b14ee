"""Each segment's inventory terms and dead band, from observability and temperature trust.

:class:`InventoryTerms` is a part of :class:`~.core.Fdir` (its base class): when a module's
voting pressure sensors or trusted thermometers change, it reports modules that became
unobservable (or observable again), starts or stops temperature estimates, and rebuilds the
terms ``(pressure module, module, volume)`` the leak test sums and the dead band it allows each
segment (docs/fdir.md, "Stage 1: sensors", unobservable modules, and "Stage 2", the crew's
oxygen away from the generator).
"""

from __future__ import annotations

from typing import Callable

from ..types import EventId, SensorHealth
from .events import EventQueue
from .pairs import PairEvidence, PressurePairEvidence
from .params import FdirParams
from .sensors import SensorStage
from .thermo import TemperatureStage
from .topology import Topology

_SENSOR_OK = int(SensorHealth.OK)


class InventoryTerms:
    """Segment inventory terms and dead bands (a base class of :class:`~.core.Fdir`, which owns
    the state declared here)."""

    params: FdirParams
    n_modules: int
    module_names: list[str]
    volume: list[float]
    events: EventQueue
    sensors: SensorStage
    thermo: TemperatureStage
    topology: Topology
    pairs: PairEvidence
    ppairs: PressurePairEvidence
    seg_slot: list[int]
    seg_blind: list[bool]
    slot_dead: list[float]
    sealed_mask: int
    crew_mask: int
    dead_band: float
    r_gas: float
    t_ref: float
    observable: list[bool]
    _seg_terms: list[tuple[tuple[int, int, float], ...]]
    _p_groups: list[tuple[int, ...]]
    _seen_p_changes: int
    _seen_t_changes: int
    _unobs_since: list[float]
    _t_estimated: list[int]
    _t_trusted: list[int]
    _t_learning: bool
    _t_offset: list[float]
    _p_disagree: list[bool]
    _p_single: list[bool]
    restart_segment: Callable[[int, float, float], None]  #: the core's (fdir/port.py)
    generator_module: int  #: the oxygen generator's module index, or -1 (the core's)

    def _sensors_changed(self, t: float) -> None:
        """A module's voting pressure sensors or trusted thermometers changed: report modules
        that became unobservable (or observable again), start or stop temperature estimates and
        rebuild the inventory terms. A change of observability restarts the tests of the
        segments concerned (the substituted pressure may step the inventory by a few Pa, which is
        not gas), and so does a thermometer failed or recovered (the history holds what a failed
        one did; a recovered one's bias is re-taken from noisy samples). The temperature stage's
        bumpless hand-over keeps the module temperature continuous meanwhile, and a channel
        that keeps jumping is not recovered, so this cannot repeat faster than ``recover_s``."""
        self._seen_p_changes = self.sensors.changed
        self._seen_t_changes = self.thermo.changed
        n_voting = self.sensors.n_voting
        thermo = self.thermo
        P = self.sensors.pressure
        touched = 0
        retemp = False
        if self._t_learning and not thermo.learning:
            # The unit biases were just learned: every pair's difference stepped by them.
            self._t_learning = False
            self.pairs.restart()
        p_health = self.sensors.health
        beyond = self.sensors.beyond
        for m in range(self.n_modules):
            one = sum(p_health[c] == _SENSOR_OK for c in self._p_groups[m]) == 1
            if one != self._p_single[m]:
                # Its pressure source changes (see _rebuild_terms): the inventory may step.
                self._p_single[m] = one
                touched |= 1 << m
            # Unobservable once every pressure sensor has *failed* (a sample or two missing, a
            # link outage, the start-up before the first frame, only hold the last vote), or
            # while the module is beyond its sensors' range (its pressure is not measured).
            obs = not beyond[m] and any(p_health[c] == _SENSOR_OK for c in self._p_groups[m])
            if obs != self.observable[m]:
                self.observable[m] = obs
                touched |= 1 << m
                name = self.module_names[m]
                if obs:
                    self.events.push(t, EventId.MODULE_OBSERVABLE, name, float(n_voting[m]),
                                     P[m], t - self._unobs_since[m])
                else:
                    self._unobs_since[m] = t
                    self.events.push(t, EventId.MODULE_UNOBSERVABLE, name,
                                     float(len(self._p_groups[m])), P[m], 0.0)
            if self.sensors.disagree2[m] != self._p_disagree[m]:
                # The module's two pressure sensors began to disagree, or agree again: the
                # mean stepped by half the disagreement (one of them stepped, spiked or
                # drifted, or came back), which is no gas. The tests and the pair's own history
                # start afresh from here.
                self._p_disagree[m] = self.sensors.disagree2[m]
                touched |= 1 << m
                self.ppairs.restart(m)
            if self.pairs.set_pair(m, thermo.pair[m]):
                retemp = True
            if thermo.n_trusted[m] != self._t_trusted[m]:
                # A thermometer was failed (the segment's history holds what it did, a drift
                # read as gas lost or gained, which the doubt no longer offsets) or came back
                # (its bias is re-taken from noisy samples; a step of a few millikelvin in a
                # large module is a step of a Pa in the inventory): start afresh.
                touched |= 1 << m
            self._t_trusted[m] = thermo.n_trusted[m]
            # (A module built without a thermometer is estimated from the start: held at a
            # constant, its inventory carried the whole thermal swing of its pressure, which
            # confirmed a false leak and sealed it.)
            estimated = thermo.n_trusted[m] == 0
            if estimated != (m in self._t_estimated):
                retemp = True
                if estimated:
                    ref = self._mates_temperature(m)
                    if not thermo.groups[m]:
                        self._t_offset[m] = 0.0  # never measured: its mates' mean is all we know
                    else:
                        self._t_offset[m] = thermo.temperature[m] - ref if ref is not None else float("nan")
                    self._t_estimated.append(m)
                else:
                    self._t_estimated.remove(m)
        if touched or retemp:
            self._rebuild_terms()
        if touched:
            hold = self.params.leak.transient_mask_s
            for s, mask in enumerate(self.topology.masks):
                if mask & touched:
                    self.restart_segment(self.seg_slot[s], t, hold)

    def _mates_temperature(self, m: int) -> float | None:
        """Mean temperature of the modules sharing ``m``'s segment that have a trusted channel."""
        thermo = self.thermo
        acc = 0.0
        n = 0
        for o in self.topology.members[self.topology.seg_of[m]]:
            if o != m and thermo.n_trusted[o]:
                acc += thermo.temperature[o]
                n += 1
        return acc / n if n else None

    def _estimate_temperatures(self) -> None:
        """Modules without a trusted thermometer follow their segment mates (with the offset
        they had when the last channel was lost), or hold their last value when alone."""
        T = self.thermo.temperature
        for m in self._t_estimated:
            off = self._t_offset[m]
            if off == off:  # (not NaN)
                ref = self._mates_temperature(m)
                if ref is not None:
                    T[m] = ref + off

    def _rebuild_terms(self) -> None:
        """Inventory terms and dead band of every segment, from the topology, observability and
        temperature trust (see :meth:`_segment_dead_band`)."""
        topo = self.topology
        vol = self.volume
        # The main segment is the oxygen generator's (slowleak.generator_module), else the
        # largest: crew cut off from it by a hatch they moved uses oxygen nothing replaces.
        gen = self.generator_module
        if gen >= 0:
            main = topo.seg_of[gen]
        else:
            seg_vol = [sum(vol[m] for m in members) for members in topo.members]
            main = max(range(topo.n_segments), key=lambda s: seg_vol[s]) if topo.n_segments else -1
        single = self._p_single
        for s, members in enumerate(topo.members):
            obs = [m for m in members if self.observable[m]]
            self.seg_blind[s] = not obs
            # A module's pressure comes from its own sensors, but an unobservable module's from
            # the largest observable module of its segment (modules joined by open hatches share
            # one pressure), and so does a module left with a single healthy sensor when a module
            # with two or more is there: one sensor is not trusted where a vote is at hand (its
            # step or spike confirmed false leaks of 1,800 kg/day).
            voted = [m for m in obs if not single[m]]
            rep = max(voted or obs, key=lambda m: vol[m]) if obs else -1
            self._seg_terms[s] = tuple(
                (m if self.observable[m] and not (single[m] and voted) or rep < 0 else rep, m, vol[m])
                for m in members)
            # After a seal the oxygen generator may be sealed away or cut off (FDIR does not know
            # where it is): every open segment may then lose its crew's oxygen use.
            crew = bool(topo.masks[s] & ~self.sealed_mask) and (
                self.sealed_mask != 0 or (s != main and bool(topo.masks[s] & self.crew_mask)))
            self.slot_dead[self.seg_slot[s]] = self._segment_dead_band(members, crew)

    def _segment_dead_band(self, members: list[int], crew: bool) -> float:
        """Dead band of a segment's leak test, Pa/s: the table's; plus ``split_allowance_kg_s``
        for a segment that may hold crew away from the oxygen generator (any open segment once
        something is sealed; before that, a segment apart from the main one, the oxygen
        generator's (``slowleak.generator_module``; the largest when none is named), holding
        modules on either side of a hatch the crew moved): their oxygen use is a real loss
        there, not a leak; plus, for each module whose
        temperature is estimated, the inventory drift ``temperature_estimate_rate_k_s`` of
        error would make."""
        seg_v = sum(self.volume[m] for m in members)
        dead = self.dead_band
        if crew:
            dead += self.params.leak.split_allowance_kg_s * self.r_gas * self.t_ref / seg_v
        rate = self.params.sensors.temperature_estimate_rate_k_s
        P = self.sensors.pressure
        T = self.thermo.temperature
        for m in members:
            if m in self._t_estimated:
                dead += self.t_ref / seg_v * P[m] * self.volume[m] / (T[m] * T[m]) * rate
        return dead
