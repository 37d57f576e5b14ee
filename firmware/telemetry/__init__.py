"""Telemetry and telecommand packets (CCSDS Space Packets + PUS-C), emitter, sinks.

- packets.py: the construct declarations (single source), report/command dataclasses,
  :func:`encode`, :func:`decode`; headers.py holds the framing (primary and secondary headers,
  CRC), tc_packets.py the telecommand and verification layouts.
- fastcodec.py: struct codecs derived from those declarations (per-cycle raw samples, bulk).
- events.py: meaning and units of each event's values.
- emitter.py: :class:`TelemetryEmitter`, what the executive calls each cycle.
- sinks.py: capture file, UDP, callback and list sinks (never raise into the loop).
- sinks.py also holds :class:`CaptureWriter` (writes a capture file, raises OSError).
- layoutjson.py: the device Layout as JSON for the layout report.

Reading captures (``iter_capture``, ``iter_packet_batches``, the numpy bulk decoder) and the
telemetry dictionary are ground work: they live in :mod:`hullwatch.tools.ground`, so the flight
software imports no numpy. Their former names here (``iter_capture``, ``iter_packet_batches``,
``iter_raw_packets``, ``PacketBatch``, ``Skip``, ``CapturedPacket``, and the modules ``capture``,
``bulk``, ``dictionary``) still resolve for one release, with a DeprecationWarning, only when used:
importing this package loads none of the ground code.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

from ..types import EventId, FdirMode, IsolationState, ModuleStatus, SensorHealth, Severity, ValveHealth
from .emitter import LAYOUT_PERIOD_S, TelemetryEmitter
from .events import EVENT_DEFS, EventDef, EventValue
from .fastcodec import MessageCounters, SequenceCounters, fast_decode, fast_encode
from .rawencode import RawSampleEncoder
from .layoutjson import layout_from_json, layout_to_json
from .packets import (
    APID_COMMAND,
    APID_EVENT,
    APID_HOUSEKEEPING,
    APID_RAW,
    PACKET_DEFS,
    Acknowledge,
    AliveReport,
    AreYouAlive,
    DisableEvents,
    DisableHousekeeping,
    EnableEvents,
    EnableHousekeeping,
    Event,
    Housekeeping,
    LayoutReport,
    LoadFdirParams,
    ModuleHk,
    Packet,
    PacketDef,
    PacketType,
    OneShotHousekeeping,
    ParameterReport,
    RawSamples,
    ReportParameter,
    SetFdirMode,
    SetHousekeepingPeriod,
    SetParameter,
    ValveCommand,
    ValveHk,
    VerificationError,
    VerificationReport,
    VerificationStage,
    crc16,
    decode,
    encode,
    make_packet,
)
from .sinks import CallbackSink, CaptureSink, CaptureWriter, ListSink, Sink, UdpSink

Emitter = TelemetryEmitter

__all__ = [
    "EventId", "FdirMode", "IsolationState", "ModuleStatus", "SensorHealth", "Severity", "ValveHealth",
    "CaptureWriter", "LAYOUT_PERIOD_S", "TelemetryEmitter", "Emitter", "EVENT_DEFS", "EventDef",
    "EventValue", "MessageCounters", "RawSampleEncoder", "SequenceCounters", "fast_decode", "fast_encode",
    "layout_from_json", "layout_to_json", "APID_COMMAND", "APID_EVENT", "APID_HOUSEKEEPING", "APID_RAW",
    "PACKET_DEFS", "Acknowledge", "AliveReport", "AreYouAlive", "Event", "Housekeeping", "LayoutReport",
    "LoadFdirParams", "ModuleHk", "Packet", "PacketDef", "PacketType", "RawSamples", "SetFdirMode",
    "ValveCommand", "ValveHk", "VerificationError", "VerificationReport", "VerificationStage", "crc16",
    "decode", "encode", "make_packet", "DisableEvents", "DisableHousekeeping", "EnableEvents",
    "EnableHousekeeping", "OneShotHousekeeping", "ParameterReport", "ReportParameter", "SetHousekeepingPeriod", "SetParameter", "CallbackSink", "CaptureSink", "ListSink", "Sink", "UdpSink",
]

# -- deprecated aliases of what moved to the ground package --------------------------------------
# Resolved by name only when used (a string, never an import statement here): the flight software
# does not depend on the ground code, and importing it loads none of it.
_GROUND = "hullwatch.tools.ground"
_MOVED_NAMES = {name: _GROUND for name in (
    "iter_capture", "iter_packet_batches", "iter_raw_packets", "PacketBatch", "Skip", "CapturedPacket")}
_MOVED_MODULES = {f"{__name__}.{leaf}": f"{_GROUND}.{leaf}" for leaf in ("capture", "bulk", "dictionary")}


def __getattr__(name: str) -> Any:
    if name in _MOVED_NAMES:
        warnings.warn(f"{__name__}.{name} is deprecated; import it from {_MOVED_NAMES[name]}",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves the former module paths (``...telemetry.capture`` etc.) to the ground modules."""

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in _MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = _MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} is deprecated; import {new} instead", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported under its new name."""


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
