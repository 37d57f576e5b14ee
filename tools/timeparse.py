"""The one time and duration syntax of every verb (``run --until``, ``decode``/``plot``
``--since``/``--until``, ...).

A duration is a number of seconds (``3600``, ``90.5``) or numbers with units, summed: ``90s``,
``15m`` (or ``15min``), ``2h``, ``1d``, ``1h30m``, ``1h 30m``. A time is a duration counted from
mission time 0, or an ISO 8601 UTC time (``2018-08-29T21:00:00Z``; without a zone, UTC).

Errors are :class:`~hullwatch.tools.errors.InputError` naming the flag and the value; the
``*_arg`` functions are argparse ``type=`` callables that check the text when the arguments are
parsed (a typo is a usage error, exit 2, before anything runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Callable

from .errors import InputError

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(min|sec|s|m|h|d)")
_EXPECTED_DURATION = "a duration such as 3600, 90s, 15m, 2h, 1h30m or 1d"
_EXPECTED_TIME = f"mission time as {_EXPECTED_DURATION}, or ISO UTC such as 2018-08-29T21:00:00Z"


def _seconds(text: str) -> float | None:
    """Seconds for a plain number or a sum of numbers with units; None if it is neither."""
    s = text.strip().lower()
    try:
        return float(s)
    except ValueError:
        pass
    compact = s.replace(" ", "")
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_duration(text: str, flag: str = "--until") -> float:
    """A duration (see the module docstring) -> seconds > 0.

    Raises:
        InputError: naming ``flag`` and ``text`` and what was expected.
    """
    what = f"{flag} {text!r}" if flag else repr(text)
    value = _seconds(text)
    if value is None:
        raise InputError(f"{what}: expected {_EXPECTED_DURATION}")
    if not value > 0 or value != value or value == float("inf"):
        raise InputError(f"{what}: expected a finite duration > 0")
    return value


def parse_time_spec(text: str, flag: str = "--since") -> tuple[str, float]:
    """A time -> ``("mission", seconds)`` or ``("utc", seconds since 1970)``.

    Raises:
        InputError: naming ``flag`` and ``text``.
    """
    what = f"{flag} {text!r}" if flag else repr(text)
    value = _seconds(text)
    if value is not None:
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"{what}: expected a finite time")
        return "mission", value
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"{what}: expected {_EXPECTED_TIME}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return "utc", when.timestamp()


def parse_time(text: str, epoch_utc: float | None = None, flag: str = "time") -> float:
    """A time -> mission seconds; an ISO UTC time needs ``epoch_utc`` (UTC of mission time 0).

    Raises:
        InputError: a malformed time, or a UTC time without an epoch.
    """
    kind, value = parse_time_spec(text, flag)
    if kind == "mission":
        return value
    if epoch_utc is None:
        raise InputError(f"{flag + ' ' if flag else ''}{text!r}: a UTC time needs the capture's epoch")
    return value - epoch_utc


def _argparse_type(fn: Callable[[str], object], name: str) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return fn(text)
        except InputError as exc:  # argparse prefixes "argument --flag: "
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


#: argparse ``type=`` for a duration flag: seconds (float)
duration_arg = _argparse_type(lambda t: parse_duration(t, ""), "duration")
#: argparse ``type=`` for a time flag: ``("mission", s)`` or ``("utc", s since 1970)``
time_arg = _argparse_type(lambda t: parse_time_spec(t, ""), "time")
