"""The tools exception tree, and the exit statuses the CLI maps errors to.

Exit statuses (documented in the README):
    0  success
    1  the job ran but its verdict is negative (e.g. ``rerun`` found differences)
    2  bad input: usage, a malformed scenario, parameter, config or capture file; a missing file
    3  a damaged capture: everything intact was decoded, skipped byte ranges reported on stderr
    4  a device or link problem (port missing, permission, board not answering, NAK)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_BAD_INPUT = 2
EXIT_DAMAGED = 3
EXIT_DEVICE = 4


class ToolError(Exception):
    """Base of every error raised by hullwatch.tools. ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_BAD_INPUT


class InputError(ToolError, ValueError):
    """A file or argument given by the user is invalid."""


class DeviceProblem(ToolError):
    exit_code = EXIT_DEVICE
