"""The ``replay://`` device: sensor samples and valve states taken from a telemetry capture.

URL grammar::

    replay://CAPTURE            a relative path (replay://run.tm, replay://data/run.tm)
    replay:///abs/path/run.tm   an absolute path

There are no query keys (a ``?`` in the URL is a :class:`~hullwatch.hal.errors.DeviceUrlError`).
The capture must hold a layout report (3/25 SID 3) in its first 64 MB (the flight software sends
one in its first cycle and every 60 s): the device's :attr:`layout` and :attr:`epoch_utc` come
from the first one.

Each :meth:`~ReplayDevice.read` fills the frame from the next raw-sample packet (3/25 SID 2) in file
order: pressure, temperature and flow values (float64, bit for bit as recorded) with their
statuses, and valve commands, feedback and statuses. After the last packet the frame is filled
with ``NO_DATA`` statuses; :attr:`~ReplayDevice.exhausted` is True from the read that delivered the
last sample (which also calls :attr:`~ReplayDevice.on_end`).

Mission time. CUC time stamps are truncated to 1/65536 s, but the flight software must see the
mission times it saw when recording, to the bit. The executive runs cycle ``k`` at
``t0 + k * period``, and the raw-sample packet carries ``k``; so the device infers ``t0`` and
``period`` from the first two samples (the shortest decimal numbers within the CUC resolution)
and gives each sample the time ``t0 + k * period`` whenever that lies within the resolution of
its CUC stamp, else the CUC time itself. The packets carry no per-sample time stamps: a sample
with status OK is stamped with the frame's time, one with another status keeps the time of its
last OK sample (as a device does for a stale channel).

The clock is virtual and follows the recording: ``now()`` starts at the first sample's mission
time; ``sleep_until(t)`` moves it to ``t``; a read moves it on to the time of the sample it returns
if that is later. A caller that paces itself by the clock (the executive) reads in step with the
recording: samples more than half a period older than ``now()`` were missed and are dropped
(counted in ``dropped``), and when the next sample is more than half a period in the future (a
gap in the capture) the read returns the previous values with status STALE (counted in
``gaps``). A caller that never sleeps simply gets the samples one after the other.
:meth:`command_valve` is recorded (:attr:`~ReplayDevice.commands`, bounded) but changes nothing:
the data are a recording.

The capture is streamed (constant memory). Damaged stretches are skipped by the capture reader
and counted in :meth:`health` (``skipped_ranges``, ``skipped_bytes``). Each raw sample carries
its cycle counter, so once the period is known a sample's stamp must put it on the previous
sample's timeline (within ``TIMEBASE_TOLERANCE_S``). One that does not, while the sample after
it does, has a corrupt (if CRC-valid) stamp of whatever size: it is kept at the time its cycle
gives and counted (``time_jumps``). One that the sample after it follows starts another timeline
(two recordings back to back, a restarted flight software): the recording ends there
(``timeline_ends``), as it does at samples of another station's layout. A layout report that
differs from the first, while the samples still fit it, is counted (``layout_changes``) and the
recording goes on.
"""

from __future__ import annotations

import collections
import math
import os
from typing import Any, Callable, Iterator

from ...firmware.errors import TelemetryError
from ...firmware.telemetry.layoutjson import layout_from_json
from ...firmware.telemetry.packets import (APID_HOUSEKEEPING, APID_RAW, SID_LAYOUT, SID_RAW_SAMPLES, LayoutReport,
                                           RawSamples)
from ...hal.clock import Clock
from ...hal.errors import DeviceNotFound, DeviceOpenError, DeviceUrlError
from ...hal.interfaces import Device, DeviceInfo, Frame, Layout, SampleStatus
from ..ground.capture import iter_capture, iter_packet_batches

#: A raw sample whose time stamp is further than this from the one before it (s), and that the
#: sample after it does not confirm, carries a corrupt (if CRC-valid) time stamp: it is dropped.
MAX_TIME_JUMP_S = 3600.0
#: Once the period is known: how far a sample's stamp may lie from where its cycle counter puts it
#: on the previous sample's timeline (s; at least two periods): CUC truncation and late cycles.
TIMEBASE_TOLERANCE_S = 1.0
#: commands kept in :attr:`ReplayDevice.commands` (every queue is bounded)
MAX_RECORDED_COMMANDS = 10_000
_OK = int(SampleStatus.OK)
_NO_DATA = int(SampleStatus.NO_DATA)


