"""The machine-readable telemetry dictionary, derived from the construct declarations.

:func:`build_dictionary` returns plain JSON-able data: the headers, every packet kind (name, APID,
type, service, subtype, SID or function id, each field with type and unit), every event (id,
name, severity, the names and units of its three values) and every enumeration on the wire.
``hullwatch dictionary`` prints it.
"""

from __future__ import annotations

import enum
from typing import Any

import construct as cs

from ...firmware import types
from ...firmware.telemetry import packets as P
from ...firmware.telemetry.events import EVENT_DEFS
from ...firmware.telemetry.fields import describe, subfields
from ...hal.interfaces import SampleStatus
from ...firmware.commanding.parameters import PARAMETER_IDS
from ...firmware.fdir.params import default_params, describe as describe_params, units as param_units

DICTIONARY_FORMAT = 1


def _field(con: cs.Construct) -> dict[str, Any]:
    inner = con.subcon if isinstance(con, cs.Renamed) else con
    out: dict[str, Any] = {"name": con.name, "type": describe(inner), "unit": getattr(con, "unit", "")}
    while isinstance(inner, (cs.Rebuild, cs.Renamed)):
        inner = inner.subcon
    if isinstance(inner, cs.Const):
        out["value"] = inner.value
    if con.docs:
        out["description"] = con.docs
    subs = subfields(inner)
    if subs:
        out["fields"] = [_field(s) for s in subs]
    return out


def fields_of(struct: cs.Construct) -> list[dict[str, Any]]:
    """The named fields of a declaration, in wire order, with type, unit and description."""
    return [_field(s) for s in subfields(struct)]


def _enum(cls: type[enum.IntEnum]) -> dict[str, int]:
    return {m.name: int(m) for m in cls}


def _parameters() -> list[dict[str, Any]]:
    """Every FDIR parameter with its service 20 id, unit and default value."""
    unit = param_units()
    out = []
    for section, table in describe_params(default_params()).items():
        for key, value in table.items():
            name = f"{section}.{key}"
            out.append({"id": PARAMETER_IDS.get(name), "name": name, "unit": unit.get(name, ""),
                        "default": list(value) if isinstance(value, tuple) else value})
    return out


def build_dictionary() -> dict[str, Any]:
    packets = []
    for d in P.PACKET_DEFS:
        entry: dict[str, Any] = {
            "name": d.name, "apid": d.apid, "type": d.packet_type.name, "service": d.service,
            "subtype": d.subtype, "description": d.doc,
        }
        if d.key is not None:
            entry["sid" if d.service == 3 else "function_id"] = d.key
        if d.periodic:
            entry["emitted"] = d.periodic
        entry["fields"] = fields_of(d.body)
        packets.append(entry)
    events = []
    for event_id in sorted(EVENT_DEFS):
        e = EVENT_DEFS[event_id]
        events.append({
            "id": int(e.event_id), "name": e.event_id.name, "severity": int(e.severity),
            "severity_name": e.severity.name, "subject": e.subject, "description": e.doc,
            "values": [{"name": v.name, "unit": v.unit, "description": v.doc} for v in e.values],
        })
    return {
        "format": DICTIONARY_FORMAT,
        "standard": "CCSDS 133.0-B-2 space packets, ECSS-E-ST-70-41C (PUS-C) secondary headers",
        "byte_order": "big-endian",
        "packet_error_control": "CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over the whole packet "
                                "before the field",
        "time": "CUC: u32 seconds since 1970-01-01T00:00:00Z, u16 fraction in 1/65536 s",
        "apids": {"command": P.APID_COMMAND, "housekeeping": P.APID_HOUSEKEEPING, "raw": P.APID_RAW,
                  "event": P.APID_EVENT},
        "headers": {
            "primary": fields_of(P.PRIMARY_HEADER),
            "tm_secondary": fields_of(P.TM_SECONDARY_HEADER),
            "tc_secondary": fields_of(P.TC_SECONDARY_HEADER),
        },
        "packets": packets,
        "events": events,
        "parameters": _parameters(),
        "enums": {cls.__name__: _enum(cls) for cls in (
            types.FdirMode, types.ModuleStatus, types.SensorHealth, types.ValveHealth,
            types.IsolationState, types.Severity, types.EventId, SampleStatus, P.PacketType,
            P.VerificationStage, P.VerificationError)},
    }
