"""FDIR stage 1b: gas temperature channels, managed like the pressure channels.

A module's gas temperature turns its pressure into an inventory (n = PV/RT), so a thermometer
that lies looks exactly like gas lost or gained: 1 K is about 340 Pa, and a thermistor drifting
0.36 K/h in a 726 m3 module reads like a 4 kg/day leak. Every temperature channel is therefore
checked on its own and against its partner, and a module whose temperature cannot be trusted is
*estimated*, with an uncertainty that the leak test adds to its dead band: an untrusted
measurement makes the test less sensitive; it is never evidence of a leak.

Per channel (``SensorHealth`` codes, SENSOR_FAILED / SENSOR_RECOVERED events with the channel id):

- FAILED_RANGE: outside the channel's valid range and the table's plausible range for
  ``range_fail_s``;
- FAILED_STALE: status not OK (or its timestamp not advancing) for ``stale_fail_s``;
- FAILED_STUCK: reading unchanged within ``temperature_stuck_tolerance_k`` for
  ``temperature_stuck_fail_s``;
- FAILED_RATE: the reading changed by more than ``temperature_rate_max_k_s`` x
  ``temperature_rate_window_s`` within that window. Gas has thermal inertia (an orbital swing of
  0.5 K changes at most ~6e-4 K/s), so a step, a spike or a noise burst is the sensor, never the gas;
- FAILED_DISAGREE: the two channels of a module differ (after their learned biases) by more than
  ``temperature_disagree_k``, and the FDIR's arbitration (:meth:`Fdir` compares the segment's
  inventory computed with each channel alone: the liar is the one whose exclusion leaves the
  inventory flat) names this one.

Unit biases are learned over the first ``bias_learn_s`` (each channel's offset from its module's
mean, zero mean per module), as for pressure, so dropping one channel of a pair moves the
module's temperature by noise, not by the bias difference.

Outputs (lists in layout module order, valid after each :meth:`step`):

- ``temperature``: mean of the module's healthy channels (bias-corrected), K; held when none;
- ``n_trusted``: healthy channels voting (0: the module's temperature is estimated by the FDIR);
- ``pair``: for a module with exactly two healthy channels, their indices (else None), so the
  FDIR can carry the pair's disagreement into the leak test (``diff`` holds t1 - t2, K).

Embedded style: sized at construction; the per-cycle path allocates nothing and never raises.
"""

from __future__ import annotations

from operator import add, le

from ...hal.interfaces import Frame, Layout
from ..types import EventId, SensorHealth
from .events import EventQueue
from .params import FdirParams

_OK = int(SensorHealth.OK)
_RANGE = int(SensorHealth.FAILED_RANGE)
_STALE = int(SensorHealth.FAILED_STALE)
_STUCK = int(SensorHealth.FAILED_STUCK)
_RATE = int(SensorHealth.FAILED_RATE)
_DISAGREE = int(SensorHealth.FAILED_DISAGREE)


def vote_rows(channels: list[int], bias: list[float]) -> tuple[int, int, float] | tuple[tuple[int, ...], float] | None:
    """The voting row of a module whose usable channels are ``channels``: ``(i, j, mean bias)``
    for one or two channels (one: ``i == j``), ``(channels, mean bias)`` for more, None for none.
    :func:`vote` turns rows into temperatures."""
    if not channels:
        return None
    if len(channels) <= 2:
        i, j = channels[0], channels[-1]
        return (i, j, 0.5 * (bias[i] + bias[j]))
    return (tuple(channels), sum(bias[c] for c in channels) / len(channels))


def vote(tv: list[float], rows: list[tuple[int, int, int, float]],
         rows_n: list[tuple[int, tuple[int, ...], float]], out: list[float]) -> None:
    """The temperature vote, the one implementation of it: each module's temperature is the
    mean of its usable channels' readings less their mean learned bias, K. ``rows`` hold
    ``(module, i, j, mean bias)`` for one or two channels (``(x + x) * 0.5`` is ``x`` exactly, and
    ``(a + b) * 0.5`` is the mean of two), ``rows_n`` ``(module, channels, mean bias)`` for more.
    Modules without a row keep their value. Used by the usual cycle with the healthy channels'
    rows (made when the set changes) and by a cycle with stale, out-of-range or jumping
    readings with the rows of that cycle's usable channels."""
    for m, i, j, off in rows:
        out[m] = (tv[i] + tv[j]) * 0.5 - off
    for m, chans, off in rows_n:
        out[m] = sum(tv[c] for c in chans) / len(chans) - off