def capture_path_from_url(url: str) -> str:
    """The capture path in a ``replay://`` URL. Raises DeviceUrlError when it is malformed."""
    if not url.lower().startswith("replay://"):
        raise DeviceUrlError(f"expected a replay:// URL, got {url!r}")
    rest = url[len("replay://"):]
    if "?" in rest:
        raise DeviceUrlError(f"{url}: replay:// takes no query parameters (got {rest.partition('?')[2]!r})")
    if not rest:
        raise DeviceUrlError(f"{url}: no capture file; expected replay://PATH, e.g. replay://run.tm")
    return rest


def mission_time(time_utc: float, epoch_utc: float) -> float:
    """Mission time (s) of a packet stamped ``time_utc``: ``time_utc - epoch_utc`` rounded to the
    microsecond (CUC time has 1/65536 s resolution, truncated when written)."""
    return round(time_utc - epoch_utc, 6)


#: 1/65536 s, the CUC resolution, plus float noise of ``epoch + t - epoch`` at today's epochs
_CUC_SLACK = 1.0 / 65536.0
_FLOAT_SLACK = 2e-6


def shortest_decimal(lo: float, hi: float) -> float:
    """The number with the fewest decimals (0 to 9) in ``[lo, hi]``; the midpoint if none."""
    mid = 0.5 * (lo + hi)
    for digits in range(10):
        x = round(mid, digits)
        if lo <= x <= hi:
            return x + 0.0  # no -0.0
    return mid


class ReplayClock(Clock):
    """Virtual time that starts at the recording's first sample and moves by ``sleep_until`` (and
    by reads, see the module docstring)."""

    def __init__(self, start: float) -> None:
        self._t = start
        self.paced = False  #: True once someone slept on it: reads then follow the clock

    def now(self) -> float:
        return self._t

    def sleep_until(self, t: float) -> None:
        self.paced = True
        if t > self._t:
            self._t = t

    def _follow(self, t: float) -> None:
        if t > self._t:
            self._t = t

    @property
    def virtual(self) -> bool:
        return True

    @property
    def virtual(self) -> bool:
        return True


def find_layout_report(path: str, max_bytes: int = 64 << 20) -> Any:
    """The first layout report of a capture (a ``LayoutReport``), looked for in its first
    ``max_bytes`` (it comes in the first cycle, repeated every 60 s of mission time).

    Raises DeviceOpenError when there is none, when the first one's layout JSON is unusable
    (naming its byte offset), or the file cannot be read.
    """
    try:
        for batch in iter_packet_batches(path):
            # an undecodable report is left out: the next one will do
            for i, packet in batch.packets(batch.select(apid=APID_HOUSEKEEPING, service=3, key=SID_LAYOUT)):
                if isinstance(packet.data, LayoutReport):
                    try:
                        layout_from_json(packet.data.layout_json)
                    except TelemetryError as exc:
                        raise DeviceOpenError(f"replay://{path}: the layout report at byte offset "
                                              f"{batch.offset(i)} is unusable: {exc}") from exc
                    return packet.data
            if batch.base + len(batch.buffer) >= max_bytes:
                break
    except OSError as exc:
        raise DeviceOpenError(f"replay://{path}: cannot read: {exc}") from exc
    raise DeviceOpenError(
        f"replay://{path}: no layout report in the capture"
        + ("" if os.path.getsize(path) <= max_bytes else f" (looked at the first {max_bytes >> 20} MB)")
        + "; the capture does not say which channel is which")


