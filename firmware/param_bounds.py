"""Bounds on an FDIR parameter table as a whole: what it costs to run, and values that only make
sense together. Each key's own range is checked where it is declared (fdir/params.py); this
module adds, before a table is activated (as a cFS table validation function would):

* **Cost.** The leak detector holds, per series, the samples of its longest window (or of the
  rapid-depress and warm-up windows, or of the slow test's decimation interval) at the FDIR rate,
  and evaluates each window on a fixed schedule. A table that asks for ``period_s = 0.001`` and a
  one-day window would hold 86.4 million samples per series (gigabytes before the first cycle).
  Limits: MAX_SAMPLES_HELD samples per series and MAX_WINDOWS windows. The schedule needs no
  limit of its own: window strides are powers of two (:func:`window_stride`), so it repeats after
  the longest stride, a tenth of the samples held at most.
* **Consistency.** ``isolation.observe_timeout_s`` at least ``isolation.observe_min_s`` (else
  isolation times out before it may decide); the sensor timers (``stale_fail_s``,
  ``stuck_fail_s``, ``disagree_fail_s``) at least one FDIR period (a timer shorter than a cycle fires on the first late sample); the rapid-depress
  window no longer than the longest leak window; the layout report period no shorter than the
  housekeeping period.

:func:`check_table` raises :class:`~hullwatch.firmware.errors.ParameterError` naming the source
and the key, like every other parameter error (``hullwatch run --fdir`` exits 2).
"""

from __future__ import annotations

from typing import Any

from .errors import ParameterError

#: Samples one series may hold (the longest window over the FDIR period): 2^20, e.g. 2048 s at
#: 500 Hz. Each module and segment keeps a few such series.
MAX_SAMPLES_HELD = 1 << 20
#: Leak-test windows in a table.
MAX_WINDOWS = 32


def window_stride(n: int) -> int:
    """Samples between two evaluations of a leak window of ``n`` samples: a tenth of it (its
    statistic moves little in that time), rounded down to a power of two and at least 1, so the
    strides of any set of windows divide each other and their schedule repeats after the
    longest stride, whatever the windows and the period."""
    return 1 << (max(1, n // 10).bit_length() - 1)


def check_table(p: Any, source: str) -> None:
    """Raise ParameterError (``source``, key) when the table ``p`` (an FdirParams) would cost
    more than the limits above or holds values that contradict each other."""
    e, s, leak, iso = p.executive, p.sensors, p.leak, p.isolation
    dt = e.period_s

    def fail(key: str, message: str) -> ParameterError:
        return ParameterError(message, source, key)

    if len(leak.windows_s) > MAX_WINDOWS:
        raise fail("leak.windows_s", f"at most {MAX_WINDOWS} windows, got {len(leak.windows_s)}")
    for key, seconds in (("leak.windows_s", max(leak.windows_s)), ("leak.rapid_window_s", leak.rapid_window_s),
                         ("leak.warmup_s", leak.warmup_s),
                         ("slowleak.decimation_s", p.slowleak.decimation_s)):
        held = round(seconds / dt)
        if held > MAX_SAMPLES_HELD:
            raise fail(key, f"{seconds:g} s at executive.period_s = {dt:g} s holds {held:,} samples per "
                       f"series, more than {MAX_SAMPLES_HELD:,}; use a longer period or a shorter window")

    if iso.observe_timeout_s < iso.observe_min_s:
        raise fail("isolation.observe_timeout_s", f"expected at least isolation.observe_min_s "
                   f"({iso.observe_min_s:g} s), got {iso.observe_timeout_s:g} s")
    for key, value in (("sensors.stale_fail_s", s.stale_fail_s), ("sensors.stuck_fail_s", s.stuck_fail_s),
                       ("sensors.disagree_fail_s", s.disagree_fail_s)):
        if value < dt:
            raise fail(key, f"expected at least one FDIR period (executive.period_s = {dt:g} s), "
                       f"got {value:g} s")
    if leak.rapid_window_s > max(leak.windows_s):
        raise fail("leak.rapid_window_s", f"expected at most the longest leak window "
                   f"({max(leak.windows_s):g} s), got {leak.rapid_window_s:g} s")
    if e.layout_period_s < e.housekeeping_period_s:
        raise fail("executive.layout_period_s", f"expected at least executive.housekeeping_period_s "
                   f"({e.housekeeping_period_s:g} s), got {e.layout_period_s:g} s")