class TemperatureStage:
    """Checks, votes and fails gas temperature channels. See the module docstring."""

    def __init__(self, layout: Layout, params: FdirParams, events: EventQueue) -> None:
        self.layout = layout
        self.events = events
        names = [m.name for m in layout.modules]
        self.ids = [c.id for c in layout.temperature]
        self.module_of = [layout.module_index(c.module) for c in layout.temperature]
        self.groups: list[tuple[int, ...]] = [
            tuple(i for i, c in enumerate(layout.temperature) if c.module == name) for name in names]
        nt = len(layout.temperature)
        nm = len(names)
        self.health = [_OK] * nt
        self.bias = [0.0] * nt
        self.range_cnt = [0] * nt
        self.stale_cnt = [0] * nt
        self.stuck_ref = [0.0] * nt
        self.stuck_since = [0.0] * nt
        self.clean_since = [0.0] * nt
        self.learn_sum = [0.0] * nt
        self.learn_n = [0] * nt
        self.learning = True
        self.learn_until: float | None = None
        self.temperature = [295.0] * nm
        self.n_trusted = [len(g) for g in self.groups]
        self.pair: list[tuple[int, int] | None] = [g if len(g) == 2 else None for g in self.groups]
        self.diff = [0.0] * nm
        self.failures = 0
        self.recoveries = 0
        self.changed = 0  #: incremented whenever a module's set of trusted channels changes
        self.set_params(params)

    def set_params(self, params: FdirParams) -> None:
        s = params.sensors
        dt = params.executive.period_s
        self.dt = dt
        self.p = s
        self.lo = [max(c.valid_min, s.temperature_min_k) for c in self.layout.temperature]
        self.hi = [min(c.valid_max, s.temperature_max_k) for c in self.layout.temperature]
        nt = len(self.layout.temperature)
        # Readings are averaged over blocks of one housekeeping period (gas temperature cannot
        # change meaningfully faster, and a 1 s mean is three times less noisy than a sample);
        # every check below runs on those means, once per block.
        self.block_n = max(1, round(params.executive.housekeeping_period_s / dt))
        self.block_s = self.block_n * dt
        self.range_n = max(1, round(s.range_fail_s / dt))
        self.stale_n = max(1, round(s.stale_fail_s / dt))
        # Each reading is compared with its channel's mean over the last block (0.5 .. 1.5
        # blocks old): a larger change than the gas can make in the rate window is the sensor.
        self.jump = s.temperature_rate_max_k_s * max(s.temperature_rate_window_s, 1.5 * self.block_s)
        self._acc = [0.0] * nt
        self._cnt = [0] * nt  # fresh samples of each channel this block, beyond _all
        self._all = 0  # cycles this block in which every channel was fresh
        self._k = 0
        self._zero = [0] * nt
        self._zero_f = [0.0] * nt
        self.mean = [float("nan")] * nt  #: each channel's mean over the last block, K (NaN: none fresh)
        self._ref = [float("nan")] * nt  # each channel's last block mean (NaN: none yet)
        # Seconds of whole blocks without a fresh reading since each reference was taken (a
        # dropout, a lost link): gas may have moved rate x gap meanwhile, so the band widens by
        # that much until the channel's next block mean (0 on the usual cycle).
        self._gap = [0.0] * nt
        # The rate rule as a band per channel, rounded once per reference: a reading outside
        # [ref - jump, ref + jump] moved faster than gas can. With the valid range, the band a
        # reading of the usual cycle must fall in: [max(lo, ref - jump), min(hi, ref + jump)].
        self._rebuild_bands()
        self._ref_ok = False  # every reference is known (the fast path may compare with them)
        self._dirty = False  # some stale or range counter may be non-zero
        self._use = [False] * nt
        self._rebuild_rows()

    # -- transitions ------------------------------------------------------------------------

    def fail(self, i: int, t: float, how: int, value: float) -> None:
        """Fail channel ``i`` (a ``SensorHealth`` code) with a SENSOR_FAILED event."""
        if self.health[i] != _OK:
            return
        m = self.module_of[i]
        pr = self.pair[m]
        if pr is not None:
            # Bumpless: the partner left alone takes over at the module's temperature of a
            # moment ago (its bias absorbs their difference), so the inventory does not step
            # and no leak test has to restart. (diff: the last block's, before a step.)
            j = pr[1] if pr[0] == i else pr[0]
            half = 0.5 * self.diff[m]
            self.bias[j] += -half if j == pr[1] else half
        self.health[i] = how
        self.clean_since[i] = t
        self.failures += 1
        self._regroup(m)
        self.events.push(t, EventId.SENSOR_FAILED, self.ids[i], float(how), value, self.bias[i])

    def _recover(self, i: int, t: float, value: float) -> None:
        old = self.health[i]
        # Bumpless: the channel comes back reading the module's current temperature (its bias
        # is taken afresh), so the module's temperature and the inventory do not step.
        self.bias[i] = value - self.temperature[self.module_of[i]]
        self.health[i] = _OK
        self.range_cnt[i] = 0
        self.stale_cnt[i] = 0
        self.stuck_ref[i] = value
        self.stuck_since[i] = t
        self.recoveries += 1
        self._regroup(self.module_of[i])
        self.events.push(t, EventId.SENSOR_RECOVERED, self.ids[i], float(old), value, 0.0)

    def _regroup(self, m: int) -> None:
        ok = tuple(i for i in self.groups[m] if self.health[i] == _OK)
        self.n_trusted[m] = len(ok)
        self.pair[m] = ok if len(ok) == 2 else None
        self._rebuild_rows()
        self.changed += 1

    # -- per cycle --------------------------------------------------------------------------

    def step(self, frame: Frame, t: float, manage: bool) -> bool:
        """Check and vote this cycle's readings; at the end of each block (one housekeeping
        period) update the block means, the pair differences and the bias learning.
        ``manage`` False (mode OFF, link down) only votes: no channel is failed or recovered.
        Returns True when a block ended."""
        tv = frame.temperature
        ts = frame.temperature_status
        out = self.temperature
        if (self._ref_ok and ts == self._zero and all(map(le, self._ok_lo, tv))
                and all(map(le, tv, self._ok_hi))):
            # The usual cycle: every reading fresh, in range, and none moved faster than gas
            # (the per-channel checks of _slow_cycle, at once; a NaN fails the comparisons).
            if self._dirty:
                # (Counters are consecutive counts: a clean cycle ends them.)
                self.stale_cnt[:] = self._zero
                self.range_cnt[:] = self._zero
                self._dirty = False
            self._acc = list(map(add, self._acc, tv))
            self._all += 1
            vote(tv, self._rows, self._rows_n, out)
        else:
            self._slow_cycle(tv, ts, t, manage)
        self._k += 1
        if self._k < self.block_n:
            return False
        self._end_block(t, manage)
        return True

    def _slow_cycle(self, tv: list[float], ts: list[int], t: float, manage: bool) -> None:
        health = self.health
        lo = self.lo
        hi = self.hi
        ref = self._ref
        jlo = self._jlo
        jhi = self._jhi
        acc = self._acc
        cnt = self._cnt
        use = self._use
        self._dirty = True
        for i, v in enumerate(tv):
            use[i] = False
            if ts[i]:
                if manage and health[i] == _OK:
                    self.stale_cnt[i] += 1
                    if self.stale_cnt[i] >= self.stale_n:
                        self.fail(i, t, _STALE, v)
                continue
            self.stale_cnt[i] = 0
            if not lo[i] <= v <= hi[i]:  # (also catches NaN)
                if manage and health[i] == _OK:
                    self.range_cnt[i] += 1
                    if self.range_cnt[i] >= self.range_n:
                        self.fail(i, t, _RANGE, v)
                else:
                    self.clean_since[i] = t
                continue
            self.range_cnt[i] = 0
            acc[i] += v
            cnt[i] += 1
            r = ref[i]
            if r != r:
                # the channel's first fresh reading: the reference for the next ones (rare)
                ref[i] = v
                self._rebuild_bands()
                jlo = self._jlo
                jhi = self._jhi
            elif not jlo[i] <= v <= jhi[i]:
                if manage and health[i] == _OK:
                    self.fail(i, t, _RATE, v)
                else:
                    self.clean_since[i] = t  # still jumping: not clean enough to recover
                continue
            use[i] = health[i] == _OK
        rows, rows_n = self._make_rows(use)
        vote(tv, rows, rows_n, self.temperature)

    def _end_block(self, t: float, manage: bool) -> None:
        acc = self._acc
        cnt = self._cnt
        n_all = self._all
        mean = self.mean
        ref = self._ref
        gap = self._gap
        for i, a in enumerate(acc):
            n = n_all + cnt[i]
            if n:
                mean[i] = ref[i] = a / n
                gap[i] = 0.0
            else:
                mean[i] = float("nan")
                gap[i] += self.block_s
        self._ref_ok = sum(ref) == sum(ref)
        self._rebuild_bands()
        self._acc = self._zero_f[:]
        cnt[:] = self._zero
        self._all = 0
        self._k = 0
        bias = self.bias
        diff = self.diff
        for m, pr in enumerate(self.pair):
            if pr is not None:
                i, j = pr
                diff[m] = (mean[i] - bias[i]) - (mean[j] - bias[j])
        if manage and self.learning:
            self._learn(t)

    def _rebuild_bands(self) -> None:
        """Each channel's rate band from its reference (K), widened by what gas can move in the
        blocks the channel had no fresh reading (``_gap``), and the usual cycle's band with the
        valid range. A channel with no reference yet (NaN) has a NaN band, which no reading is
        inside; the usual cycle is not taken until every reference is known."""
        jump = self.jump
        rate = self.p.temperature_rate_max_k_s
        self._jlo = [r - jump - rate * g for r, g in zip(self._ref, self._gap)]
        self._jhi = [r + jump + rate * g for r, g in zip(self._ref, self._gap)]
        self._ok_lo = list(map(max, self.lo, self._jlo))
        self._ok_hi = list(map(min, self.hi, self._jhi))

    def _rebuild_rows(self) -> None:
        """The usual cycle's voting rows (:func:`vote`), from the healthy channels."""
        self._rows, self._rows_n = self._make_rows([h == _OK for h in self.health])

    def _make_rows(self, usable: list[bool]) -> tuple[list[tuple[int, int, int, float]],
                                                      list[tuple[int, tuple[int, ...], float]]]:
        """Voting rows of the channels flagged ``usable`` (see :func:`vote_rows`)."""
        rows: list[tuple[int, int, int, float]] = []
        rows_n: list[tuple[int, tuple[int, ...], float]] = []
        for m, g in enumerate(self.groups):
            row = vote_rows([i for i in g if usable[i]], self.bias)
            if row is None:
                continue
            if len(row) == 3:
                rows.append((m, *row))  # type: ignore[arg-type]
            else:
                rows_n.append((m, *row))  # type: ignore[arg-type]
        return rows, rows_n

    def slow_checks(self, frame: Frame, t: float) -> None:
        """Stuck channels and recoveries (housekeeping rate, on the latest samples)."""
        s = self.p
        tv = frame.temperature
        ts = frame.temperature_status
        tol = s.temperature_stuck_tolerance_k
        ref = self.stuck_ref
        since = self.stuck_since
        for i, h in enumerate(self.health):
            if ts[i]:
                if h != _OK:
                    self.clean_since[i] = t
                continue
            v = tv[i]
            if abs(v - ref[i]) > tol:
                ref[i] = v
                since[i] = t
            elif h == _OK and t - since[i] >= s.temperature_stuck_fail_s:
                self.fail(i, t, _STUCK, v)
                continue
            if h != _OK:
                self._maybe_recover(i, v, t)

    def _maybe_recover(self, i: int, v: float, t: float) -> None:
        """A failed channel that has read plausibly for ``recover_s`` (in range, not stuck, no
        faster than gas can change, and within ``temperature_disagree_k`` of a healthy partner if
        it has one) is recovered."""
        s = self.p
        ok = self.lo[i] <= v <= self.hi[i] and t - self.stuck_since[i] < s.temperature_stuck_fail_s
        if ok:
            m = self.module_of[i]
            partners = [j for j in self.groups[m] if j != i and self.health[j] == _OK]
            if partners:
                # (A third of the disagreement threshold: a channel failed for drifting starts
                # half its drift away from the bumpless module temperature, and must not creep
                # back in while it keeps drifting.)
                ok = abs((v - self.bias[i]) - self.temperature[m]) <= s.temperature_disagree_k / 3.0
        if not ok:
            self.clean_since[i] = t
        elif t - self.clean_since[i] >= s.recover_s:
            mean = self.mean[i]
            self._recover(i, t, mean if mean == mean else v)

    def last(self, i: int) -> float:
        """Channel ``i``'s mean over the last block, K (NaN if it had no fresh sample)."""
        return self.mean[i]

    def disagreeing(self, m: int) -> bool:
        """True when module ``m``'s two healthy channels differ by more than the threshold."""
        return self.pair[m] is not None and abs(self.diff[m]) > self.p.temperature_disagree_k

    def _learn(self, t: float) -> None:
        """Accumulate each channel's offset from its module's mean (block means); at the end of
        the learning time, take the averages as the unit biases (zero mean per module)."""
        if self.learn_until is None:
            self.learn_until = t + self.p.bias_learn_s
        mean = self.mean
        if t < self.learn_until:
            for g in self.groups:
                if len(g) < 2 or any(not self.lo[i] <= mean[i] <= self.hi[i] for i in g):
                    continue
                mm = sum(mean[i] for i in g) / len(g)
                for i in g:
                    self.learn_sum[i] += mean[i] - mm
                    self.learn_n[i] += 1
            return
        self.learning = False
        for g in self.groups:
            if len(g) < 2 or any(not self.learn_n[i] for i in g):
                continue
            for i in g:
                self.bias[i] = self.learn_sum[i] / self.learn_n[i]
        self._rebuild_rows()
        self.changed += 1
