"""The emulated board's valves: drivers that travel at a finite speed toward their command, their
position feedback, and (in HIL mode, protocol 1.1) a stimulated position sensor per valve
(docs/protocol.md, "RESET", "HIL stimulation").

Positions are fractions (0.0 closed .. 1.0 open); feedback and stimulus are in wire units
(0 .. FEEDBACK_SCALE, FEEDBACK_RELEASE = the board's own sensor); times are board microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..hal.config_model import ValveConfig
from ..hal.interfaces import ValveKind
from ..hal.wire import FEEDBACK_RELEASE, FEEDBACK_SCALE, SampleState, ValveCommand, ValveState

#: Valve travel time as a fraction of its actuation timeout when not given explicitly.
TRAVEL_FRACTION = 0.5

_OK = int(SampleState.OK)


@dataclass(slots=True)
class Valve:
    """One valve driver: ``travel_s`` for a full stroke, the ``commanded`` state (ValveCommand),
    the ``target`` and actual ``position`` (fractions)."""

    travel_s: float
    commanded: int = ValveCommand.NONE
    target: float = 0.0
    position: float = 0.0


class ValveBank:
    """The valves of one configuration, with their position-sensor stimulus.

    Args:
        configs: the configuration's valve table.
        travel_s: full-stroke travel time per valve id (default: TRAVEL_FRACTION of the valve's
            actuation timeout).
        previous: the valves before a reboot (their positions carry over), or None at the
            first power-on.
        keep: keep ``previous`` exactly (a soft reset or a commit: the drivers stay energised);
            else, with ``previous``, every valve is de-energised: it keeps its position and
            travels to closed, commanded NONE.
        initial_open: at the first power-on, the valve ids that stand open (default: every hatch
            and valve open, repress valves closed: the normal state of a station).
        time_us: the board time now.
    """

    __slots__ = ("valves", "stimulus", "status", "time_us", "_released", "_settled")

    def __init__(self, configs: Sequence[ValveConfig], *, travel_s: dict[str, float],
                 previous: Sequence[Valve] | None, keep: bool, initial_open: set[str] | None,
                 time_us: int) -> None:
        self.valves: list[Valve] = []
        for i, v in enumerate(configs):
            valve = Valve(travel_s=max(travel_s.get(v.id, TRAVEL_FRACTION * v.actuation_timeout_s), 1e-6))
            old = previous[i] if previous is not None and i < len(previous) else None
            if keep and old is not None:
                # A soft reset keeps the valves where they are (they are not de-energised).
                valve.commanded, valve.target, valve.position = old.commanded, old.target, old.position
            elif previous is not None and not keep:
                # Drivers off: a de-energised valve closes (docs/protocol.md, RESET), moving at
                # its own speed from where it stands; a closed hatch stays closed.
                valve.position = old.position if old is not None else 0.0
                valve.target = 0.0
            else:
                is_open = (v.id in initial_open) if initial_open is not None \
                    else v.kind != ValveKind.REPRESS
                valve.position = valve.target = 1.0 if is_open else 0.0
            self.valves.append(valve)
        n = len(self.valves)
        self._released = [FEEDBACK_RELEASE] * n
        #: stimulated feedback per valve (wire units); FEEDBACK_RELEASE = the board's own sensing
        self.stimulus = list(self._released)
        #: SampleState of each valve's feedback reading
        self.status = [_OK] * n
        self.time_us = time_us
        #: every valve stands at its target (advance has nothing to move until a command)
        self._settled = all(v.position == v.target for v in self.valves)

    def __len__(self) -> int:
        return len(self.valves)

    def advance(self, t_us: int) -> None:
        """Move every valve toward its target up to board time ``t_us`` (never backwards)."""
        dt = (t_us - self.time_us) / 1e6
        if dt <= 0:
            return
        self.time_us = t_us
        if self._settled:
            return  # the usual cycle: nothing is moving
        settled = True
        for v in self.valves:
            if v.position != v.target:
                step = dt / v.travel_s
                if v.position < v.target:
                    v.position = min(v.target, v.position + step)
                else:
                    v.position = max(v.target, v.position - step)
                settled = settled and v.position == v.target
        self._settled = settled

    def command(self, index: int, command: int) -> None:
        """Drive valve ``index`` toward ``command`` (ValveCommand.CLOSE or OPEN)."""
        v = self.valves[index]
        v.commanded = command
        v.target = float(command)
        self._settled = self._settled and v.position == v.target

    def release(self) -> None:
        """Every valve's own position sensor again (HIL entry and exit)."""
        self.stimulus[:] = self._released

    def stimulate(self, first: int, feedback: Sequence[int]) -> None:
        """Store a stimulated feedback (wire units, FEEDBACK_RELEASE = release) for valves
        ``first ..``; the caller has checked the range and the values."""
        self.stimulus[first:first + len(feedback)] = feedback

    def commanded(self) -> list[int]:
        """Each valve's ``commanded`` state (ValveCommand)."""
        return [v.commanded for v in self.valves]

    def feedback(self) -> list[int]:
        """Each valve's reported position (wire units): the stimulated one where given, else
        the actuator model's."""
        stimulus = self.stimulus
        if FEEDBACK_RELEASE not in stimulus:
            return stimulus[:]  # every position sensor stimulated (a HIL cycle)
        return [round(v.position * FEEDBACK_SCALE) if s == FEEDBACK_RELEASE else s
                for v, s in zip(self.valves, stimulus)]

    def state(self, index: int) -> ValveState:
        """Valve ``index`` as COMMAND_VALVE_REPLY and VALVES_REPLY carry it."""
        return ValveState(int(self.valves[index].commanded), self.feedback()[index], SampleState.OK)
