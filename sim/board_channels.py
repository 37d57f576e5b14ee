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

from ..hal.config_model import COUNTS_MAX, REFERENCE_TEMPERATURE_K, ChannelConfig
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

    __slots__ = ("n", "nominal", "raw", "value", "time_us", "state", "fresh", "_plan", "_never",
                 "_no_data", "_stale", "_not_fresh")

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
        # Temperature channels first: a pressure channel's tempco uses its module's temperature.
        order = sorted(range(n), key=lambda i: channels[i].kind != ChannelKind.TEMPERATURE)
        # Per channel, in conversion order: (index, offset, gain, tempco, its temperature channel
        # or -1, valid_min, valid_max): one tuple unpack per conversion on the per-cycle path.
        # A zero tempco, or no temperature channel in its module, is no tempco (-1).
        plan = []
        for i in order:
            c = channels[i]
            ti = first_temp.get(c.module, -1) if c.kind != ChannelKind.TEMPERATURE else -1
            plan.append((i, c.offset, c.gain, c.temp_coeff, ti if c.temp_coeff else -1,
                         c.valid_min, c.valid_max))
        self._plan = plan

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
        state, raw_out, value_out = self.state, self.raw, self.value
        times, fresh = self.time_us, self.fresh
        for i, offset, gain, tempco, ti, vmin, vmax in self._plan:
            x = values[i]
            if x != x:
                continue  # NaN: not stimulated
            times[i] = t_us
            fresh[i] = True
            if ti >= 0 and state[ti] == _OK:
                drift = tempco * (value_out[ti] - REFERENCE_TEMPERATURE_K)
                raw = (x - offset - drift) / gain
            else:
                drift = 0.0
                raw = (x - offset) / gain
            # Round half to even is what an ADC model does not care about; round() is fine.
            raw = COUNTS_MAX if raw >= COUNTS_MAX else (0 if raw <= 0 else round(raw))
            raw_out[i] = raw
            value_out[i] = offset + gain * raw + drift
            # The stored binary32 value (what the wire carries) decides INVALID.
            state[i] = _OK if vmin <= value_out[i] <= vmax else _INVALID

    def report(self, now_us: int) -> tuple[list[int], list[int]]:
        """The ``age_us`` and ``status`` columns of a SAMPLES reply at board time ``now_us``:
        a channel never converted reads NO_DATA (age AGE_NEVER), one converted since the last
        report its conversion's state, any other STALE. Marks every conversion reported."""
        never = AGE_NEVER
        ages = [never if t < 0 else (age if (age := now_us - t) < never else never - 1)
                for t in self.time_us]
        # A channel never converted holds NO_DATA (time -1): it reads NO_DATA as it is.
        status = [st if f or st == _NO_DATA else _STALE for st, f in zip(self.state, self.fresh)]
        self.fresh[:] = self._not_fresh
        return ages, status
