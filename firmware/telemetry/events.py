"""What each FDIR/executive event reports: the meaning, name and unit of its subject and three values.

An event packet (service 5, subtype = severity) carries ``event_id``, a ``subject`` (a module,
sensor or valve id, up to 16 ASCII characters) and three float64 values. This table, the single
source for their meaning, is exported by ``hullwatch dictionary`` and used to label decoded events.
Unused values are sent as 0.0. ``severity`` is the default severity an emitter should use.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..types import EventId, Severity


@dataclass(frozen=True, slots=True)
class EventValue:
    name: str  #: column name, with the unit as suffix where there is one (``leak_rate_kg_s``)
    unit: str  #: SI unit, "" for a count or a code
    doc: str


@dataclass(frozen=True, slots=True)
class EventDef:
    event_id: EventId
    severity: Severity
    subject: str  #: what the subject string names: "module", "sensor", "valve", "segment", ...
    doc: str
    values: tuple[EventValue, EventValue, EventValue]


_UNUSED = EventValue("unused", "", "always 0.0")


def _v(name: str, unit: str, doc: str) -> EventValue:
    return EventValue(name, unit, doc)


_LEAK_RATE = _v("leak_rate_kg_s", "kg/s", "estimated gas loss rate of the segment (positive = loss)")

EVENT_DEFS: dict[EventId, EventDef] = {d.event_id: d for d in (
    EventDef(EventId.LEAK_SUSPECTED, Severity.LOW, "module",
             "the sequential leak test of a segment passed its 'suspected' threshold; subject: the "
             "segment (see SEGMENT_SUBJECT)",
             (_LEAK_RATE, _v("test_statistic", "", "log-likelihood ratio of the sequential test"),
              _v("segment_volume_m3", "m^3", "free volume of the segment"))),
    EventDef(EventId.LEAK_CONFIRMED, Severity.HIGH, "module",
             "the sequential leak test confirmed a leak; subject: the segment (see SEGMENT_SUBJECT)",
             (_LEAK_RATE, _v("test_statistic", "", "log-likelihood ratio of the sequential test"),
              _v("segment_volume_m3", "m^3", "free volume of the segment"))),
    EventDef(EventId.LEAK_CLEARED, Severity.INFO, "module",
             "a suspected leak was not confirmed (test fell back below its lower threshold)",
             (_LEAK_RATE, _v("test_statistic", "", "log-likelihood ratio of the sequential test"),
              _v("segment_volume_m3", "m^3", "free volume of the segment"))),
    EventDef(EventId.RAPID_DEPRESS, Severity.HIGH, "module",
             "dP/dt below the rapid depressurisation threshold",
             (_v("dpdt_pa_s", "Pa/s", "pressure rate (negative = falling)"),
              _v("threshold_pa_s", "Pa/s", "alarm threshold, as a positive rate of fall"),
              _v("pressure_pa", "Pa", "voted pressure"))),
    EventDef(EventId.ISOLATION_STARTED, Severity.MEDIUM, "module",
             "isolation began: valves are being closed to split the station",
             (_v("candidates", "", "number of candidate modules"),
              _v("valves_closed", "", "number of valves commanded closed"),
              _LEAK_RATE)),
    EventDef(EventId.ISOLATION_STEP, Severity.INFO, "module",
             "one split observed; subject: a module of the segment still losing gas",
             (_v("segments", "", "segments now observed separately"),
              _v("step", "", "step number, from 1"),
              _LEAK_RATE)),
    EventDef(EventId.LEAK_LOCATED, Severity.HIGH, "module",
             "the leaking module is located; subject: that module",
             (_v("hole_diameter_m", "m", "equivalent hole diameter, choked orifice law"),
              _v("reserve_time_s", "s", "time until the segment reaches 520 mmHg at this rate"),
              _LEAK_RATE)),
    EventDef(EventId.SEGMENT_SEALED, Severity.MEDIUM, "module",
             "the leaking module (or the smallest segment holding it) is sealed off",
             (_v("modules_sealed", "", "number of modules in the sealed segment"),
              _v("segment_volume_m3", "m^3", "free volume sealed off"),
              _LEAK_RATE)),
    EventDef(EventId.ESTIMATE_UPDATED, Severity.INFO, "module",
             "after sealing, a refined estimate of the sealed leak from its segment's pressure fall, "
             "sent every estimate.period_s until within target; subject: the sealed segment",
             (_v("hole_diameter_m", "m", "equivalent hole diameter, choked orifice law"),
              _v("reserve_time_s", "s", "time until the sealed segment reaches 520 mmHg"),
              _v("hole_rel_sd", "", "relative 1-sigma uncertainty of the hole diameter"))),
    EventDef(EventId.SEGMENT_CUT_OFF, Severity.MEDIUM, "segment",
             "sealing the leak cut these healthy modules off from the rest of the station (the "
             "sealed module was their only way through); subject: the cut-off modules (see "
             "SEGMENT_SUBJECT). They are watched as their own segment",
             (_v("modules", "", "number of modules cut off"),
              _v("volume_m3", "m^3", "their free volume"), _UNUSED)),
    EventDef(EventId.VALVE_REOPENED, Severity.INFO, "valve",
             "a valve to a healthy module was reopened after isolation",
             (_v("valve_index", "", "index of the valve in the layout"), _UNUSED, _UNUSED)),
    EventDef(EventId.ISOLATION_FAILED, Severity.HIGH, "module",
             "isolation could not narrow the leak down (e.g. a valve failed); the leak stays reported",
             (_v("candidates", "", "candidate modules left"),
              _v("reason_code", "", "why: 1 no valve could be closed; other codes in the FDIR documentation"),
              _LEAK_RATE)),
    EventDef(EventId.LOCATE_ADVICE, Severity.MEDIUM, "valve",
             "slow-leak location schedule: close (or reopen) this hatch and watch the branch it cuts "
             "off; in advisory mode nothing is commanded and the crew moves the hatch",
             (_v("action", "", "0 close, 1 reopen"),
              _v("watch_s", "s", "how long the branch will be watched (statistical floor)"),
              _v("step", "", "step number of the schedule, from 1"))),
    EventDef(EventId.SENSOR_FAILED, Severity.MEDIUM, "sensor",
             "a sensor (pressure or gas temperature) is failed and left out of the vote",
             (_v("health_code", "", "SensorHealth code (1 range, 2 stale, 3 stuck, 4 disagree, 5 rate)"),
              _v("last_value", "", "last reading, in the channel's unit (Pa or K)"),
              _v("bias", "", "its learned unit bias, in the channel's unit (Pa or K)"))),
    EventDef(EventId.SENSOR_RECOVERED, Severity.INFO, "sensor",
             "a failed sensor is back in the vote",
             (_v("previous_health_code", "", "SensorHealth code it failed with"),
              _v("value", "", "current reading, in the channel's unit (Pa or K)"), _UNUSED)),
    EventDef(EventId.VALVE_FAILED, Severity.MEDIUM, "valve",
             "valve feedback disagreed with the command after the actuation timeout",
             (_v("commanded", "", "commanded position (0 closed, 1 open)"),
              _v("feedback", "", "measured position 0.0 .. 1.0"),
              _UNUSED)),
    EventDef(EventId.MODULE_UNOBSERVABLE, Severity.MEDIUM, "module",
             "no pressure sensor of the module is usable, or most read beyond their range: its "
             "pressure is not measured. It is never taken as a leak; in a segment with observable "
             "modules its pressure is taken from them, and alone it is left out of the leak tests "
             "(isolation may still locate a leak there by elimination)",
             (_v("pressure_sensors", "", "pressure sensors the module has"),
              _v("held_pressure_pa", "Pa", "last voted pressure, or the median of the readings "
                 "beyond the range"), _UNUSED)),
    EventDef(EventId.MODULE_OBSERVABLE, Severity.INFO, "module",
             "a pressure sensor of an unobservable module is usable again",
             (_v("voting", "", "pressure sensors now voting"),
              _v("pressure_pa", "Pa", "voted pressure"), _v("unobservable_s", "s", "how long it was unobservable"))),
    EventDef(EventId.VALVE_MOVED, Severity.INFO, "valve",
             "a hatch moved to an end position that nobody commanded (crew operation): it is "
             "accepted as the new commanded state and the station is re-segmented around it",
             (_v("position", "", "new position (0 closed, 1 open)"),
              _v("valve_index", "", "index of the valve in the layout"), _UNUSED)),
    EventDef(EventId.CYCLE_OVERRUN, Severity.LOW, "executive",
             "an executive cycle took longer than its period",
             (_v("cycle_time_s", "s", "duration of the overrunning cycle"),
              _v("period_s", "s", "configured cycle period"),
              _v("count", "", "overruns so far"))),
    EventDef(EventId.LINK_LOST, Severity.MEDIUM, "device",
             "the link to the sensor board is down",
             (_UNUSED, _UNUSED, _UNUSED)),
    EventDef(EventId.LINK_RESTORED, Severity.INFO, "device",
             "the link to the sensor board is back",
             (_UNUSED, _v("outage_s", "s", "how long the link was down"), _UNUSED)),
    EventDef(EventId.CONFIG_LOADED, Severity.INFO, "device",
             "a board configuration was loaded",
             (_v("generation", "", "configuration generation counter"), _UNUSED, _UNUSED)),
    EventDef(EventId.MODE_CHANGED, Severity.INFO, "fdir",
             "FDIR mode changed",
             (_v("old_mode", "", "FdirMode code"), _v("new_mode", "", "FdirMode code"), _UNUSED)),
    EventDef(EventId.PARAMS_LOADED, Severity.INFO, "fdir",
             "an FDIR parameter table was validated and activated",
             (_v("parameter_count", "", "number of parameters in the table"),
              _v("crc16", "", "CRC-16/CCITT-FALSE of the TOML text"), _UNUSED)),
    EventDef(EventId.TELECOMMANDS_LOST, Severity.LOW, "tc-link",
             "telecommands were dropped without a verification report of their own: the queue and "
             "its refusal ring were full, or the operating system dropped datagrams before the link "
             "read them (raised at most once a cycle)",
             (_v("count", "", "telecommands lost since the last report"),
              _v("total", "", "telecommands lost since start"), _UNUSED)),
)}
