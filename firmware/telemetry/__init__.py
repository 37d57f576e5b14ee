"""Telemetry and telecommand packets (CCSDS Space Packets + PUS-C), emitter, sinks, captures.

- packets.py: the construct declarations (single source), report/command dataclasses,
  :func:`encode`, :func:`decode`; headers.py holds the framing (primary and secondary headers,
  CRC), tc_packets.py the telecommand and verification layouts.
- fastcodec.py: struct codecs derived from those declarations (per-cycle raw samples, bulk).
- events.py: meaning and units of each event's values.
- emitter.py: :class:`TelemetryEmitter`, what the executive calls each cycle.
- sinks.py: capture file, UDP, callback and list sinks (never raise into the loop).
- capture.py: :class:`CaptureWriter`, :func:`iter_capture` (streaming, resynchronising),
  :func:`iter_packet_batches` (bulk, numpy).
- layoutjson.py: the device Layout as JSON for the layout report.
"""

from ..types import EventId, FdirMode, IsolationState, ModuleStatus, SensorHealth, Severity, ValveHealth
from .capture import CapturedPacket, CaptureWriter, PacketBatch, Skip, iter_capture, iter_packet_batches, iter_raw_packets
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
from .sinks import CallbackSink, CaptureSink, ListSink, Sink, UdpSink

Emitter = TelemetryEmitter

__all__ = [
    "EventId", "FdirMode", "IsolationState", "ModuleStatus", "SensorHealth", "Severity", "ValveHealth",
    "CapturedPacket", "CaptureWriter", "PacketBatch", "Skip", "iter_capture", "iter_packet_batches",
    "iter_raw_packets", "LAYOUT_PERIOD_S", "TelemetryEmitter", "Emitter", "EVENT_DEFS", "EventDef",
    "EventValue", "MessageCounters", "RawSampleEncoder", "SequenceCounters", "fast_decode", "fast_encode",
    "layout_from_json", "layout_to_json", "APID_COMMAND", "APID_EVENT", "APID_HOUSEKEEPING", "APID_RAW",
    "PACKET_DEFS", "Acknowledge", "AliveReport", "AreYouAlive", "Event", "Housekeeping", "LayoutReport",
    "LoadFdirParams", "ModuleHk", "Packet", "PacketDef", "PacketType", "RawSamples", "SetFdirMode",
    "ValveCommand", "ValveHk", "VerificationError", "VerificationReport", "VerificationStage", "crc16",
    "decode", "encode", "make_packet", "DisableEvents", "DisableHousekeeping", "EnableEvents",
    "EnableHousekeeping", "OneShotHousekeeping", "ParameterReport", "ReportParameter", "SetHousekeepingPeriod", "SetParameter", "CallbackSink", "CaptureSink", "ListSink", "Sink", "UdpSink",
]