class ReplayDevice(Device):
    """A recorded station. See the module docstring.

    Attributes:
        path: the capture file.
        layout, epoch_utc: from the capture's first layout report.
        period_s: the recording's cycle period (s) inferred from its first two samples, or None.
        start_time: mission time of the first raw sample, s.
        end_time: mission time of the last raw sample, s, estimated from the end of the file
            (past the true end when another recording follows this one).
        last_time: mission time of the last sample delivered (None before the first).
        samples: raw-sample packets delivered so far.
        exhausted: True once the last raw sample of the recording has been delivered.
        on_end: called once, by the read that delivers that last sample (the runner stops the
            flight loop after that cycle).
        commands: ``(mission time, valve index, open)`` of every :meth:`command_valve` call (the
            first :data:`MAX_RECORDED_COMMANDS`).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            raise DeviceNotFound(f"replay://{path}: no such capture file")
        if os.path.isdir(path):
            raise DeviceOpenError(f"replay://{path}: is a directory, expected a capture file")
        self._skipped_ranges = 0
        self._skipped_bytes = 0
        self._layout_changes = 0
        self._reads = 0
        self._dropped = 0
        self._gaps = 0
        self._ended = False
        report = find_layout_report(path)
        self._layout_json = report.layout_json
        self.epoch_utc = report.epoch_utc
        try:
            self.layout: Layout = layout_from_json(report.layout_json)
        except TelemetryError as exc:
            raise DeviceOpenError(f"replay://{path}: bad layout report: {exc}") from exc
        self._packets = self._iter_packets()
        self._base = 0.0
        self.period_s: float | None = None
        #: lookahead: (CUC mission time, RawSamples), at most two
        self._ahead: collections.deque[tuple[float, Any]] = collections.deque()
        self._pushback: tuple[float, Any] | None = None  # a sample read ahead to judge a jump
        self._last_sample: tuple[float, Any] | None = None  # the last sample delivered
        self.on_end: Callable[[], None] | None = None
        self._time_jumps = 0
        self._timeline_ends = 0
        try:
            for cap in self._packets:
                data = cap.packet.data
                if isinstance(data, RawSamples):
                    self._check_counts(data, cap.offset)
                    self._ahead.append((cap.packet.time_utc - self.epoch_utc, data))
                    break
        except OSError as exc:
            raise DeviceOpenError(f"replay://{path}: cannot read: {exc}") from exc
        if not self._ahead:
            raise DeviceOpenError(f"replay://{path}: no raw-sample packets in the capture")
        self._fill()
        self._infer_timebase()
        self.start_time = self._time_of(*self._ahead[0])
        self.end_time = self._find_end_time()
        self.clock = ReplayClock(self.start_time)
        self.samples = 0
        self.exhausted = False
        self.last_time: float | None = None  # mission time of the last sample delivered
        self.commands: collections.deque[tuple[float, int, bool]] = collections.deque(maxlen=MAX_RECORDED_COMMANDS)
        self._commands_total = 0
        self._tol = 0.5 * self.period_s if self.period_s else math.inf
        lay = self.layout
        self._p_time = [0.0] * len(lay.pressure)
        self._t_time = [0.0] * len(lay.temperature)
        self._f_time = [0.0] * len(lay.flow)
        self._delivered = False
        self.info = DeviceInfo("replay", os.path.basename(path), {
            "path": os.path.abspath(path), "start_time_s": self.start_time, "end_time_s": self.end_time,
            "period_s": self.period_s,
        })

    # ------------------------------------------------------------------ reading the capture

    def _on_skip(self, skip: Any) -> None:
        self._skipped_ranges += 1
        self._skipped_bytes += skip.length

    def _iter_packets(self) -> Iterator[Any]:
        return iter_capture(self.path, on_skip=self._on_skip)

    def _counts_match(self, data: Any) -> bool:
        lay = self.layout
        return (len(data.pressure), len(data.temperature), len(data.flow), len(data.valve_fb)) == (
            len(lay.pressure), len(lay.temperature), len(lay.flow), len(lay.valves))

    def _check_counts(self, data: Any, offset: int) -> None:
        if not self._counts_match(data):
            lay = self.layout
            want = (len(lay.pressure), len(lay.temperature), len(lay.flow), len(lay.valves))
            got = (len(data.pressure), len(data.temperature), len(data.flow), len(data.valve_fb))
            raise DeviceOpenError(
                f"replay://{self.path}: raw samples at byte offset {offset} hold {got} "
                f"(pressure, temperature, flow, valves) channels, the layout report says {want}")

    def _fill(self) -> None:
        """Keep two samples in the lookahead (fewer at the end of the recording).

        Once the period is known, each sample is judged by its cycle counter: its stamp should
        be the previous sample's plus the cycles between them times the period (within
        :data:`TIMEBASE_TOLERANCE_S`). A sample off that timeline whose successor is back on it
        carries a corrupt (if CRC-valid) stamp, of any size: it is kept, at the time its cycle
        says, and counted in ``time_jumps``. A sample off the timeline whose successor follows it
        starts another timeline (recordings back to back, a restarted flight software): the
        recording ends there, as at another station's samples (counted in ``time_jumps``).
        Before the period is known, a sample more than MAX_TIME_JUMP_S from the one before that
        the sample after it does not confirm is dropped as a corrupt stamp."""
        while len(self._ahead) < 2:
            sample = self._next_raw()
            if sample is None:
                return
            ref = self._ahead[-1] if self._ahead else self._last_sample
            if ref is not None and self.period_s is not None:
                if not self._continues(ref, sample):
                    after = self._next_raw()
                    if after is None or self._continues(ref, after):
                        self._pushback = after
                        self._time_jumps += 1  # placed by its cycle counter
                        sample = (ref[0] + (sample[1].cycle - ref[1].cycle) * self.period_s, sample[1])
                    else:
                        self._timeline_ends += 1
                        self._ended = True  # another timeline follows: this recording ends here
                        return
            elif ref is not None and abs(sample[0] - ref[0]) > MAX_TIME_JUMP_S:
                after = self._next_raw()
                if after is not None:
                    self._pushback = after
                if after is None or abs(after[0] - sample[0]) > MAX_TIME_JUMP_S:
                    self._time_jumps += 1
                    continue
            self._ahead.append(sample)

    def _continues(self, ref: tuple[float, Any], sample: tuple[float, Any]) -> bool:
        """``sample`` lies on ``ref``'s timeline: its stamp is ``ref``'s plus the cycles between
        them times the period (both as (CUC mission time, RawSamples)), within the tolerance."""
        dk = sample[1].cycle - ref[1].cycle
        return dk > 0 and abs(sample[0] - ref[0] - dk * self.period_s) <= \
            max(TIMEBASE_TOLERANCE_S, 2 * self.period_s)  # type: ignore[operator]

    def _next_raw(self) -> tuple[float, Any] | None:
        """The next raw sample of this station's layout in file order, or None at the end."""
        if self._pushback is not None:
            sample, self._pushback = self._pushback, None
            return sample
        if self._ended:
            return None
        try:
            for cap in self._packets:
                data = cap.packet.data
                if isinstance(data, RawSamples):
                    if not self._counts_match(data):
                        self._layout_changes += 1
                        self._ended = True  # another station's data: the recording ends here
                        return None
                    return (cap.packet.time_utc - self.epoch_utc, data)
                if isinstance(data, LayoutReport) and data.layout_json != self._layout_json:
                    # A different report of a layout the samples still fit: counted, and the
                    # recording goes on (the flight software's layout is the first one's).
                    self._layout_changes += 1
                    self._layout_json = data.layout_json
        except OSError:
            self._skipped_ranges += 1
        self._ended = True
        return None

    def _infer_timebase(self) -> None:
        """``t0`` and ``period`` such that sample k is at ``t0 + k * period`` (module docstring)."""
        if len(self._ahead) < 2:
            return
        (ta, a), (tb, b) = self._ahead[0], self._ahead[1]
        dk = b.cycle - a.cycle
        if dk <= 0:
            return
        slack = _CUC_SLACK + 2 * _FLOAT_SLACK
        period = shortest_decimal((tb - ta - slack) / dk, (tb - ta + slack) / dk)
        if not period > 0:
            return
        self.period_s = period
        base = ta - a.cycle * period
        self._base = shortest_decimal(base - _FLOAT_SLACK, base + _CUC_SLACK + _FLOAT_SLACK)

    def _time_of(self, t_cuc: float, data: Any) -> float:
        if self.period_s is not None:
            t = self._base + data.cycle * self.period_s
            if t_cuc - _FLOAT_SLACK <= t <= t_cuc + _CUC_SLACK + _FLOAT_SLACK:
                return t
        return round(t_cuc, 6)

    def _find_end_time(self) -> float:
        """Mission time of the last raw sample, from the last ~1 MB of the file (the reader
        resynchronises on the first whole packet of the tail): the last one of this station
        that lies on the timeline of the sample before it (a corrupt stamp at the end does not
        move the end). An estimate when another recording follows this one: the device then
        ends at the change of timeline (``exhausted``, ``on_end``)."""
        size = os.path.getsize(self.path)
        tail = 1 << 20
        while True:
            found: list[tuple[float, Any]] = []
            with open(self.path, "rb") as f:
                f.seek(max(0, size - tail))
                for batch in iter_packet_batches(f):
                    idx = batch.select(apid=APID_RAW, service=3, key=SID_RAW_SAMPLES)
                    found += [(p.time_utc - self.epoch_utc, p.data) for _i, p in batch.packets(idx)
                              if self._counts_match(p.data)]
            if self.period_s is None and found:
                return self._time_of(*found[-1])
            for j in range(len(found) - 1, 0, -1):
                if self._continues(found[j - 1], found[j]):
                    return self._time_of(*found[j])
            if tail >= size:
                return self._time_of(*self._ahead[-1])
            tail *= 8

    # ------------------------------------------------------------------ the Device interface

    def peek_time(self) -> float | None:
        """Mission time of the sample the next :meth:`read` returns (None at the end)."""
        return self._time_of(*self._ahead[0]) if self._ahead else None

    def read(self, frame: Frame) -> None:
        """Fill ``frame`` from the next raw-sample packet (see the module docstring). Never raises."""
        self._reads += 1
        clock = self.clock
        ahead = self._ahead
        now = clock.now()
        if clock.paced:
            # Missed cycles: drop samples that are more than half a period old.
            while ahead and self._time_of(*ahead[0]) < now - self._tol:
                ahead.popleft()
                self._dropped += 1
                self._fill()
        if not ahead:
            self.exhausted = True
            frame.t = now
            for name in ("pressure_status", "temperature_status", "flow_status", "valve_status"):
                status = getattr(frame, name)
                status[:] = [_NO_DATA] * len(status)
            return
        t = self._time_of(*ahead[0])
        if clock.paced and t > now + self._tol:
            # A gap in the recording: nothing new at this time.
            self._gaps += 1
            frame.t = now
            for name in ("pressure_status", "temperature_status", "flow_status", "valve_status"):
                status = getattr(frame, name)
                status[:] = [int(SampleStatus.STALE) if self._delivered else _NO_DATA] * len(status)
            return
        self._last_sample = ahead.popleft()
        s = self._last_sample[1]
        self.last_time = t
        self._fill()
        if not ahead:  # the recording's last sample: the run ends after this cycle
            self.exhausted = True
            if self.on_end is not None:
                self.on_end()
        clock._follow(t)
        self.samples += 1
        self._delivered = True
        frame.t = t
        frame.pressure[:] = s.pressure
        frame.pressure_status[:] = s.pressure_status
        frame.temperature[:] = s.temperature
        frame.temperature_status[:] = s.temperature_status
        frame.flow[:] = s.flow
        frame.flow_status[:] = s.flow_status
        frame.valve_cmd[:] = s.valve_cmd
        frame.valve_fb[:] = s.valve_fb
        frame.valve_status[:] = s.valve_status
        for times, status, out in ((self._p_time, s.pressure_status, frame.pressure_time),
                                   (self._t_time, s.temperature_status, frame.temperature_time),
                                   (self._f_time, s.flow_status, frame.flow_time)):
            for i, st in enumerate(status):
                if st == _OK:
                    times[i] = t
            out[:] = times

    def command_valve(self, index: int, open_: bool) -> None:
        """Recorded in :attr:`commands`; the recording is not changed."""
        self._commands_total += 1
        self.commands.append((self.clock.now(), int(index), bool(open_)))

    def health(self) -> dict[str, int]:
        return {
            "reads": self._reads,
            "samples": self.samples,
            "dropped": self._dropped,
            "gaps": self._gaps,
            "commands": self._commands_total,
            "skipped_ranges": self._skipped_ranges,
            "skipped_bytes": self._skipped_bytes,
            "layout_changes": self._layout_changes,
            "time_jumps": self._time_jumps,
            "timeline_ends": self._timeline_ends,
        }

    def _close(self) -> None:
        close = getattr(self._packets, "close", None)
        if close is not None:
            close()


def open_url(url: str, **options: Any) -> ReplayDevice:
    """Open ``replay://CAPTURE``. No options are accepted.

    Raises:
        DeviceUrlError: a malformed URL or an unknown option.
        DeviceNotFound: the capture file does not exist.
        DeviceOpenError: the capture cannot be read, has no layout report before its first raw
            sample, or no raw samples at all.
    """
    if options:
        raise DeviceUrlError(f"{url}: replay:// takes no options (got {', '.join(sorted(options))})")
    return ReplayDevice(capture_path_from_url(url))
