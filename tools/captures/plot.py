"""Plot a telemetry capture: pressure, temperature, gas inventory and leak rate per module.

The data come from the 1 Hz housekeeping packets (voted pressure, temperature, inventory and the
estimated leak rate of each module's segment) and the event packets; the layout report gives the
module names and the epoch. The capture is streamed once and every series is decimated into at
most ``max_bins`` time bins (mean, min and max per bin; bins double in width as the capture goes
on), so memory stays bounded whatever the size of the capture; events are kept up to
``max_events``.

Library: :func:`collect` (stream and decimate), :func:`render` (plot_render.py: matplotlib, Agg
backend, imported lazily so that importing this module costs nothing) and :func:`plot_capture`
(both). Never prints.

Units in the figure (the tools' one set, :mod:`hullwatch.tools.units`): pressure in kPa (right
axis in mmHg), temperature in K, gas inventory change since the first plotted sample in kg of air
(the telemetry's mol times 28.96 g/mol; the legend gives each module's inventory at that sample),
leak rate in kg/day (positive = gas lost). The x axis is mission time (time since mission time 0,
whose UTC is in the axis label) in s, min or h by the span shown.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ...firmware.errors import TelemetryError
from ...firmware.telemetry.fields import field_offsets, flatten, struct_format
from ...firmware.telemetry.layoutjson import layout_from_json
from ...firmware.telemetry.packets import (APID_EVENT, APID_HOUSEKEEPING, HOUSEKEEPING_BODY, PEC_SIZE,
                                           PRIMARY_HEADER_SIZE, SID_HOUSEKEEPING, SID_LAYOUT,
                                           TM_SECONDARY_HEADER_SIZE, Event, Housekeeping, LayoutReport)
from ...hal.errors import DeviceOpenError
from ..errors import InputError
from ..ground.capture import iter_packet_batches
from ..timeparse import parse_time  # noqa: F401 - the one time syntax; re-exported for callers
from ..units import subject_text
from .plot_render import KG_DAY_PER_KG_S, MMHG_PER_PA, pack_badges, render  # noqa: F401 - the plot API
from .replay_device import MAX_TIME_JUMP_S, find_layout_report

#: the series kept per module, in this order (columns of the decimator)
SERIES = ("pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s")


class BinnedSeries:
    """Streams ``(t, row)`` samples into at most ``max_bins`` time bins per column.

    Bin ``k`` covers ``[t0 + k*w, t0 + (k+1)*w)``; when a sample falls beyond the last bin, ``w``
    doubles and neighbouring bins merge, so the bins always cover everything seen so far and
    memory is ``O(max_bins * columns)``. While every bin holds at most one sample the series is
    exact (``w`` starts at ``min_width``, the sampling period is a good choice). NaN values are
    ignored. Samples are buffered in chunks and folded in with numpy.

    Samples may come slightly out of order (times before ``t0`` go to the first bin).
    """

    def __init__(self, columns: int, max_bins: int = 2000, min_width: float = 1.0, chunk: int = 4096) -> None:
        if max_bins < 2 or max_bins % 2:
            raise ValueError(f"max_bins must be an even number >= 2, got {max_bins}")
        if not min_width > 0:
            raise ValueError(f"min_width must be > 0, got {min_width}")
        self.columns = columns
        self.max_bins = max_bins
        self.width = float(min_width)
        self.t0: float | None = None
        shape = (max_bins, columns)
        self._count = np.zeros(shape, dtype=np.int64)
        self._sum = np.zeros(shape)
        self._lo = np.full(shape, np.inf)
        self._hi = np.full(shape, -np.inf)
        self._tsum = np.zeros(max_bins)
        self._tcount = np.zeros(max_bins, dtype=np.int64)
        self._chunk = chunk
        self._buf_t: list[float] = []
        self._buf_y: list[Iterable[float]] = []
        self.samples = 0

    def add(self, t: float, row: Iterable[float]) -> None:
        """Add one sample: ``row`` has one value per column."""
        self._buf_t.append(t)
        self._buf_y.append(row)
        if len(self._buf_t) >= self._chunk:
            self._flush()

    def add_block(self, t: np.ndarray, rows: np.ndarray) -> None:
        """Add many samples: ``t`` (n,) and ``rows`` (n, columns)."""
        self._flush()
        self._fold(np.asarray(t, np.float64), np.asarray(rows, np.float64).reshape(len(t), self.columns))

    def _coarsen(self) -> None:
        """Double the bin width: bin j takes old bins 2j and 2j+1."""
        h = self.max_bins // 2
        for name, op in (("_count", np.add), ("_sum", np.add), ("_lo", np.minimum), ("_hi", np.maximum),
                         ("_tsum", np.add), ("_tcount", np.add)):
            a = getattr(self, name)
            merged = op(a[0::2], a[1::2])
            a[:h] = merged
            if name in ("_lo",):
                a[h:] = np.inf
            elif name == "_hi":
                a[h:] = -np.inf
            else:
                a[h:] = 0
        self.width *= 2.0

    def _flush(self) -> None:
        if not self._buf_t:
            return
        t = np.asarray(self._buf_t, dtype=np.float64)
        y = np.asarray(self._buf_y, dtype=np.float64).reshape(len(t), self.columns)
        self._buf_t.clear()
        self._buf_y.clear()
        self._fold(t, y)

    def _fold(self, t: np.ndarray, y: np.ndarray) -> None:
        if not len(t):
            return
        self.samples += len(t)
        if self.t0 is None:
            self.t0 = float(t[0])
        rel = t - self.t0
        while True:
            k = np.floor(rel / self.width).astype(np.int64)
            np.clip(k, 0, None, out=k)
            if k.max() < self.max_bins:
                break
            self._coarsen()
        valid = ~np.isnan(y)
        np.add.at(self._count, k, valid.astype(np.int64))
        np.add.at(self._sum, k, np.where(valid, y, 0.0))
        np.minimum.at(self._lo, k, np.where(valid, y, np.inf))
        np.maximum.at(self._hi, k, np.where(valid, y, -np.inf))
        np.add.at(self._tsum, k, t)
        np.add.at(self._tcount, k, 1)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(t, mean, lo, hi)`` for the non-empty bins in time order: ``t`` (bins,) is the mean
        sample time of each bin, the others (bins, columns); NaN where a column had no value."""
        self._flush()
        used = self._tcount > 0
        n = self._count[used]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, self._sum[used] / np.maximum(n, 1), np.nan)
        lo = np.where(n > 0, self._lo[used], np.nan)
        hi = np.where(n > 0, self._hi[used], np.nan)
        t = self._tsum[used] / self._tcount[used]
        return t, mean, lo, hi


