"""FDIR stage 3b: locating a slow leak by a hatch schedule sized by the statistical floor.

A slow leak (:mod:`.slowleak`) has days of reserve, so it is located the way crews do it: close
one hatch, watch the branch it cuts off, and descend into the branch that holds the loss.

The candidate modules C (the confirmed segment) form a tree of open hatches, rooted at the
**crew side**: the O2 generator's module (``slowleak.generator_module``) when it is in C, else
C's largest module. Each step:

1. MOVING (``LOCATE_ADVICE`` action 0: the hatch, its watch time, the step): the open hatch whose
   branch B (the modules it cuts off, away from the root) is closest to half of C by module
   count is closed: commanded when ``slowleak.locate`` is 2 and FDIR is active, otherwise only
   advised (the crew closes it). The crew stays on the root side: B holds neither crew nor the
   generator, so its inventory shows the leak and nothing else. (Crew oxygen use in a segment
   cut off from the generator is a real net loss of up to 0.84 kg/day per person: judged on the
   generator's side it would look like a leak, so the schedule never judges that side.)
2. WATCHING, from ``transient_mask_s`` after the hatch reads closed: B's inventory slope since
   then (its fast slope bank, every sample) gives B's loss rate ``r`` and its 1-sigma ``sd``
   (white noise). What a leak-free B can show by itself is not white: the pressure sensors'
   temperature offsets swing its inventory with the orbit (bounded by
   ``slowleak.branch_excursion_pa``, M) and one thermometer may drift, so B's band over the
   span T of the slope is ``b = (3 M / T + doubt) V_B / (R T_ref)``. With L the confirmed rate
   beyond its dead band (a lower bound of the leak), h = ``isolation.healthy_fraction`` and
   k = z(1-alpha) + z(1-beta): B is *leaking* when ``r - k sd - b >= h L``, *healthy* when
   ``r + k sd + b < h L``. L is not frozen at the alarm: it follows the confirmed segment's
   whole inventory across the splits (:mod:`.leakbound`), and a leaking verdict raises it to
   ``r - k sd - b``, B's own clean measure of the leak. The advised watch time is B's
   statistical floor for the slope ``s = min(h, 1-h) L R T_ref / V_B`` at B's expected noise
   (the candidate segment's noise level scaled to B's modules), or ``3 M / s`` if longer,
   clamped to ``[watch_min_s, watch_max_s]``. Undecided at ``watch_max_s``: FAILED (reason 4),
   and the hatches the schedule closed are reopened: not located rather than located wrong.
3. ``ISOLATION_STEP`` (2 segments, step, B's rate; subject: a module still candidate): leaking -> C := B (the hatch
   stays closed; B's root is the hatch's far end); healthy -> C := C - B and the hatch is
   reopened (``LOCATE_ADVICE`` action 1; commanded or advised).
4. When C is one module: ``LEAK_LOCATED`` (module, hole at the parameter Cd, reserve time, rate);
   its open hatches are closed and the other hatches the schedule closed are reopened (commanded
   or advised, a ``LOCATE_ADVICE`` each); once the module's hatches all read closed it is sealed
   (``SEGMENT_SEALED``), as after a fast isolation, and its estimates go on (:mod:`.estimate`).

A branch's rate is judged after subtracting ``slowleak.branch_crew_kg_s``, the crew oxygen use
the procedure allows in a cut-off branch (default 0: the whole crew stays on the root side).

In advisory mode the schedule follows the hatches the crew moves (valve feedback); a hatch not
moved within ``act_timeout_s`` of its advice ends the schedule (FAILED, reason 5). While the
schedule runs, the fast test's events and isolation stay quiet on the candidate modules (the
schedule's events tell the story).
"""

from __future__ import annotations

import enum
import math

from ..types import EventId
from .leak import statistical_floor_s
from .leakbound import LeakBound
from .physics import hole_diameter_m, reserve_time_s
from .port import SegmentHost



class LocateState(enum.IntEnum):
    IDLE = 0
    MOVING = 1  #: a hatch advised or commanded; waiting for its feedback
    WATCHING = 2  #: watching the branch the hatch cut off
    SEALING = 3  #: located; waiting for the module's hatches to read closed
    SEALED = 4
    FAILED = 5


