"""The ``sim://`` device: a scenario's plant and sensors behind the hal Device interface.

URL grammar::

    sim://NAME-or-PATH[?seed=N][&duration=S][&step=S]

``NAME`` is a preset (``hullwatch scenarios`` lists them), ``PATH`` a scenario TOML file
(``sim://./my.toml``, ``sim:///abs/path.toml``). Query keys:

* ``seed``: integer >= 0, overrides the scenario's seed (noise, unit biases, thermal phases);
* ``duration``: seconds > 0, overrides the scenario's ``duration_s`` (what a run lasts);
* ``step``: seconds > 0, the largest internal plant step (default 0.1).

Any other key is a :class:`~hullwatch.hal.errors.DeviceUrlError`. The same options may be passed
as keyword arguments to :func:`open_url` (keywords win), plus ``scenario=`` a ready
:class:`~hullwatch.sim.scenario.Scenario` (then the URL's target is ignored and may be empty).

The device's clock is a lockstep clock: ``sleep_until(t)`` advances the plant to ``t``, so runs
are deterministic and as fast as the code allows. ``read(frame)`` returns the sensor samples at
the current time (sampled once per time; reading twice returns the same sample). Ground truth
for tools and tests is on ``device.plant`` (pressures, temperatures, masses, leak flows) and
:meth:`SimDevice.truth`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from hullwatch.hal.clock import Clock
from hullwatch.hal.errors import DeviceUrlError
from hullwatch.hal.interfaces import (
    ChannelInfo,
    ChannelKind,
    Device,
    DeviceInfo,
    Frame,
    Layout,
    ModuleInfo,
    SampleStatus,
    ValveInfo,
    ValveKind,
)

from .gas import MMHG_PA
from .plant import Plant
from .scenario import Scenario, load_scenario
from .sensors import SensorBank

#: Valid ranges (SI) reported in the layout: the sensors' physical ranges.
PRESSURE_RANGE = (30000.0, 125000.0)  # BMP388: 300..1250 hPa
TEMPERATURE_RANGE = (233.15, 358.15)  # -40..85 degC
FLOW_RANGE = (-0.01, 1.0)  # kg/s; a meter at zero flow reads noise around 0

_URL_KEYS = ("seed", "duration", "step")


class LockstepClock(Clock):
    """Mission time is the plant's time; sleeping advances the plant (virtual, deterministic)."""

    def __init__(self, device: "SimDevice") -> None:
        self._device = device

    def now(self) -> float:
        return self._device.plant.t

    def sleep_until(self, t: float) -> None:
        device = self._device
        device.plant.advance_to(t, device.max_step)

    @property
    def virtual(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class LeakTruth:
    module: str
    diameter_m: float
    cd: float
    start_s: float
    end_s: float
    active: bool
    mass_flow_kg_s: float  #: in the last plant step


@dataclass(frozen=True, slots=True)
class Truth:
    """What really happens in the plant at time ``t`` (for tools, tests and scoring)."""

    t: float
    pressure_pa: dict[str, float]
    temperature_k: dict[str, float]
    mass_kg: dict[str, float]
    leaks: tuple[LeakTruth, ...]
    segments: tuple[tuple[str, ...], ...]
    valve_position: dict[str, float]
    leaked_kg: float
    added_kg: float
    consumed_kg: float


def build_layout(scenario: Scenario) -> Layout:
    """The device layout of ``scenario``: channels in module order, then valves."""
    p_ids, t_ids, f_ids = scenario.channel_ids()

    def module_of(cid: str) -> str:
        return cid.rsplit(".", 1)[0]

    kinds = {"hatch": ValveKind.HATCH, "valve": ValveKind.VALVE}
    valves = [ValveInfo(c.id, kinds[c.kind], c.modules[0], c.modules[1],
                        actuation_timeout_s=1.5 * c.actuation_s + 0.5)
              for c in scenario.connections]
    valves += [ValveInfo(r.id, ValveKind.REPRESS, r.module, None,
                         actuation_timeout_s=1.5 * r.actuation_s + 0.5)
               for r in scenario.repress]
    return Layout(
        modules=tuple(ModuleInfo(m.name, m.volume_m3) for m in scenario.modules),
        pressure=tuple(ChannelInfo(c, ChannelKind.PRESSURE, module_of(c), *PRESSURE_RANGE)
                       for c in p_ids),
        temperature=tuple(ChannelInfo(c, ChannelKind.TEMPERATURE, module_of(c), *TEMPERATURE_RANGE)
                          for c in t_ids),
        flow=tuple(ChannelInfo(f"{r.id}.flow", ChannelKind.FLOW, r.module, *FLOW_RANGE)
                   for r in scenario.repress),
        valves=tuple(valves),
    )


class SimDevice(Device):
    """A simulated station. See the module docstring for the URL and the clock.

    Attributes:
        scenario: the validated scenario (with ``duration_s`` as overridden by the URL).
        seed: the seed in use.
        plant: the :class:`~hullwatch.sim.plant.Plant` (ground truth).
        sensors: the :class:`~hullwatch.sim.sensors.SensorBank`.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, max_step: float = 0.1) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.max_step = max_step
        self.plant = Plant(scenario, self.seed)
        self.sensors = SensorBank(scenario, self.plant, self.seed)
        self.layout = build_layout(scenario)
        self.clock = LockstepClock(self)
        self.epoch_utc = scenario.start_utc
        self.info = DeviceInfo("sim", scenario.name, {
            "seed": self.seed,
            "source": scenario.source,
            "start_utc": scenario.start_datetime().isoformat().replace("+00:00", "Z"),
            "duration_s": scenario.duration_s,
            "volume_m3": scenario.total_volume_m3,
        })
        self._sample_t = math.nan
        self._reads = 0
        self._bad_commands = 0
        self._last_frame: Frame | None = None
        self._last_key: tuple[Any, ...] = (None, None, None, -1)
        self._valve_status = [int(SampleStatus.OK)] * len(self.layout.valves)

    # ------------------------------------------------------------------ the Device interface

    def advance_to(self, t: float) -> None:
        """Advance the plant to mission time ``t`` (s); does nothing if ``t`` has passed."""
        self.plant.advance_to(t, self.max_step)

    def read(self, frame: Frame) -> None:
        """Fill ``frame`` with the samples at the current mission time. Never raises."""
        plant = self.plant
        s = self.sensors
        t = plant.t
        if t != self._sample_t:
            s.sample(t)
            self._sample_t = t
        self._reads += 1
        frame.t = t
        frame.pressure[:] = s.p_value
        frame.pressure_time[:] = s.p_time
        frame.temperature[:] = s.t_value
        frame.temperature_time[:] = s.t_time
        frame.flow[:] = s.f_value
        frame.flow_time[:] = s.f_time
        # Status lists and valve states rarely change: copy them only when they did (or into a
        # frame this device has not filled last), which saves a third of the copying.
        last = self._last_key
        if (frame is not self._last_frame or s.p_status is not last[0]
                or s.t_status is not last[1] or s.f_status is not last[2]
                or plant.valve_version != last[3]):
            frame.pressure_status[:] = s.p_status
            frame.temperature_status[:] = s.t_status
            frame.flow_status[:] = s.f_status
            frame.valve_cmd[:] = plant.valve_command
            frame.valve_fb[:] = plant.valve_feedback
            frame.valve_status[:] = self._valve_status
            self._last_frame = frame
            self._last_key = (s.p_status, s.t_status, s.f_status, plant.valve_version)

    def command_valve(self, index: int, open_: bool) -> None:
        """Command valve ``index`` (layout order) open or closed. Never raises: an index out of
        range is ignored and counted in :meth:`health`."""
        if 0 <= index < len(self._valve_status):
            self.plant.command_valve(index, open_)
        else:
            self._bad_commands += 1

    def health(self) -> dict[str, int]:
        return {
            "plant_steps": self.plant.steps,
            "samples": self.sensors.samples,
            "reads": self._reads,
            "bad_commands": self._bad_commands,
        }

    # ------------------------------------------------------------------ ground truth

    def truth(self) -> Truth:
        """A snapshot of the plant's true state (not what the sensors say)."""
        p = self.plant
        names = p.module_names
        active = set(p.active_leaks())
        leaks = tuple(
            LeakTruth(lk.module, lk.diameter_m, lk.cd, lk.start_s, lk.start_s + lk.duration_s,
                      k in active, p.leak_flow[k] if k in active else 0.0)
            for k, lk in enumerate(self.scenario.leaks))
        return Truth(
            t=p.t,
            pressure_pa=dict(zip(names, p.pressure)),
            temperature_k=dict(zip(names, p.temperature)),
            mass_kg=dict(zip(names, p.mass)),
            leaks=leaks,
            segments=tuple(tuple(s) for s in p.segments()),
            valve_position=dict(zip(p.valve_ids, p.valve_position)),
            leaked_kg=p.leaked_kg, added_kg=p.added_kg, consumed_kg=p.consumed_kg,
        )

    def leak_modules(self) -> list[str]:
        """Modules with a leak scheduled in the scenario (in scenario order, unique)."""
        out: list[str] = []
        for lk in self.scenario.leaks:
            if lk.module not in out:
                out.append(lk.module)
        return out

    def mean_pressure_mmhg(self) -> float:
        """Volume-weighted true station pressure, mmHg (for display)."""
        p = self.plant
        return sum(pi * v for pi, v in zip(p.pressure, p.volume)) / sum(p.volume) / MMHG_PA


def _parse_url(url: str) -> tuple[str, dict[str, str]]:
    if not url.lower().startswith("sim://"):
        raise DeviceUrlError(f"expected a sim:// URL, got {url!r}")
    rest = url[len("sim://"):]
    target, _, query = rest.partition("?")
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise DeviceUrlError(f"{url!r}: malformed query {query!r}") from exc
    for key, value in pairs:
        if key not in _URL_KEYS:
            raise DeviceUrlError(f"{url!r}: unknown query key {key!r}; expected "
                                 + ", ".join(_URL_KEYS))
        if key in params:
            raise DeviceUrlError(f"{url!r}: query key {key!r} given twice")
        params[key] = value
    return target, params


def _number(url: str, key: str, value: Any, integer: bool) -> Any:
    try:
        if isinstance(value, str):
            number = int(value) if integer else float(value)
        elif isinstance(value, bool):
            raise ValueError
        else:
            number = int(value) if integer and float(value) == int(value) else float(value)
    except (TypeError, ValueError):
        number = None
    if integer:
        ok = isinstance(number, int) and number >= 0
    else:
        ok = isinstance(number, float) and math.isfinite(number) and number > 0
    if not ok:
        what = "an integer >= 0" if integer else "a number of seconds > 0"
        raise DeviceUrlError(f"{url!r}: {key} must be {what}, got {value!r}")
    return number


def open_url(url: str, **options: Any) -> SimDevice:
    """Open ``sim://NAME-or-PATH?seed=N`` (see the module docstring).

    Raises:
        DeviceUrlError: not a sim:// URL, an unknown or malformed query key or option.
        ScenarioError: no such preset or file, or the scenario is invalid (names file and key).
    """
    target, params = _parse_url(url)
    scenario = options.pop("scenario", None)
    for key in list(options):
        if key not in _URL_KEYS:
            raise DeviceUrlError(f"{url!r}: unknown option {key!r}; expected "
                                 + ", ".join(_URL_KEYS + ("scenario",)))
        params[key] = options.pop(key)
    if scenario is None:
        if not target:
            raise DeviceUrlError(f"{url!r}: expected sim://NAME-or-PATH (a preset or a TOML file)")
        scenario = load_scenario(target)
    elif not isinstance(scenario, Scenario):
        raise DeviceUrlError(f"scenario= expects a Scenario, got {type(scenario).__name__}")
    seed = _number(url, "seed", params["seed"], True) if "seed" in params else None
    if "duration" in params:
        scenario = replace(scenario, duration_s=_number(url, "duration", params["duration"], False))
    step = _number(url, "step", params["step"], False) if "step" in params else 0.1
    return SimDevice(scenario, seed=seed, max_step=step)
