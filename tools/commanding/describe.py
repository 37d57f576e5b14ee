"""One readable line for every telecommand and command-related report (``hullwatch decode``,
``hullwatch command``)."""

from __future__ import annotations

from typing import Any

from ...firmware.telemetry import packets as P
from ...firmware.types import EventId, FdirMode

COMMAND_CLASSES = (
    P.ValveCommand, P.SetFdirMode, P.Acknowledge, P.LoadFdirParams, P.AreYouAlive, P.AliveReport,
    P.EnableHousekeeping, P.DisableHousekeeping, P.OneShotHousekeeping, P.SetHousekeepingPeriod,
    P.EnableEvents, P.DisableEvents, P.ReportParameter, P.SetParameter, P.ParameterReport,
    P.VerificationReport,
)

_SIDS = {P.SID_HOUSEKEEPING: "housekeeping", P.SID_RAW_SAMPLES: "raw samples", P.SID_LAYOUT: "layout"}


def _name(enum_cls: Any, value: int) -> str:
    try:
        return enum_cls(value).name
    except ValueError:
        return str(value)


def _sids(sids: list[int]) -> str:
    return ", ".join(_SIDS.get(s, f"SID {s}") for s in sids)


def _param(pid: int, name: str) -> str:
    return name or f"parameter {pid}"


def _values(values: list[float]) -> str:
    return f"{values[0]:g}" if len(values) == 1 else "[" + ", ".join(f"{v:g}" for v in values) + "]"


def stage_text(d: P.VerificationReport) -> str:
    """``acceptance success``, ``completion failure: BAD_ARGUMENT (reason)``..."""
    text = d.stage.name.lower().replace("_", " ")
    if d.failed:
        text += f": {_name(P.VerificationError, d.error_code)}" + (f" ({d.detail})" if d.detail else "")
    return text


def describe_command(d: Any, valve_ids: list[str] | None = None) -> str:
    """The line for a telecommand or report dataclass of :data:`COMMAND_CLASSES`."""
    if isinstance(d, P.ValveCommand):
        name = f" ({valve_ids[d.valve]})" if valve_ids and 0 <= d.valve < len(valve_ids) else ""
        return f"command valve {d.valve} {'open' if d.open else 'closed'}{name}"
    if isinstance(d, P.SetFdirMode):
        return f"set FDIR mode {_name(FdirMode, d.mode)}"
    if isinstance(d, P.Acknowledge):
        return f"acknowledge {_name(EventId, d.event_id) if d.event_id else 'all events'}"
    if isinstance(d, P.LoadFdirParams):
        return f"load FDIR parameters ({len(d.toml_text)} characters)"
    if isinstance(d, P.AreYouAlive):
        return "are you alive"
    if isinstance(d, P.AliveReport):
        return "alive report"
    if isinstance(d, P.EnableHousekeeping):
        return f"enable {_sids(d.sids)} reports"
    if isinstance(d, P.DisableHousekeeping):
        return f"disable {_sids(d.sids)} reports"
    if isinstance(d, P.OneShotHousekeeping):
        return f"send {_sids(d.sids)} report now"
    if isinstance(d, P.SetHousekeepingPeriod):
        return "set period of " + ", ".join(f"{_SIDS.get(s, s)} to {ms / 1000:g} s" for s, ms in d.intervals)
    if isinstance(d, (P.EnableEvents, P.DisableEvents)):
        verb = "enable" if isinstance(d, P.EnableEvents) else "disable"
        return f"{verb} events " + ", ".join(_name(EventId, e) for e in d.event_ids)
    if isinstance(d, P.ReportParameter):
        return f"report {_param(d.parameter_id, d.name)}"
    if isinstance(d, P.SetParameter):
        return f"set {_param(d.parameter_id, d.name)} = {_values(d.values)}"
    if isinstance(d, P.ParameterReport):
        return f"{d.name} (id {d.parameter_id}) = {_values(d.values)}"
    if isinstance(d, P.VerificationReport):
        return f"{stage_text(d)} of TC apid {d.request_apid} seq {d.request_seq}"
    return type(d).__name__
