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

from typing import Callable

from ...hal.interfaces import Frame, Layout, ValveKind
from ..types import EventId, FdirMode
from .events import EventQueue
from .estimate import Estimator
from .booking import RepressBooking
from .isolation import Isolator
from .leak import WindowPlan, thresholds
from .locate import SlowLocator
from .machines import LEAK_TRANSITIONS, LeakState, check
from .outage import LinkOutage
from .inventory import InventoryTerms
from .pairs import PairEvidence, PressurePairEvidence
from .params import FdirParams, describe
from .physics import choked_mass_flux_factor, hole_diameter_m, reserve_time_s
from .report import R_UNIVERSAL, FdirReport
from .sensors import SensorStage
from .single_fault import SingleFaultChecks
from .slowleak import SlowLeakDetector
from .thermo import TemperatureStage
from .topology import Topology, segment_label
from .valves import ValveMonitor

__all__ = ["Fdir", "R_UNIVERSAL", "choked_mass_flux_factor", "hole_diameter_m", "reserve_time_s"]

_NOMINAL = int(LeakState.NOMINAL)
_SUSPECTED = int(LeakState.SUSPECTED)
_CONFIRMED = int(LeakState.CONFIRMED)
_OFF = int(FdirMode.OFF)
_ACTIVE = int(FdirMode.ACTIVE)


