"""A small hand-made station for driving the FDIR with synthetic frames (slow leaks, estimates).

Modules in a row joined by hatches; the gas of each connected group shares one pressure at once;
hatches travel in 1 s. Each module can lose gas through a choked hole (``holes``: kg/s per Pa,
the flow is proportional to the pressure) or at a fixed rate, and gain or lose gas by a
prescribed net flow ``net(t) -> kg/s per module`` (crew oxygen use, generator). Pressure sensors
have white noise; the gas temperature is constant.
"""

from __future__ import annotations

import random
from typing import Callable

from hullwatch.firmware.fdir.core import Fdir
from hullwatch.firmware.fdir.params import FdirParams
from hullwatch.firmware.types import EventId, FdirMode
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind

R = 287.05
T = 295.0


class ChainStation:
    def __init__(self, names: list[str], volumes: list[float], *, holes: dict[str, float] | None = None,
                 leaks: dict[str, float] | None = None, net: Callable[[float], list[float]] | None = None,
                 noise_pa: float = 1.5, seed: int = 1, thermometers: int = 1,
                 t_drift: tuple[str, float, float] | None = None) -> None:
        self.names = names
        self.vol = volumes
        n = len(names)
        self.layout = Layout(
            modules=tuple(ModuleInfo(m, v) for m, v in zip(names, volumes)),
            pressure=tuple(ChannelInfo(f"{m}.p{i}", ChannelKind.PRESSURE, m, 30000.0, 125000.0)
                           for m in names for i in (1, 2, 3)),
            temperature=tuple(ChannelInfo(f"{m}.t{i}", ChannelKind.TEMPERATURE, m, 233.0, 358.0)
                              for m in names for i in range(1, thermometers + 1)),
            flow=(),
            valves=tuple(ValveInfo(f"{a}-{b}", ValveKind.HATCH, a, b, 2.0) for a, b in zip(names, names[1:])),
        )
        self.mass = [101300.0 * v / (R * T) for v in volumes]
        self.pos = [1.0] * (n - 1)
        self.cmd = [1] * (n - 1)
        self.k_hole = [(holes or {}).get(m, 0.0) for m in names]
        self.leak = [(leaks or {}).get(m, 0.0) for m in names]
        self.net = net
        self.n_t = thermometers
        #: (module, start s, K/s): channel t1 of that module drifts from the start on
        self.t_drift = (names.index(t_drift[0]), t_drift[1], t_drift[2]) if t_drift else None
        self.noise = noise_pa
        self.t = 0.0
        self.rng = random.Random(seed)
        self.commands: list[tuple[float, int, bool]] = []
        self.lost_kg_s = [0.0] * n  # true leak flow of each module in the last step

    def command_valve(self, i: int, open_: bool) -> None:
        self.commands.append((self.t, i, open_))
        self.cmd[i] = int(open_)

    def pressure(self, m: int) -> float:
        return self.mass[m] * R * T / self.vol[m]

    def advance(self, dt: float) -> None:
        self.t += dt
        for i in range(len(self.pos)):
            self.pos[i] = min(self.pos[i] + dt, 1.0) if self.cmd[i] else max(self.pos[i] - dt, 0.0)
        extra = self.net(self.t) if self.net else None
        for m in range(len(self.mass)):
            self.lost_kg_s[m] = self.leak[m] + self.k_hole[m] * self.pressure(m)
            self.mass[m] -= self.lost_kg_s[m] * dt
            if extra:
                self.mass[m] += extra[m] * dt
        group = [0]
        for i in range(len(self.pos)):
            if self.pos[i] > 0.02:
                group.append(i + 1)
            else:
                self._mix(group)
                group = [i + 1]
        self._mix(group)

    def _mix(self, group: list[int]) -> None:
        total = sum(self.mass[m] for m in group)
        vol = sum(self.vol[m] for m in group)
        for m in group:
            self.mass[m] = total * self.vol[m] / vol

    def read(self, f) -> None:
        f.t = self.t
        for i in range(len(self.layout.pressure)):
            m = i // 3
            f.pressure[i] = self.pressure(m) + self.rng.gauss(0, self.noise)
            f.pressure_status[i] = 0
            f.pressure_time[i] = self.t
        for j in range(len(self.names) * self.n_t):
            f.temperature[j] = T + self.rng.gauss(0, 0.002)
            f.temperature_status[j] = 0
        if self.t_drift is not None and self.t > self.t_drift[1]:
            m, start, rate = self.t_drift
            f.temperature[m * self.n_t] += (self.t - start) * rate
        f.valve_cmd[:] = self.cmd
        f.valve_fb[:] = self.pos
        f.valve_status[:] = [0] * len(self.pos)


def run(station: ChainStation, params: FdirParams, seconds: float, mode: FdirMode = FdirMode.ACTIVE,
        on_event: Callable[[tuple], None] | None = None, fdir: Fdir | None = None) -> tuple[Fdir, list]:
    """Step ``fdir`` (a new one if None) on the station for ``seconds``; returns it and its events."""
    fdir = fdir or Fdir(station.layout, params, station.command_valve, mode)
    frame = station.layout.new_frame()
    dt = params.executive.period_s
    events: list[tuple] = []
    for _ in range(int(round(seconds / dt))):
        station.read(frame)
        fdir.step(frame)
        while (rec := fdir.events.pop()) is not None:
            events.append(rec)
            if on_event is not None:
                on_event(rec)
        station.advance(dt)
    return fdir, events


def names(events: list[tuple]) -> list[tuple[str, str]]:
    return [(EventId(e[1]).name, e[3]) for e in events]


def of(events: list[tuple], name: str) -> list[tuple]:
    return [e for e in events if EventId(e[1]).name == name]
