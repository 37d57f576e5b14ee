"""The housekeeping view of the FDIR: per-module values, status codes and health counters.

:class:`FdirReport` is a part of :class:`~.core.Fdir` (its base class), split out because it is
read at housekeeping rate, not per cycle: it reads the detector state and changes nothing.
"""

from __future__ import annotations

from bisect import bisect_right

from ..types import IsolationState, ModuleStatus, SensorHealth, ValveHealth
from .events import EventQueue
from .isolation import Isolator
from .leak import WindowPlan
from .locate import SlowLocator
from .estimate import Estimator
from .machines import LeakState
from .sensors import SensorStage
from .slope import SlopeBank
from .slowleak import SlowLeakDetector
from .thermo import TemperatureStage
from .topology import Topology
from .valves import ValveMonitor

#: Universal gas constant, J/(mol K): housekeeping reports the inventory in mol.
R_UNIVERSAL = 8.314462618
_CONFIRMED = int(LeakState.CONFIRMED)
_SUSPECTED = int(LeakState.SUSPECTED)
_ISOLATING_STATES = (int(IsolationState.SPLITTING), int(IsolationState.OBSERVING))
_MS_NOMINAL, _MS_SUSPECTED, _MS_LEAKING, _MS_ISOLATING, _MS_SEALED, _MS_DEGRADED, _MS_NO_DATA = (
    int(ModuleStatus.NOMINAL), int(ModuleStatus.SUSPECTED), int(ModuleStatus.LEAKING),
    int(ModuleStatus.ISOLATING), int(ModuleStatus.SEALED), int(ModuleStatus.DEGRADED),
    int(ModuleStatus.NO_DATA))
_SENSOR_OK = int(SensorHealth.OK)


class FdirReport:
    """Housekeeping queries of the FDIR (a base class of :class:`~.core.Fdir`, which owns the
    state declared here)."""

    n_modules: int
    volume: list[float]
    cycle: int
    errors: int
    transition_errors: int
    events: EventQueue
    sensors: SensorStage
    thermo: TemperatureStage
    valves: ValveMonitor
    topology: Topology
    isolator: Isolator
    locator: SlowLocator
    estimator: Estimator
    slow: SlowLeakDetector
    plan: WindowPlan
    banks: list[SlopeBank]
    seg_slot: list[int]
    state: list[int]
    sealed_mask: int
    slot_volume: list[float]
    r_gas: float
    t_ref: float
    _t_estimated: list[int]
    _report_rates: list[float | None]

    def slot_of_module(self, m: int) -> int:
        """The slot of the segment holding module ``m``."""
        return self.seg_slot[self.topology.seg_of[m]]

    def _rate_kg_s(self, slot: int, slope_pa_s: float) -> float:
        """A slot's inventory slope (Pa/s) as a mass rate, kg/s (loss positive)."""
        return -slope_pa_s * self.slot_volume[slot] / (self.r_gas * self.t_ref)

    def segment_rate(self, slot: int) -> float:
        """Best current leak-rate estimate of a slot (kg/s): slope over the longest filled window."""
        bank = self.banks[slot]
        k = bank.k
        if k < self.plan.n_warm:
            return 0.0
        plan = self.plan
        i = bisect_right(plan.n_sorted, k)  # the longest window filled: max(n for n in plan.n if n <= k)
        slope = bank.slope_scaled(plan.n_sorted[i - 1], plan.scale_sorted[i - 1]) if i else bank.slope(k)
        return self._rate_kg_s(slot, slope)

    def module_status(self, m: int) -> int:
        """Module ``m``'s :class:`ModuleStatus` code (housekeeping)."""
        iso = self.isolator
        isolating = iso.candidates if iso.state in _ISOLATING_STATES else 0
        return self._status(m, self.slot_of_module(m), isolating)

    def _status(self, m: int, slot: int, isolating: int) -> int:
        if self.sealed_mask >> m & 1:
            return _MS_SEALED
        if isolating >> m & 1:
            return _MS_ISOLATING
        st = self.state[slot]
        if st == _CONFIRMED:
            return _MS_LEAKING
        if st == _SUSPECTED:
            return _MS_SUSPECTED
        n = self.sensors.n_voting[m]
        if n == 0:
            return _MS_NO_DATA
        thermo = self.thermo
        if n == 1 or self.sensors.disagree2[m] or m in self._t_estimated or thermo.disagreeing(m):
            return _MS_DEGRADED
        return _MS_NOMINAL

    def module_report(self, out: list[float | int]) -> None:
        """Fill ``out`` with five values per module, layout order: voted pressure (Pa), mean gas
        temperature (K), inventory (mol), the leak-rate estimate of its segment (kg/s, loss
        positive) and its :class:`ModuleStatus` code: what housekeeping reports, in one pass
        (the same values as :meth:`module_status`, :meth:`inventory_mol` and
        :meth:`segment_rate`)."""
        P = self.sensors.pressure
        T = self.thermo.temperature
        V = self.volume
        seg_of = self.topology.seg_of
        seg_slot = self.seg_slot
        iso = self.isolator
        isolating = iso.candidates if iso.state in _ISOLATING_STATES else 0
        rates = self._report_rates
        for slot in range(len(rates)):
            rates[slot] = None
        j = 0
        for m in range(self.n_modules):
            slot = seg_slot[seg_of[m]]
            rate = rates[slot]
            if rate is None:
                rate = rates[slot] = self.segment_rate(slot)
            p = P[m]
            t = T[m]
            out[j] = p
            out[j + 1] = t
            out[j + 2] = p * V[m] / (R_UNIVERSAL * t)
            out[j + 3] = rate
            out[j + 4] = self._status(m, slot, isolating)
            j += 5

    def inventory_mol(self, m: int) -> float:
        """Module ``m``'s gas inventory, mol."""
        return self.sensors.pressure[m] * self.volume[m] / (R_UNIVERSAL * self.thermo.temperature[m])

    def sensors_failed(self) -> int:
        """Failed channels, pressure and temperature."""
        health = self.sensors.health
        thealth = self.thermo.health
        return len(health) - health.count(_SENSOR_OK) + len(thealth) - thealth.count(_SENSOR_OK)

    def valve_health(self, i: int) -> int:
        """Valve ``i``'s :class:`ValveHealth` code."""
        return int(self.valves.health[i])

    def valve_failed(self, i: int) -> bool:
        """The valve monitor failed valve ``i``."""
        return self.valves.health[i] == ValveHealth.FAILED

    def health(self) -> dict[str, int]:
        """FDIR health counters (housekeeping, RunResult)."""
        return {
            "cycles": self.cycle,
            "errors": self.errors,
            "transition_errors": self.transition_errors,
            "events": self.events.pushed,
            "events_dropped": self.events.dropped,
            "sensor_failures": self.sensors.failures + self.thermo.failures,
            "sensor_recoveries": self.sensors.recoveries + self.thermo.recoveries,
            "valve_commands": self.valves.commands,
            "valve_failures": self.valves.failures,
            "topology_changes": self.topology.changes,
            "isolations": self.isolator.attempts,
            "slow_samples": self.slow.samples,
            "slow_locations": self.locator.attempts,
            "estimates": self.estimator.updates,
        }
