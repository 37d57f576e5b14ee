"""Telecommands in a HIL test, verified through service 1 (docs/commanding.md).

:func:`send_and_assert_command` (``flight.send_and_assert_command``) sends a telecommand through
the flight software's telecommand path (encoded as a TC packet, checked, queued, applied at the
next cycle) and runs the loop until the command's last service 1 report: 1/2 (acceptance
failure), 1/4 (start failure), 1/7 (completion success) or 1/8 (completion failure). It asserts
the outcome the test expects (completion by default, or a failure with a given error code) and
returns a :class:`CommandOutcome` with every report of that command, each time-stamped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...firmware.telemetry import packets as P
from .hil_history import TmPacket

if TYPE_CHECKING:
    from .hil_flight import FlightUnderTest

#: Service 1 subtypes that end a command's verification (docs/commanding.md).
TERMINAL_SUBTYPES = frozenset({2, 4, 7, 8})
#: Failure stage names :func:`send_and_assert_command` takes, and their service 1 subtypes.
FAILURE_STAGES = {"acceptance": 2, "start": 4, "completion": 8}


@dataclass(frozen=True)
class Verification:
    """One service 1 report of a command: ``t`` (mission s of its cycle), ``stage`` (the
    VerificationStage name: ``ACCEPTANCE_SUCCESS``, ``START_SUCCESS``, ``COMPLETION_FAILURE``...),
    ``subtype``, ``error`` (the VerificationError name, ``"NONE"`` for a success), ``detail`` (the
    reason of a failure), ``seq`` (the report packet's sequence count)."""

    t: float
    stage: str
    subtype: int
    error: str
    detail: str
    seq: int

    def __str__(self) -> str:
        failure = f" {self.error}{f' ({self.detail})' if self.detail else ''}" if self.error != "NONE" else ""
        return f"1/{self.subtype} {self.stage}{failure}@{self.t:g}"


@dataclass(frozen=True)
class CommandOutcome:
    """What became of a command: ``receipt`` (from the flight software: ``apid``, ``seq``,
    ``accepted``), ``reports`` (its service 1 reports in order), ``final`` (the last one)."""

    receipt: Any
    reports: tuple[Verification, ...]

    @property
    def final(self) -> Verification:
        return self.reports[-1]

    @property
    def completed(self) -> bool:
        return self.final.subtype == 7

    @property
    def error(self) -> str:
        """The VerificationError name of the final report (``"NONE"`` when completed)."""
        return self.final.error


def verification_of(packet: TmPacket) -> Verification:
    data = packet.data
    try:
        stage = P.VerificationStage(packet.subtype).name
    except ValueError:
        stage = f"SUBTYPE_{packet.subtype}"
    try:
        error = P.VerificationError(data.error_code).name
    except ValueError:
        error = str(data.error_code)
    return Verification(packet.t, stage, packet.subtype, error, getattr(data, "detail", ""), packet.seq)


def send_and_assert_command(flight: FlightUnderTest, command: Any, within_s: float = 10.0, *,
                            error: Any = None, stage: str | None = None) -> CommandOutcome:
    """Send ``command`` (ValveCommand, SetFdirMode, Acknowledge, LoadFdirParams, ... a telecommand
    dataclass of hullwatch.firmware.telemetry) and run until its final service 1 report, at most
    ``within_s`` mission seconds. Without ``error`` the command must complete (1/7); with
    ``error`` (a VerificationError or its name) it must fail with that code, and with ``stage``
    (``"acceptance"``, ``"start"`` or ``"completion"``) at that stage.

    Raises AssertionError (HilTimeout when no final report came in time) naming the reports seen;
    ValueError for an unknown error name or stage."""
    want_error = _error_name(error)
    if stage is not None and stage not in FAILURE_STAGES:
        raise ValueError(f"stage {stage!r}; expected one of {', '.join(FAILURE_STAGES)}")
    if stage is not None and want_error is None:
        raise ValueError("stage= needs error=: it names the stage of the expected failure")
    receipt = flight.telecommand(command)
    apid, seq = getattr(receipt, "apid", None), getattr(receipt, "seq", None)
    if apid is None:
        raise AssertionError(f"{command!r}: the flight software gave no request id (a telecommand "
                             "path without service 1 verification)")

    def mine(x: Any) -> bool:
        return (isinstance(x, TmPacket) and x.apid == P.APID_COMMAND and x.service == 1
                and x.data.request_apid == apid and x.data.request_seq == seq)

    found: list[Verification] = []

    def watch(x: Any) -> bool:
        if mine(x):
            found.append(verification_of(x))
            return x.subtype in TERMINAL_SUBTYPES
        return False

    what = f"{type(command).__name__} (request apid {apid} seq {seq})"
    try:
        flight.wait_for(watch, within_s, f"no final service 1 report for {what}")
    except AssertionError as exc:
        seen = ", ".join(str(v) for v in found) or "none"
        raise type(exc)(f"{exc}\nreports of this command: {seen}") from None
    outcome = CommandOutcome(receipt, tuple(found))
    final = outcome.final
    shown = ", ".join(str(v) for v in found)
    if want_error is None:
        if not outcome.completed:
            raise AssertionError(f"{what} did not complete: {shown}")
    else:
        if outcome.completed or final.error != want_error:
            raise AssertionError(f"{what}: expected failure {want_error}, got {shown}")
        if stage is not None and final.subtype != FAILURE_STAGES[stage]:
            raise AssertionError(f"{what}: expected {want_error} at {stage}, got {shown}")
    return outcome


def _error_name(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, int):
        return P.VerificationError(error).name
    if str(error) not in P.VerificationError.__members__:
        raise ValueError(f"unknown verification error {error!r}; expected one of "
                         + ", ".join(P.VerificationError.__members__))
    return str(error)


__all__ = ["CommandOutcome", "FAILURE_STAGES", "Verification", "send_and_assert_command", "verification_of"]
