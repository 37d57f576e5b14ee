"""Checks on everything a board says about itself: the host trusts no board blindly.

A board (or anything on the other end of the port) may send well-formed frames whose fields make
no sense: an active slot 7, a channel kind 9, a module volume of -1e308, NaN valid ranges, more
valves in a reply than it described. Left unchecked these crash a tool or, worse, silently
disable detection (a NaN range makes every reading "valid"). The host therefore applies to an
IDENTIFY_REPLY and to the DESCRIBE_* tables the same rules a configuration image must pass
(:func:`hullwatch.hal.config_validate.validate_config`), and refuses a board that breaks one with
:class:`BoardDescriptionError` naming the message, the entry and the field. The CLI maps it,
as every :class:`~hullwatch.hal.errors.LinkError`, to exit status 4.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from . import wire
from .config_model import (
    GENERATION_MAX,
    SAMPLE_RATE_RANGE_HZ,
    BoardConfig,
    ChannelConfig,
    ConfigSourceError,
    ModuleConfig,
    ValveConfig,
)
from .config_validate import samples_payload_size, validate_config
from .errors import ProtocolError
from .interfaces import ChannelKind, ValveKind

if TYPE_CHECKING:  # the description type lives in board_link, which imports this module
    from .board_link import BoardDescription

#: Slots a protocol-1 board has (A = 0, B = 1).
SLOT_COUNT = 2
_KNOWN_FLAGS = 0
for _f in wire.BoardFlags:
    _KNOWN_FLAGS |= int(_f)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

# validate_config's keys -> the wire message and field a board sent them in.
_TABLE_MESSAGES = {"modules": "MODULE_ENTRY", "channels": "CHANNEL_ENTRY", "valves": "VALVE_ENTRY"}
_FIELD_NAMES = {"offset": "cal_offset", "gain": "cal_gain", "temp_coeff": "cal_tempco",
                "modules": "module_a/module_b"}


class BoardDescriptionError(ProtocolError):
    """A board described itself with a value no valid board can have. ``field`` names the
    message and field (``IDENTIFY_REPLY.active_slot``, ``CHANNEL_ENTRY 3.valid_min``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _fail(who: str, field: str, message: str) -> BoardDescriptionError:
    return BoardDescriptionError(f"{who} sent an impossible {field}: {message}", field)


def check_identity(ident: wire.IdentifyReply, who: str = "the board") -> None:
    """Raise BoardDescriptionError when an IDENTIFY_REPLY (of a board of this protocol major)
    carries a value outside what docs/protocol.md allows."""
    def bad(field: str, message: str) -> BoardDescriptionError:
        return _fail(who, f"IDENTIFY_REPLY.{field}", message)

    if not _ID_RE.match(ident.board_id) or not ident.board_id.isascii():
        raise bad("board_id", f"expected 1-63 ASCII letters, digits, '_', '-', '.', got {ident.board_id!r}")
    if ident.slot_count != SLOT_COUNT:
        raise bad("slot_count", f"expected {SLOT_COUNT}, got {ident.slot_count}")
    if ident.slot_size == 0:
        raise bad("slot_size", "expected at least 1 byte, got 0")
    if not 1 <= ident.block_size <= wire.MAX_BLOCK:
        raise bad("block_size", f"expected 1..{wire.MAX_BLOCK}, got {ident.block_size}")
    if ident.max_payload < wire.MAX_PAYLOAD:
        raise bad("max_payload", f"expected >= {wire.MAX_PAYLOAD} for protocol 1, got {ident.max_payload}")
    if ident.flags & ~_KNOWN_FLAGS:
        raise bad("flags", f"unknown bits {ident.flags & ~_KNOWN_FLAGS:#04x} set (known: {_KNOWN_FLAGS:#04x})")
    configured = bool(ident.flags & wire.BoardFlags.CONFIG_VALID)
    if ident.active_slot not in (0, 1, wire.NO_SLOT):
        raise bad("active_slot", f"expected 0 (A), 1 (B) or 0xFF (none), got {ident.active_slot}")
    if configured and ident.active_slot == wire.NO_SLOT:
        raise bad("active_slot", "CONFIG_VALID is set but no slot is active (0xFF)")
    if not configured and ident.active_slot != wire.NO_SLOT:
        raise bad("active_slot", f"slot {ident.active_slot} is active but CONFIG_VALID is clear")
    if configured:
        if not 1 <= ident.generation <= GENERATION_MAX:
            raise bad("generation", f"expected 1..{GENERATION_MAX} for a running image, got {ident.generation}")
        lo, hi = SAMPLE_RATE_RANGE_HZ
        if not lo <= ident.sample_rate_hz <= hi:
            raise bad("sample_rate_hz", f"expected {lo}..{hi} Hz, got {ident.sample_rate_hz}")
        if ident.module_count == 0:
            raise bad("module_count", "expected at least one module in a configured board, got 0")
        size = samples_payload_size(ident.channel_count, ident.valve_count)
        if size > wire.MAX_PAYLOAD:
            raise bad("channel_count", f"{ident.channel_count} channels and {ident.valve_count} valves "
                      f"need a SAMPLES payload of {size} bytes, more than MAX_PAYLOAD {wire.MAX_PAYLOAD}")


def check_description(description: "BoardDescription", who: str = "the board") -> BoardConfig:
    """Check the DESCRIBE_* tables of a board (and its identity); return them as a BoardConfig.

    Every entry must carry the index it was asked for, a known kind, module indices inside the
    module table, and values that pass the configuration image's validation (finite volumes and
    ranges inside the physical bounds, valid_min < valid_max, a calibration that can produce a
    valid reading, ids by the naming rule, no duplicates, timeouts in range).

    Raises:
        BoardDescriptionError: naming the message, the entry and the field.
    """
    ident = description.identity
    check_identity(ident, who)
    for name, entries, count in (("MODULE_ENTRY", description.modules, ident.module_count),
                                 ("CHANNEL_ENTRY", description.channels, ident.channel_count),
                                 ("VALVE_ENTRY", description.valves, ident.valve_count)):
        if len(entries) != count:
            raise _fail(who, f"{name} count", f"IDENTIFY_REPLY says {count}, got {len(entries)} entries")
        for i, e in enumerate(entries):
            if e.index != i:
                raise _fail(who, f"{name} {i}.index", f"asked for entry {i}, got entry {e.index}")
    names = [m.name for m in description.modules]

    def module(index: int, field: str) -> str:
        if index >= len(names):
            raise _fail(who, field, f"module index {index}; the module table has {len(names)} entries")
        return names[index]

    channels = []
    for c in description.channels:
        where = f"CHANNEL_ENTRY {c.index} ({c.id!r})"
        try:
            kind = ChannelKind(c.kind)
        except ValueError:
            raise _fail(who, f"{where}.kind", f"expected 0 (pressure), 1 (temperature) or 2 (flow), "
                        f"got {c.kind}") from None
        channels.append(ChannelConfig(c.id, kind, module(c.module, f"{where}.module"), c.cal_offset,
                                      c.cal_gain, c.cal_tempco, c.valid_min, c.valid_max))
    valves = []
    for v in description.valves:
        where = f"VALVE_ENTRY {v.index} ({v.id!r})"
        try:
            vkind = ValveKind(v.kind)
        except ValueError:
            raise _fail(who, f"{where}.kind", f"expected 0 (hatch), 1 (valve) or 2 (repress), "
                        f"got {v.kind}") from None
        b = None if v.module_b == wire.NO_MODULE else module(v.module_b, f"{where}.module_b")
        valves.append(ValveConfig(v.id, vkind, module(v.module_a, f"{where}.module_a"), b,
                                  v.actuation_timeout_s))
    config = BoardConfig(
        board_id=ident.board_id, generation=ident.generation, sample_rate_hz=ident.sample_rate_hz,
        oversampling=1, hil_allowed=bool(ident.flags & wire.BoardFlags.HIL_ALLOWED),
        modules=tuple(ModuleConfig(m.name, m.volume_m3) for m in description.modules),
        channels=tuple(channels), valves=tuple(valves))
    try:
        validate_config(config, source="")
    except ConfigSourceError as exc:
        raise _fail(who, _wire_field(exc.key or ""), _reason(exc)) from exc
    return config


def _wire_field(key: str) -> str:
    """``channels[3].gain`` -> ``CHANNEL_ENTRY 3.cal_gain`` (the field as the board sent it)."""
    m = re.fullmatch(r"(modules|channels|valves)\[(\d+)\](?:\.(\w+))?", key)
    if not m:
        return f"IDENTIFY_REPLY.{key}" if key else "description"
    table, index, field = m.groups()
    out = f"{_TABLE_MESSAGES[table]} {index}"
    return f"{out}.{_FIELD_NAMES.get(field, field)}" if field else out


def _reason(exc: ConfigSourceError) -> str:
    text = str(exc)
    prefix = f"{exc.key}: " if exc.key else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def check_flash_info(info: wire.FlashInfoReply, who: str = "the board") -> None:
    """Raise BoardDescriptionError when a FLASH_INFO_REPLY names slots a board cannot have."""
    def bad(field: str, message: str) -> BoardDescriptionError:
        return _fail(who, f"FLASH_INFO_REPLY.{field}", message)

    if len(info.slots) != SLOT_COUNT:
        raise bad("slot_count", f"expected {SLOT_COUNT}, got {len(info.slots)}")
    for field in ("active_slot", "writing_slot"):
        value = getattr(info, field)
        if value not in (0, 1, wire.NO_SLOT):
            raise bad(field, f"expected 0 (A), 1 (B) or 0xFF (none), got {value}")
    if not 1 <= info.block_size <= wire.MAX_BLOCK:
        raise bad("block_size", f"expected 1..{wire.MAX_BLOCK}, got {info.block_size}")
    for i, s in enumerate(info.slots):
        if s.state not in tuple(wire.SlotState):
            raise bad(f"slots[{i}].state", f"expected 0..4 (SlotState), got {s.state}")
