"""The emulated board's sensor channels: conversions through the active image's calibration and
the per-channel bookkeeping a SAMPLES reply reports (docs/protocol.md, "DESCRIBE_CHANNEL",
"HIL stimulation").

A physical value becomes 24-bit ADC counts by the inverse calibration (rounded, clamped to the
ADC range) and the counts become the reported value (stored as binary32, what the wire carries),
so calibration, quantisation and saturation are in the loop; a value outside the channel's
valid range reads INVALID. Temperature channels convert first, so a pressure channel's tempco
uses its module's new temperature.

The state is kept as parallel columns (lists in board channel order): the per-cycle path works
on columns, and :class:`~hullwatch.hal.wire.SamplesCodec` packs them as they are.
"""

from __future__ import annotations

import math
from array import array
from typing import Sequence

from ..hal.config_model import ChannelConfig, adc_counts, calibrated_values
from ..hal.interfaces import ChannelKind
from ..hal.wire import AGE_NEVER, SampleState

#: Physical values the board's sensors see outside HIL mode (a quiet, nominal cabin).
NOMINAL_INPUT = {ChannelKind.PRESSURE: 101_325.0, ChannelKind.TEMPERATURE: 295.0, ChannelKind.FLOW: 0.0}

_OK = int(SampleState.OK)
_STALE = int(SampleState.STALE)
_INVALID = int(SampleState.INVALID)
_NO_DATA = int(SampleState.NO_DATA)


