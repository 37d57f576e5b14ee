"""The device link's outages as the FDIR sees them (docs/fdir.md, "Stage 1: sensors", the link).

:class:`LinkOutage` is a part of :class:`~.core.Fdir` (its base class). While the link is down
the sensor stages only vote and the tests hold. When it returns after at most
``leak.link_bridge_s`` the outage is bridged: every test's series holds its recent level through
the cycles that never came and the tests go on (restarting them at each return blinded them for
good on a flapping connector); after a longer outage the tests restart. Either way the sensor
stages are told how long nothing was seen (their stuck timers did not run meanwhile).
"""

from __future__ import annotations

from typing import Callable

from ..types import EventId
from .events import EventQueue
from .leak import WindowPlan
from .params import FdirParams
from .sensors import SensorStage
from .slope import SlopeBank
from .slowleak import SlowLeakDetector
from .thermo import TemperatureStage


def shift_stuck_timers(since: list[float], seconds: float) -> None:
    """The link was down for ``seconds``: no reading came, so no stuck timer ran. Each channel's
    "unchanged since" (mission time, s; a sensor stage's ``stuck_since``) moves on by the gap: a
    sensor that happened to read the same value before and after an outage is not stuck for
    having been out of sight."""
    since[:] = [x + seconds for x in since]


class LinkOutage:
    """Link loss and return (a base class of :class:`~.core.Fdir`, which owns the state
    declared here and counts ``_missed``, the cycles stepped while the link was down)."""

    params: FdirParams
    events: EventQueue
    sensors: SensorStage
    thermo: TemperatureStage
    slow: SlowLeakDetector
    plan: WindowPlan
    dt: float
    link_up: bool
    link_down_since: float
    rapid_k0: list[int]
    _missed: int
    _bridge: int
    _reset_all: Callable[[float, float], None]  #: the core's

    def _link_change(self, up: bool, t: float) -> None:
        """The link went down (``up`` False) or came back at mission time ``t``: LINK_LOST /
        LINK_RESTORED, and on return the bridge or the restart."""
        self.link_up = up
        if up:
            gap = t - self.link_down_since
            self.events.push(t, EventId.LINK_RESTORED, "device", 0.0, gap, 0.0)
            shift_stuck_timers(self.sensors.stuck_since, gap)
            shift_stuck_timers(self.thermo.stuck_since, gap)
            if gap <= self.params.leak.link_bridge_s:
                # A short outage (a flapping connector) is bridged: restarting every test at each
                # return would blind them for good (a leak test needs its window of samples, the
                # slow test hours). The missing samples hold the recent level (_bridge_gap).
                self._bridge = self._missed
            else:
                self._reset_all(t, self.params.leak.warmup_s)
            self._missed = 0
        else:
            self.link_down_since = t
            self.events.push(t, EventId.LINK_LOST, "device", 0.0, 0.0, 0.0)

    def _bridge_gap(self, slot: int, bank: SlopeBank, t: float) -> None:
        """The cycles of a short outage (``self._bridge`` of them, the last one before ``t``): the
        bank holds its mean over the last rapid window through them (:meth:`SlopeBank.bridge`),
        and the slow test gets each decimated sample that falls in the gap, at its cycle's time.
        The gas lost meanwhile then shows as a step at the first sample after it, which windows
        much longer than the gap average out but the rapid window would read as a rate it never
        had (a 5 s outage while a small isolated segment leaked read as -10.7 Pa/s, a
        RAPID_DEPRESS): the rapid test waits until its window lies past the gap."""
        n = min(self._bridge, bank.cap)
        level = bank.mean(min(bank.k, self.plan.n_rapid))
        decim = self.slow.decim
        done = 0
        while done < n:
            to_next = decim - bank.k % decim  # samples until the slow test's next sample
            if to_next > n - done:
                bank.bridge(level, n - done)
                break
            bank.bridge(level, to_next)
            done += to_next
            self.slow.sample(slot, bank.mean(decim), t - (n + 1 - done) * self.dt)
        self.rapid_k0[slot] = bank.k