_L = LocateState
#: (from, to) -> event emitted on the transition (docs/fdir.md prints this table).
LOCATE_TRANSITIONS: dict[tuple[int, int], EventId | None] = {
    (_L.IDLE, _L.MOVING): EventId.ISOLATION_STARTED,
    (_L.SEALED, _L.MOVING): EventId.ISOLATION_STARTED,
    (_L.FAILED, _L.MOVING): EventId.ISOLATION_STARTED,
    (_L.MOVING, _L.WATCHING): None,
    (_L.WATCHING, _L.MOVING): EventId.ISOLATION_STEP,
    (_L.WATCHING, _L.SEALING): EventId.ISOLATION_STEP,
    (_L.SEALING, _L.SEALED): EventId.SEGMENT_SEALED,
    (_L.MOVING, _L.FAILED): EventId.ISOLATION_FAILED,
    (_L.WATCHING, _L.FAILED): EventId.ISOLATION_FAILED,
    (_L.SEALING, _L.FAILED): EventId.ISOLATION_FAILED,
    (_L.IDLE, _L.SEALING): None,  # the confirmed segment is already one module
    (_L.MOVING, _L.IDLE): None,  # superseded by the fast isolation (or parameters reloaded)
    (_L.WATCHING, _L.IDLE): None,
    (_L.SEALING, _L.IDLE): None,
    (_L.SEALED, _L.SEALING): None,
    (_L.FAILED, _L.SEALING): None,
}

#: ISOLATION_FAILED reason codes of the schedule (the fast isolator uses 1-3).
REASON_NO_HATCH = 1.0
REASON_UNDECIDED = 4.0
REASON_NOT_MOVED = 5.0