class ChannelBank:
    """The board's channels of one configuration, as columns.

    Columns (board order): ``raw`` (ADC counts), ``value`` (calibrated, SI, binary32),
    ``time_us`` (board time of the latest conversion, -1 = never), ``state`` (SampleState of the
    latest conversion), ``fresh`` (converted since the last report). ``nominal`` is what each
    channel reads outside HIL mode.
    """

    __slots__ = ("n", "nominal", "raw", "value", "time_us", "state", "fresh", "_offset", "_offset_plain", "_gain",
                 "_vmin", "_vmax", "_plain", "_compensated", "_never", "_no_data",
                 "_not_fresh", "_all_fresh")

    def __init__(self, channels: Sequence[ChannelConfig]) -> None:
        n = self.n = len(channels)
        first_temp: dict[str, int] = {}
        for i, c in enumerate(channels):
            if c.kind == ChannelKind.TEMPERATURE:
                first_temp.setdefault(c.module, i)
        self.nominal = [NOMINAL_INPUT[c.kind] for c in channels]
        self.raw = [0] * n
        # binary32 storage: what the wire carries, so the INVALID check sees the host's value.
        self.value = array("f", [0.0] * n)
        self.time_us = [-1] * n
        self.fresh = [False] * n
        self.state = [_NO_DATA] * n
        self._never = [-1] * n
        self._no_data = [_NO_DATA] * n
        self._not_fresh = [False] * n
        self._all_fresh = [True] * n
        # The calibration as columns (board order): a cycle converts every channel with one
        # adc_counts / calibrated_values call instead of a Python loop per channel.
        self._offset = [c.offset for c in channels]
        # The same offsets with -0.0 read as 0.0, for conversions without a temperature term:
        # offset + gain * counts then equals offset + gain * counts + 0.0 bit for bit (the sum
        # with a zero drift), and the counts are unchanged (only a -0.0 input differs, and it
        # reads COUNTS_MIN either way). Plain and compensated channels give the same bytes.
        self._offset_plain = [c.offset + 0.0 for c in channels]
        self._gain = [c.gain for c in channels]
        self._vmin = [c.valid_min for c in channels]
        self._vmax = [c.valid_max for c in channels]
        # A pressure or flow channel with a tempco is compensated with its module's temperature
        # (the first temperature channel of the module), so it converts after the temperature
        # channels: (index, config, temperature channel). A zero tempco, or no temperature
        # channel in its module, is no compensation; temperature channels are never compensated.
        self._compensated = [
            (i, c, first_temp[c.module]) for i, c in enumerate(channels)
            if c.kind != ChannelKind.TEMPERATURE and c.temp_coeff and c.module in first_temp]
        compensated = {i for i, _, _ in self._compensated}
        #: the channels converted without compensation, board order
        self._plain = [i for i in range(n) if i not in compensated]

    def restart(self) -> None:
        """Forget every conversion (entering HIL mode: NO_DATA until the first stimulus)."""
        self.time_us[:] = self._never
        self.fresh[:] = self._not_fresh
        self.state[:] = self._no_data

    def convert(self, values: Sequence[float], first: int, t_us: int) -> None:
        """One conversion at board time ``t_us`` of channels ``first .. first + len(values) - 1``
        (physical values, SI). NaN means "not stimulated": no conversion, the channel keeps its
        last sample (and reads STALE at the next report). The caller checks the range."""
        n = self.n
        if first or len(values) != n:
            nan = math.nan
            values = [nan] * first + list(values) + [nan] * (n - first - len(values))
        total = sum(values)
        if total == total and not self._compensated:
            # The usual cycle: every channel stimulated (a NaN makes the sum NaN), none
            # compensated: whole columns, no gathering.
            self._store(None, values, None, t_us)
            return
        plain = [i for i in self._plain if values[i] == values[i]]
        if plain:
            self._store(plain, [values[i] for i in plain], None, t_us)
        if self._compensated:
            # After the temperature channels: the drift uses the module temperature as just
            # converted (or as last converted when its channel was not stimulated this time).
            state, value = self.state, self.value
            comp = [(i, c, ti) for i, c, ti in self._compensated if values[i] == values[i]]
            if comp:
                self._store([i for i, _, _ in comp], [values[i] for i, _, _ in comp],
                            [c.drift(value[ti]) if state[ti] == _OK else 0.0 for _, c, ti in comp], t_us)

    def _store(self, idx: list[int] | None, xs: Sequence[float], drifts: Sequence[float] | None,
               t_us: int) -> None:
        """Convert ``xs`` (no NaN) for channels ``idx`` (None: every channel, in order) with
        ``drifts`` (None: no temperature term) and store counts, binary32 value, state and time."""
        all_offsets = self._offset if drifts is not None else self._offset_plain
        if idx is None:
            offsets, gains, vmin, vmax = all_offsets, self._gain, self._vmin, self._vmax
        else:
            offsets = [all_offsets[i] for i in idx]
            gains = [self._gain[i] for i in idx]
            vmin = [self._vmin[i] for i in idx]
            vmax = [self._vmax[i] for i in idx]
        counts = adc_counts(xs, offsets, gains, drifts)
        # The stored binary32 value (what the wire carries) decides INVALID.
        value32 = array("f", calibrated_values(counts, offsets, gains, drifts))
        state = [_OK if lo <= v <= hi else _INVALID for v, lo, hi in zip(value32, vmin, vmax)]
        if idx is None:
            # Every column new (the lists are the bank's own: nothing else holds them).
            self.raw = counts
            self.value = value32
            self.state = state
            self.time_us = [t_us] * self.n
            self.fresh = self._all_fresh[:]
            return
        raw_out, value_out, state_out, times, fresh = self.raw, self.value, self.state, self.time_us, self.fresh
        for k, i in enumerate(idx):
            raw_out[i] = counts[k]
            value_out[i] = value32[k]
            state_out[i] = state[k]
            times[i] = t_us
            fresh[i] = True

    def report(self, now_us: int) -> tuple[list[int], list[int]]:
        """The ``age_us`` and ``status`` columns of a SAMPLES reply at board time ``now_us``:
        a channel never converted reads NO_DATA (age AGE_NEVER), one converted since the last
        report its conversion's state, any other STALE. Marks every conversion reported."""
        n, times, fresh = self.n, self.time_us, self.fresh
        t0 = times[0] if n else 0
        if times.count(t0) == n:
            ages = [_age(now_us, t0)] * n  # one conversion time (every cycle converts them all)
        else:
            ages = [_age(now_us, t) for t in times]
        if False in fresh:
            # A channel never converted holds NO_DATA (time -1): it reads NO_DATA as it is.
            status = [st if f or st == _NO_DATA else _STALE for st, f in zip(self.state, fresh)]
        else:
            status = self.state[:]  # every channel converted since the last report
        fresh[:] = self._not_fresh
        return ages, status


def _age(now_us: int, t_us: int) -> int:
    """The ``age_us`` of a conversion at ``t_us`` (-1 = never) reported at ``now_us``."""
    if t_us < 0:
        return AGE_NEVER
    age = now_us - t_us
    return age if age < AGE_NEVER else AGE_NEVER - 1
