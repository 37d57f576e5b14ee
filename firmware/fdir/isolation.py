"""FDIR stage 3: isolation (ACTIVE mode only).

On a confirmed leak in a segment S (a set of modules joined by open valves):

1. SPLITTING: every open valve or hatch inside S is commanded closed (ISOLATION_STARTED). The
   split is complete when each commanded valve reads closed or has been failed by the valve
   monitor (stage 4). A failed valve simply leaves its two modules joined: segments are always
   judged by feedback, so isolation plans around it and ends up sealing the smallest segment that
   contains the leak.
2. OBSERVING (ISOLATION_STEP): each new segment's detector restarts after ``transient_mask_s``;
   FDIR watches the least-squares slope of each segment's inventory since that restart. A segment
   is *leaking* when its standardised loss rate passes the confirm threshold and the lower
   confidence bound of its rate explains at least ``healthy_fraction`` of the confirmed rate; it
   is *healthy* when the upper bound of its rate stays below ``healthy_fraction`` of it. Small
   segments decide in seconds, so the leak is usually located before the large healthy ones are
   cleared; once the leaking segments explain the confirmed rate, FDIR does not wait for them.
3. LOCATED (LEAK_LOCATED with the equivalent hole diameter at the parameter Cd and the reserve
   time of the leaking segment): the valves closed in step 1 are reopened (VALVE_REOPENED), except
   those on the boundary of the leaking segment(s).
4. SEALED (SEGMENT_SEALED) once the reopened valves read open (or failed). The sealed modules stay
   sealed and their leak raises no further events; the rest of the station is watched as before
   and a further leak there starts a new isolation (at most ``max_attempts`` in all). A leak
   confirmed elsewhere while an isolation runs is isolated when it ends (``Fdir._isolate_waiting``).

If every candidate segment is shown healthy (reason 3), or none can be called leaking within
``observe_timeout_s`` (reason 2), or no valve could be closed (reason 1), isolation FAILS (ISOLATION_FAILED), reopens what it closed, and the leak stays reported.
"""

from __future__ import annotations

import math

from ..types import EventId, IsolationState
from .machines import ISOLATION_TRANSITIONS, check
from .params import FdirParams
from .physics import hole_diameter_m, reserve_time_s
from .port import SegmentHost


_I = IsolationState
# Plain ints for the per-cycle checks (an IntEnum member look-up costs more than the compare).
_IDLE, _SPLITTING, _OBSERVING, _LOCATED = int(_I.IDLE), int(_I.SPLITTING), int(_I.OBSERVING), int(_I.LOCATED)
_SEALED, _FAILED = int(_I.SEALED), int(_I.FAILED)