class SlowLocator:
    """The slow-leak location schedule of one :class:`Fdir` (one schedule at a time)."""

    def __init__(self, host: SegmentHost) -> None:
        self.host = host
        self.state = int(_L.IDLE)
        self.owned = 0  # modules the schedule works on (the confirmed segment)
        self.candidates = 0
        self.root = -1
        self.rate = 0.0
        self.estimate = 0.0  # the detector's whole-rate estimate at the request, kg/s
        self.bound: LeakBound | None = None  # the confirmed segment's rate beyond its band, kept up
        self.valve = -1  # the hatch of the current step
        self.branch = 0  # candidate modules it cuts off
        self.branch_seg = 0  # the whole segment it cuts off (with modules cleared earlier)
        self.step_no = 0
        self.t_state = 0.0
        self.t_watch = math.inf  # when the watch starts counting
        self.watch_s = 0.0
        self.to_close: list[int] = []
        self.closed: list[int] = []  # hatches this schedule closed (advised or commanded) and not reopened
        self.result: tuple[str, float, float, float] | None = None  # module, hole m, reserve s, rate
        self.attempts = 0
        self.commanded = False  # this schedule commands its hatches (locate = 2, active mode)

    # -- queries ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        st = self.state
        return st == _L.MOVING or st == _L.WATCHING or st == _L.SEALING

    def owns(self, mask: int) -> bool:
        """True while a commanded schedule runs and ``mask`` lies within its modules (hook in
        ``Fdir._quiet``: the fast test's events and isolation stay quiet there). An advisory
        schedule owns nothing: a fast confirmation there starts the fast isolation, which
        supersedes the advice."""
        st = self.state
        return (st == 1 or st == 2 or st == 3) and self.commanded and mask & ~self.owned == 0

    # -- transitions ------------------------------------------------------------------------

    def _go(self, new: LocateState, t: float, subject: str = "", v1: float = 0.0, v2: float = 0.0,
            v3: float = 0.0) -> bool:
        f = self.host
        key = (self.state, int(new))
        if key not in LOCATE_TRANSITIONS:
            f.transition_error()
            return False
        self.state = int(new)
        self.t_state = t
        event = LOCATE_TRANSITIONS[key]
        if event is not None:
            f.events.push(t, event, subject, v1, v2, v3)
        return True

    def request(self, slot: int, rate: float, t: float, estimate: float | None = None,
                bound: LeakBound | None = None) -> None:
        """A slow leak was confirmed in ``slot`` (hook from the slow detector): ``rate`` is the
        confirmed rate beyond its band (kg/s, a lower bound of the leak: the schedule's
        decisions use it), ``estimate`` the detector's estimate of the whole rate (kg/s; what
        ``LEAK_LOCATED`` reports for a module found by elimination; default ``rate``), ``bound``
        the slot's rate beyond its band kept up to date across the splits (:mod:`.leakbound`;
        the schedule's L follows it up)."""
        f = self.host
        p = f.params.slowleak
        if p.locate == 0 or self.busy or f.isolating or f.mode == 0:
            return
        if self.attempts >= f.params.isolation.max_attempts:
            return
        self.attempts += 1
        self.commanded = p.locate == 2 and f.mode == 2
        mask = f.slot_mask[slot]
        self.owned = self.candidates = mask
        self.rate = max(rate, 0.0)
        self.estimate = max(self.rate, estimate if estimate is not None else 0.0)
        self.bound = bound
        self.step_no = 0
        self.result = None
        self.closed = []
        gen = f.generator_module
        members = [m for m in range(f.n_modules) if mask >> m & 1]
        self.root = gen if gen >= 0 and mask >> gen & 1 else max(members, key=lambda m: f.volume[m])
        if len(members) == 1:
            self._locate(members[0], self.rate, t)
            return
        self._next_step(t, started=False)

    def abort(self, t: float) -> None:
        """Parameters reloaded: the schedule stops where it is (nothing commanded)."""
        if self.busy:
            self._superseded(t)

    def segments_changed(self, t: float) -> None:
        """Hook in ``Fdir._remap``: a hatch moved; a watch restarts after the transient."""
        if self.state == _L.WATCHING:
            self.t_watch = t + self.host.params.leak.transient_mask_s

    # -- planning ---------------------------------------------------------------------------

    def _reach(self, start: int, valve: int) -> int:
        """Modules joined to ``start`` by open hatches other than ``valve`` (a module mask)."""
        f = self.host
        edges = [(a, b) for i, (a, b) in enumerate(f.topology.ends)
                 if i != valve and b >= 0 and f.valve_open(i)]
        seen = 1 << start
        todo = [start]
        while todo:
            m = todo.pop()
            for a, b in edges:
                o = b if a == m else a if b == m else -1
                if o >= 0 and not seen >> o & 1:
                    seen |= 1 << o
                    todo.append(o)
        return seen

    def _branch(self, valve: int) -> tuple[int, int]:
        """(candidate modules, whole segment) cut off from the root by closing ``valve``;
        (0, 0) if closing it does not split the station there (e.g. on a loop). The segment may
        hold modules cleared earlier, which add volume but no loss."""
        root_side = self._reach(self.root, valve)
        rest = self.candidates & ~root_side
        if not rest:
            return 0, 0
        return rest, self._reach(_first(rest), valve)

    def _next_step(self, t: float, started: bool = True) -> None:
        f = self.host
        c = self.candidates
        n_c = _popcount(c)
        best, best_branch, best_seg, best_cost = -1, 0, 0, n_c + 1.0
        for i in f.topology.inner_valves(c):
            if f.valve_failed(i) or not f.valve_open(i):
                continue
            branch, seg = self._branch(i)
            if not branch:
                continue
            cost = abs(_popcount(branch) - n_c / 2.0)
            if cost < best_cost:
                best, best_branch, best_seg, best_cost = i, branch, seg, cost
        subject = f.mask_subject(c)
        if best < 0:
            if not started:
                self._go(_L.MOVING, t, subject, float(n_c), 0.0, self.rate)
            self._fail(t, REASON_NO_HATCH)
            return
        self.valve, self.branch, self.branch_seg = best, best_branch, best_seg
        self.step_no += 1
        self.watch_s = self._watch_time(best_seg)
        if not started:
            self._go(_L.MOVING, t, subject, float(n_c), 1.0, self.rate)
        else:
            self.state, self.t_state = int(_L.MOVING), t
        self._move(best, False, t)

    def _move(self, valve: int, open_: bool, t: float) -> None:
        """Advise (and in commanded mode command) one hatch."""
        f = self.host
        if open_:
            if valve in self.closed:
                self.closed.remove(valve)
        elif valve not in self.closed:
            self.closed.append(valve)
        f.events.push(t, EventId.LOCATE_ADVICE, f.layout.valves[valve].id, 1.0 if open_ else 0.0,
                      self.watch_s, float(self.step_no))
        if self.commanded:
            f.command_valve(valve, open_, t)

    def _watch_time(self, branch: int) -> float:
        """Statistical floor of the segment ``branch`` for the share of the confirmed rate that separates a
        leaking branch from a healthy one, clamped to [watch_min_s, watch_max_s]."""
        f = self.host
        p = f.params
        frac = p.isolation.healthy_fraction
        v_b = sum(f.volume[m] for m in range(f.n_modules) if branch >> m & 1)
        w_b = math.sqrt(sum((f.volume[m] / v_b) ** 2 for m in range(f.n_modules) if branch >> m & 1))
        # The candidate segment's noise per module, scaled to B's volume weights.
        slot = f.slot_of_module(self.root)
        v_c = f.slot_volume[slot] or 1.0
        w_c = math.sqrt(sum((f.volume[m] / v_c) ** 2 for m in f.slot_members[slot])) or 1.0
        sigma = f.banks[slot].sigma() / w_c * w_b
        slope = min(frac, 1.0 - frac) * self.rate * f.r_gas * f.t_ref / v_b
        sl = p.slowleak
        if slope <= 0.0:
            return sl.watch_max_s
        floor = statistical_floor_s(slope, sigma, f.plan.rate_hz, p.leak.false_alarm_prob, p.leak.miss_prob)
        # ... and the watch over which the branch's bounded excursion (3 M / T) falls below it.
        floor = max(floor, 3.0 * sl.branch_excursion_pa / slope)
        return min(sl.watch_max_s, max(sl.watch_min_s, floor))

    # -- per housekeeping tick ----------------------------------------------------------------

    def step(self, t: float) -> None:
        """Advance the schedule (called once per housekeeping period)."""
        st = self.state
        if st != _L.IDLE and st != _L.SEALED and st != _L.FAILED and self.host.isolating:
            self._superseded(t)
            return
        bound = self.bound
        if bound is not None and (st == _L.MOVING or st == _L.WATCHING):
            bound.tick()
            if bound.value > self.rate:
                self.rate = bound.value
        if st == _L.MOVING:
            self._moving(t)
        elif st == _L.WATCHING:
            self._watching(t)
        elif st == _L.SEALING:
            self._sealing(t)

    def _moving(self, t: float) -> None:
        f = self.host
        if not f.valve_open(self.valve):
            self.state, self.t_state = int(_L.WATCHING), t
            self.t_watch = t + f.params.leak.transient_mask_s
        elif f.valve_failed(self.valve):
            self._fail(t, REASON_NO_HATCH)
        elif t - self.t_state > f.params.slowleak.act_timeout_s:
            self._fail(t, REASON_NOT_MOVED)

    def _watching(self, t: float) -> None:
        f = self.host
        p = f.params
        if t < self.t_watch + p.isolation.observe_min_s:
            return
        topo = f.topology
        seg = topo.seg_of[_first(self.branch)]
        if topo.masks[seg] & self.candidates != self.branch:
            # The branch is not cut off as planned (a hatch moved elsewhere): wait, bounded.
            if t - self.t_state > p.slowleak.watch_max_s:
                self._fail(t, REASON_UNDECIDED)
            return
        slot = f.seg_slot[seg]
        bank = f.banks[slot]
        k = bank.k
        if k < f.plan.n_warm or t < f.hold_until[slot]:
            return
        to_kg = f.slot_volume[slot] / (f.r_gas * f.t_ref)
        rate = -bank.slope_all() * to_kg
        sd = bank.sigma() * math.sqrt(12.0 / (k * (k * k - 1.0))) * f.plan.rate_hz * to_kg
        kz = f.z_confirm
        rate -= p.slowleak.branch_crew_kg_s  # crew O2 use the procedure allows in the branch
        # What the branch can show with no leak, which white noise does not cover: the pressure
        # sensors' temperature offsets swing its inventory by up to branch_excursion_pa over an
        # orbit (a least-squares rate of up to 3 M / T over T), and one thermometer may drift.
        span = k / f.plan.rate_hz
        band = (3.0 * p.slowleak.branch_excursion_pa / span + f.thermometer_doubt(slot, span)) * to_kg
        h = p.isolation.healthy_fraction * self.rate
        watched = t - self.t_watch
        low = rate - kz * sd - band
        if low >= h and watched >= p.slowleak.watch_min_s:
            # The branch's own rate is a clean lower bound of the leak: decide on it from here.
            self.rate = max(self.rate, low)
            self._decided(True, rate, t)
        elif rate + kz * sd + band < h and watched >= p.slowleak.watch_min_s:
            self._decided(False, rate, t)
        elif watched > p.slowleak.watch_max_s:
            self._fail(t, REASON_UNDECIDED)

    def _decided(self, leaking: bool, rate: float, t: float) -> None:
        f = self.host
        valve = self.valve
        if leaking:
            self.candidates = self.branch
            a, b = f.topology.ends[valve]
            self.root = a if self.branch >> a & 1 else b
        else:
            self.candidates &= ~self.branch
        n_c = _popcount(self.candidates)
        subject = f.mask_subject(self.candidates)
        if n_c == 1:
            # Found: a leaking branch, or by elimination the one module left on the root side
            # (then the hatch just shown healthy bounds it: it stays closed, or reopening it
            # would join the module to the healthy branch it has just been told apart from).
            self._go(_L.SEALING, t, subject, 2.0, float(self.step_no), rate)
            self._locate_found(_first(self.candidates), rate if leaking else self.estimate, t)
            return
        self._go(_L.MOVING, t, subject, 2.0, float(self.step_no), rate)
        if not leaking:
            self._move(valve, True, t)
        self._next_step(t)

    def _locate(self, module: int, rate: float, t: float) -> None:
        """The confirmed segment is already a single module."""
        self.candidates = 1 << module
        self._go(_L.SEALING, t, self.host.module_names[module], 1.0, 0.0, rate)
        self._locate_found(module, rate, t)

    def _locate_found(self, module: int, rate: float, t: float) -> None:
        f = self.host
        p = f.params
        pres = f.pressure[module]
        temp = f.temperature[module]
        hole = hole_diameter_m(rate, pres, temp, p.isolation.discharge_coefficient, p.physics.gamma,
                               p.physics.gas_constant_j_kg_k)
        dpdt = -rate * f.r_gas * temp / f.volume[module]
        reserve = reserve_time_s(pres, dpdt, p.isolation.reserve_floor_pa)
        reserve = reserve if math.isfinite(reserve) else 0.0
        name = f.module_names[module]
        self.result = (name, hole, reserve, rate)
        f.events.push(t, EventId.LEAK_LOCATED, name, hole, reserve, rate)
        self.rate = rate
        boundary = f.topology.boundary_valves(1 << module)
        self.to_close = [i for i in boundary if f.valve_open(i)]
        self.step_no += 1
        self.watch_s = 0.0
        for i in self.to_close:
            self._move(i, False, t)
        # Hatches closed on the way that do not bound the leaking module: the healthy modules
        # behind them join the station again.
        for i in [v for v in self.closed if v not in boundary]:
            self._move(i, True, t)

    def _sealing(self, t: float) -> None:
        f = self.host
        if all(not f.valve_open(i) or f.valve_failed(i) for i in self.to_close):
            module = _first(self.candidates)
            f.seal(self.candidates, t)
            self._go(_L.SEALED, t, f.module_names[module], 1.0, f.volume[module], self.rate)
            self.owned = self.candidates = 0
        elif t - self.t_state > f.params.slowleak.act_timeout_s:
            self._fail(t, REASON_NOT_MOVED)

    def _superseded(self, t: float) -> None:
        """The fast isolation started (a leak the fast test confirmed): the schedule stops
        where it is, without an event (the isolation events tell the story)."""
        key = (self.state, int(_L.IDLE))
        if key in LOCATE_TRANSITIONS:
            self.state, self.t_state = int(_L.IDLE), t
        self.owned = self.candidates = 0
        self.bound = None

    def _fail(self, t: float, reason: float) -> None:
        """The schedule ends unlocated; the hatches it had closed are reopened (advised, or
        commanded): the station is left as the schedule found it."""
        f = self.host
        searching = self.state == _L.MOVING or self.state == _L.WATCHING
        self._go(_L.FAILED, t, f.mask_subject(self.candidates), float(_popcount(self.candidates)),
                 reason, self.rate)
        if searching:
            self.watch_s = 0.0
            for i in [v for v in self.closed if not f.valve_open(v) and not f.valve_failed(v)]:
                self._move(i, True, t)
        self.owned = self.candidates = 0
        self.bound = None


def _first(mask: int) -> int:
    return (mask & -mask).bit_length() - 1 if mask else 0


def _popcount(mask: int) -> int:
    return bin(mask).count("1")