class Fdir(InventoryTerms, LinkOutage, SingleFaultChecks, FdirReport):
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
        # Measured repress gas (fdir/booking.py); added_kg is its per-module total, kg.
        self.booking = RepressBooking(layout)  # (its history sized by _install)
        self.added_kg = self.booking.added_kg
        self.cycle = 0
        self.errors = 0  # incremented by the executive when a step raised
        self.transition_errors = 0
        self.link_up = True
        self.link_down_since = 0.0
        self._missed = 0  # cycles stepped while the link was down
        self._bridge = 0  # cycles the next _detect bridges in every bank (a short outage ended)
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
        self._split_mask = 0  # failed valves taken as closed by the pressures on their sides
        self._dp_ref = [float("nan")] * len(layout.valves)  # their sides' difference while open, Pa
        self._p_single = [False] * self.n_modules  # modules with one healthy pressure sensor
        self._p_disagree = [False] * self.n_modules  # each module's SensorStage.disagree2, as last seen
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
        self.booking.resize(self.plan.max_n)  # (the slow test sizes its coarse history)
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
        #: per slot: the bank's sample count at the end of the last bridged outage (0: none since
        #: its reset); the rapid test waits until its window lies past it
        self.rapid_k0 = [0] * n
        self.rate = [0.0] * n  # kg/s, estimate at the last transition
        self.zbest = [0.0] * n
        self.seg_slot: list[int] = list(range(n))
        self._report_rates: list[float | None] = [None] * n
        self.seg_scale = [0.0] * n  # T_ref / V_seg
        self.slot_dead = [self.dead_band] * n  # per slot: dead band, Pa/s (see _segment_dead_band)
        self.seg_blind = [False] * n  # per segment: no observable module (tests skipped)
        # Per module: its thermometer pair's difference, so the leak test can ask what the
        # inventory would do with either channel alone (fdir/pairs.py; at the thermometers'
        # block rate: one sample per housekeeping period).
        blk = self.thermo.block_n
        self.pairs = PairEvidence(n, self.plan.max_n // blk, 1.0 / (blk * self.dt), params.leak.noise_tau_s,
                                  self.volume)
        # The same for a module with exactly two voting pressure sensors (their mean is its
        # pressure: one drifting sensor moves it by half its drift).
        self.ppairs = PressurePairEvidence(n, self.plan.max_n // blk, 1.0 / (blk * self.dt),
                                           params.leak.noise_tau_s, self.volume)
        self._seg_scale_m = [0.0] * n  # per module: its segment's T_ref / V_seg (arbitration)
        self._seg_dead_m = [0.0] * n  # per module: its segment's dead band, Pa/s
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
        # ... which step() otherwise asks for only when the feedback differs from the last
        # frame's: the fresh slots would stay unmapped (zero scale, no test) until a valve moved,
        # and for ever on a station without valves (its feedback, [], never differs).
        self._fb_prev = [-1.0] * len(self.layout.valves)
        self._remap_due = True

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
            self._missed += 1
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
                self._pressure_split()
        if self._bias_learning and not sensors.learning and not thermo.learning:
            self._bias_learning = False
            self.ppairs.restart()  # (the pairs' differences stepped by the learned biases)
            self._reset_all(t, self.params.leak.warmup_s)
        fb = frame.valve_fb
        if fb != self._fb_prev or self._remap_due:
            self._remap_due = False
            self._fb_prev[:] = fb
            split = self._split_mask  # failed valves the pressures show closed (single_fault.py)
            if self.topology.update([0.0 if split >> i & 1 else x for i, x in enumerate(fb)] if split else fb):
                self._remap(t)
        if sensors.changed != self._seen_p_changes or thermo.changed != self._seen_t_changes:
            self._sensors_changed(t)
        if self._t_estimated:
            # Every cycle: the mates' noise then enters the inventory as white noise, which the
            # test's noise estimate sees. (Once per block it was a step a second, invisible to
            # that estimate and read as slopes: false leaks of 100 kg/day in a 69 m3 station.)
            self._estimate_temperatures()
        if block:
            self.pairs.push(thermo.diff)
            self._pressure_pairs_block()
            self.slow.block()  # slow test: thermometer pair differences (fdir/slowleak.py)
        if self.booking.modules:
            self.booking.book(frame, fb, self.topology.open_threshold, self.dt)
        if not self._bias_learning:
            self._detect(t)
        if mode == _ACTIVE:
            isolator = self.isolator
            if isolator.busy:
                isolator.step(t)
                if not isolator.busy:
                    self._isolate_waiting(t)
        if self.cycle % self.slow_every == 0:  # slow leaks: schedule and estimates, at 1 Hz
            self.locator.step(t)
            self.estimator.step(t)
        valves = self.valves
        valves.step(frame, t)
        if valves.moved:
            self._valves_moved()

    # -- the isolation side's interface (fdir/port.py, SegmentHost) ---------------------------

    @property
    def pressure(self) -> list[float]:
        return self.sensors.pressure

    @property
    def temperature(self) -> list[float]:
        return self.thermo.temperature

    @property
    def generator_module(self) -> int:
        return self.slow.generator

    @property
    def isolating(self) -> bool:
        return self.isolator.busy

    def valve_open(self, i: int) -> bool:
        return self._fb_prev[i] > self.params.valves.open_threshold

    def valve_settled(self, i: int) -> bool:
        return self.valves.settled(i)

    def restart_segment(self, slot: int, t: float, hold_s: float) -> None:
        self.hold_until[slot] = t + hold_s
        self.pending_reset[slot] = True
        self.rapid_raised[slot] = False
        self.rapid_k0[slot] = 0
        self.slow.reset(slot)

    def thermometer_doubt(self, slot: int, window_s: float) -> float:
        return self.slow.doubt(slot, max(2, int(window_s / self.params.slowleak.decimation_s)))

    def seal(self, mask: int, t: float) -> None:
        self.sealed_mask |= mask
        self._rebuild_terms()  # (the sealed set changed: dead bands too)
        self.estimator.start(mask, t)

    def cut_off(self, mask: int) -> None:
        self.crew_mask |= mask
        self._rebuild_terms()

    def transition_error(self) -> None:
        self.transition_errors += 1

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
        # Everything the loop reads on every cycle is bound to a local first: this runs every
        # cycle for every segment (what only evidence of a leak reads is looked up there). None
        # of these bindings changes during the loop (transitions write into the lists in place;
        # segments and the sealed mask change only outside _detect).
        P = self.sensors.pressure
        T = self.thermo.temperature
        Q = self.added_kg
        rg = self.r_gas
        topo = self.topology
        blind = self.seg_blind
        slot_dead = self.slot_dead
        div = self.pairs.div_mask | self.ppairs.div_mask
        masks = topo.masks
        plan = self.plan
        n_rapid = plan.n_rapid
        n_warm = plan.n_warm
        scale_rapid = plan.scale_rapid
        scale = plan.scale
        schedule = plan.schedule
        period = plan.period
        ns = plan.n
        sdf = plan.sdf
        z_suspect = self.z_suspect
        rapid = self.rapid
        rapid_k0 = self.rapid_k0
        sealed = self.sealed_mask
        seg_slot = self.seg_slot
        seg_terms = self._seg_terms
        seg_scale = self.seg_scale
        hold_until = self.hold_until
        pending = self.pending_reset
        banks = self.banks
        state = self.state
        slow = self.slow
        decim = slow.decim
        bridge = self._bridge  # (set on a link's return, cleared after this loop)
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
            elif bridge and bank.k:
                self._bridge_gap(slot, bank, t)
            bank.push(y)
            k = bank.k
            if k % decim == 0:  # the slow test's decimated sample: the mean of the last decim
                slow.sample(slot, bank.mean(decim), t)
            sr = None
            # The rapid test runs every other sample: 0.1 s more latency at most, half the cost.
            if k - rapid_k0[slot] >= n_rapid and not k & 1:
                sr = bank.slope_scaled(n_rapid, scale_rapid)
                # The rate must also be significant: in a small module alone the short window's
                # noise alone can approach the threshold.
                # And two raw pressure sensors of one module must agree: a thermometer step or
                # one failing pressure sensor moves the inventory, never the gas.
                if sr <= -rapid and not self.rapid_raised[slot] and \
                        -sr >= z_suspect * bank.sigma() * plan.sdf_rapid and self._raw_rapid(s):
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
                    # Evidence: is it still there with the most doubtful sensor left out?
                    slope = self.judged_slope(s, n, slope, sd, dead_band)
                    z = (-slope - dead_band) / sd
                    if z < z_suspect:
                        continue
                    self.t_above[slot] = t
                    if z > self.zbest[slot]:
                        self.zbest[slot] = z
                    st = state[slot]
                    if z >= self.z_confirm:
                        if st != _CONFIRMED:
                            self._leak_transition(slot, s, _CONFIRMED, slope, z, t)
                    elif st == _NOMINAL:
                        self._leak_transition(slot, s, _SUSPECTED, slope, z, t)
            if state[slot] != _NOMINAL and t - self.t_above[slot] > self.params.leak.clear_s:
                self._leak_transition(slot, s, _NOMINAL, bank.slope(min(k, ns[-1])), 0.0, t)
        self._bridge = 0

    # -- leak state machine -----------------------------------------------------------------

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

    def _isolate_waiting(self, t: float) -> None:
        """An isolation just ended (sealed or failed). A leak confirmed meanwhile in a segment
        outside it was turned away (isolation owned the valves): the first such segment still
        confirmed is isolated now, within ``max_attempts``. (The segment the ended isolation
        investigated is not asked again here: sealed, it is quiet; failed, it is retried only
        when its test confirms anew.)"""
        done = self.isolator.req_mask
        for slot in range(self.n_modules):
            if self.slot_used[slot] and self.state[slot] == _CONFIRMED and \
                    not self.slot_mask[slot] & done and not self._quiet(slot):
                self.isolator.request(slot, self.rate[slot], t)
                return

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

    def _reset_all(self, t: float, hold_s: float) -> None:
        for slot in range(self.n_modules):
            self.restart_segment(slot, t, hold_s)

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
                self.restart_segment(slot, t, hold if self.cycle > 1 else self.params.leak.warmup_s)
            self.seg_slot[seg] = slot
        self._rebuild_terms()
        self.isolator.segments_changed(t)
        self.locator.segments_changed(t)
