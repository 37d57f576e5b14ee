"""The device interfaces the flight software sees.

A :class:`Device` groups named pressure sensors, temperature sensors, flow meters and valves by
module, and carries its :class:`~hullwatch.hal.clock.Clock`. The static shape of a device (which
channels exist, which module each belongs to, which valves join which modules) is its
:class:`Layout`, fixed when the device is opened. The per-cycle path moves data through a
:class:`Frame`: flat lists sized once from the layout and filled in place each cycle, so nothing
grows in the loop (docs/architecture.md, "Embedded style").

Units throughout are SI: pressure in Pa, temperature in K, mass flow in kg/s, time in seconds,
volume in m^3, valve position as a fraction 0.0 (closed) .. 1.0 (open).

Contract of the per-cycle methods: :meth:`Device.read` and :meth:`Device.command_valve` never
raise. A timeout, a bad CRC or a dead link becomes a sample whose status is not ``OK``.
"""

from __future__ import annotations

import abc
import difflib
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import Clock


class SampleStatus(enum.IntEnum):
    """Status of one sample, as the flight software and telemetry see it (u8 on the wire)."""

    OK = 0
    STALE = 1  #: no new sample since the last read (timestamp unchanged) or the link is down
    INVALID = 2  #: the sensor or board flagged it bad, or it failed a range/CRC check
    NO_DATA = 3  #: never received anything from this channel


class ChannelKind(enum.IntEnum):
    PRESSURE = 0  #: absolute pressure, Pa
    TEMPERATURE = 1  #: gas temperature, K
    FLOW = 2  #: measured mass flow *into* the module (repress), kg/s


class ValveKind(enum.IntEnum):
    HATCH = 0  #: between two modules
    VALVE = 1  #: between two modules (equalisation valve)
    REPRESS = 2  #: from a gas tank into ``module_a``; ``module_b`` is None


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    name: str
    volume_m3: float


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One sensor channel. ``valid_min``/``valid_max`` bound a plausible reading in SI units."""

    id: str
    kind: ChannelKind
    module: str
    valid_min: float
    valid_max: float


@dataclass(frozen=True, slots=True)
class ValveInfo:
    """A valve or hatch joining ``module_a`` and ``module_b`` (None for a repress valve)."""

    id: str
    kind: ValveKind
    module_a: str
    module_b: str | None
    actuation_timeout_s: float


@dataclass(frozen=True, slots=True)
class Layout:
    """The static shape of a device. Channel order here is the index order of a :class:`Frame`."""

    modules: tuple[ModuleInfo, ...]
    pressure: tuple[ChannelInfo, ...]
    temperature: tuple[ChannelInfo, ...]
    flow: tuple[ChannelInfo, ...]
    valves: tuple[ValveInfo, ...]

    def module_index(self, name: str) -> int:
        for i, m in enumerate(self.modules):
            if m.name == name:
                return i
        raise KeyError(name)

    def valve_index(self, valve_id: str) -> int:
        """Index of the valve ``valve_id``; KeyError naming the closest ids if there is none."""
        for i, v in enumerate(self.valves):
            if v.id == valve_id:
                return i
        ids = [v.id for v in self.valves]
        near = difflib.get_close_matches(str(valve_id), ids, n=3)
        raise KeyError(f"no valve {valve_id!r}; " + (f"did you mean {', '.join(near)}?" if near else
                                                     f"the valves are {', '.join(ids) or 'none'}"))

    def new_frame(self) -> "Frame":
        return Frame(len(self.pressure), len(self.temperature), len(self.flow), len(self.valves))


class Frame:
    """One cycle's readings, in :class:`Layout` index order. Allocated once; filled in place.

    ``*_time`` are the sample timestamps in mission seconds (device clock); ``t`` is the mission
    time at which the frame was read. ``valve_cmd`` is the last commanded position (0 or 1),
    ``valve_fb`` the measured feedback position (0.0 .. 1.0).
    """

    __slots__ = (
        "t",
        "pressure", "pressure_status", "pressure_time",
        "temperature", "temperature_status", "temperature_time",
        "flow", "flow_status", "flow_time",
        "valve_cmd", "valve_fb", "valve_status",
    )

    def __init__(self, n_pressure: int, n_temperature: int, n_flow: int, n_valves: int) -> None:
        self.t = 0.0
        self.pressure = [0.0] * n_pressure
        self.pressure_status = [int(SampleStatus.NO_DATA)] * n_pressure
        self.pressure_time = [0.0] * n_pressure
        self.temperature = [0.0] * n_temperature
        self.temperature_status = [int(SampleStatus.NO_DATA)] * n_temperature
        self.temperature_time = [0.0] * n_temperature
        self.flow = [0.0] * n_flow
        self.flow_status = [int(SampleStatus.NO_DATA)] * n_flow
        self.flow_time = [0.0] * n_flow
        self.valve_cmd = [0] * n_valves
        self.valve_fb = [0.0] * n_valves
        self.valve_status = [int(SampleStatus.NO_DATA)] * n_valves


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a device says about itself: kind (``sim``, ``board``, ``replay``), identity, versions."""

    kind: str
    name: str
    details: dict[str, Any] = field(default_factory=dict)


class Device(abc.ABC):
    """A station as the flight software sees it.

    Subclasses implement :meth:`read`, :meth:`command_valve` and, if they hold resources,
    :meth:`_close`. ``with`` support and an idempotent :meth:`close` are written once here
    (python-can's ``BusABC`` is the model).

    Attributes:
        layout: the static channel and valve tables.
        clock: the device's clock; the executive sleeps on it. For a simulated device it is a
            lockstep clock whose ``sleep_until`` advances the plant.
        epoch_utc: UTC seconds since 1970-01-01 at mission time 0 (telemetry time stamps).
        info: identity of the device.
    """

    layout: Layout
    clock: "Clock"
    epoch_utc: float
    info: DeviceInfo

    _closed: bool = False

    @abc.abstractmethod
    def read(self, frame: Frame) -> None:
        """Fill ``frame`` with the latest sample of every channel and valve. Never raises."""

    @abc.abstractmethod
    def command_valve(self, index: int, open_: bool) -> None:
        """Command valve ``index`` (layout order) open or closed. Never raises: a failed command
        shows up later as a feedback mismatch and in :meth:`health`."""

    def health(self) -> dict[str, int]:
        """Health counters (framing errors, CRC errors, timeouts, reconnects...). Default: none."""
        return {}

    @property
    def link_up(self) -> bool:
        """False while the link to the hardware is down. Always True for in-process devices."""
        return True

    def close(self) -> None:
        """Release the device. Idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    def _close(self) -> None:
        """Subclass hook for :meth:`close`; called at most once."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