@dataclass(slots=True)
class PlotEvent:
    t: float  #: mission time, s
    name: str  #: EventId name
    subject: str
    severity: int  #: Severity code (1 info .. 4 high)


@dataclass(slots=True)
class PlotData:
    """What :func:`collect` gathered. Series arrays are (bins, modules)."""

    epoch_utc: float
    modules: list[str]
    t: np.ndarray
    mean: dict[str, np.ndarray]
    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    bin_width_s: float
    events: list[PlotEvent] = field(default_factory=list)
    events_dropped: int = 0
    housekeeping: int = 0  #: housekeeping packets used
    source: str = ""
    #: housekeeping packets left out: a stamp more than MAX_TIME_JUMP_S from the sample before it
    #: that the sample after it does not confirm (a corrupt, CRC-valid stamp)
    bad_stamps: int = 0


class _Collector:
    """The state :func:`collect` and :func:`collect_capture` share: the layout (from the first
    layout report), the time window, the binned series and the bounded event list."""

    def __init__(self, modules: list[str] | None, since: float | str | None, until: float | str | None,
                 max_bins: int, max_events: int, source: str) -> None:
        self.modules = modules
        self.since, self.until = since, until
        self.max_bins = max_bins
        self.max_events = max_events
        self.source = source
        self.epoch: float | None = None
        self.names: list[str] | None = None
        self.layout_names: list[str] | None = None
        self.cols: list[int] = []
        self.n_modules = 0
        self.n_valves = 0
        self.bins: BinnedSeries | None = None
        self.events: list[PlotEvent] = []
        self.dropped = 0
        self.hk_count = 0
        self.bad_stamps = 0
        self._hk_last_t: float | None = None  # the last housekeeping time kept
        self._hk_held: tuple[np.ndarray, np.ndarray] | None = None  # a jump awaiting its successor
        self.lo_t: float | None = None
        self.hi_t: float | None = None

    def start(self, report: Any, offset: int | None = None) -> None:
        """Take the layout and epoch of the first layout report (later ones are ignored).
        Raises InputError naming the source and the report's byte ``offset`` when its layout
        is unusable."""
        if self.names is not None:
            return
        try:
            layout = layout_from_json(report.layout_json)
        except TelemetryError as exc:
            where = f"the layout report at byte offset {offset}" if offset is not None else "the first layout report"
            raise InputError(f"{self.source}: {where} is unusable: {exc}") from exc
        all_names = [m.name for m in layout.modules]
        wanted = all_names if not self.modules else self.modules
        unknown = [m for m in wanted if m not in all_names]
        if unknown:
            raise InputError(f"{self.source}: unknown module(s) {', '.join(unknown)}; the capture has "
                             + ", ".join(all_names))
        self.epoch = report.epoch_utc
        self.names = list(wanted)
        self.layout_names = all_names  # expands segment subjects of events
        self.cols = [all_names.index(m) for m in self.names]
        self.n_modules, self.n_valves = len(layout.modules), len(layout.valves)
        self.bins = BinnedSeries(len(self.cols) * len(SERIES), max_bins=self.max_bins)
        self.lo_t = _as_time(self.since, report.epoch_utc)
        self.hi_t = _as_time(self.until, report.epoch_utc)

    def in_window(self, t: float) -> bool:
        return not ((self.lo_t is not None and t < self.lo_t) or (self.hi_t is not None and t > self.hi_t))

    def housekeeping(self, t: float, hk: Any) -> None:
        mods = hk.modules
        row: list[float] = []
        for c in self.cols:
            if c < len(mods):
                m = mods[c]
                row.extend((m.pressure_pa, m.temperature_k, m.inventory_mol, m.leak_rate_kg_s))
            else:
                row.extend((math.nan,) * len(SERIES))
        self.housekeeping_block(np.array([t], np.float64), np.array([row], np.float64))

    def _judge_stamps(self, t: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Leave out samples whose stamp jumps more than MAX_TIME_JUMP_S from the last kept one
        when the sample after them does not confirm the jump (a corrupt stamp); a confirmed jump
        (recordings back to back) is kept. A jump at the end of a block waits for the next."""
        if self._hk_held is not None:
            t = np.concatenate((self._hk_held[0], t))
            rows = np.concatenate((self._hk_held[1], rows))
            self._hk_held = None
        if not len(t):
            return t, rows
        prev = np.concatenate(([t[0] if self._hk_last_t is None else self._hk_last_t], t[:-1]))
        candidates = np.flatnonzero(np.abs(t - prev) > MAX_TIME_JUMP_S)
        keep = np.ones(len(t), bool)
        last = self._hk_last_t
        for i in candidates:  # few: sequential, against the last time kept
            ref = last if i == 0 else t[:i][keep[:i]][-1] if keep[:i].any() else last
            if ref is None or abs(t[i] - ref) <= MAX_TIME_JUMP_S:
                continue
            if i == len(t) - 1:
                self._hk_held = (t[i:].copy(), rows[i:].copy())
                keep[i] = False
            elif abs(t[i + 1] - t[i]) > MAX_TIME_JUMP_S:
                keep[i] = False
                self.bad_stamps += 1
        if not keep.all():
            t, rows = t[keep], rows[keep]
        if len(t):
            self._hk_last_t = float(t[-1])
        return t, rows

    def housekeeping_block(self, t: np.ndarray, rows: np.ndarray) -> None:
        """Many housekeeping samples at once: ``rows`` (n, modules * 4) in :data:`SERIES` order."""
        t, rows = self._judge_stamps(t, rows)
        keep = np.ones(len(t), bool)
        if self.lo_t is not None:
            keep &= t >= self.lo_t
        if self.hi_t is not None:
            keep &= t <= self.hi_t
        if not keep.all():
            t, rows = t[keep], rows[keep]
        if len(t):
            self.bins.add_block(t, rows)  # type: ignore[union-attr]
            self.hk_count += len(t)

    def event(self, t: float, ev: Any) -> None:
        if len(self.events) < self.max_events:
            self.events.append(PlotEvent(t, ev.event_id.name, subject_text(ev.subject, self.layout_names),
                                         int(ev.severity)))
        else:
            self.dropped += 1

    def packet(self, offset: int, packet: Any) -> None:
        """Take one decoded packet found at byte ``offset``: a layout report starts (or restarts)
        the layout; housekeeping and events inside the window are collected.

        Raises InputError for housekeeping before any layout report (modules cannot be named)."""
        data = packet.data
        if isinstance(data, LayoutReport):
            self.start(data, offset)
            return
        if self.epoch is None:
            if isinstance(data, Housekeeping):
                raise InputError(f"{self.source}: housekeeping at byte offset {offset} before any "
                                 "layout report; cannot name the modules")
            return
        t = packet.time_utc - self.epoch
        if not self.in_window(t):
            return
        if isinstance(data, Housekeeping):
            self.housekeeping(t, data)
        elif isinstance(data, Event):
            self.event(t, data)

    def result(self) -> PlotData:
        if self._hk_held is not None:  # a jump in the last sample, nothing after it: corrupt
            self._hk_held = None
            self.bad_stamps += 1
        if self.names is None or self.bins is None or self.epoch is None:
            raise InputError(f"{self.source}: no layout report in the capture; cannot plot it")
        if self.hk_count == 0:
            raise InputError(f"{self.source}: no housekeeping packets in the requested time range")
        t, mean, lo, hi = self.bins.result()
        k = len(SERIES)

        def split(a: np.ndarray) -> dict[str, np.ndarray]:
            return {s: a[:, i::k] for i, s in enumerate(SERIES)}

        self.events.sort(key=lambda e: e.t)
        return PlotData(self.epoch, self.names, t, split(mean), split(lo), split(hi), self.bins.width,
                        self.events, self.dropped, self.hk_count, self.source, self.bad_stamps)


def collect(
    packets: Iterable[tuple[int, Any]],
    *,
    modules: list[str] | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    max_bins: int = 2000,
    max_events: int = 60,
    source: str = "capture",
    layout_report: Any = None,
) -> PlotData:
    """Gather decimated housekeeping series and events from ``(offset, Packet)`` pairs.

    ``modules`` narrows the plot (names from the layout report); ``since``/``until`` bound mission
    time (s, or text for :func:`parse_time`). ``layout_report`` is the capture's first layout
    report if already known (else the first one in ``packets`` is used, and housekeeping before it
    is an error). Raises InputError when there is no layout report, ``modules`` names an unknown
    module, or there is no housekeeping in the range.
    """

    c = _Collector(modules, since, until, max_bins, max_events, source)
    if layout_report is not None:
        c.start(layout_report)
    for offset, packet in packets:
        c.packet(offset, packet)
    return c.result()


def _hk_columns(n_modules: int, n_valves: int) -> tuple[int, list[int]]:
    """Size of a housekeeping packet with these counts, and the byte offset in the packet of each
    module's four :data:`SERIES` values (big-endian float64), module by module. Derived from the
    construct declaration, never typed by hand."""
    fields = flatten(HOUSEKEEPING_BODY, {"n_modules": n_modules, "n_valves": n_valves})
    offsets = field_offsets(fields)
    head = PRIMARY_HEADER_SIZE + TM_SECONDARY_HEADER_SIZE
    size = head + struct.calcsize(struct_format(fields)) + PEC_SIZE
    return size, [head + offsets[f"modules[{m}].{name}"] for m in range(n_modules) for name in SERIES]


def collect_capture(
    path: str,
    *,
    modules: list[str] | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    max_bins: int = 2000,
    max_events: int = 60,
    layout_report: Any = None,
    on_skip: Callable[[Any], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PlotData:
    """:func:`collect` for a capture file, fast: the ground bulk reader frames the packets and
    checks every CRC; housekeeping packets of the layout's size are read as numpy columns a
    window at a time (their layout derived from the declaration); the few others, the events and
    layout reports are decoded one by one; raw samples, nearly all of a capture, are passed over.
    Constant memory. Raises InputError as :func:`collect`.
    """
    c = _Collector(modules, since, until, max_bins, max_events, os.path.basename(path))
    if layout_report is not None:
        c.start(layout_report)
    hk_size = -1
    value_offsets = np.zeros((0, 8), np.int64)
    for batch in iter_packet_batches(path, on_skip=on_skip, on_progress=on_progress):
        h = batch.headers()
        is_hk_apid = (h["apid"] == APID_HOUSEKEEPING) & (h["service"] == 3)
        hk = is_hk_apid & (h["key"] == SID_HOUSEKEEPING)
        one_by_one = (is_hk_apid & (h["key"] == SID_LAYOUT)) | ((h["apid"] == APID_EVENT) & (h["service"] == 5))
        if c.epoch is not None:
            if hk_size < 0:
                hk_size, offs = _hk_columns(c.n_modules, c.n_valves)
                wanted = np.asarray(offs, np.int64).reshape(c.n_modules, len(SERIES))[c.cols].ravel()
                value_offsets = wanted[:, None] + np.arange(8)
            fast = hk & (h["length"] == hk_size)
            one_by_one |= hk & ~fast
            idx = fast.nonzero()[0]
            if len(idx):
                a = np.frombuffer(batch.buffer, np.uint8)
                starts = batch.starts[idx]
                raw = a[starts[:, None, None] + value_offsets[None, :, :]]  # (n, columns, 8)
                rows = np.ascontiguousarray(raw).view(">f8").reshape(len(idx), -1).astype(np.float64)
                c.housekeeping_block(h["time_utc"][idx] - c.epoch, rows)
        else:
            one_by_one |= hk
        for i, packet in batch.packets(one_by_one.nonzero()[0], on_skip):
            c.packet(batch.offset(i), packet)
    return c.result()


def _as_time(value: float | str | None, epoch: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value, epoch)
    return float(value)


def plot_capture(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    modules: list[str] | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    max_bins: int = 2000,
    title: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_skip: Callable[[int, int, str], None] | None = None,
) -> PlotData:
    """Stream the capture at ``path`` and write its plot to ``out``. Returns the plotted data.

    Raises InputError (see :func:`collect`), OSError when a file cannot be read or written.
    """
    path = os.fspath(path)
    total = os.path.getsize(path)
    try:
        report = find_layout_report(path)
    except DeviceOpenError as exc:
        raise InputError(str(exc).replace("replay://", "", 1)) from exc
    done = [0]

    def on_progress(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    data = collect_capture(path, modules=modules, since=since, until=until, max_bins=max_bins,
                           layout_report=report, on_skip=on_skip, on_progress=on_progress)
    if progress is not None:
        progress(total, total)
    render(data, out, title=title)
    return data
