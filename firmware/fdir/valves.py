"""FDIR stage 4: valve monitoring.

The commanded position of a valve is what the device reports (``Frame.valve_cmd``: FDIR's own
commands, ground telecommands, or a simulated scenario's schedule); each change restarts the
actuation clock. Each valve's commanded position is compared with its feedback. A mismatch larger than
``feedback_tolerance`` that outlasts the valve's actuation timeout plus ``timeout_margin_s`` since
the last command (or, for a valve nobody commanded, since the mismatch began) fails the valve with
a VALVE_FAILED event; isolation then plans around it. A failed valve stays failed until the
parameters are reloaded or FDIR is reset by command: a valve that once disobeyed is not trusted.

Crew operations: a hatch or valve that nobody commanded (its last command is older than its
actuation timeout plus the margin) and that travels to an end position (closed: feedback at or
below ``open_threshold``; open: within ``feedback_tolerance`` of 1) within that time was moved by
hand. It is accepted as the new commanded state with a VALVE_MOVED event, not failed; the
segments follow its feedback as always. A new commanded position that the device reports but
FDIR did not send (a ground command, a scenario schedule) is recorded the same way. Either way
the valve's modules are marked in ``moved`` for the FDIR (crew may be on either side).
"""

from __future__ import annotations

import math

from ...hal.interfaces import Frame, Layout, ValveKind
from ..types import EventId, ValveHealth
from .events import EventQueue
from .params import FdirParams

_OK = int(ValveHealth.OK)
_FAILED = int(ValveHealth.FAILED)


class ValveMonitor:
    """Commanded vs feedback position. ``cmd[i]`` is the target (0.0 or 1.0), ``health[i]`` the
    :class:`ValveHealth`, ``t_cmd[i]`` the mission time of the last command or mismatch start."""

    def __init__(self, layout: Layout, params: FdirParams, events: EventQueue) -> None:
        self.ids = [v.id for v in layout.valves]
        self.timeouts = [v.actuation_timeout_s for v in layout.valves]
        n = len(self.ids)
        self.cmd = [-1.0] * n  # unknown until the first frame
        self.t_cmd = [0.0] * n
        self.seen_cmd = [-1] * n  # the device's last reported commanded position
        self.mismatch = [False] * n
        self.uncommanded = [False] * n  # the current mismatch began with nobody's command
        self.own = [-1] * n  # FDIR's own last command (0/1), -1 none
        self.is_repress = [v.kind == ValveKind.REPRESS for v in layout.valves]
        #: valves moved by someone else than FDIR since the FDIR last looked (it clears it)
        self.moved: list[int] = []
        self.health = [_OK] * n
        self.fb: list[float] = [0.0] * n  # the latest frame's feedback (the frame's own list)
        self.events = events
        self.commands = 0
        self.failures = 0
        # Quiet: the last full pass found no valve in mismatch, and neither the device's
        # commands, the feedback, the statuses nor FDIR's own commands have changed since, so the
        # next pass would change nothing. The copies are what that pass saw.
        self._quiet = False
        self._q_cmd: list[int] = []
        self._q_fb: list[float] = []
        self._q_status: list[int] = []
        self.set_params(params)

    def set_params(self, params: FdirParams) -> None:
        self._quiet = False
        self.tol = params.valves.feedback_tolerance
        self.open_threshold = params.valves.open_threshold
        self.margin = params.valves.timeout_margin_s

    def commanded(self, i: int, open_: bool, t: float) -> None:
        """Record a command sent to valve ``i`` at mission time ``t``."""
        self.cmd[i] = 1.0 if open_ else 0.0
        self.own[i] = 1 if open_ else 0
        self.t_cmd[i] = t
        self.commands += 1
        self._quiet = False

    def settled(self, i: int) -> bool:
        """True when valve ``i`` reads where it was commanded, or is failed (nothing more will
        happen)."""
        if self.health[i] != _OK:
            return True
        if self.cmd[i] > 0.5:
            return self.fb[i] >= 1.0 - self.tol
        # Closed means no gas passes: the same threshold the segment topology uses.
        return self.fb[i] <= self.open_threshold

    def step(self, frame: Frame, t: float) -> None:
        fb = self.fb = frame.valve_fb
        vs = frame.valve_status
        dev_cmd = frame.valve_cmd
        if self._quiet and fb == self._q_fb and dev_cmd == self._q_cmd and vs == self._q_status:
            return
        cmd = self.cmd
        tol = self.tol
        seen = self.seen_cmd
        skipped = False
        for i in range(len(cmd)):
            if dev_cmd[i] != seen[i]:
                # The device reports a new commanded position: FDIR's own command, a ground
                # telecommand or (in simulation) the scenario's schedule. The clock starts now.
                skipped = True
                first = seen[i] < 0  # (the first frame: the initial state, nobody's move)
                seen[i] = dev_cmd[i]
                cmd[i] = 1.0 if dev_cmd[i] else 0.0
                # The initial state is nobody's command: a hatch the crew moves in the first
                # seconds is their move, not a valve failing to follow a start-up command.
                self.t_cmd[i] = -math.inf if first else t
                if not first and dev_cmd[i] != self.own[i] and not self.is_repress[i] and len(self.moved) < len(cmd):
                    self.moved.append(i)
                continue
            if vs[i]:
                continue
            c = cmd[i]
            d = fb[i] - c
            if d > tol or d < -tol:
                if not self.mismatch[i]:
                    self.mismatch[i] = True
                    self.uncommanded[i] = t - self.t_cmd[i] > self.timeouts[i] + self.margin
                    if self.uncommanded[i]:
                        self.t_cmd[i] = t  # uncommanded motion: the clock starts now
                f = fb[i]
                if self.uncommanded[i] and not self.is_repress[i] and self.health[i] == _OK and (
                        f <= self.open_threshold or f >= 1.0 - tol):
                    # Moved by hand to an end position: the crew's, not a fault.
                    cmd[i] = 1.0 if f >= 1.0 - tol else 0.0
                    self.mismatch[i] = False
                    self.uncommanded[i] = False
                    if len(self.moved) < len(cmd):
                        self.moved.append(i)
                    self.events.push(t, EventId.VALVE_MOVED, self.ids[i], cmd[i], float(i), 0.0)
                    continue
                if self.health[i] == _OK and t - self.t_cmd[i] > self.timeouts[i] + self.margin:
                    self.health[i] = _FAILED
                    self.failures += 1
                    self.events.push(t, EventId.VALVE_FAILED, self.ids[i], c, fb[i], 0.0)
            elif self.mismatch[i]:
                self.mismatch[i] = False
                self.uncommanded[i] = False
        # Quiet only after a pass that judged every valve (a new command skips its valve once)
        # and left no healthy valve in mismatch (its failure clock is running).
        self._quiet = not skipped and not any(
            mm and h == _OK for mm, h in zip(self.mismatch, self.health))
        if self._quiet:
            self._q_fb[:] = fb
            self._q_cmd[:] = dev_cmd
            self._q_status[:] = vs

    def reset(self) -> None:
        self._quiet = False
        for i in range(len(self.health)):
            self.health[i] = _OK
