"""The plant: the station's gas, its modules, hatches and valves, leaks, thermal cycle and crew.

State is the gas mass of each module (kg). Each module's gas temperature follows the thermal
model (an orbital sine plus a slow drift, both per module); pressure follows from the ideal gas
law, P = m R T / V.

Integration, stable and conservative at any step (docs/architecture.md, "Reference figures": explicit Euler at 0.1 s diverges
across an open hatch):

* Modules joined by fully open large openings (hatches; anything of diameter >= LUMP_DIAMETER_M)
  equalise in milliseconds, so they are *lumped* into one pressure node: the node's mass is
  shared so that every member has the node pressure, m_i = P V_i / (R T_i).
* Leaks to vacuum are choked, so a node's leak flow is proportional to its pressure; the step
  uses the exact exponential solution, so blowdown is exact at any step size.
* Flow between nodes (partly open hatches, small valves) follows the orifice law, limited per
  step to the mass that would equalise the two nodes, so it never overshoots.
* Every kilogram that leaves or enters is booked: ``leaked_kg``, ``consumed_kg`` (crew oxygen),
  ``added_kg`` (oxygen generation and repress). total + leaked + consumed - added is constant.

Valves (hatches, equalisation valves and repress valves) are held as parallel lists indexed in
device valve order: connections first, then repress valves. A command sets the target; the
position travels at 1/actuation_s per second; faults can pin the target or freeze the feedback.
A valve passes no gas until it has travelled SEAT_TRAVEL off its seat; beyond that its flow area
grows linearly to the full area at 1.0. The position sensor reads the travel itself, so a flight
software that counts a valve open above a feedback threshold below SEAT_TRAVEL sees every valve
open no later than gas starts to flow through it, whatever the travel speed and cycle rate.
"""

from __future__ import annotations

import math
import random

import numpy as np

from .gas import CHOKED_FLUX, R_AIR, area, orifice_flow
from .lookahead import TimeTable
from .scenario import Scenario

#: Fully open connections at least this wide are lumped (equalise well within one 0.1 s step:
#: a 0.1 m opening moves ~5 kg/s at 100 Pa, a 6 m3 module holds ~7 kg).
LUMP_DIAMETER_M = 0.1
#: Travel (fraction of full stroke) before a valve or hatch lifts off its seal and passes gas.
SEAT_TRAVEL = 0.05

DAY_S = 86400.0
_TWO_PI = 2.0 * math.pi
_sin, _cos = math.sin, math.cos


def seat_opening(x: float) -> float:
    """The fraction of a valve's full flow area open at travel ``x`` (0..1): nothing until
    :data:`SEAT_TRAVEL`, then linear to 1.0 fully open."""
    return (x - SEAT_TRAVEL) / (1.0 - SEAT_TRAVEL) if x > SEAT_TRAVEL else 0.0


