"""The hal exception tree.

Only the CLI turns these into exit codes and messages. Library code raises them with the cause
chained (``raise DeviceNotFound(...) from exc``). The flight loop never sees them: a Device's
per-cycle methods (``read``, ``command_valve``) turn I/O faults into sample status instead.
"""

from __future__ import annotations


class HalError(Exception):
    """Base of every error raised by hullwatch.hal and its backends."""


class UnknownSchemeError(HalError, ValueError):
    """A device URL names a scheme no backend handles."""


class DeviceUrlError(HalError, ValueError):
    """A device URL is malformed (bad query parameter, missing path...)."""


class DeviceOpenError(HalError):
    """The device could not be opened. ``hint`` says what a user can do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} (hint: {hint})")
        self.hint = hint


class DeviceNotFound(DeviceOpenError):
    """The port or file behind the URL does not exist."""


class DevicePermissionError(DeviceOpenError, PermissionError):
    """The port exists but this user may not open it."""


class LinkError(HalError):
    """The link to a board failed (lost, framing, protocol)."""


class LinkTimeout(LinkError, TimeoutError):
    """A request got no response within its timeout, after all retries."""


class ProtocolError(LinkError):
    """The peer answered with something the protocol does not allow (version, CRC, sequence)."""


class NakError(LinkError):
    """The board refused a request. ``code`` is the board's error code, ``reason`` its text."""

    def __init__(self, code: int, reason: str, request: str = "") -> None:
        what = f"{request}: " if request else ""
        super().__init__(f"{what}board refused with NAK {code:#04x}: {reason}")
        self.code = code
        self.reason = reason


class ConfigImageError(HalError, ValueError):
    """A board configuration image or its TOML source is invalid. The message names the field."""
