"""Raw-samples and housekeeping rows made in bulk: the packets of one kind in a window, read
through the numpy structured dtype derived from their construct declaration
(:mod:`hullwatch.tools.ground.bulk`), become the Arrow columns of a
:class:`~hullwatch.tools.captures.table_parts.Part`, with the values and names
:class:`~hullwatch.tools.captures.formats.RowBuilder` gives the same packets one by one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...firmware.telemetry import packets as P
from ...firmware.types import FdirMode, IsolationState, ModuleStatus, ValveHealth
from ...hal.interfaces import SampleStatus
from ..ground import bulk
from .formats import FLOAT, INT, RowBuilder, enum_name
from .table_parts import Cell, enum_names, numbers

_INT, _FLOAT = pa.int64(), pa.float64()
_ARROW = {INT: _INT, FLOAT: _FLOAT}


def round4(x: np.ndarray) -> np.ndarray:
    """``[round(v, 4) for v in x]`` (Python's correctly rounded decimal rounding), vectorised:
    ``rint(x * 1e4) / 1e4`` is exact unless ``x * 1e4`` lies within a few ulps of a half, where the
    product's own rounding could tip it; those few go through ``round``."""
    p = x * 1e4
    y = np.rint(p) / 1e4
    with np.errstate(invalid="ignore"):
        risky = ~(np.abs(p) < 2.0 ** 52) | (np.abs(np.abs(p - np.floor(p)) - 0.5) <= 4 * np.spacing(np.abs(p)))
    for i in np.flatnonzero(risky & np.isfinite(x)).tolist():
        y[i] = round(float(x[i]), 4)
    return y


_SECOND_MILLIS: list[pa.StringArray] = []


def _second_millis() -> pa.StringArray:
    """``SS.mmmZ`` for each millisecond of a minute (index = second * 1000 + millisecond), made on
    first use."""
    if not _SECOND_MILLIS:
        seconds = pa.array([f"{s:02d}." for s in range(60)]).take(pa.array(np.repeat(np.arange(60), 1000)))
        millis = pa.array([f"{ms:03d}Z" for ms in range(1000)]).take(pa.array(np.tile(np.arange(1000), 60)))
        _SECOND_MILLIS.append(pc.binary_join_element_wise(seconds, millis, ""))
    return _SECOND_MILLIS[0]


def utc_text(t: np.ndarray) -> pa.Array:
    """``formats.iso_utc`` of each UTC time (``2018-08-29T20:00:00.500Z``), null where it is empty
    (not finite or before 1970)."""
    valid = np.isfinite(t) & (t >= 0)  # (CUC 0 is 1970-01-01T00:00:00.000Z, a time)
    ms = np.rint(np.where(valid, t, 0.0) * 1000.0).astype(np.int64)  # np.rint is half-even like round()
    minute, in_minute = np.divmod(ms, 60_000)
    # ten or more packets a second: format each distinct minute once (Arrow's strftime costs a
    # microsecond a value), then join the seconds and milliseconds from a table
    if len(minute) > 1 and (minute[1:] >= minute[:-1]).all():  # in time order: no sort needed
        first = np.concatenate(([True], minute[1:] != minute[:-1]))
        minutes, inverse = minute[first], np.cumsum(first) - 1
    else:
        minutes, inverse = np.unique(minute, return_inverse=True)
    text = pc.strftime(pa.array(minutes * 60, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:")
    joined = pc.binary_join_element_wise(text.take(pa.array(inverse)), _second_millis().take(pa.array(in_minute)), "")
    if valid.all():
        return joined
    return pc.if_else(pa.array(valid), joined, pa.nulls(len(t), pa.string()))


def enum_table(cls: Any) -> pa.StringArray:
    """The text RowBuilder writes for each u8 code of an enum (index = code)."""
    return pa.array([enum_name(cls, code) for code in range(256)], pa.string())


def common_cells(h: np.ndarray, t_mission: np.ndarray, name: str) -> dict[str, Cell]:
    """The common columns of telemetry rows of kind ``name`` from their header columns
    (:data:`~hullwatch.tools.ground.capture.HEADER_DTYPE`) and mission times (NaN: unknown)."""
    known = ~np.isnan(t_mission)
    t_s = round4(np.where(known, t_mission, 0.0))
    cells: dict[str, Cell] = {
        "offset": pa.array(h["offset"].astype(np.int64)),
        "utc": utc_text(h["time_utc"]),
        "time_utc_s": numbers(h["time_utc"], _FLOAT),
        "t_s": pa.array(t_s, _FLOAT) if known.all() else pa.array(t_s, _FLOAT, mask=~known),
        "packet": pa.scalar(name, pa.string()),
        "type": pa.scalar("TM", pa.string()),
    }
    for key in ("apid", "service", "subtype", "seq", "msg_counter"):
        cells[key] = numbers(h[key], _INT)
    return cells


class BulkKind:
    """One packet kind read in bulk: its numpy dtype (the layout's channel counts) and columns."""

    name = ""  #: the packet kind, as in the ``packet`` column
    sid = 0  #: the structure id (the key of :meth:`PacketBatch.headers`)
    apid = 0  #: the APID the kind is defined on

    def __init__(self, rows: RowBuilder, dtype: np.dtype, counts: dict[str, int]) -> None:
        self.rows = rows
        self.dtype = dtype
        self.size = dtype.itemsize  #: packet length in bytes
        fields = dtype.fields or {}
        #: (byte offset of a count field, the count the layout has)
        self._count_checks = [(fields[f"data.{name}"][1], count) for name, count in counts.items()]

    def matches(self, a: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Whether each packet of this length has the layout's channel counts."""
        ok = np.ones(len(starts), bool)
        for at, count in self._count_checks:
            ok &= a[starts + at] == count
        return ok

    def cells(self, a: np.ndarray, starts: np.ndarray, h: np.ndarray, t_mission: np.ndarray) -> dict[str, Cell]:
        """The columns of the packets at ``a[starts]`` (headers ``h``, mission times ``t_mission``)."""
        rec = bulk.gather_rows(a, starts, self.size).view(self.dtype)[:, 0]
        cells = common_cells(h, t_mission, self.name)
        cells["cycle"] = numbers(rec["data.cycle"], _INT)
        self.data_cells(rec, cells)
        return cells

    def data_cells(self, rec: np.ndarray, cells: dict[str, Cell]) -> None:
        raise NotImplementedError

    def _block(self, cells: dict[str, Cell], names: list[str], values: np.ndarray) -> None:
        """``values[:, j]`` (big-endian, as in the packet) as column ``names[j]`` (all of one type)."""
        if not names:
            return
        type_ = _ARROW[self.rows.types[self.rows.index[names[0]]]]
        by_column = np.ascontiguousarray(values.T, np.int64 if type_ == _INT else np.float64)
        for name, column in zip(names, by_column):
            cells[name] = numbers(column, type_)


class RawSamplesRows(BulkKind):
    name, sid, apid = "raw_samples", P.SID_RAW_SAMPLES, P.APID_RAW

    def __init__(self, rows: RowBuilder) -> None:
        n_p, n_t, n_f, n_v = rows.counts[:4]
        super().__init__(rows, bulk.raw_samples_dtype(n_p, n_t, n_f, n_v),
                         {"n_pressure": n_p, "n_temperature": n_t, "n_flow": n_f, "n_valves": n_v})
        self._status = enum_table(SampleStatus)

    def data_cells(self, rec: np.ndarray, cells: dict[str, Cell]) -> None:
        names, starts = self.rows.columns, self.rows.starts
        for kind in ("pressure", "temperature", "flow"):
            first, count = starts[kind], rec[f"data.{kind}"].shape[1]
            self._block(cells, names[first:first + 2 * count:2], rec[f"data.{kind}"])
            status = rec[f"data.{kind}_status"]
            for i in range(count):
                cells[names[first + 2 * i + 1]] = enum_names(status[:, i], self._status)
        first, count = starts["valves"], rec["data.valve_cmd"].shape[1]
        self._block(cells, names[first:first + 2 * count:2], rec["data.valve_cmd"])
        self._block(cells, names[first + 1:first + 2 * count:2], rec["data.valve_fb"])
        first, status = starts["valve_status"], rec["data.valve_status"]
        for i in range(count):
            cells[names[first + i]] = enum_names(status[:, i], self._status)


class HousekeepingRows(BulkKind):
    name, sid, apid = "housekeeping", P.SID_HOUSEKEEPING, P.APID_HOUSEKEEPING
    _MODULE_FLOATS = ("pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s")

    def __init__(self, rows: RowBuilder) -> None:
        self.n_modules, self.n_valves = rows.counts[4], rows.counts[3]
        super().__init__(rows, bulk.housekeeping_dtype(self.n_modules, self.n_valves),
                         {"n_modules": self.n_modules, "n_valves": self.n_valves})
        self._names = {cls: enum_table(cls) for cls in (FdirMode, IsolationState, ModuleStatus, ValveHealth)}

    def data_cells(self, rec: np.ndarray, cells: dict[str, Cell]) -> None:
        names, starts = self.rows.columns, self.rows.starts
        for key in ("cycle_time_us", "max_cycle_time_us", "overruns", "link_errors", "sensors_failed"):
            cells[key] = numbers(rec[f"data.{key}"], _INT)
        cells["link_up"] = numbers(rec["data.link_up"] != 0, _INT)
        cells["mode"] = enum_names(rec["data.mode"], self._names[FdirMode])
        cells["isolation_state"] = enum_names(rec["data.isolation_state"], self._names[IsolationState])
        for i in range(self.n_modules):
            first = starts["modules"] + 5 * i
            for j, name in enumerate(self._MODULE_FLOATS):
                cells[names[first + j]] = numbers(rec[f"data.modules[{i}].{name}"], _FLOAT)
            cells[names[first + 4]] = enum_names(rec[f"data.modules[{i}].status"], self._names[ModuleStatus])
        for i in range(self.n_valves):
            cells[names[starts["valves"] + 2 * i]] = numbers(rec[f"data.valves[{i}].cmd"], _INT)
            cells[names[starts["valves"] + 2 * i + 1]] = numbers(rec[f"data.valves[{i}].fb"], _FLOAT)
            cells[names[starts["valve_health"] + i]] = enum_names(rec[f"data.valves[{i}].health"],
                                                                   self._names[ValveHealth])