class Plant:
    """The station's gas dynamics for one scenario.

    Attributes (read them; only the plant writes them):
        t: mission time, s.
        pressure, temperature, mass: per module (scenario order), Pa, K, kg.
        valve_position: 0..1 per valve; valve_command: 0/1 last command; valve_feedback: what
            the position sensor says (0..1).
        repress_flow: current mass flow of each repress supply into its module, kg/s.
        leaked_kg, consumed_kg, added_kg: cumulative gas lost to vacuum, used by the crew,
            added by oxygen generation and repress.

    ``pressure`` and ``temperature`` are replaced by new lists every step (cheaper than writing
    in place): read the attribute afresh, do not keep the list. Valve lists are updated in place.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        mods = scenario.modules
        n = len(mods)
        self.n_modules = n
        self.module_names = [m.name for m in mods]
        index = {m.name: i for i, m in enumerate(mods)}
        self._index = index
        self.volume = [m.volume_m3 for m in mods]
        self._vol_r = [m.volume_m3 / R_AIR for m in mods]
        self._t_mean = [m.temperature_k for m in mods]

        # Thermal: T_i = mean_i + a_i sin(wt) + b_i cos(wt) + c_i sin(wd t) + d_i cos(wd t).
        th = scenario.thermal
        rng = random.Random(f"{self.seed}/thermal")
        self._w_orbit = 2.0 * math.pi / th.orbit_period_s
        self._w_drift = 2.0 * math.pi / th.drift_period_s
        self._ta, self._tb, self._tc, self._td = [], [], [], []
        for m in mods:
            amp = (th.amplitude_k if m.amplitude_k is None else m.amplitude_k) * rng.uniform(0.7, 1.0)
            lag = rng.uniform(-0.5, 0.5)  # rad: modules warm and cool with different lags
            drift = th.drift_amplitude_k * rng.uniform(0.5, 1.0)
            phase = rng.uniform(0.0, 2.0 * math.pi)
            self._ta.append(amp * math.cos(lag))
            self._tb.append(amp * math.sin(lag))
            self._tc.append(drift * math.cos(phase))
            self._td.append(drift * math.sin(phase))
        self._thermal_rows = list(zip(self._t_mean, self._ta, self._tb, self._tc, self._td))
        self.temperature = [0.0] * n
        self._cap = [0.0] * n  # kg/Pa: V / (R T)
        self.t = 0.0
        self._update_thermal(0.0)
        self.pressure = [m.pressure_pa for m in mods]

        # Valves: connections then repress, parallel lists.
        self.valve_ids: list[str] = []
        self._v_a: list[int] = []
        self._v_b: list[int] = []  # -1 for repress
        self._v_cda: list[float] = []
        self._v_lumps: list[bool] = []
        self._v_rate: list[float] = []
        for c in scenario.connections:
            self.valve_ids.append(c.id)
            self._v_a.append(index[c.modules[0]])
            self._v_b.append(index[c.modules[1]])
            self._v_cda.append(c.cd * area(c.diameter_m))
            self._v_lumps.append(c.diameter_m >= LUMP_DIAMETER_M)
            self._v_rate.append(1.0 / c.actuation_s)
        self.n_connections = len(scenario.connections)
        init = [1.0 if c.open else 0.0 for c in scenario.connections]
        self._repress_tank: list[tuple[float, float]] = []
        for r in scenario.repress:
            self.valve_ids.append(r.id)
            self._v_a.append(index[r.module])
            self._v_b.append(-1)
            self._v_cda.append(r.cd * area(r.diameter_m))
            self._v_lumps.append(False)
            self._v_rate.append(1.0 / r.actuation_s)
            self._repress_tank.append((r.tank_pressure_pa, r.tank_temperature_k))
            init.append(0.0)
        nv = len(self.valve_ids)
        self.valve_position = list(init)
        self.valve_command = [int(x) for x in init]
        self.valve_feedback = list(init)
        #: per valve, the fraction of its full flow area open now (0 until SEAT_TRAVEL)
        self._v_open = [seat_opening(x) for x in init]
        self._v_target = list(init)
        self._v_stuck = [False] * nv
        self._v_frozen = [False] * nv
        self._moving: list[int] = []
        #: bumped whenever a valve's command, position or feedback changes
        self.valve_version = 0
        self.repress_flow = [0.0] * len(scenario.repress)
        #: every repress valve was shut at the last repress evaluation (all flows 0.0) and no
        #: valve has moved since: the next evaluation would give the same zeros, so it is skipped
        self._repress_shut = False
        #: flow through each connection in the last step, kg/s, from module_a to module_b
        self.connection_flow = [0.0] * self.n_connections

        # Scheduled actions: (time, order, kind, valve index, argument), sorted.
        sched: list[tuple[float, int, str, int, str]] = []
        for k, r in enumerate(scenario.repress):
            vi = self.n_connections + k
            for start, dur in r.events:
                sched.append((start, len(sched), "open", vi, ""))
                sched.append((start + dur, len(sched), "close", vi, ""))
        for vf in scenario.valve_faults:
            sched.append((vf.start_s, len(sched), "fault", self.valve_ids.index(vf.valve), vf.kind))
        for op in scenario.hatch_ops:
            sched.append((op.at_s, len(sched), "crew_open" if op.open else "crew_close",
                          self.valve_ids.index(op.valve), ""))
        for k, loc in enumerate(scenario.crew.locations):
            if loc.at_s > 0.0:  # a location at 0 is the initial one (below)
                sched.append((loc.at_s, len(sched), "crew_move", -1, str(k)))
        sched.sort()
        self._schedule = sched
        self._sched_i = 0
        self._next_action = sched[0][0] if sched else math.inf

        # Leaks: (module, Cd*A*CHOKED_FLUX, start, end).
        self._leaks = [(index[lk.module], lk.cd * area(lk.diameter_m) * CHOKED_FLUX,
                        lk.start_s, lk.start_s + lk.duration_s) for lk in scenario.leaks]
        self.leak_flow = [0.0] * len(self._leaks)  # kg/s of each leak in the last step

        # Crew oxygen: use shared over crew modules, generation in one module.
        crew = scenario.crew
        self._use = [0.0] * n
        self._gen_module = -1
        self._use_mean = 0.0
        if crew.count > 0:
            self._use_mean = crew.count * crew.o2_kg_per_person_day / DAY_S
            self._place_crew(crew.modules_at(0.0))
            self._gen_module = index[crew.generator_module]
        crng = random.Random(f"{self.seed}/crew")
        self._act_amp = crew.activity_fraction
        self._act_phase = crng.uniform(0.0, 2.0 * math.pi)
        self._mis_amp = crew.mismatch_kg_per_day / DAY_S
        self._mis_w = 2.0 * math.pi / crew.mismatch_period_s
        self._mis_phase = crng.uniform(0.0, 2.0 * math.pi)

        self._table = TimeTable(
            self._thermal_rows, self._w_orbit, self._w_drift, self._vol_r,
            (self._act_amp, self._act_phase, self._use_mean, self._mis_amp, self._mis_w, self._mis_phase)
            if self._gen_module >= 0 else None, self._time_terms)

        self.leaked_kg = 0.0
        self.consumed_kg = 0.0
        self.added_kg = 0.0
        self.steps = 0
        # The state: gas mass of each pressure node (modules lumped by open hatches).
        self._nodes: list[list[int]] = []
        self._node_of = [0] * n
        self._node_mass: list[float] = []
        self._rebuild_nodes()

    # ---------------------------------------------------------------------------- queries

    def module_index(self, name: str) -> int:
        return self._index[name]

    @property
    def mass(self) -> list[float]:
        """Gas mass of each module, kg (m = P V / (R T))."""
        return [p * c for p, c in zip(self.pressure, self._cap)]

    def total_mass(self) -> float:
        """Gas in the station, kg."""
        return math.fsum(self._node_mass)

    def ledger_balance(self) -> float:
        """total + leaked + consumed - added (kg): constant if gas is conserved."""
        return math.fsum(self._node_mass) + self.leaked_kg + self.consumed_kg - self.added_kg

    def segments(self) -> list[list[str]]:
        """Modules joined by any open (or partly open) connection: what shares a pressure."""
        parent = list(range(self.n_modules))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for v in range(self.n_connections):
            if self._v_open[v] > 0.0:
                parent[find(self._v_a[v])] = find(self._v_b[v])
        groups: dict[int, list[str]] = {}
        for i, name in enumerate(self.module_names):
            groups.setdefault(find(i), []).append(name)
        return list(groups.values())

    def active_leaks(self) -> list[int]:
        """Indices (scenario order) of the leaks open at the current time."""
        t = self.t
        return [k for k, lk in enumerate(self._leaks) if lk[2] < t + 1e-9 and t < lk[3]]

    # ---------------------------------------------------------------------------- commands

    def command_valve(self, index: int, open_: bool) -> None:
        """Command valve ``index`` (device order) open or closed. A stuck valve ignores it."""
        cmd = 1 if open_ else 0
        self.valve_command[index] = cmd
        self.valve_version += 1
        if not self._v_stuck[index]:
            self._set_target(index, float(cmd))

    def _set_target(self, index: int, target: float) -> None:
        self._v_target[index] = target
        if self.valve_position[index] != target and index not in self._moving:
            self._moving.append(index)

    def _place_crew(self, modules: tuple[str, ...]) -> None:
        """Share the crew's mean oxygen use (kg/s) equally over ``modules``."""
        use = [0.0] * self.n_modules
        for name in modules:
            use[self._index[name]] += self._use_mean / len(modules)
        self._use = use

    def _update_crew_nodes(self) -> None:
        """Per-node crew use after the nodes or the crew's location changed."""
        self._node_use = [sum(self._use[i] for i in nd) for nd in self._nodes]
        self._crew_nodes = [(k, u) for k, u in enumerate(self._node_use) if u > 0.0]

    def _apply_action(self, kind: str, vi: int, arg: str) -> None:
        if kind == "open":
            self.command_valve(vi, True)
        elif kind == "close":
            self.command_valve(vi, False)
        elif kind in ("crew_open", "crew_close"):
            # The crew moves the hatch by hand: the commanded state the device reports stays
            # what the flight software last commanded; only the position (and its feedback)
            # moves. A valve stuck by a fault cannot be moved by the crew either.
            self.valve_version += 1
            if not self._v_stuck[vi]:
                self._set_target(vi, 1.0 if kind == "crew_open" else 0.0)
        elif kind == "crew_move":
            if self._use_mean > 0.0:
                self._place_crew(self.scenario.crew.locations[int(arg)].modules)
                self._update_crew_nodes()
        elif arg == "stuck_open":
            self._v_stuck[vi] = True
            self._set_target(vi, 1.0)
        elif arg == "stuck_closed":
            self._v_stuck[vi] = True
            self._set_target(vi, 0.0)
        else:  # feedback_mismatch: the position switch freezes where it is
            self._v_frozen[vi] = True

    # ---------------------------------------------------------------------------- stepping

    def advance_to(self, t: float, max_step: float = 0.1) -> None:
        """Advance to mission time ``t`` (s) in equal steps of at most ``max_step``."""
        span = t - self.t
        if span <= 0.0:
            return
        if span <= max_step:  # the lockstep loop: one step per cycle
            self.step(span)
            self.t = t
            return
        n = int(span / max_step - 1e-9) + 1
        h = span / n
        for _ in range(n - 1):
            self.step(h)
        self.step(t - self.t)
        self.t = t

    def _update_thermal(self, t: float) -> None:
        # The lists are replaced, not mutated: read plant.temperature afresh each time.
        self.temperature, self._cap = self._thermal(t)

    def _thermal(self, t: float) -> tuple[list[float], list[float]]:
        """Gas temperature (K) and capacity V / (R T) (kg/Pa) of each module at time ``t``."""
        # Comprehensions over prebuilt tuples: about 3x faster than an indexed loop here.
        wo = self._w_orbit * t
        wd = self._w_drift * t
        so, co, sd, cd = _sin(wo), _cos(wo), _sin(wd), _cos(wd)
        temp = [m + a * so + b * co + c * sd + d * cd for m, a, b, c, d in self._thermal_rows]
        return temp, [v / tk for v, tk in zip(self._vol_r, temp)]

    def _time_terms(self, t: float) -> tuple[list[float], list[float], float, float]:
        """What depends on mission time alone: temperatures and capacities (:meth:`_thermal`),
        the crew activity factor and the O2 generation rate (kg/s), both 0.0 without crew.
        sim/lookahead.py tabulates the same formulas."""
        temp, cap = self._thermal(t)
        if self._gen_module < 0:
            return temp, cap, 0.0, 0.0
        use_f = 1.0 + self._act_amp * _sin(_TWO_PI * t / DAY_S + self._act_phase)
        gen = self._use_mean + self._mis_amp * _sin(self._mis_w * t + self._mis_phase)
        return temp, cap, use_f, gen

    def grid_temperatures(self, t: float, count: int) -> tuple[list[float], "np.ndarray"] | None:
        """If mission time ``t`` lies on the lockstep grid the plant is stepping on: the next
        ``count`` grid times from ``t`` and the gas temperature of each module at each
        (``count`` x modules, the values steps at those times will have); else None. The
        sensors tabulate their temperature channels from it."""
        tab = self._table
        period = tab.period
        if not period:
            return None
        k = round(t / period)
        if k * period != t:
            return None
        times = np.arange(k, k + count, dtype=float) * period
        temps = tab.temperatures(times)
        return None if temps is None else (times.tolist(), temps)

    def _rebuild_nodes(self) -> None:
        """Regroup modules into pressure nodes after a lumping connection opened or closed.
        Each new node's mass is the sum of its modules' masses, shared at one pressure."""
        module_mass = self.mass
        parent = list(range(self.n_modules))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for v in range(self.n_connections):
            if self._v_lumps[v] and self.valve_position[v] >= 1.0:
                parent[find(self._v_a[v])] = find(self._v_b[v])
        roots: dict[int, int] = {}
        nodes: list[list[int]] = []
        for i in range(self.n_modules):
            r = find(i)
            if r not in roots:
                roots[r] = len(nodes)
                nodes.append([])
            nodes[roots[r]].append(i)
            self._node_of[i] = roots[r]
        self._nodes = nodes
        self._node_key = tuple(self._node_of)  # a new object per grouping (lookahead node sums)
        # Connections that carry orifice flow: not lumped, open at all, between different nodes.
        self._node_count = len(nodes)
        self._flow_valves = [v for v in range(self.n_connections)
                             if self._v_open[v] > 0.0
                             and self._node_of[self._v_a[v]] != self._node_of[self._v_b[v]]]
        self._flow_rows = [(v, self._v_a[v], self._v_b[v], self._node_of[self._v_a[v]],
                            self._node_of[self._v_b[v]], self._v_cda[v]) for v in self._flow_valves]
        for v in range(self.n_connections):
            self.connection_flow[v] = 0.0
        self._update_crew_nodes()
        self._leaky_nodes = sorted({self._node_of[lk[0]] for lk in self._leaks})
        self._gen_node = self._node_of[self._gen_module] if self._gen_module >= 0 else -1
        self._node_leaks = [[(j, i, coef, start, end) for j, (i, coef, start, end)
                             in enumerate(self._leaks) if self._node_of[i] == k]
                            for k in range(len(nodes))]
        self._node_mass = [math.fsum(module_mass[i] for i in nd) for nd in nodes]
        cap = self._cap
        for nd, m in zip(nodes, self._node_mass):
            pn = m / math.fsum(cap[i] for i in nd)
            for i in nd:
                self.pressure[i] = pn

    def step(self, h: float) -> None:
        """Advance by ``h`` seconds (any h > 0; stable and conservative at any size)."""
        t0 = self.t
        t = t0 + h
        self.t = t
        self.steps += 1

        # Scheduled repress events and valve faults.
        if t >= self._next_action:
            sched = self._schedule
            while self._sched_i < len(sched) and sched[self._sched_i][0] <= t:
                _, _, kind, vi, arg = sched[self._sched_i]
                self._sched_i += 1
                self._apply_action(kind, vi, arg)
            self._next_action = sched[self._sched_i][0] if self._sched_i < len(sched) else math.inf

        # Valve travel; a change in what is lumped rebuilds the nodes.
        if self._moving:
            self._move_valves(h)

        # Open-loop terms (temperatures, capacities, crew factors): from the lookahead table
        # on the executive's grid, else from the formulas.
        tab = self._table
        row = tab.row(t)
        tabulated = row is not None
        if not tabulated:
            row = self._time_terms(t)
            tab.missed(t, h)
        temp, cap, use_f, gen = row
        self.temperature = temp
        self._cap = cap
        nn = self._node_count

        # Per-node sources (kg/s): crew use, oxygen generation, repress.
        added_rate = gen
        consumed_rate = 0.0

        if nn == 1:
            # The whole station is one pressure node (every hatch open): the common case.
            m = self._node_mass[0]
            s = sum(cap)
            consumed_rate = use_f * self._use_mean
            if self._repress_tank and not self._repress_shut:
                added_rate += self._repress(src_nodes=None)
            if self._leaks:
                m, leaked = self._leak_node(0, m, s, h, t0, t)
                self.leaked_kg += leaked
            m += (added_rate - consumed_rate) * h
            self._node_mass[0] = m
            self.pressure = [m / s] * self.n_modules
        else:
            node_of = self._node_of
            nm = self._node_mass
            if tabulated:
                ns = tab.node_capacities(self._node_key, nn)
            else:
                ns = [0.0] * nn
                for k, c in zip(node_of, cap):
                    ns[k] += c
            for k in self._leaky_nodes:
                nm[k], leaked = self._leak_node(k, nm[k], ns[k], h, t0, t)
                self.leaked_kg += leaked
            if self._gen_node >= 0:
                consumed_rate = use_f * self._use_mean
                for k, u in self._crew_nodes:
                    nm[k] -= use_f * u * h
                nm[self._gen_node] += gen * h
            if self._repress_tank and not self._repress_shut:
                src = [0.0] * nn
                added_rate += self._repress(src_nodes=src)
                for k in range(nn):
                    nm[k] += src[k] * h
            # Orifice flow between nodes, limited to what equalises the pair.
            if self._flow_rows:
                pos = self._v_open
                flow = self.connection_flow
                for v, ia, ib, ka, kb, cda in self._flow_rows:
                    sa = ns[ka]
                    sb = ns[kb]
                    pa = nm[ka] / sa
                    pb = nm[kb] / sb
                    # the mass that would bring both nodes to one pressure
                    eq = (pa - pb) * sa * sb / (sa + sb)
                    if pa > pb:
                        dm = orifice_flow(cda * pos[v], pa, temp[ia], pb) * h
                        if dm > eq:
                            dm = eq
                    else:
                        dm = -orifice_flow(cda * pos[v], pb, temp[ib], pa) * h
                        if dm < eq:
                            dm = eq
                    nm[ka] -= dm
                    nm[kb] += dm
                    flow[v] = dm / h
            self.pressure = [nm[k] / ns[k] for k in node_of]
        self.added_kg += added_rate * h
        self.consumed_kg += consumed_rate * h

    def _leak_node(self, k: int, m: float, s: float, h: float, t0: float, t: float
                   ) -> tuple[float, float]:
        """Exact choked blowdown of node ``k`` over the step: returns (mass after, mass lost).
        Leak flow is k_l * P with P = m / s, so dm/dt = -(sum k_l / s) m: an exponential."""
        g = 0.0
        temp = self.temperature
        flows = self.leak_flow
        for j, i, coef, start, end in self._node_leaks[k]:
            if start < t and t0 < end:
                c = coef / math.sqrt(temp[i])
                g += c
                flows[j] = c * m / s
            else:
                flows[j] = 0.0
        if g == 0.0:
            return m, 0.0
        lost = -m * math.expm1(-g * h / s)
        return m - lost, lost

    def _repress(self, src_nodes: list[float] | None) -> float:
        """Repress inflow this step (kg/s in total); adds each supply to ``src_nodes``."""
        total = 0.0
        nc = self.n_connections
        pos = self._v_open
        shut = True
        for k, (ptank, ttank) in enumerate(self._repress_tank):
            v = nc + k
            if pos[v] > 0.0:
                shut = False
                i = self._v_a[v]
                f = orifice_flow(self._v_cda[v] * pos[v], ptank, ttank, self.pressure[i])
            else:
                f = 0.0
            self.repress_flow[k] = f
            total += f
            if src_nodes is not None:
                src_nodes[self._node_of[self._v_a[v]]] += f
        self._repress_shut = shut
        return total

    def _move_valves(self, h: float) -> None:
        self.valve_version += 1
        self._repress_shut = False
        rebuild = False
        still = []
        pos = self.valve_position
        opening = self._v_open
        for v in self._moving:
            x, target = pos[v], self._v_target[v]
            before = x >= 1.0
            step = self._v_rate[v] * h
            if x < target:
                x = min(target, x + step)
            else:
                x = max(target, x - step)
            was_open = opening[v] > 0.0
            pos[v] = x
            opening[v] = seat_opening(x)
            if not self._v_frozen[v]:
                self.valve_feedback[v] = x
            if v < self.n_connections:
                if self._v_lumps[v] and before != (x >= 1.0):
                    rebuild = True
                if was_open != (opening[v] > 0.0):
                    rebuild = True
            if x != target:
                still.append(v)
        self._moving = still
        if rebuild:
            self._rebuild_nodes()
