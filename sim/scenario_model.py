"""The validated, immutable scenario: what :func:`hullwatch.sim.scenario.scenario_from_dict`
builds and the plant, the sensors and the devices read. Units are SI (Pa, K, kg, m, m^3, s)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    name: str
    volume_m3: float
    pressure_pa: float
    temperature_k: float
    pressure_sensors: int
    temperature_sensors: int
    sensor_offset_k: float = 0.0
    amplitude_k: float | None = None  #: None: thermal.amplitude_k


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    id: str
    kind: str
    modules: tuple[str, str]
    diameter_m: float
    cd: float
    actuation_s: float
    open: bool


@dataclass(frozen=True, slots=True)
class RepressSpec:
    id: str
    module: str
    tank_pressure_pa: float
    tank_temperature_k: float
    diameter_m: float
    cd: float
    actuation_s: float
    events: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class LeakSpec:
    module: str
    diameter_m: float
    cd: float
    start_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class SensorFaultSpec:
    sensor: str
    kind: str
    start_s: float
    duration_s: float
    magnitude: float


@dataclass(frozen=True, slots=True)
class ValveFaultSpec:
    valve: str
    kind: str
    start_s: float


@dataclass(frozen=True, slots=True)
class HatchOpSpec:
    """A crew hatch operation: the crew moves connection ``valve`` open or closed from ``at_s``,
    without any flight-software command."""

    valve: str
    at_s: float
    open: bool


@dataclass(frozen=True, slots=True)
class CrewLocationSpec:
    at_s: float
    modules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SensorSpec:
    pressure_per_module: int
    temperature_per_module: int
    pressure_noise_pa: float
    pressure_quantum_pa: float
    pressure_bias_pa: float
    pressure_tempco_pa_per_k: float
    temperature_noise_k: float
    temperature_quantum_k: float
    temperature_bias_k: float
    flow_noise_kg_s: float
    flow_quantum_kg_s: float
    reference_k: float


@dataclass(frozen=True, slots=True)
class ThermalSpec:
    orbit_period_s: float
    amplitude_k: float
    drift_amplitude_k: float
    drift_period_s: float


@dataclass(frozen=True, slots=True)
class CrewSpec:
    count: int
    o2_kg_per_person_day: float
    modules: tuple[str, ...]
    generator_module: str
    activity_fraction: float
    mismatch_kg_per_day: float
    mismatch_period_s: float
    locations: tuple[CrewLocationSpec, ...] = ()

    def modules_at(self, t: float) -> tuple[str, ...]:
        """The modules the crew is in at mission time ``t`` (s)."""
        where = self.modules
        for loc in self.locations:
            if loc.at_s > t:
                break
            where = loc.modules
        return where


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. ``start_utc`` is UTC seconds since 1970-01-01; ``source`` names where
    it came from (a file path, ``preset:NAME`` or what the caller passed)."""

    name: str
    description: str
    source: str
    start_utc: float
    duration_s: float
    seed: int
    modules: tuple[ModuleSpec, ...]
    connections: tuple[ConnectionSpec, ...]
    repress: tuple[RepressSpec, ...]
    leaks: tuple[LeakSpec, ...]
    sensor_faults: tuple[SensorFaultSpec, ...]
    valve_faults: tuple[ValveFaultSpec, ...]
    sensors: SensorSpec
    thermal: ThermalSpec
    crew: CrewSpec
    hatch_ops: tuple[HatchOpSpec, ...] = ()

    @property
    def total_volume_m3(self) -> float:
        return sum(m.volume_m3 for m in self.modules)

    def module(self, name: str) -> ModuleSpec:
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(name)

    def start_datetime(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.start_utc, tz=_dt.timezone.utc)

    def channel_ids(self) -> tuple[list[str], list[str], list[str]]:
        """Pressure, temperature and flow channel ids, in device layout order."""
        p = [f"{m.name}.p{k + 1}" for m in self.modules for k in range(m.pressure_sensors)]
        t = [f"{m.name}.t{k + 1}" for m in self.modules for k in range(m.temperature_sensors)]
        f = [f"{r.id}.flow" for r in self.repress]
        return p, t, f

    def valve_ids(self) -> list[str]:
        """Connection ids then repress ids: the device's valve order."""
        return [c.id for c in self.connections] + [r.id for r in self.repress]
