"""The FDIR application: sensor voting -> leak detection -> isolation -> valve monitoring.

:class:`Fdir` is built once from a device :class:`Layout` and a parameter table and is then
stepped once per cycle with the cycle's :class:`Frame`. Every table, ring and list is sized in
``__init__``; :meth:`Fdir.step` grows nothing and never raises (the executive counts anything
that escapes). Events go into a bounded :class:`EventQueue` that the flight software drains into
telemetry. Valve commands go through the ``command`` callable given at construction (the
device's ``command_valve``), and only in ACTIVE mode.

Order each cycle (docs/fdir.md): 1. sensors, 2. leak detection per connected segment, 3. isolation
(ACTIVE only), 4. valve monitoring (its verdicts feed the next cycle's isolation planning).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Callable

from ...hal.interfaces import Frame, Layout
from ..types import EventId, FdirMode, IsolationState, ModuleStatus, SensorHealth, ValveHealth
from .events import EventQueue
from .estimate import Estimator
from .isolation import Isolator
from .leak import WindowPlan, thresholds
from .locate import SlowLocator
from .machines import LEAK_TRANSITIONS, LeakState, check
from .params import FdirParams, describe
from .physics import choked_mass_flux_factor, hole_diameter_m, reserve_time_s
from .sensors import SensorStage
from .slope import SlopeBank, slope_sd_factor
from .slowleak import SlowLeakDetector
from .thermo import TemperatureStage
from .topology import Topology, segment_label
from .valves import ValveMonitor

__all__ = ["Fdir", "R_UNIVERSAL", "choked_mass_flux_factor", "hole_diameter_m", "reserve_time_s"]

#: Universal gas constant, J/(mol K): housekeeping reports the inventory in mol.
R_UNIVERSAL = 8.314462618
_NOMINAL = int(LeakState.NOMINAL)
_SUSPECTED = int(LeakState.SUSPECTED)
_CONFIRMED = int(LeakState.CONFIRMED)
_OFF = int(FdirMode.OFF)
_ACTIVE = int(FdirMode.ACTIVE)
_ISOLATING_STATES = (int(IsolationState.SPLITTING), int(IsolationState.OBSERVING))
_MS_NOMINAL, _MS_SUSPECTED, _MS_LEAKING, _MS_ISOLATING, _MS_SEALED, _MS_DEGRADED, _MS_NO_DATA = (
    int(ModuleStatus.NOMINAL), int(ModuleStatus.SUSPECTED), int(ModuleStatus.LEAKING),
    int(ModuleStatus.ISOLATING), int(ModuleStatus.SEALED), int(ModuleStatus.DEGRADED),
    int(ModuleStatus.NO_DATA))
_SENSOR_OK = int(SensorHealth.OK)
_FAILED_DISAGREE = int(SensorHealth.FAILED_DISAGREE)
#: A thermometer pair's difference bank needs this many samples (one per housekeeping period)
#: before its slope and noise are trusted.
_MIN_D_SAMPLES = 10


class Fdir:
    """The FDIR application. See the module docstring.

    Args:
        layout: the device layout (sizes everything).
        params: the active parameter table.
        command: ``command(valve_index, open_)``: sends a valve command to the device.
        mode: initial :class:`FdirMode`.
        event_capacity: size of the bounded event queue.
    """

    def __init__(self, layout: Layout, params: FdirParams, command: Callable[[int, bool], None],
                 mode: FdirMode = FdirMode.ACTIVE, event_capacity: int = 256) -> None:
        self.layout = layout
        self.events = EventQueue(event_capacity)
        self._command = command
        self.mode = int(mode)
        self.module_names = [m.name for m in layout.modules]
        self.volume = [m.volume_m3 for m in layout.modules]
        self.n_modules = len(layout.modules)
        self.flow_module = [layout.module_index(c.module) for c in layout.flow]
        self.added_kg = [0.0] * self.n_modules
        self.cycle = 0
        self.errors = 0  # incremented by the executive when a step raised
        self.transition_errors = 0
        self.link_up = True
        self.link_down_since = 0.0
        self.sensors = SensorStage(layout, params, self.events)
        self.thermo = TemperatureStage(layout, params, self.events)
        #: per module: is a pressure sensor usable (False: MODULE_UNOBSERVABLE was reported)
        self.observable = [True] * self.n_modules
        self._unobs_since = [0.0] * self.n_modules
        self._seen_p_changes = -1
        self._seen_t_changes = -1
        #: modules whose gas temperature is estimated (no trusted channel), with the offset of
        #: their temperature from the segment mates' mean when the last channel was lost
        self._t_estimated: list[int] = []
        self._t_trusted = [len(g) for g in self.thermo.groups]
        self._t_learning = True
        self._t_offset = [0.0] * self.n_modules
        #: modules that may hold crew away from the oxygen generator: cut off by a seal, or on
        #: either side of a hatch the crew moved (their segment gets the split allowance)
        self.crew_mask = 0
        self.valves = ValveMonitor(layout, params, self.events)
        self.topology = Topology(layout, params.valves.open_threshold)
        self._bias_learning = True
        self.sealed_mask = 0
        self._install(params)
        self.isolator = Isolator(self)
        self.locator = SlowLocator(self)  # slow leaks: location schedule (fdir/locate.py)
        self.estimator = Estimator(self)  # estimates after sealing (fdir/estimate.py)

    # -- parameters -------------------------------------------------------------------------

    def _install(self, params: FdirParams) -> None:
        self.params = params
        self.thermo.set_params(params)
        self.dt = params.executive.period_s
        self.plan = WindowPlan(params)
        self.z_suspect, self.z_confirm = thresholds(params)
        ph = params.physics
        self.r_gas = ph.gas_constant_j_kg_k
        self.t_ref = ph.reference_temperature_k
        total_v = sum(self.volume)
        # A loss spread over the station by volume falls at the same Pa/s in every segment.
        self.dead_band = params.leak.dead_band_pa_s + params.leak.known_loss_kg_s * self.r_gas * self.t_ref / total_v
        self.rapid = params.leak.rapid_dpdt_pa_s
        self.slow_every = max(1, round(params.executive.housekeeping_period_s / self.dt))
        # Temperature arbitration looks at up to 10 min of history, and needs at least 1 min.
        self._n_arbitrate = max(2, round(600.0 / self.dt))
        self._n_arbitrate_min = max(2, round(60.0 / self.dt))
        self._div_mask = 0
        n = self.n_modules
        # Per slot (one per possible segment): slope bank, membership and leak state.
        self.banks = [self.plan.new_bank(params) for _ in range(n)]
        self.slot_mask = [0] * n
        self.slot_volume = [0.0] * n
        self.slot_members: list[list[int]] = [[] for _ in range(n)]
        self.slot_used = [False] * n
        self.hold_until = [0.0] * n
        self.pending_reset = [True] * n
        self.state = [_NOMINAL] * n
        self.t_above = [0.0] * n
        self.rapid_raised = [False] * n
        self.rate = [0.0] * n  # kg/s, estimate at the last transition
        self.zbest = [0.0] * n
        self.seg_slot: list[int] = list(range(n))
        self._report_rates: list[float | None] = [None] * n
        self.seg_scale = [0.0] * n  # T_ref / V_seg
        self.slot_dead = [self.dead_band] * n  # per slot: dead band, Pa/s (see _segment_dead_band)
        self.seg_blind = [False] * n  # per segment: no observable module (tests skipped)
        # Per module: least-squares bank of its two temperature channels' difference (K), so the
        # leak test can ask what the inventory would do with either channel alone.
        # (At the thermometers' block rate: one sample per housekeeping period.)
        blk = self.thermo.block_n
        # (Their noise floor is in K: 1e-4 K, far below any thermometer's noise.)
        self.dbanks = [SlopeBank(max(2, self.plan.max_n // blk), 1.0 / (blk * self.dt), params.leak.noise_tau_s,
                                 1e-4) for _ in range(n)]
        self._dpair: list[tuple[int, int] | None] = [None] * n
        # Raw pressure readings of the last rapid window (a ring), for the two-sensor rule.
        n_p = len(self.layout.pressure)
        self._p_hist = [[0.0] * n_p for _ in range(self.plan.n_rapid + 1)]
        self._ps_hist = [[1] * n_p for _ in range(self.plan.n_rapid + 1)]
        self._p_hist_i = 0
        self._p_groups = self.sensors.groups
        #: per segment, (pressure module, module, volume) of each member in member order: the
        #: inventory terms (filled by _remap, which the next frame forces). The pressure module
        #: is the member itself, or for an unobservable member an observable segment mate.
        self._seg_terms: list[tuple[tuple[int, int, float], ...]] = [()] * n
        self.slow = SlowLeakDetector(self, params)  # long-horizon detector on the same slots
        self.sensors.set_params(params)
        self._seen_t_changes = -1
        self.valves.set_params(params)
        self.topology.open_threshold = params.valves.open_threshold
        self.topology.open_bits = -1  # force a recompute on the next frame
        # ... which step() only asks for when the feedback differs from the last frame's: forget
        # it, or the fresh slots would stay unmapped (zero scale) until a valve moved.
        self._fb_prev = [-1.0] * len(self.layout.valves)

    def load_params(self, params: FdirParams, t: float, crc16: int = 0) -> None:
        """Activate a validated table (telecommand). Detectors restart after a warm-up; sensor
        and valve failures and sealed modules are kept; an isolation in progress is abandoned
        (valves stay where they are)."""
        self.isolator.abort(t)
        self.locator.abort(t)
        self._install(params)
        self.isolator = Isolator(self)
        count = sum(len(v) for v in describe(params).values())
        self.events.push(t, EventId.PARAMS_LOADED, "fdir", float(count), float(crc16), 0.0)

    def acknowledge(self, t: float) -> None:
        """Ground acknowledged the alarms: a SEALED or FAILED isolation returns to IDLE and its
        attempt count restarts (sealed modules stay sealed: nothing is commanded)."""
        self.isolator.acknowledge(t)

    def set_mode(self, mode: FdirMode, t: float) -> None:
        old = self.mode
        if int(mode) == old:
            return
        self.mode = int(mode)
        if self.mode != FdirMode.ACTIVE:
            self.isolator.abort(t)
        self.events.push(t, EventId.MODE_CHANGED, "fdir", float(old), float(mode), 0.0)

    def command_valve(self, index: int, open_: bool, t: float) -> bool:
        """Command a valve if the mode allows it (ACTIVE). Returns True if sent."""
        if self.mode != FdirMode.ACTIVE:
            return False
        self.valves.commanded(index, open_, t)
        self._command(index, open_)
        return True

    # -- per cycle --------------------------------------------------------------------------

    def step(self, frame: Frame, link_up: bool = True) -> None:
        """One FDIR cycle on ``frame`` (mission time ``frame.t``)."""
        t = frame.t
        self.cycle += 1
        if link_up != self.link_up:
            self._link_change(link_up, t)
        mode = self.mode
        sensors = self.sensors
        thermo = self.thermo
        if mode == _OFF:
            sensors.step(frame, t, False)
            thermo.step(frame, t, False)
            return
        sensors.step(frame, t, link_up)
        block = thermo.step(frame, t, link_up)
        if not link_up:
            return
        # Raw pressure readings of this cycle, for the rapid-depress two-sensor rule.
        i = self._p_hist_i = (self._p_hist_i + 1) % len(self._p_hist)
        self._p_hist[i][:] = frame.pressure
        self._ps_hist[i][:] = frame.pressure_status
        if self.cycle % self.slow_every == 0:
            sensors.slow_checks(frame, t)
            thermo.slow_checks(frame, t)
            if not self._bias_learning:
                self._update_diverging()
                self._arbitrate_temperatures(t)
        if self._bias_learning and not sensors.learning and not thermo.learning:
            self._bias_learning = False
            self._reset_all(t, self.params.leak.warmup_s)
        fb = frame.valve_fb
        if fb != self._fb_prev:
            self._fb_prev[:] = fb
            if self.topology.update(fb):
                self._remap(t)
        if sensors.changed != self._seen_p_changes or thermo.changed != self._seen_t_changes:
            self._sensors_changed(t)
        if block:
            if self._t_estimated:
                self._estimate_temperatures()
            pairs = self._dpair
            diff = thermo.diff
            dbanks = self.dbanks
            for m in range(self.n_modules):
                if pairs[m] is not None:
                    dbanks[m].push(diff[m])
            self.slow.block()  # slow test: thermometer pair differences (fdir/slowleak.py)
        if self.flow_module:
            fs = frame.flow_status
            fv = frame.flow
            added = self.added_kg
            dt = self.dt
            for j, m in enumerate(self.flow_module):
                if not fs[j]:
                    added[m] += fv[j] * dt
        if not self._bias_learning:
            self._detect(t)
        if mode == _ACTIVE:
            self.isolator.step(t)
        if self.cycle % self.slow_every == 0:  # slow leaks: schedule and estimates, at 1 Hz
            self.locator.step(t)
            self.estimator.step(t)
        valves = self.valves
        valves.step(frame, t)
        if valves.moved:
            self._valves_moved()

    def _valves_moved(self) -> None:
        """Someone else moved valves: crew may now be on either side, away from the oxygen
        generator (see :meth:`_segment_dead_band`)."""
        for i in self.valves.moved:
            a, b = self.topology.ends[i]
            self.crew_mask |= 1 << a
            if b >= 0:
                self.crew_mask |= 1 << b
        self.valves.moved.clear()
        self._rebuild_terms()

    def _detect(self, t: float) -> None:
        # Everything the loop reads is bound to a local first: this runs every cycle for every
        # segment. None of these bindings changes during the loop (transitions write into the
        # lists in place; segments and the sealed mask change only outside _detect).
        P = self.sensors.pressure
        T = self.thermo.temperature
        Q = self.added_kg
        rg = self.r_gas
        topo = self.topology
        blind = self.seg_blind
        slot_dead = self.slot_dead
        div = self._div_mask
        masks = topo.masks
        plan = self.plan
        n_rapid = plan.n_rapid
        n_warm = plan.n_warm
        sdf_rapid = plan.sdf_rapid
        scale_rapid = plan.scale_rapid
        scale = plan.scale
        schedule = plan.schedule
        period = plan.period
        ns = plan.n
        sdf = plan.sdf
        z_suspect = self.z_suspect
        z_confirm = self.z_confirm
        rapid = self.rapid
        sealed = self.sealed_mask
        seg_slot = self.seg_slot
        seg_terms = self._seg_terms
        seg_scale = self.seg_scale
        hold_until = self.hold_until
        pending = self.pending_reset
        banks = self.banks
        state = self.state
        t_above = self.t_above
        zbest = self.zbest
        slow_push = self.slow.push
        for s in range(topo.n_segments):
            slot = seg_slot[s]
            if t < hold_until[slot] or blind[s]:
                # (A segment with no usable pressure sensor is not tested: losing data is not
                # losing gas. Isolation may still locate a leak there by elimination.)
                continue
            acc = 0.0
            for mp, m, v in seg_terms[s]:
                acc += P[mp] * v / T[m] - rg * Q[m]
            y = acc * seg_scale[s]
            bank = banks[slot]
            if pending[slot]:
                pending[slot] = False
                bank.reset(y)
            bank.push(y)
            slow_push(slot, y, t)
            k = bank.k
            sr = None
            # The rapid test runs every other sample: 0.1 s more latency at most, half the cost.
            if k >= n_rapid and not k & 1:
                sr = bank.slope_scaled(n_rapid, scale_rapid)
                # The rate must also be significant: in a small module alone the short window's
                # noise alone can approach the threshold.
                # And two raw pressure sensors of one module must agree: a thermometer step or
                # one failing pressure sensor moves the inventory, never the gas.
                if sr <= -rapid and not self.rapid_raised[slot] and \
                        -sr >= z_suspect * bank.sigma() * sdf_rapid and self._raw_rapid(s):
                    self._rapid(slot, s, sr, y, t)
            if k < n_warm or sealed and masks[s] & ~sealed == 0:
                # Warming up, or the sealed leak itself: its slope feeds housekeeping, not tests.
                continue
            sigma = 0.0
            dead_band = slot_dead[slot]
            for j in schedule[k % period]:
                n = ns[j]
                if k < n:
                    break
                if sigma == 0.0:
                    sigma = bank.sigma()
                # The shortest window is usually the rapid window, due on the same samples:
                # its slope was just computed.
                slope = sr if n == n_rapid and sr is not None else bank.slope_scaled(n, scale[j])
                sd = sigma * sdf[j]
                z = (-slope - dead_band) / sd
                if z >= z_suspect or div and div & masks[s]:
                    # Evidence: is it still there with the most doubtful thermometer left out?
                    slope = self._judged_slope(s, n, slope, sd, dead_band)
                    z = (-slope - dead_band) / sd
                    if z < z_suspect:
                        continue
                    t_above[slot] = t
                    if z > zbest[slot]:
                        zbest[slot] = z
                    st = state[slot]
                    if z >= z_confirm:
                        if st != _CONFIRMED:
                            self._leak_transition(slot, s, _CONFIRMED, slope, z, t)
                    elif st == _NOMINAL:
                        self._leak_transition(slot, s, _SUSPECTED, slope, z, t)
            if state[slot] != _NOMINAL and t - t_above[slot] > self.params.leak.clear_s:
                self._leak_transition(slot, s, _NOMINAL, bank.slope(min(k, ns[-1])), 0.0, t)

    # -- single-fault robustness ------------------------------------------------------------

    def _judged_slope(self, seg: int, n: int, slope: float, sd: float, dead: float) -> float:
        """The inventory slope (Pa/s) a segment's leak evidence is judged on, over the last ``n``
        samples: the slope of ``Y`` as it would be with the thermometer most able to fake or hide
        a leak left out. ``sd`` is the slope's standard deviation, ``dead`` the dead band.

        With d = t1 - t2 of a module's pair and T their mean, the inventory with t2 alone is
        Y + k d and with t1 alone Y - k d, k = (T_ref / V_seg) P V_m / (2 T^2); least-squares
        slopes are linear, so the slope of either is slope(Y) +- k slope(d), with slope(d) from
        the module's own bank. Under a single fault:

        - a pair whose difference certainly diverges (|slope(d)| beyond ``z_suspect`` of its
          noise) holds the fault: of its two hypotheses the one with less loss counts, unless
          it would mean gas appearing (a gain beyond the dead band and ``z_suspect`` deviations,
          which no unmetered station does): then the other one counts. So a thermometer drifting
          warm cannot fake a leak, and one drifting cold cannot hide one;
        - otherwise the part of any pair's |slope(d)| beyond one deviation of its noise is
          taken as doubt against the leak (the pair's noise must not tax every test).
        """
        blk = self.thermo.block_n
        nd = n // blk if n >= 2 * blk else 2
        P = self.sensors.pressure
        scale = self.seg_scale[seg]
        pairs = self._dpair
        zs = self.z_suspect
        best = None
        doubt = 0.0
        for mp, m, v in self._seg_terms[seg]:
            if pairs[m] is None:
                continue
            bank = self.dbanks[m]
            if bank.k < _MIN_D_SAMPLES:
                continue  # (a pair just formed: its noise is not known yet)
            w = nd if bank.k >= nd else bank.k
            a = abs(bank.slope(w))
            sd_d = bank.sigma() * slope_sd_factor(w, bank.f)
            if a <= sd_d:
                continue
            k = self._pair_gain(scale, P[mp], m)
            if a > zs * sd_d and k * a > dead:
                hi = slope + k * a
                # (A gain is implausible only beyond the noise of both slopes.)
                gain_limit = dead + zs * math.sqrt(sd * sd + k * k * sd_d * sd_d)
                cand = hi if hi <= gain_limit else slope - k * a
                if best is None or cand > best:
                    best = cand
            elif k * (a - sd_d) > doubt:
                doubt = k * (a - sd_d)
        return best if best is not None else slope + doubt

    def _pair_gain(self, scale: float, pressure: float, m: int) -> float:
        """k of module ``m``'s thermometer pair, Pa per K: how far the segment's inventory moves
        per kelvin of the pair's difference d when one channel is left out,
        ``(T_ref / V_seg) P V_m / (2 T^2)`` with ``scale`` = T_ref / V_seg."""
        tm = self.thermo.temperature[m]
        return scale * pressure * self.volume[m] / (2.0 * tm * tm)

    def _update_diverging(self) -> None:
        """Modules whose thermometer pair certainly diverges over the last 10 minutes (at most),
        fast enough to move their segment's inventory by more than its dead band: their
        segments' windows are judged on every evaluation, not only when Y's own evidence passes
        the suspect threshold (a cold-drifting thermometer can hide a leak)."""
        mask = 0
        zs = self.z_suspect
        n_max = self._n_arbitrate // self.thermo.block_n
        P = self.sensors.pressure
        seg_of = self.topology.seg_of
        for m, pr in enumerate(self._dpair):
            if pr is None:
                continue
            bank = self.dbanks[m]
            w = bank.k if bank.k < n_max else n_max
            if w < _MIN_D_SAMPLES:
                continue
            a = abs(bank.slope(w))
            s = seg_of[m]
            k = self._pair_gain(self.seg_scale[s], P[m], m)
            if a > zs * bank.sigma() * slope_sd_factor(w, bank.f) and k * a > self.slot_dead[self.seg_slot[s]]:
                mask |= 1 << m
        self._div_mask = mask

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
            for bank in self.dbanks:
                bank.reset(0.0)
        p_health = self.sensors.health
        for m in range(self.n_modules):
            # Unobservable once every pressure sensor has *failed* (a sample or two missing, a
            # link outage, the start-up before the first frame, only hold the last vote).
            obs = any(p_health[c] == _SENSOR_OK for c in self._p_groups[m])
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
            pr = thermo.pair[m]
            if pr != self._dpair[m]:
                self._dpair[m] = pr
                self.dbanks[m].reset(0.0)
                retemp = True
            if thermo.n_trusted[m] != self._t_trusted[m]:
                # A thermometer was failed (the segment's history holds what it did, a drift
                # read as gas lost or gained, which the doubt no longer offsets) or came back
                # (its bias is re-taken from noisy samples; a step of a few millikelvin in a
                # large module is a step of a Pa in the inventory): start afresh.
                touched |= 1 << m
            self._t_trusted[m] = thermo.n_trusted[m]
            estimated = thermo.n_trusted[m] == 0 and bool(thermo.groups[m])
            if estimated != (m in self._t_estimated):
                retemp = True
                if estimated:
                    ref = self._mates_temperature(m)
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
                    self._reset_slot(self.seg_slot[s], t, hold)

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

    def _arbitrate_temperatures(self, t: float) -> None:
        """A module's two thermometers disagree: fail the one whose exclusion leaves the
        segment's inventory flatter. Under a single fault with no leak, the liar is the one
        that makes gas appear or vanish. Not while the segment is suspected, leaking or being
        isolated (a leak would bias the choice); the doubt term keeps the test honest
        meanwhile."""
        thermo = self.thermo
        P = self.sensors.pressure
        n_max = self._n_arbitrate
        for m in range(self.n_modules):
            if not thermo.disagreeing(m):
                continue
            s = self.topology.seg_of[m]
            slot = self.seg_slot[s]
            if self.state[slot] != _NOMINAL or self.isolator.busy or self.seg_blind[s]:
                continue
            bank = self.banks[slot]
            db = self.dbanks[m]
            blk = thermo.block_n
            n = min(bank.k, db.k * blk, n_max) // blk
            if n * blk < self._n_arbitrate_min:
                continue
            pr = thermo.pair[m]
            if pr is None:
                continue
            k = self._pair_gain(self.seg_scale[s], P[m], m)
            s_y = bank.slope(n * blk)
            s_d = db.slope(n)
            only_second = s_y + k * s_d  # pr[0] left out
            only_first = s_y - k * s_d  # pr[1] left out
            sd = math.sqrt((bank.sigma() * slope_sd_factor(n * blk, self.plan.rate_hz)) ** 2
                           + (k * db.sigma() * slope_sd_factor(n, db.f)) ** 2)
            gain = self.slot_dead[slot] + self.z_suspect * sd
            if only_second > gain >= only_first:
                bad = pr[1]  # with pr[1] alone gas would appear: pr[1] lies
            elif only_first > gain >= only_second:
                bad = pr[0]
            else:
                bad = pr[0] if abs(only_second) < abs(only_first) else pr[1]
            thermo.fail(bad, t, _FAILED_DISAGREE, thermo.last(bad))

    def _rebuild_terms(self) -> None:
        """Inventory terms and dead band of every segment, from the topology, observability and
        temperature trust (see :meth:`_segment_dead_band`)."""
        topo = self.topology
        vol = self.volume
        seg_vol = [sum(vol[m] for m in members) for members in topo.members]
        main = max(range(topo.n_segments), key=lambda s: seg_vol[s]) if topo.n_segments else -1
        for s, members in enumerate(topo.members):
            obs = [m for m in members if self.observable[m]]
            self.seg_blind[s] = not obs
            rep = max(obs, key=lambda m: vol[m]) if obs else -1
            self._seg_terms[s] = tuple(
                (m if self.observable[m] or rep < 0 else rep, m, vol[m]) for m in members)
            # After a seal the oxygen generator may be sealed away or cut off (FDIR does not know
            # where it is): every open segment may then lose its crew's oxygen use.
            crew = bool(topo.masks[s] & ~self.sealed_mask) and (
                self.sealed_mask != 0 or (s != main and bool(topo.masks[s] & self.crew_mask)))
            self.slot_dead[self.seg_slot[s]] = self._segment_dead_band(members, crew)

    def _segment_dead_band(self, members: list[int], crew: bool) -> float:
        """Dead band of a segment's leak test, Pa/s: the table's; plus ``split_allowance_kg_s``
        for a segment that may hold crew away from the oxygen generator (any open segment once
        something is sealed; before that, a segment apart from the main one, the largest, on
        either side of a hatch the crew moved): their oxygen use is a real loss there, not a
        leak; plus, for each module whose
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

    # -- leak state machine -----------------------------------------------------------------

    def _rate_kg_s(self, slot: int, slope_pa_s: float) -> float:
        return -slope_pa_s * self.slot_volume[slot] / (self.r_gas * self.t_ref)

    def segment_subject(self, slot: int) -> str:
        """The event subject naming a slot's segment: a module name, ``station`` or
        ``seg:0x<mask>`` (:func:`.topology.segment_label`)."""
        return segment_label(self.slot_mask[slot], self.module_names)

    def mask_subject(self, mask: int) -> str:
        """The event subject naming the module set ``mask``."""
        return segment_label(mask, self.module_names)

    def _quiet(self, slot: int) -> bool:
        """Events of this segment are suppressed: it is the sealed leak, or isolation owns it."""
        mask = self.slot_mask[slot]
        if self.sealed_mask and mask & ~self.sealed_mask == 0:
            return True
        return self.isolator.owns(mask) or self.locator.owns(mask)

    def _leak_transition(self, slot: int, seg: int, new: int, slope: float, z: float, t: float) -> None:
        old = self.state[slot]
        ok, event = check(LEAK_TRANSITIONS, old, new)
        if not ok:
            self.transition_errors += 1
            return
        self.state[slot] = new
        rate = self._rate_kg_s(slot, slope)
        if new != _NOMINAL:
            self.rate[slot] = rate
        else:
            self.zbest[slot] = 0.0
        if self._quiet(slot):
            return
        if event is not None:
            self.events.push(t, event, self.segment_subject(slot), rate, z, self.slot_volume[slot])
        if new == _CONFIRMED and self.mode == FdirMode.ACTIVE:
            self.isolator.request(slot, rate, t)

    def _rapid(self, slot: int, seg: int, slope: float, y: float, t: float) -> None:
        """Rapid depressurisation: its own alarm (once per segment test), and a confirmed leak."""
        self.rapid_raised[slot] = True
        # Raised even while isolation works on the segment (crew action), not for the sealed leak.
        mask = self.slot_mask[slot]
        if not (self.sealed_mask and mask & ~self.sealed_mask == 0):
            self.events.push(t, EventId.RAPID_DEPRESS, self.segment_subject(slot), slope, self.rapid, y)
        self.t_above[slot] = t
        if self.state[slot] != _CONFIRMED:
            self._leak_transition(slot, seg, _CONFIRMED, slope, 0.0, t)

    # -- segments ---------------------------------------------------------------------------

    def _reset_slot(self, slot: int, t: float, hold_s: float) -> None:
        self.hold_until[slot] = t + hold_s
        self.pending_reset[slot] = True
        self.rapid_raised[slot] = False
        self.slow.reset(slot)

    def _reset_all(self, t: float, hold_s: float) -> None:
        for slot in range(self.n_modules):
            self._reset_slot(slot, t, hold_s)

    def _remap(self, t: float) -> None:
        """Segments changed: keep the slots of unchanged segments, give new ones fresh slots."""
        topo = self.topology
        old = {self.slot_mask[s]: s for s in range(self.n_modules) if self.slot_used[s]}
        keep: dict[int, int] = {}
        for seg, mask in enumerate(topo.masks):
            if mask in old:
                keep[seg] = old.pop(mask)
        free = [s for s in range(self.n_modules) if s not in keep.values()]
        for slot in free:
            self.slot_used[slot] = False
        hold = self.params.leak.transient_mask_s
        for seg, mask in enumerate(topo.masks):
            members = topo.members[seg]
            vol = sum(self.volume[m] for m in members)
            self.seg_scale[seg] = self.t_ref / vol
            if seg in keep:
                slot = keep[seg]
            else:
                slot = free.pop(0)
                self.slot_used[slot] = True
                self.slot_mask[slot] = mask
                self.slot_members[slot] = list(members)
                self.slot_volume[slot] = vol
                self.state[slot] = _NOMINAL
                self.zbest[slot] = 0.0
                self.rate[slot] = 0.0
                self._reset_slot(slot, t, hold if self.cycle > 1 else self.params.leak.warmup_s)
            self.seg_slot[seg] = slot
        self._rebuild_terms()
        self.isolator.segments_changed(t)
        self.locator.segments_changed(t)

    def _link_change(self, up: bool, t: float) -> None:
        self.link_up = up
        if up:
            self.events.push(t, EventId.LINK_RESTORED, "device", 0.0, t - self.link_down_since, 0.0)
            self._reset_all(t, self.params.leak.warmup_s)
        else:
            self.link_down_since = t
            self.events.push(t, EventId.LINK_LOST, "device", 0.0, 0.0, 0.0)

    # -- reporting (housekeeping rate, not per cycle) ----------------------------------------

    def slot_of_module(self, m: int) -> int:
        return self.seg_slot[self.topology.seg_of[m]]

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
        return self.sensors.pressure[m] * self.volume[m] / (R_UNIVERSAL * self.thermo.temperature[m])

    def sensors_failed(self) -> int:
        """Failed channels, pressure and temperature."""
        health = self.sensors.health
        thealth = self.thermo.health
        return len(health) - health.count(_SENSOR_OK) + len(thealth) - thealth.count(_SENSOR_OK)

    def valve_health(self, i: int) -> int:
        return int(self.valves.health[i])

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

    def valve_failed(self, i: int) -> bool:
        return self.valves.health[i] == ValveHealth.FAILED