class Isolator:
    """The isolation state machine. ``candidates`` is the module mask under investigation."""

    def __init__(self, host: SegmentHost) -> None:
        self.host = host
        self.state = _I.IDLE
        self.candidates = 0
        self.closed: list[int] = []  # valves this isolation commanded closed
        self.reopen: list[int] = []
        self.rate = 0.0  # confirmed leak rate, kg/s
        self.onset_rate = 0.0  # the same leak's rate from windows that lie after its onset, kg/s
        self.onset_level = math.nan  # the inventory level (Pa) over that rate's window (NaN: none)
        self.req_slot = -1  # the slot whose confirmed leak this isolation investigates
        self.req_mask = 0  # its modules when the isolation started
        self.t_state = 0.0
        self.t_observe = math.inf  # when observation may start deciding
        self.attempts = 0
        self.step_no = 0
        self.cleared = 0  # mask of modules cleared as healthy during this observation
        self.leaking_mask = 0
        self.located: list[tuple[float, str, float, float, float]] = []  # t, subject, d, reserve, rate
        self.result_hole_m = 0.0
        self.result_reserve_s = 0.0
        self.result_rate = 0.0

    # -- queries ----------------------------------------------------------------------------

    def owns(self, mask: int) -> bool:
        """True while isolating and ``mask`` lies within the candidate modules."""
        st = self.state
        return (st == _SPLITTING or st == _OBSERVING or st == _LOCATED) and mask & ~self.candidates == 0

    @property
    def busy(self) -> bool:
        """True while an isolation is in progress (splitting, observing or located)."""
        st = self.state
        return st == _SPLITTING or st == _OBSERVING or st == _LOCATED

    # -- transitions ------------------------------------------------------------------------

    def _go(self, new: IsolationState, t: float, subject: str = "", v1: float = 0.0, v2: float = 0.0,
            v3: float = 0.0) -> None:
        ok, event = check(ISOLATION_TRANSITIONS, self.state, new)
        if not ok:
            self.host.transition_error()
            return
        self.state = new
        self.t_state = t
        if event is not None:
            self.host.events.push(t, event, subject, v1, v2, v3)

    def request(self, slot: int, rate: float, t: float) -> None:
        """A leak was confirmed in segment ``slot``: start isolating it if allowed."""
        f = self.host
        if self.state in (_I.SPLITTING, _I.OBSERVING, _I.LOCATED):
            return
        if self.attempts >= f.params.isolation.max_attempts:
            return
        mask = f.slot_mask[slot]
        topo = f.topology
        subject = f.segment_subject(slot)
        members = f.slot_members[slot]
        self.attempts += 1
        self.candidates = mask
        self.rate = max(rate, 0.0)
        self.req_slot = slot
        self.req_mask = mask
        self._take_onset(slot)
        self.cleared = 0
        self.leaking_mask = 0
        self.step_no = 0
        if len(members) == 1:
            # Already a single module: nothing to close; observe it to measure the leak.
            self._go(_I.SPLITTING, t, subject, 1.0, 0.0, self.rate)
            self.closed = []
            self._start_observing(t, 1)
            return
        to_close = [i for i in topo.inner_valves(mask)
                    if not f.valve_failed(i) and f.valve_open(i)]
        self._go(_I.SPLITTING, t, subject, float(len(members)), float(len(to_close)), self.rate)
        self.closed = []
        for i in to_close:
            if f.command_valve(i, False, t):
                self.closed.append(i)
        if not self.closed:
            self._go(_I.FAILED, t, subject, float(len(members)), 1.0, self.rate)

    def abort(self, t: float) -> None:
        """Mode left ACTIVE: stop isolating; valves stay where they are (nothing is commanded)."""
        if self.state in (_I.SPLITTING, _I.OBSERVING, _I.LOCATED):
            self._go(_I.IDLE, t)

    def acknowledge(self, t: float) -> None:
        if self.state in (_I.SEALED, _I.FAILED):
            self._go(_I.IDLE, t)
        self.attempts = 0

    def segments_changed(self, t: float) -> None:
        if self.state == _I.OBSERVING:
            # A valve moved mid-observation (late or failed): decide on the new segments.
            self.t_observe = t + self.host.params.leak.transient_mask_s

    # -- per cycle (ACTIVE mode) --------------------------------------------------------------

    def step(self, t: float) -> None:
        st = self.state
        if st == _IDLE or st == _SEALED or st == _FAILED:
            return
        f = self.host
        if st == _SPLITTING:
            if f.slot_mask[self.req_slot] == self.req_mask:
                # Until the hatches close, the segment still holds the whole leak, and its
                # windows after the onset grow: the elimination estimate keeps improving.
                self._take_onset(self.req_slot)
            if all(f.valve_settled(i) for i in self.closed):
                segs = [s for s in range(f.topology.n_segments)
                        if f.topology.masks[s] & ~self.candidates == 0]
                self._start_observing(t, len(segs))
        elif st == _OBSERVING:
            self._observe(t)
        elif st == _LOCATED:
            if all(f.valve_settled(i) for i in self.reopen):
                self._seal(t)

    def _start_observing(self, t: float, n_segments: int) -> None:
        """Split complete: every candidate segment's test restarts now, so the slope since the
        restart measures each segment on its own."""
        f = self.host
        self.step_no += 1
        self._go(_I.OBSERVING, t, f.mask_subject(self.candidates),
                 float(n_segments), float(self.step_no), self.rate)
        hold = f.params.leak.transient_mask_s
        for s in range(f.topology.n_segments):
            if f.topology.masks[s] & ~self.candidates == 0:
                f.restart_segment(f.seg_slot[s], t, hold)
        self.t_observe = t + hold

    def _observe(self, t: float) -> None:
        f = self.host
        p = f.params
        if t < self.t_observe + p.isolation.observe_min_s:
            return
        topo = f.topology
        frac = p.isolation.healthy_fraction
        kz = f.z_confirm
        undecided = 0
        blind = 0  # candidate modules in segments with no usable pressure sensor
        leaking: list[tuple[int, float, float]] = []  # slot, rate, slope
        waiting = False  # a leaking segment may yet split at a failed valve (_split_pending)
        for s in range(topo.n_segments):
            mask = topo.masks[s]
            if mask & ~self.candidates:
                continue
            slot = f.seg_slot[s]
            if f.seg_blind[s]:
                blind |= mask
                continue
            bank = f.banks[slot]
            k = bank.k
            if k < f.plan.n_warm or t < f.hold_until[slot]:
                undecided += 1
                continue
            slope = bank.slope_all()
            sd = bank.sigma() * math.sqrt(12.0 / (k * (k * k - 1.0))) * f.plan.rate_hz
            to_kg = f.slot_volume[slot] / (f.r_gas * f.t_ref)
            rate_sd = sd * to_kg
            # Leaking is judged with the most doubtful sensor of a pair left out, as the leak
            # tests judge (a drifting pressure sensor of a two-sensor module hid the leak of
            # the module it was in); healthy on the segment's own slope.
            judged = f.judged_slope(s, k, slope, sd, f.slot_dead[slot])
            rate = -judged * to_kg
            z = (-judged - f.slot_dead[slot]) / sd
            if z >= kz and rate - kz * rate_sd >= frac * self.rate:
                leaking.append((slot, rate, judged))
                waiting |= self._split_pending(mask, rate, t)
            elif (rate := -slope * to_kg) + kz * rate_sd < frac * self.rate:
                self.cleared |= mask
            else:
                undecided += 1
        timed_out = t - self.t_state > p.isolation.observe_timeout_s
        if leaking and (timed_out or not waiting and (undecided == 0 or _accounts(leaking, self.rate, frac))):
            self._locate(leaking, t)
        elif not leaking and undecided == 0 and blind:
            # Every observable segment holds: the leak is where nobody can look (elimination).
            self._locate_blind(blind, t)
        elif not leaking and undecided == 0:
            self._fail(t, 3.0)  # every candidate segment is healthy: the leak is not observed
        elif timed_out:
            self._fail(t, 2.0)

    def _split_pending(self, mask: int, rate: float, t: float) -> bool:
        """The leaking segment ``mask`` is joined only by feedback through a failed valve, and
        the pressures on its two sides may yet show it closed (``valves.split_pa``, the core's
        check at housekeeping rate; the segments then split and are watched apart): wait until,
        were it closed, the leak at ``rate`` (kg/s) would have moved them apart by three times
        that, even with all of the segment's volume on the leaking side, or until the
        observation times out. (Located at once, a hatch whose position sensor froze at "open"
        had both its modules sealed, with the reserve of their joint volume.)"""
        f = self.host
        thr = f.params.valves.split_pa
        if thr <= 0.0 or rate <= 0.0 or not any(f.valve_failed(i) for i in f.topology.inner_valves(mask)):
            return False
        vol = sum(f.volume[m] for m in range(f.n_modules) if mask >> m & 1)
        return t - self.t_observe < 3.0 * thr * vol / (rate * f.r_gas * f.t_ref)

    def _locate(self, leaking: list[tuple[int, float, float]], t: float) -> None:
        f = self.host
        p = f.params
        mask = 0
        best = max(leaking, key=lambda item: item[1])
        for slot, rate, slope in leaking:
            mask |= f.slot_mask[slot]
        slot, rate, slope = best
        members = f.slot_members[slot]
        pres = sum(f.pressure[m] * f.volume[m] for m in members) / f.slot_volume[slot]
        temp = sum(f.temperature[m] * f.volume[m] for m in members) / f.slot_volume[slot]
        d = _hole(rate, pres, temp, p)
        reserve = _reserve(pres, slope, p.isolation.reserve_floor_pa)
        self._finish_locate(mask, d, reserve, rate, t)

    def _finish_locate(self, mask: int, d: float, reserve: float, rate: float, t: float) -> None:
        """LEAK_LOCATED in the module set ``mask``; reopen every valve this isolation closed
        except those on its boundary."""
        f = self.host
        self.leaking_mask = mask
        self.result_hole_m = d
        self.result_reserve_s = reserve
        self.result_rate = rate
        subject = f.mask_subject(mask)
        self.located.append((t, subject, d, reserve, rate))
        self._go(_I.LOCATED, t, subject, d, reserve, rate)
        boundary = set(f.topology.boundary_valves(mask))
        self.reopen = []
        for i in self.closed:
            if i in boundary or f.valve_failed(i):
                continue
            if f.command_valve(i, True, t):
                self.reopen.append(i)
                f.events.push(t, EventId.VALVE_REOPENED, f.layout.valves[i].id, float(i), 0.0, 0.0)

    def _take_onset(self, slot: int) -> None:
        """Take the leak's rate after its onset again (at least the confirmed rate), and the
        level it was measured at."""
        rate, level = self._onset_rate(slot)
        if rate >= self.rate:
            self.onset_rate, self.onset_level = rate, level
        else:
            self.onset_rate, self.onset_level = self.rate, math.nan

    def _onset_rate(self, slot: int) -> tuple[float, float]:
        """The loss rate (kg/s) of a confirmed leak in ``slot``, judged on the windows that lie
        after its onset: the largest rate among the windows whose evidence alone reaches the
        confirm threshold, taken again every cycle until the segment is split. The window that confirmed usually began before the leak did, and its
        slope is then a fraction of the leak's; a shorter window that also confirms lies inside
        the leak. Used where nothing better will come: a leak located by elimination cannot be
        watched after sealing (its module has no pressure sensor). Returns (rate kg/s, the
        segment's mean inventory level over that window, Pa at the reference temperature; NaN
        when no window confirms)."""
        f = self.host
        bank = f.banks[slot]
        plan = f.plan
        k = bank.k
        if k < 2:
            return 0.0, math.nan
        sigma = bank.sigma()
        dead = f.slot_dead[slot]
        best = 0.0
        level = math.nan
        for j, n in enumerate(plan.n):
            if n > k:
                continue
            slope = bank.slope_scaled(n, plan.scale[j])
            if (-slope - dead) >= f.z_confirm * sigma * plan.sdf[j]:
                rate = -slope * f.slot_volume[slot] / (f.r_gas * f.t_ref)
                if rate > best:
                    best = rate
                    level = bank.mean(n)
        return best, level

    def _locate_blind(self, mask: int, t: float) -> None:
        """Locate the leak in the unobservable modules ``mask`` by elimination: the leak's rate
        from the windows after its onset (:meth:`_onset_rate`) is theirs. The hole is sized at
        the level that rate was measured at (a choked leak's flow is proportional to the
        pressure: a 100 mm hole that blew its module down before the split read 404 mm at the
        last, near-vacuum vote), the reserve from their pressure as last voted."""
        f = self.host
        p = f.params
        members = [m for m in range(f.n_modules) if mask >> m & 1]
        vol = sum(f.volume[m] for m in members)
        pres = sum(f.pressure[m] * f.volume[m] for m in members) / vol
        temp = sum(f.temperature[m] * f.volume[m] for m in members) / vol
        rate = self.onset_rate
        slope = -rate * f.r_gas * temp / vol
        level = self.onset_level
        d = _hole(rate, level, f.t_ref, p) if level == level else _hole(rate, pres, temp, p)
        reserve = _reserve(pres, slope, p.isolation.reserve_floor_pa)
        self._finish_locate(mask, d, reserve, rate, t)

    def _seal(self, t: float) -> None:
        f = self.host
        mask = self.leaking_mask
        f.seal(mask, t)  # (dead bands follow; the estimates keep converging: fdir/estimate.py)
        vol = sum(f.volume[m] for m in range(f.n_modules) if mask >> m & 1)
        self._go(_I.SEALED, t, f.mask_subject(mask), float(_popcount(mask)), vol, self.result_rate)
        self._report_cut_off(mask, t)
        self.candidates = 0

    def _report_cut_off(self, sealed: int, t: float) -> None:
        """Healthy candidate modules that sealing left apart from the main segment (the one
        with the most volume) were reached only through the sealed modules (a hub): report
        exactly which (SEGMENT_CUT_OFF)."""
        f = self.host
        topo = f.topology
        open_segments = [mk for mk in topo.masks if mk & ~f.sealed_mask]
        if len(open_segments) < 2:
            return
        main = max(open_segments, key=lambda mk: sum(f.volume[m] for m in range(f.n_modules) if mk >> m & 1))
        cut = 0
        for mk in open_segments:
            if mk != main and mk & self.candidates & ~sealed == mk:
                cut |= mk
        if cut:
            f.cut_off(cut)
            vol = sum(f.volume[m] for m in range(f.n_modules) if cut >> m & 1)
            f.events.push(t, EventId.SEGMENT_CUT_OFF, f.mask_subject(cut), float(_popcount(cut)), vol, 0.0)

    def _fail(self, t: float, reason: float) -> None:
        f = self.host
        self._go(_I.FAILED, t, f.mask_subject(self.candidates),
                 float(_popcount(self.candidates & ~self.cleared)), reason, self.rate)
        for i in self.closed:
            if not f.valve_failed(i):
                f.command_valve(i, True, t)
        self.candidates = 0


def _accounts(leaking: list[tuple[int, float, float]], rate: float, frac: float) -> bool:
    """The leaking segments found so far explain the confirmed rate (to within ``frac``)."""
    return sum(r for _, r, _ in leaking) >= (1.0 - frac) * rate


def _hole(rate: float, pressure: float, temperature: float, p: FdirParams) -> float:
    return hole_diameter_m(rate, pressure, temperature, p.isolation.discharge_coefficient,
                           p.physics.gamma, p.physics.gas_constant_j_kg_k)


def _reserve(pressure: float, slope: float, floor: float) -> float:
    r = reserve_time_s(pressure, slope, floor)
    return r if math.isfinite(r) else 0.0


def _first(mask: int) -> int:
    return (mask & -mask).bit_length() - 1 if mask else 0


def _popcount(mask: int) -> int:
    return bin(mask).count("1")
