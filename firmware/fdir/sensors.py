"""FDIR stage 1: sensor voting and sensor failure management.

Per module: mid-value select of the (bias-corrected) pressure sensors (gas temperature channels
are managed by :mod:`.thermo`). A pressure sensor is failed and left out of the vote, with a SENSOR_FAILED
event, when it is

- out of range (outside the channel's valid range and the table's plausible range) for
  ``range_fail_s``,
- stale (status not OK, or its timestamp not advancing) for ``stale_fail_s``,
- stuck (reading unchanged within ``stuck_tolerance_pa``) for ``stuck_fail_s``,
- disagreeing with the vote of the others by more than ``disagree_pa`` for a net
  ``disagree_fail_s`` (an up/down counter, so isolated spikes never fail a sensor),
- or, at the end of start-up bias learning, offset from the others by more than ``bias_max_pa``.

A failed sensor that looks healthy again for ``recover_s`` is recovered (SENSOR_RECOVERED).

Unit biases of +-50 Pa (BMP388/MS5611 class sensors) are larger than the noise by an order of magnitude, so during
the first ``bias_learn_s`` each sensor's offset from the module's mid value is learned and removed
(zero mean per module). Without that, the vote would jump by the bias difference whenever a sensor
drops out, which the leak test would read as gas lost or gained; and a drifting sensor could not
be told apart from a unit bias.

With two sensors left the vote is their mean and they are cross-checked (``disagree2`` flags a
module whose two sensors disagree: degraded, since nobody can tell which is right); with one left
the module is degraded; with none it has no data and holds its last vote.

Embedded style: every list is sized at construction; the per-cycle path allocates nothing and
never raises. A fast path handles the usual case (three healthy sensors, all in range, agreeing).
"""

from __future__ import annotations

from ...hal.interfaces import Frame, Layout
from ..types import EventId, SensorHealth
from .events import EventQueue
from .params import FdirParams

_OK = int(SensorHealth.OK)
_FAILED_STUCK = int(SensorHealth.FAILED_STUCK)
_FAILED_STALE = int(SensorHealth.FAILED_STALE)
#: failures that are a loss of the data (it stopped coming, or left the range), not a lie told in
#: it: a module with no voter left may take such a sensor back on its own (_recover_unvoted)
_DATA_LOSS = (_FAILED_STALE, int(SensorHealth.FAILED_RANGE))


