"""Telecommand and request-verification layouts: services 1, 3, 5, 8, 17 and 20.

The application data of every telecommand, of the verification reports (service 1), the
alive report (17/2) and the parameter report (20/2), each declared once with construct, with the
plain dataclasses callers see and the conversions between the two. :mod:`.packets` builds its
packet table (:data:`~.packets.PACKET_DEFS`) from :data:`COMMAND_ROWS`, so encode, decode, the
dictionary and the flight software's acceptance checks all work from these declarations.

docs/commanding.md gives every byte layout with its meaning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable

import construct as cs
from construct import this

from ..errors import TelemetryError
from ..types import FdirMode
from .fields import field

APID_COMMAND = 100

FUNCTION_VALVE_COMMAND = 1
FUNCTION_SET_FDIR_MODE = 2
FUNCTION_ACKNOWLEDGE = 3
FUNCTION_LOAD_FDIR_PARAMS = 4

#: Housekeeping structure ids a telecommand of service 3 may name (1 housekeeping, 2 raw samples).
HK_SIDS = (1, 2)
#: Most items in one list-carrying telecommand (service 3 and 5).
MAX_ITEMS = 64
#: Most values of one parameter (service 20); a list parameter such as ``leak.windows_s``.
MAX_VALUES = 32


def _function(value: int) -> cs.Renamed:
    return field("function_id", cs.Const(value, cs.Int16ub), doc=f"function id, {value}")


def _name_field() -> cs.Renamed:
    return field("name", cs.PascalString(cs.Int8ub, "ascii"),
                 doc="parameter name 'section.key' (u8 length, ASCII); empty when the id is given")


# ----------------------------------------------------------------------------------------------
# Declarations

VALVE_COMMAND_BODY = cs.Struct(
    _function(FUNCTION_VALVE_COMMAND),
    field("valve", cs.Int8ub, doc="valve index, layout order"),
    field("open", cs.Int8ub, doc="1 open, 0 close"),
    cs.Terminated,
)

SET_FDIR_MODE_BODY = cs.Struct(
    _function(FUNCTION_SET_FDIR_MODE),
    field("mode", cs.Int8ub, doc="FdirMode code: 0 off, 1 passive, 2 active"),
    cs.Terminated,
)

ACKNOWLEDGE_BODY = cs.Struct(
    _function(FUNCTION_ACKNOWLEDGE),
    field("event_id", cs.Int16ub, doc="EventId acknowledged, 0 = all"),
    cs.Terminated,
)

LOAD_FDIR_PARAMS_BODY = cs.Struct(
    _function(FUNCTION_LOAD_FDIR_PARAMS),
    field("toml_text", cs.PascalString(cs.Int16ub, "utf8"), doc="FDIR parameter table, TOML"),
    cs.Terminated,
)

EMPTY_BODY = cs.Struct(cs.Terminated)

HK_SIDS_BODY = cs.Struct(
    field("n", cs.Rebuild(cs.Int8ub, cs.len_(this.sids)), doc="number of structure ids"),
    field("sids", cs.Array(this.n, cs.Int16ub), doc="structure ids: 1 housekeeping, 2 raw samples, 3 layout"),
    cs.Terminated,
)

HK_INTERVAL = cs.Struct(
    field("sid", cs.Int16ub, doc="housekeeping structure id"),
    field("interval_ms", cs.Int32ub, "ms", "new period, a whole multiple of the executive period"),
)

HK_INTERVALS_BODY = cs.Struct(
    field("n", cs.Rebuild(cs.Int8ub, cs.len_(this.intervals)), doc="number of entries"),
    field("intervals", cs.Array(this.n, HK_INTERVAL), doc="structure id and its new period"),
    cs.Terminated,
)

EVENT_IDS_BODY = cs.Struct(
    field("n", cs.Rebuild(cs.Int8ub, cs.len_(this.event_ids)), doc="number of event ids"),
    field("event_ids", cs.Array(this.n, cs.Int16ub), doc="EventId codes"),
    cs.Terminated,
)

PARAM_REF_BODY = cs.Struct(
    field("parameter_id", cs.Int16ub, doc="parameter id (0: by name)"),
    _name_field(),
    cs.Terminated,
)

PARAM_VALUE_BODY = cs.Struct(
    field("parameter_id", cs.Int16ub, doc="parameter id (0: by name in a request)"),
    _name_field(),
    field("n", cs.Rebuild(cs.Int8ub, cs.len_(this.values)), doc="number of values (1, or a list's length)"),
    field("values", cs.Array(this.n, cs.Float64b), "the parameter's unit", "the value(s)"),
    cs.Terminated,
)

REQUEST_ID = cs.BitStruct(
    field("version", cs.BitsInteger(3), doc="packet version of the request"),
    field("packet_type", cs.BitsInteger(1), doc="1 (TC)"),
    field("sec_hdr_flag", cs.BitsInteger(1), doc="secondary header flag of the request"),
    field("apid", cs.BitsInteger(11), doc="APID of the request"),
    field("seq_flags", cs.BitsInteger(2), doc="sequence flags of the request"),
    field("seq_count", cs.BitsInteger(14), doc="sequence count of the request"),
)

VERIFY_SUCCESS_BODY = cs.Struct(
    field("request_id", REQUEST_ID, doc="the first 4 bytes of the request's primary header"),
    cs.Terminated,
)

VERIFY_FAILURE_BODY = cs.Struct(
    field("request_id", REQUEST_ID, doc="the first 4 bytes of the request's primary header"),
    field("error_code", cs.Int16ub, doc="VerificationError code"),
    field("detail", cs.PascalString(cs.Int8ub, "utf8"), doc="why, in words (u8 length, UTF-8)"),
    cs.Terminated,
)

# ----------------------------------------------------------------------------------------------
# The plain objects


@dataclass(slots=True)
class ValveCommand:
    """TC 8/1 function 1: command valve ``valve`` (layout index) open or closed."""

    valve: int
    open: bool


@dataclass(slots=True)
class SetFdirMode:
    """TC 8/1 function 2."""

    mode: FdirMode


@dataclass(slots=True)
class Acknowledge:
    """TC 8/1 function 3: acknowledge an event (0 = all events)."""

    event_id: int = 0


@dataclass(slots=True)
class LoadFdirParams:
    """TC 8/1 function 4: a new FDIR parameter table, validated before it is activated."""

    toml_text: str


@dataclass(slots=True)
class AreYouAlive:
    """TC 17/1."""


@dataclass(slots=True)
class AliveReport:
    """TM 17/2, the answer to :class:`AreYouAlive`."""


@dataclass(slots=True)
class EnableHousekeeping:
    """TC 3/5: enable the periodic reports of these structure ids (1 housekeeping, 2 raw samples)."""

    sids: list[int] = dc_field(default_factory=lambda: [1])


@dataclass(slots=True)
class DisableHousekeeping:
    """TC 3/6: disable the periodic reports of these structure ids."""

    sids: list[int] = dc_field(default_factory=lambda: [1])


@dataclass(slots=True)
class OneShotHousekeeping:
    """TC 3/27: send these reports once, now (1 housekeeping, 3 layout)."""

    sids: list[int] = dc_field(default_factory=lambda: [3])


@dataclass(slots=True)
class SetHousekeepingPeriod:
    """TC 3/31: ``intervals`` is a list of ``(sid, interval_ms)``."""

    intervals: list[tuple[int, int]]


@dataclass(slots=True)
class EnableEvents:
    """TC 5/5: enable the reports of these event ids."""

    event_ids: list[int]


@dataclass(slots=True)
class DisableEvents:
    """TC 5/6: disable the reports of these event ids (FDIR still acts on them)."""

    event_ids: list[int]


@dataclass(slots=True)
class ReportParameter:
    """TC 20/1: report the value of one FDIR parameter, by id or (``parameter_id`` 0) by name."""

    parameter_id: int = 0
    name: str = ""


@dataclass(slots=True)
class SetParameter:
    """TC 20/3: set one FDIR parameter, by id or (``parameter_id`` 0) by name. ``values`` holds
    one number, or every item of a list parameter."""

    parameter_id: int
    name: str
    values: list[float]


@dataclass(slots=True)
class ParameterReport:
    """TM 20/2: the active value of one FDIR parameter (answer to 20/1 and 20/3)."""

    parameter_id: int
    name: str
    values: list[float]


class VerificationStage(enum.IntEnum):
    """Service 1 subtypes."""

    ACCEPTANCE_SUCCESS = 1
    ACCEPTANCE_FAILURE = 2
    START_SUCCESS = 3
    START_FAILURE = 4
    COMPLETION_SUCCESS = 7
    COMPLETION_FAILURE = 8


class VerificationError(enum.IntEnum):
    """Failure codes carried by 1/2, 1/4 and 1/8 reports (docs/commanding.md)."""

    NONE = 0
    BAD_CRC = 1
    UNKNOWN_COMMAND = 2
    BAD_ARGUMENT = 3
    PARAMETERS_INVALID = 4
    NOT_ALLOWED_IN_MODE = 5
    EXECUTION_FAILED = 6
    WRONG_LENGTH = 7
    QUEUE_FULL = 8
    ILLEGAL_APID = 9
    BAD_HEADER = 10
    UNKNOWN_PARAMETER = 11


#: the request id fields other than APID and sequence count of a well-formed telecommand
TC_REQUEST_FLAGS = {"version": 0, "packet_type": 1, "sec_hdr_flag": 1, "seq_flags": 3}


@dataclass(slots=True)
class VerificationReport:
    """TM service 1: the stage reached by the telecommand (apid, seq) and, for failures, why.

    ``request_word`` is the request id as sent: the first 4 bytes of the request's primary
    header as a big-endian u32 (None: a well-formed TC header with ``request_apid`` and
    ``request_seq``, version 0, type TC, secondary header flag 1, sequence flags 3).
    """

    stage: VerificationStage
    request_apid: int
    request_seq: int
    error_code: int = 0
    detail: str = ""
    request_word: int | None = None

    @property
    def failed(self) -> bool:
        return self.stage in (VerificationStage.ACCEPTANCE_FAILURE, VerificationStage.START_FAILURE,
                              VerificationStage.COMPLETION_FAILURE)


# ----------------------------------------------------------------------------------------------
# Conversions


def _plain(cls: type, names: tuple[str, ...]) -> tuple[Callable, Callable]:
    def to(d: Any) -> dict:
        return {n: (int(getattr(d, n)) if isinstance(getattr(d, n), (bool, enum.IntEnum)) else getattr(d, n))
                for n in names}

    def from_(c: Any, subtype: int) -> Any:
        return cls(*(list(c[n]) if isinstance(c[n], list) else c[n] for n in names))

    return to, from_


def _empty(cls: type) -> tuple[Callable, Callable]:
    return (lambda d: {}), (lambda c, subtype: cls())


def _valve_from(c: Any, subtype: int) -> ValveCommand:
    if c.open not in (0, 1):
        raise TelemetryError(f"open flag {c.open}; expected 1 open or 0 close")
    return ValveCommand(c.valve, bool(c.open))


def _mode_from(c: Any, subtype: int) -> SetFdirMode:
    try:
        return SetFdirMode(FdirMode(c.mode))
    except ValueError as exc:
        raise TelemetryError(f"unknown FDIR mode {c.mode}; expected 0 off, 1 passive, 2 active") from exc


def _intervals_to(d: SetHousekeepingPeriod) -> dict:
    return {"intervals": [{"sid": int(s), "interval_ms": int(ms)} for s, ms in d.intervals]}


def _intervals_from(c: Any, subtype: int) -> SetHousekeepingPeriod:
    return SetHousekeepingPeriod([(i.sid, i.interval_ms) for i in c.intervals])


def _values_to(d: Any) -> dict:
    return {"parameter_id": d.parameter_id, "name": d.name, "values": [float(v) for v in d.values]}


def request_word(apid: int, seq: int) -> int:
    """The request id (u32) of a well-formed telecommand with this APID and sequence count."""
    return (0x1800 | (apid & 0x7FF)) << 16 | 0xC000 | (seq & 0x3FFF)


def _verify_to(d: VerificationReport) -> dict:
    word = d.request_word if d.request_word is not None else request_word(d.request_apid, d.request_seq)
    rid = {"version": word >> 29, "packet_type": word >> 28 & 1, "sec_hdr_flag": word >> 27 & 1,
           "apid": word >> 16 & 0x7FF, "seq_flags": word >> 14 & 3, "seq_count": word & 0x3FFF}
    return {"request_id": rid, "error_code": int(d.error_code), "detail": d.detail}


def _verify_from(c: Any, subtype: int) -> VerificationReport:
    r = c.request_id
    word = r.version << 29 | r.packet_type << 28 | r.sec_hdr_flag << 27 | r.apid << 16 | r.seq_flags << 14 | r.seq_count
    return VerificationReport(VerificationStage(subtype), r.apid, r.seq_count, c.get("error_code", 0),
                              c.get("detail", ""), None if word == request_word(r.apid, r.seq_count) else word)


_TC, _TM = 1, 0

#: ``(name, apid, packet type, service, subtype, key, body, class, to, from, doc, periodic)``
#: for every telecommand and command-related report; :mod:`.packets` makes its PacketDefs of them.
COMMAND_ROWS: tuple[tuple[Any, ...], ...] = (
    ("valve_command", APID_COMMAND, _TC, 8, 1, FUNCTION_VALVE_COMMAND, VALVE_COMMAND_BODY, ValveCommand,
     _plain(ValveCommand, ("valve", "open"))[0], _valve_from, "command a valve open or closed", ""),
    ("set_fdir_mode", APID_COMMAND, _TC, 8, 1, FUNCTION_SET_FDIR_MODE, SET_FDIR_MODE_BODY, SetFdirMode,
     _plain(SetFdirMode, ("mode",))[0], _mode_from, "set FDIR mode (off, passive, active)", ""),
    ("acknowledge", APID_COMMAND, _TC, 8, 1, FUNCTION_ACKNOWLEDGE, ACKNOWLEDGE_BODY, Acknowledge,
     *_plain(Acknowledge, ("event_id",)), "acknowledge an event (0 = all)", ""),
    ("load_fdir_params", APID_COMMAND, _TC, 8, 1, FUNCTION_LOAD_FDIR_PARAMS, LOAD_FDIR_PARAMS_BODY,
     LoadFdirParams, *_plain(LoadFdirParams, ("toml_text",)),
     "load an FDIR parameter table (TOML), validated before activation", ""),
    ("enable_housekeeping", APID_COMMAND, _TC, 3, 5, None, HK_SIDS_BODY, EnableHousekeeping,
     *_plain(EnableHousekeeping, ("sids",)), "enable periodic housekeeping reports (by SID)", ""),
    ("disable_housekeeping", APID_COMMAND, _TC, 3, 6, None, HK_SIDS_BODY, DisableHousekeeping,
     *_plain(DisableHousekeeping, ("sids",)), "disable periodic housekeeping reports (by SID)", ""),
    ("one_shot_housekeeping", APID_COMMAND, _TC, 3, 27, None, HK_SIDS_BODY, OneShotHousekeeping,
     *_plain(OneShotHousekeeping, ("sids",)), "send housekeeping (SID 1) or layout (SID 3) reports once, now", ""),
    ("set_housekeeping_period", APID_COMMAND, _TC, 3, 31, None, HK_INTERVALS_BODY, SetHousekeepingPeriod,
     _intervals_to, _intervals_from, "change the period of housekeeping reports (by SID)", ""),
    ("enable_events", APID_COMMAND, _TC, 5, 5, None, EVENT_IDS_BODY, EnableEvents,
     *_plain(EnableEvents, ("event_ids",)), "enable the reports of event ids", ""),
    ("disable_events", APID_COMMAND, _TC, 5, 6, None, EVENT_IDS_BODY, DisableEvents,
     *_plain(DisableEvents, ("event_ids",)), "disable the reports of event ids", ""),
    ("report_parameter", APID_COMMAND, _TC, 20, 1, None, PARAM_REF_BODY, ReportParameter,
     *_plain(ReportParameter, ("parameter_id", "name")), "report one FDIR parameter (by id or name)", ""),
    ("set_parameter", APID_COMMAND, _TC, 20, 3, None, PARAM_VALUE_BODY, SetParameter,
     _values_to, _plain(SetParameter, ("parameter_id", "name", "values"))[1],
     "set one FDIR parameter (by id or name), validated as the parameter file is", ""),
    ("parameter_report", APID_COMMAND, _TM, 20, 2, None, PARAM_VALUE_BODY, ParameterReport,
     _values_to, _plain(ParameterReport, ("parameter_id", "name", "values"))[1],
     "the active value of one FDIR parameter", "on request"),
    ("are_you_alive", APID_COMMAND, _TC, 17, 1, None, EMPTY_BODY, AreYouAlive, *_empty(AreYouAlive),
     "connection test request", ""),
    ("alive_report", APID_COMMAND, _TM, 17, 2, None, EMPTY_BODY, AliveReport, *_empty(AliveReport),
     "connection test report", "on request"),
    *((f"verification_{stage.name.lower()}", APID_COMMAND, _TM, 1, int(stage), None,
       VERIFY_FAILURE_BODY if stage.name.endswith("FAILURE") else VERIFY_SUCCESS_BODY,
       VerificationReport, _verify_to, _verify_from,
       f"request verification: {stage.name.lower().replace('_', ' ')}", "on request")
      for stage in VerificationStage),
)
