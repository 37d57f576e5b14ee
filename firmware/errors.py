"""The firmware exception tree.

Raised at the edges only (loading parameters, decoding packets on the ground side). Nothing in the
per-cycle path raises.
"""

from __future__ import annotations


class FirmwareError(Exception):
    """Base of every error raised by hullwatch.firmware."""


class TelemetryError(FirmwareError):
    """A packet could not be built or decoded."""


class PacketDecodeError(TelemetryError, ValueError):
    """Bytes are not a valid packet. ``offset`` is the byte offset (in the buffer or file) where the
    problem was found, when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"at byte offset {offset}: {message}")
        self.offset = offset


class ParameterError(FirmwareError, ValueError):
    """An FDIR parameter table is invalid. The message names the file and the key."""

    def __init__(self, message: str, source: str | None = None, key: str | None = None) -> None:
        where = ""
        if source:
            where += f"{source}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.source = source
        self.key = key


class CommandLinkError(FirmwareError):
    """The telecommand link cannot be opened. ``bad_url`` is True when the URL itself is wrong
    (bad input), False when the address cannot be bound (in use, not local)."""

    def __init__(self, message: str, bad_url: bool = False) -> None:
        super().__init__(message)
        self.bad_url = bad_url
