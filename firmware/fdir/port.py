"""The FDIR core as the isolation side sees it: the one interface of isolation
(:mod:`.isolation`), the slow-leak location schedule (:mod:`.locate`) and the estimates after
sealing (:mod:`.estimate`).

Those three are handed the :class:`~.core.Fdir` typed as :class:`SegmentHost` and use nothing
else of it: they read the configuration and the per-segment test state listed here, and they
change the FDIR only through its requests (:meth:`SegmentHost.command_valve`,
:meth:`~SegmentHost.restart_segment`, :meth:`~SegmentHost.seal`,
:meth:`~SegmentHost.cut_off`). ``tests/test_fdir_port.py`` checks both directions by reading
their source: every attribute they take from the host is declared here, and the core provides
every one of them.

Per-slot lists (``slot_*``, ``banks``, ``hold_until``, ``slot_dead``) are indexed by *slot*:
the detector state of one segment, kept while the segment exists (``seg_slot[s]`` is segment
``s``'s slot; see docs/fdir.md, "Segments"). All lists are read-only to the isolation side.
"""

from __future__ import annotations

from typing import Protocol

from ...hal.interfaces import Layout
from .events import EventQueue
from .leak import WindowPlan
from .params import FdirParams
from .slope import SlopeBank
from .topology import Topology


class SegmentHost(Protocol):
    """What isolation, location and estimation may read from and ask of the FDIR core."""

    # -- configuration (fixed between parameter loads) ---------------------------------------
    params: FdirParams
    layout: Layout
    module_names: list[str]  #: layout order
    volume: list[float]  #: per module, m3
    n_modules: int
    plan: WindowPlan  #: the fast test's windows, sample rate (``rate_hz``) and warm-up
    r_gas: float  #: specific gas constant, J/(kg K)
    t_ref: float  #: reference temperature of the inventory, K
    z_confirm: float  #: standardised slope of a confirmed leak
    events: EventQueue  #: where their events go
    topology: Topology  #: segments and valves, from valve feedback
    mode: int  #: :class:`~hullwatch.firmware.types.FdirMode` value

    # -- segment test state (read only) ------------------------------------------------------
    seg_slot: list[int]  #: per segment: its slot
    seg_blind: list[bool]  #: per segment: no observable module (its test is skipped)
    slot_mask: list[int]  #: per slot: module bit mask of its segment
    slot_members: list[list[int]]  #: per slot: module indices
    slot_volume: list[float]  #: per slot: m3
    banks: list[SlopeBank]  #: per slot: the inventory's slope bank (Pa, at plan.rate_hz)
    hold_until: list[float]  #: per slot: mission time its test resumes after a restart, s
    slot_dead: list[float]  #: per slot: the test's dead band, Pa/s
    sealed_mask: int  #: modules sealed so far

    @property
    def pressure(self) -> list[float]:
        """Voted pressure per module, Pa."""

    @property
    def temperature(self) -> list[float]:
        """Gas temperature per module (trusted or estimated), K."""

    @property
    def generator_module(self) -> int:
        """The oxygen generator's module index (the crew side of a location schedule)."""

    @property
    def isolating(self) -> bool:
        """The fast isolation is in progress (it takes precedence over a location schedule)."""

    # -- queries -------------------------------------------------------------------------------
    def valve_open(self, i: int) -> bool:
        """Valve ``i``'s feedback of the last frame reads open."""

    def valve_failed(self, i: int) -> bool:
        """The valve monitor failed valve ``i``."""

    def valve_settled(self, i: int) -> bool:
        """Valve ``i`` reached its commanded position (or was failed trying)."""

    def slot_of_module(self, m: int) -> int:
        """The slot of the segment holding module ``m``."""

    def mask_subject(self, mask: int) -> str:
        """The event subject naming the module set ``mask``."""

    def segment_subject(self, slot: int) -> str:
        """The event subject naming a slot's segment."""

    def judged_slope(self, s: int, n: int, slope: float, sd: float, dead: float) -> float:
        """The slope (Pa/s) segment ``s``'s evidence of a leak over the last ``n`` cycles is
        judged on, with the most doubtful sensor of a pair left out (docs/fdir.md, stage 1b)."""

    def thermometer_doubt(self, slot: int, window_s: float) -> float:
        """How much of a slot's inventory slope over the last ``window_s`` (Pa/s) one
        thermometer could explain (the slow detector's doubt, docs/fdir.md, stage 1b)."""

    # -- requests ------------------------------------------------------------------------------
    def command_valve(self, i: int, open_: bool, t: float) -> bool:
        """Command valve ``i`` if the mode allows it (ACTIVE); True if sent."""

    def restart_segment(self, slot: int, t: float, hold_s: float) -> None:
        """Restart a slot's tests: its history is dropped and it resumes at ``t + hold_s``."""

    def seal(self, mask: int, t: float) -> None:
        """The modules ``mask`` are sealed: their leak raises nothing more, dead bands follow and
        the estimates after sealing start."""

    def cut_off(self, mask: int) -> None:
        """Sealing cut the healthy modules ``mask`` off the main segment: crew there may use
        oxygen away from the generator (their segments get the split allowance)."""

    def transition_error(self) -> None:
        """Count a refused state transition (health counter ``transition_errors``)."""