def _median(values: list[float]) -> float:
    """The median of ``values`` (not empty): the middle one, or the mean of the middle two."""
    ordered = sorted(values)
    k = len(ordered)
    return ordered[k // 2] if k % 2 else 0.5 * (ordered[k // 2 - 1] + ordered[k // 2])


def sort3(a: float, b: float, c: float) -> tuple[float, float, float]:
    """The three readings in ascending order: the middle one is the mid-value vote. The one
    implementation of the vote, used by the fast and the checked paths alike."""
    if a > b:
        a, b = b, a
    if b > c:
        b, c = c, b
        if a > b:
            a, b = b, a
    return a, b, c


class SensorStage:
    """Votes pressure per module; fails and recovers pressure sensors.

    Outputs (lists in layout module order, valid after each :meth:`step`):
        pressure: voted pressure, Pa (held when no sensor is usable).
        n_voting: number of pressure sensors in the vote (0..3).
        disagree2: True when the module has two sensors left and they disagree (by more than
            ``disagree_pa``, until they agree within half of it).
        changed: incremented whenever a module's set of voting sensors changes.
    """

    def __init__(self, layout: Layout, params: FdirParams, events: EventQueue) -> None:
        self.events = events
        self.layout = layout
        nm = len(layout.modules)
        names = [m.name for m in layout.modules]
        self.p_ids = [c.id for c in layout.pressure]
        self.groups: list[tuple[int, ...]] = [
            tuple(i for i, c in enumerate(layout.pressure) if c.module == name) for name in names
        ]
        np_ = len(layout.pressure)
        self.health = [_OK] * np_
        self.bias = [0.0] * np_
        self.range_cnt = [0] * np_
        self.dis_cnt = [0] * np_
        self.stale_cnt = [0] * np_
        self.stuck_ref = [0.0] * np_
        self.stuck_since = [0.0] * np_
        self.clean_since = [0.0] * np_
        self.learn_sum = [0.0] * np_
        self.learn_n = [0] * np_
        self.learning = True
        self.learn_until: float | None = None
        self.pressure = [101325.0] * nm
        self.n_voting = [0] * nm
        self.disagree2 = [False] * nm
        #: per module: its two voting sensors when exactly two vote, else None (fdir/pairs.py)
        self.pair: list[tuple[int, int] | None] = [None] * nm
        #: per module: the pair's bias-corrected difference p1 - p2 over the last block, Pa
        self.diff = [0.0] * nm
        self._d_acc = [0.0] * nm
        self._d_n = [0] * nm
        self.module_ok = [False] * nm  # all of the module's sensors healthy (fast path allowed)
        self.beyond = [False] * nm  # most fresh readings beyond the range: pressure not measured
        self.dirty = [0] * nm  # some disagreement counter of the module is non-zero
        self.fast = [False] * nm  # module_ok and not dirty: the fast path may vote the module
        self.changed = 0
        self.failures = 0
        self.recoveries = 0
        self._scratch = [0.0] * max((len(g) for g in self.groups), default=0)
        self._scratch_i = [0] * len(self._scratch)
        self.set_params(params)
        for m, g in enumerate(self.groups):
            self.module_ok[m] = len(g) == 3
            # Every sensor starts healthy and voting: the fast path does not count voters, so a
            # module that never leaves it must not read as "no data" in housekeeping.
            self.n_voting[m] = len(g)
            self._refresh_fast(m)

    def set_params(self, params: FdirParams) -> None:
        s = params.sensors
        dt = params.executive.period_s
        self.dt = dt
        self.p = s
        self.lo = [max(c.valid_min, s.pressure_min_pa) for c in self.layout.pressure]
        self.hi = [min(c.valid_max, s.pressure_max_pa) for c in self.layout.pressure]
        # Fast-path range: the tightest range over the module's sensors (sensors share a range).
        self.mlo = [max((self.lo[i] for i in g), default=0.0) for g in self.groups]
        self.mhi = [min((self.hi[i] for i in g), default=0.0) for g in self.groups]
        self.range_n = max(1, round(s.range_fail_s / dt))
        self.stale_n = max(1, round(s.stale_fail_s / dt))
        self.dis_n = max(1, round(s.disagree_fail_s / dt))
        self.thr = s.disagree_pa
        # Per-cycle tables: one row per module with its channel indices and ranges, so the vote
        # reads no parallel lists. Modules without exactly three sensors never take the fast path.
        self._p_rows = [(m, g, *(g if len(g) == 3 else (0, 0, 0)), self.mlo[m], self.mhi[m])
                        for m, g in enumerate(self.groups)]

    def _refresh_fast(self, m: int) -> None:
        self.fast[m] = self.module_ok[m] and not self.dirty[m]

    # -- transitions ------------------------------------------------------------------------

    def _fail(self, i: int, t: float, how: int, value: float) -> None:
        if self.health[i] != _OK:
            return
        self.health[i] = how
        self.clean_since[i] = t
        self.failures += 1
        self.changed += 1
        m = self.layout.module_index(self.layout.pressure[i].module)
        self.module_ok[m] = False
        self._refresh_fast(m)
        self.events.push(t, EventId.SENSOR_FAILED, self.p_ids[i], float(how), value, self.bias[i])

    def _recover(self, i: int, t: float, value: float) -> None:
        old = self.health[i]
        self.health[i] = _OK
        self.range_cnt[i] = 0
        self.dis_cnt[i] = 0
        self.stuck_ref[i] = value
        self.stuck_since[i] = t
        self.recoveries += 1
        self.changed += 1
        m = self.layout.module_index(self.layout.pressure[i].module)
        g = self.groups[m]
        self.module_ok[m] = len(g) == 3 and all(self.health[j] == _OK for j in g)
        self._refresh_fast(m)
        if self.module_ok[m]:
            self.n_voting[m] = len(g)  # the fast path does not count voters
        self.events.push(t, EventId.SENSOR_RECOVERED, self.p_ids[i], float(old), value, 0.0)

    # -- per cycle --------------------------------------------------------------------------

    def step(self, frame: Frame, t: float, manage: bool) -> None:
        """Vote this cycle's readings. ``manage`` False (mode OFF, link down) only votes: no
        sensor is failed or recovered."""
        pv = frame.pressure
        ps = frame.pressure_status
        bias = self.bias
        out = self.pressure
        thr = self.thr
        fast = self.fast
        for m, g, i0, i1, i2, lo, hi in self._p_rows:
            # The usual module: three healthy sensors, fresh, in range and agreeing: the vote
            # without the per-sensor checks (the same vote as _slow_module's, via sort3).
            if fast[m] and not (ps[i0] or ps[i1] or ps[i2]):
                a, b, c = sort3(pv[i0] - bias[i0], pv[i1] - bias[i1], pv[i2] - bias[i2])
                if a >= lo and c <= hi and b - a <= thr and c - b <= thr:
                    out[m] = b
                    continue
            self._slow_module(m, g, pv, ps, t, manage)
        if self.learning:
            self._learn(pv, ps, t)

    def _slow_module(self, m: int, g: tuple[int, ...], pv: list[float], ps: list[int], t: float,
                     manage: bool) -> None:
        health = self.health
        bias = self.bias
        lo = self.lo
        hi = self.hi
        vals = self._scratch
        who = self._scratch_i
        stale_cnt = self.stale_cnt
        range_cnt = self.range_cnt
        n = 0
        dirty = 0
        # A module beyond its sensors' range (a sealed module blown down, a module that starts
        # depressurised) is the module's state, not sensor failures: range failures need a
        # majority of fresh sensors in range to compare with. (Within disagree_pa of the limit
        # counts as out: near it the readings are censored, the module crosses it sensor by
        # sensor.) Its pressure is then not measured: no vote, and the module is unobservable.
        below = above = fresh = 0
        margin = self.thr
        for i in g:
            if not ps[i]:
                fresh += 1
                if pv[i] < lo[i] + margin:
                    below += 1
                elif pv[i] > hi[i] - margin:
                    above += 1
        module_out = fresh >= 2 and (2 * below > fresh or 2 * above > fresh)
        if module_out != self.beyond[m]:
            self.beyond[m] = module_out
            self.changed += 1
        for i in g:
            if ps[i]:
                if manage and health[i] == _OK:
                    stale_cnt[i] += 1
                    dirty = 1
                    if stale_cnt[i] >= self.stale_n:
                        self._fail(i, t, int(SensorHealth.FAILED_STALE), pv[i])
                continue
            stale_cnt[i] = 0
            raw = pv[i]
            if not lo[i] <= raw <= hi[i]:  # (also catches NaN)
                if manage and health[i] == _OK and not module_out:
                    range_cnt[i] += 1
                    dirty = 1
                    if range_cnt[i] >= self.range_n:
                        self._fail(i, t, int(SensorHealth.FAILED_RANGE), raw)
                continue
            range_cnt[i] = 0
            if health[i] != _OK or module_out:
                continue
            vals[n] = raw - bias[i]
            who[n] = i
            n += 1
        # Vote among usable healthy sensors (n <= 3 in the design; larger groups use the median).
        if n >= 3:
            if n == 3:
                vote = sort3(vals[0], vals[1], vals[2])[1]
            else:
                vote = _median(vals[:n])
            self.disagree2[m] = False
        elif n == 2:
            vote = 0.5 * (vals[0] + vals[1])
            # Latched until they agree within half the threshold: each start of a disagreement
            # counts as a change (the mean stepped by half of it; the segment's tests restart),
            # and noise about the threshold must not restart them again and again.
            d = abs(vals[0] - vals[1])
            if self.disagree2[m]:
                if d <= 0.5 * self.thr:
                    self.disagree2[m] = False
                    self.changed += 1
            elif d > self.thr:
                self.disagree2[m] = True
                self.changed += 1
            pr = (who[0], who[1])
            if pr != self.pair[m]:
                self.pair[m] = pr
                self._d_acc[m] = 0.0
                self._d_n[m] = 0
            self._d_acc[m] += vals[0] - vals[1]
            self._d_n[m] += 1
        elif n == 1:
            vote = vals[0]
            self.disagree2[m] = False
        elif module_out:
            # What the sensors read beyond the range (telemetry), not a vote: nothing tests it.
            fresh_vals = sorted(pv[i] - bias[i] for i in g if not ps[i])
            vote = fresh_vals[len(fresh_vals) // 2]
            self.disagree2[m] = False
        else:
            vote = self.pressure[m]
            self.disagree2[m] = False
        if n != 2 and self.pair[m] is not None and (
                module_out or sum(health[i] == _OK for i in g) != 2):
            self.pair[m] = None  # (not for a sample missing: the pair is its two healthy sensors)
        if n != self.n_voting[m]:
            self.n_voting[m] = n
            self.changed += 1
        self.pressure[m] = vote
        if not manage:
            return
        # Disagreement: only with three or more voters can the odd one be named; not while the
        # unit biases are still being learned (they differ by more than the threshold).
        if n >= 3 and not self.learning:
            thr = self.thr
            dis = self.dis_cnt
            for k in range(n):
                i = who[k]
                if abs(vals[k] - vote) > thr:
                    dis[i] += 1
                    if dis[i] >= self.dis_n:
                        self._fail(i, t, int(SensorHealth.FAILED_DISAGREE), vals[k] + bias[i])
                elif dis[i]:
                    dis[i] -= 1
                dirty |= dis[i]
        self.dirty[m] = 1 if dirty else 0
        # (beyond the range: the slow path until it is back, where beyond is cleared)
        self.fast[m] = self.module_ok[m] and not dirty and not module_out
        # Recovery of failed sensors that look healthy against the vote of the others.
        if n:
            for i in g:
                if health[i] == _OK:
                    continue
                ok = not ps[i] and lo[i] <= pv[i] <= hi[i] and abs(pv[i] - bias[i] - vote) <= self.thr
                if not ok:
                    self.clean_since[i] = t
                elif t - self.clean_since[i] >= self.p.recover_s:
                    self._recover(i, t, pv[i])
        elif not module_out:
            self._recover_unvoted(g, pv, ps, t)

    def end_block(self) -> None:
        """A housekeeping block ended: :attr:`diff` takes each pair's mean difference over it
        (held when no cycle of the block had both sensors fresh)."""
        acc, cnt, diff = self._d_acc, self._d_n, self.diff
        for m, pr in enumerate(self.pair):
            if pr is not None and cnt[m]:
                diff[m] = acc[m] / cnt[m]
                acc[m] = 0.0
                cnt[m] = 0

    def _recover_unvoted(self, g: tuple[int, ...], pv: list[float], ps: list[int], t: float) -> None:
        """A module none of whose sensors votes (every one failed: typically all FAILED_STALE
        after a harness, ADC or bus dropout; without this the module stayed unobservable for
        good once its data came back). A sensor failed for losing its data (stale, out of range)
        that reads fresh and in range again is recovered after ``recover_s`` if it agrees within
        ``disagree_pa`` with the median of the others doing so (alone, it has nothing to disagree
        with). A sensor failed for what it read (stuck, disagreeing, an absurd bias) needs a vote
        of healthy sensors to be trusted again."""
        health = self.health
        bias = self.bias
        lo = self.lo
        hi = self.hi
        back = [i for i in g if health[i] in _DATA_LOSS and not ps[i] and lo[i] <= pv[i] <= hi[i]]
        for i in g:
            if health[i] != _OK and i not in back:
                self.clean_since[i] = t
        if not back:
            return
        ref = _median([pv[i] - bias[i] for i in back])
        for i in back:
            if abs(pv[i] - bias[i] - ref) > self.thr:
                self.clean_since[i] = t
            elif t - self.clean_since[i] >= self.p.recover_s:
                self._recover(i, t, pv[i])

    def slow_checks(self, frame: Frame, t: float) -> None:
        """Checks that need no per-cycle rate (run at housekeeping rate): stuck sensors and
        timestamps that stopped advancing on a device that still reports OK."""
        s = self.p
        pv = frame.pressure
        pt = frame.pressure_time
        ps = frame.pressure_status
        tol = s.stuck_tolerance_pa
        stuck_fail_s = s.stuck_fail_s
        stale_after = s.stale_fail_s + self.dt
        ref = self.stuck_ref
        since = self.stuck_since
        for i, h in enumerate(self.health):
            if ps[i]:
                continue
            v = pv[i]
            if abs(v - ref[i]) > tol:
                ref[i] = v
                since[i] = t
            elif h == _OK and t - since[i] >= stuck_fail_s:
                self._fail(i, t, _FAILED_STUCK, v)
            elif h == _FAILED_STUCK:
                self.clean_since[i] = t  # still stuck: no recovery
            if h == _OK and t - pt[i] >= stale_after:
                self._fail(i, t, _FAILED_STALE, v)

    def _learn(self, pv: list[float], ps: list[int], t: float) -> None:
        """Accumulate each sensor's offset from its module's mid value; at the end of the
        learning time, remove the per-module mean offset and fail absurd biases."""
        if self.learn_until is None:
            self.learn_until = t + self.p.bias_learn_s
        if t < self.learn_until:
            for m, g in enumerate(self.groups):
                if len(g) < 2 or any(ps[i] for i in g):
                    continue
                vals = [pv[i] for i in g]
                if any(not (self.lo[i] <= pv[i] <= self.hi[i]) for i in g):
                    continue
                ordered = sorted(vals)
                mid = ordered[len(g) // 2] if len(g) % 2 else 0.5 * (ordered[len(g) // 2 - 1] + ordered[len(g) // 2])
                for i in g:
                    self.learn_sum[i] += pv[i] - mid
                    self.learn_n[i] += 1
            return
        self.learning = False
        self.changed += 1
        for m, g in enumerate(self.groups):
            if len(g) < 2 or any(not self.learn_n[i] for i in g):
                continue
            learned = {i: self.learn_sum[i] / self.learn_n[i] for i in g}
            # Offsets are from the mid value, so a sensor biased far from the rest stands out
            # without pulling the others; it is failed and left out of the normalisation.
            keep = []
            for i, b in learned.items():
                if abs(b) > self.p.bias_max_pa:
                    self._fail(i, t, int(SensorHealth.FAILED_DISAGREE), pv[i])
                else:
                    keep.append(i)
            if not keep:
                continue
            mean = sum(learned[i] for i in keep) / len(keep)
            for i in keep:
                self.bias[i] = learned[i] - mean

    def reset_bias(self) -> None:
        """Forget learned biases and learn again from now (telecommand / new parameters)."""
        for i in range(len(self.bias)):
            self.bias[i] = 0.0
            self.learn_sum[i] = 0.0
            self.learn_n[i] = 0
        self.learning = True
