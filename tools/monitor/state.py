"""Everything the monitor knows, built packet by packet from telemetry bytes.

:meth:`MonitorState.ingest` takes one datagram (or any bytes holding whole packets back to back)
and never raises: a short or malformed datagram, a bad CRC or an undecodable body is counted in
the link health and dropped. Housekeeping and events are decoded as they come; of the per-cycle
raw-samples packets only the newest is kept, and decoded when a snapshot asks for it (sensor
values and statuses), so ingesting costs a CRC and a header look per packet.

All methods lock: one thread ingests (UDP, capture, or the flight loop's feed) while the web
server reads snapshots.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ...firmware.errors import FirmwareError
from ...firmware.telemetry import (
    APID_RAW,
    Event,
    FdirMode,
    Housekeeping,
    IsolationState,
    LayoutReport,
    ModuleStatus,
    VerificationReport,
    SensorHealth,
    ValveHealth,
    crc16,
    fast_decode,
    layout_from_json,
)
from ...firmware.fdir.topology import segment_modules
from ...firmware.telemetry.fastcodec import TM_HEADER
from ...hal.interfaces import Layout, ModuleInfo, SampleStatus
from ..errors import InputError
from .commands import Commander
from .eventlog import ALARM_SEVERITIES, EventLog, RawEvent, iso_utc, mission_text, parse_unknown_event
from .link import LinkHealth
from .series import QUANTITIES, SeriesStore
from .station import OPEN_AT, diagram, module_marks, segments

#: Pa per mmHg
PA_PER_MMHG = 133.322387415

#: test-statistic points kept (from events that carry a ``test_statistic`` value)
STAT_POINTS = 5000



def _enum_name(enum_cls: Any, code: int) -> str:
    try:
        return enum_cls(code).name
    except ValueError:
        return str(code)


class MonitorState:
    """The monitor's picture of the station. ``source`` describes where telemetry comes from."""

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.lock = threading.Lock()
        self.link = LinkHealth()
        self.events = EventLog()
        self.layout: Layout | None = None
        self.layout_json = ""
        self.epoch_utc: float | None = None
        self.series: SeriesStore | None = None
        self.hk: Housekeeping | None = None
        self.hk_utc: float | None = None
        self.latest_utc: float | None = None
        self.layout_changes = 0  #: layout reports that changed the layout or the epoch (a new run)
        self.provisional = False  #: the layout is a stand-in (housekeeping came before any layout report)
        self.inventory_ref: list[float] | None = None
        self.sensor_health: dict[str, dict[str, Any]] = {}
        self.unobservable: set[str] = set()
        self.stats: list[tuple[float, str, float]] = []  # (utc, subject, test statistic)
        self.leak: dict[str, Any] = {}
        self.source_done = False  #: a capture source has read everything (not following)
        self.notes: list[str] = []  #: source problems worth showing (damaged ranges, ...)
        self._raw: bytes | None = None
        self.commander: Commander | None = None  #: set to command from the page (a TC link)
        self.acknowledged = 0  #: alarms acknowledged by a completed acknowledge command

    # ------------------------------------------------------------------------------------------
    # ingest

    def ingest(self, data: bytes, now: float | None = None) -> None:
        """Take the packets in ``data`` (whole packets back to back, as a datagram carries them).
        Never raises."""
        now = time.monotonic() if now is None else now
        with self.lock:
            n = len(data)
            pos = 0
            while pos < n:
                if n - pos < 7:
                    self.link.malformed += 1
                    return
                total = ((data[pos + 4] << 8) | data[pos + 5]) + 7
                b0 = data[pos]
                if b0 >> 5 != 0 or not b0 & 0x08 or pos + total > n:
                    self.link.malformed += 1  # not one of our packets, or cut short
                    return
                buf = data if (pos == 0 and total == n) else data[pos:pos + total]
                pos += total
                if crc16(buf):
                    self.link.crc_errors += 1
                    continue
                # CCSDS primary header: 11-bit APID in bytes 0-1, 14-bit sequence count in 2-3
                apid = ((b0 << 8) | data[pos - total + 1]) & 0x7FF
                seq = ((data[pos - total + 2] << 8) | data[pos - total + 3]) & 0x3FFF
                self.link.packet(apid, seq, total, now, telecommand=bool(b0 & 0x10))
                if apid == APID_RAW:
                    self._raw = buf
                    continue
                self._packet(buf)

    def _packet(self, buf: bytes) -> None:
        try:
            p = fast_decode(buf, verify_crc=False)
        except FirmwareError:
            self._undecodable(buf)
            return
        data = p.data
        if p.packet_type == 0:
            self.latest_utc = p.time_utc if self.latest_utc is None else max(self.latest_utc, p.time_utc)
        if isinstance(data, Housekeeping):
            self._housekeeping(data, p.time_utc)
        elif isinstance(data, Event):
            self._event(RawEvent(int(data.event_id), int(data.severity), data.subject, data.values), p.time_utc)
        elif isinstance(data, LayoutReport):
            self._layout(data)
        elif isinstance(data, VerificationReport) and self.commander is not None:
            record = self.commander.report(data)
            if record is not None and record["outcome"] == "completed" and record["action"].get("command") == "ack":
                self._acknowledge(record)

    def _acknowledge(self, record: dict[str, Any]) -> None:
        """Mark the alarms an acknowledge command covered (those logged before it was sent)."""
        event_id = record.get("event_id", 0)
        for e in self.events:
            if e["seq"] >= record["events_before"]:
                break
            if e["alarm"] and not e["acknowledged"] and (event_id == 0 or e["id"] == event_id):
                e["acknowledged"] = True
                self.acknowledged += 1

    def command(self, action: dict[str, Any]) -> dict[str, Any]:
        """Send an action of the page (see :mod:`.commands`) and return its record. Raises
        InputError for a bad action or when no TC link was given."""
        with self.lock:
            if self.commander is None:
                raise InputError("no telecommand link: start the monitor with --tc udp://HOST:PORT")
            record = self.commander.send(action)
            record["events_before"] = self.events.count
            return self.commander.public(record)

    def _undecodable(self, buf: bytes) -> None:
        """A packet that checks but that fast_decode refused: an event of an id this build does
        not know is still logged; anything else is counted as malformed."""
        if buf[0] & 0x10 == 0 and len(buf) >= TM_HEADER.size:  # a TM packet (type bit 0)
            _, _, _, _, service, subtype, _, _, secs, frac = TM_HEADER.unpack_from(buf, 0)
            if service == 5 and 1 <= subtype <= 4:
                try:
                    ev = parse_unknown_event(subtype, bytes(buf[TM_HEADER.size:-2]))
                except Exception:  # noqa: BLE001 - any parse failure is a malformed packet, counted
                    self.link.malformed += 1
                    return
                self._event(ev, secs + frac / 65536.0)
                return
        self.link.malformed += 1

    def _layout(self, report: LayoutReport) -> None:
        if report.layout_json == self.layout_json and self.epoch_utc == report.epoch_utc:
            return
        try:
            layout = layout_from_json(report.layout_json)
        except FirmwareError as exc:
            self.link.malformed += 1
            self._note(f"layout report not understood: {exc}")
            return
        # A new layout, or a new epoch (another run), starts the plots and the panels afresh;
        # the event log keeps what it has.
        if self.provisional:
            self.notes = [n for n in self.notes if not n.startswith("no layout report yet")]
        self.provisional = False
        self.layout_changes += 1
        self.layout = layout
        self.layout_json = report.layout_json
        self.epoch_utc = report.epoch_utc
        self.series = SeriesStore(len(layout.modules))
        self.inventory_ref = None
        self.hk = None
        self.stats = []
        self.sensor_health = {}
        self.unobservable = set()

    def _housekeeping(self, hk: Housekeeping, utc: float) -> None:
        if self.layout is None or (self.provisional and len(hk.modules) != len(self.layout.modules)):
            self._provisional_layout(len(hk.modules))
        elif len(hk.modules) != len(self.layout.modules):
            self.link.malformed += 1  # a report that does not fit the station's layout
            return
        self.hk = hk
        self.hk_utc = utc
        if self.inventory_ref is None:
            self.inventory_ref = [m.inventory_mol for m in hk.modules]
        if self.series is not None:
            self.series.append(utc, [[getattr(m, q) for m in hk.modules] for q, _ in QUANTITIES])

    def _provisional_layout(self, n_modules: int) -> None:
        """Housekeeping before any layout report (a monitor started during a run: the report comes
        every 60 s): modules named by position, no channels or valves, until the report comes."""
        self.layout = Layout(tuple(ModuleInfo(f"module-{i + 1}", 0.0) for i in range(n_modules)), (), (), (), ())
        self.layout_json = ""
        self.provisional = True
        self.layout_changes += 1
        self.series = SeriesStore(n_modules)
        self.inventory_ref = None
        self._note("no layout report yet: modules are named by position until one comes (every 60 s)")

    def _event(self, ev: RawEvent, utc: float) -> None:
        modules = segment_modules(ev.subject, [m.name for m in self.layout.modules]) if self.layout else None
        record = self.events.add(ev, utc, self.epoch_utc, modules)
        values = record["values"]
        name = record["name"]
        if "test_statistic" in values:
            self.stats.append((utc, ev.subject, float(values["test_statistic"])))
            if len(self.stats) > STAT_POINTS:
                del self.stats[: len(self.stats) - STAT_POINTS]
        if name == "SENSOR_FAILED":
            bias = values.get("bias", values.get("bias_pa"))  # SI unit of the sensor (Pa, K)
            self.sensor_health[ev.subject] = {"health": _enum_name(SensorHealth, int(values.get("health_code", 0))),
                                              "bias": bias, "since": record["utc"]}
        elif name == "SENSOR_RECOVERED":
            self.sensor_health.pop(ev.subject, None)
        elif name == "MODULE_UNOBSERVABLE":
            self.unobservable.update(modules or [ev.subject])
        elif name == "MODULE_OBSERVABLE":
            self.unobservable.difference_update(modules or [ev.subject])
        if name in ("LEAK_CONFIRMED", "LEAK_SUSPECTED", "LEAK_LOCATED", "SEGMENT_SEALED", "LEAK_CLEARED",
                    "ESTIMATE_UPDATED"):
            self.leak[name.lower()] = {"subject": ev.subject, "utc": record["utc"], **values}

    def _note(self, text: str) -> None:
        if len(self.notes) < 100:
            self.notes.append(text)

    def note(self, text: str) -> None:
        """Record a problem of the source (shown on the page and in ``/api/state``)."""
        with self.lock:
            self._note(text)

    # ------------------------------------------------------------------------------------------
    # reading

    def mission_time(self, utc: float | None) -> float | None:
        if utc is None or self.epoch_utc is None:
            return None
        return utc - self.epoch_utc

    def snapshot(self, events: int = 200, now: float | None = None) -> dict[str, Any]:
        """The whole state as plain JSON-able data (``/api/state``): the last ``events`` events."""
        with self.lock:
            out = self._panels(now)
            out["events"] = self.events.last(events)
            return out

    def panels(self, now: float | None = None) -> dict[str, Any]:
        """The state without the event log (what a live update carries)."""
        with self.lock:
            return self._panels(now)

    def _raw_samples(self) -> tuple[Any, float | None]:
        if self._raw is None:
            return None, None
        try:
            p = fast_decode(self._raw, verify_crc=False)
        except FirmwareError:
            return None, None
        return p.data, p.time_utc

    def _panels(self, now: float | None) -> dict[str, Any]:
        layout, hk = self.layout, self.hk
        raw, raw_utc = self._raw_samples()
        latest = max((u for u in (self.latest_utc, raw_utc) if u is not None), default=None)
        mt = self.mission_time(latest)
        out: dict[str, Any] = {
            "source": self.source,
            "source_done": self.source_done,
            "epoch_utc": self.epoch_utc,
            "utc": iso_utc(latest) if latest is not None else None,
            "utc_s": latest,
            "mission_time_s": mt,
            "mission_time": mission_text(mt) if mt is not None else None,
            "link": self.link.to_dict(now),
            "notes": list(self.notes),
            "event_count": self.events.count,
            "alarms": sum(self.events.by_severity.get(s, 0) for s in ALARM_SEVERITIES),
            "alarms_unacknowledged": sum(self.events.by_severity.get(s, 0) for s in ALARM_SEVERITIES)
            - self.acknowledged,
            "commanding": {"enabled": self.commander is not None,
                           "to": self.commander.url if self.commander is not None else None,
                           "actions": self.commander.records() if self.commander is not None else []},
            "leak": dict(self.leak),
        }
        if hk is not None:
            out["fdir"] = {
                "mode": _enum_name(FdirMode, hk.mode), "isolation_state": _enum_name(IsolationState, hk.isolation_state),
                "cycle": hk.cycle, "cycle_time_us": hk.cycle_time_us, "max_cycle_time_us": hk.max_cycle_time_us,
                "overruns": hk.overruns, "sensors_failed": hk.sensors_failed, "hk_utc": iso_utc(self.hk_utc or 0.0)}
            out["link"]["device_link_up"] = bool(hk.link_up)
            out["link"]["device_link_errors"] = hk.link_errors
        else:
            out["fdir"] = None
        if layout is None:
            out.update(modules=[], valves=[], sensors=[], diagram=None)
            return out
        valves = self._valves(layout, hk)
        if hk is not None and not self.provisional:
            seg = segments(layout, [v["state"] == "open" for v in valves])
        else:
            seg = [0] * len(layout.modules)
        modules = []
        for i, m in enumerate(layout.modules):
            rec: dict[str, Any] = {"name": m.name, "volume_m3": m.volume_m3, "segment": seg[i]}
            if hk is not None:
                mh = hk.modules[i]
                rec.update(pressure_pa=mh.pressure_pa, pressure_kpa=mh.pressure_pa / 1000.0,
                           pressure_mmhg=mh.pressure_pa / PA_PER_MMHG, temperature_k=mh.temperature_k,
                           inventory_mol=mh.inventory_mol,
                           inventory_change_mol=mh.inventory_mol - (self.inventory_ref or [0.0] * len(layout.modules))[i],
                           leak_rate_kg_s=mh.leak_rate_kg_s, status=_enum_name(ModuleStatus, mh.status))
                rec["marks"] = module_marks(mh.status, seg[i], m.name in self.unobservable)
            else:
                rec.update(pressure_pa=None, status=None,
                           marks=["unobservable"] if m.name in self.unobservable else [])
            modules.append(rec)
        out["modules"] = modules
        out["valves"] = valves
        out["sensors"] = self._sensors(layout, raw)
        out["diagram"] = diagram(layout, modules, valves)
        return out

    @staticmethod
    def _valves(layout: Layout, hk: Housekeeping | None) -> list[dict[str, Any]]:
        valves = []
        for i, v in enumerate(layout.valves):
            rec: dict[str, Any] = {"id": v.id, "kind": v.kind.name.lower(), "module_a": v.module_a,
                                   "module_b": v.module_b}
            if hk is not None and i < len(hk.valves):
                vh = hk.valves[i]
                is_open = vh.fb >= OPEN_AT
                rec.update(command="open" if vh.cmd else "closed", feedback=vh.fb,
                           state="open" if is_open else "closed", agree=bool(vh.cmd) == is_open,
                           health=_enum_name(ValveHealth, vh.health))
            else:
                rec.update(command=None, feedback=None, state="unknown", agree=None, health=None)
            valves.append(rec)
        return valves

    def _sensors(self, layout: Layout, raw: Any) -> list[dict[str, Any]]:
        out = []
        groups = ((layout.pressure, "pressure", "pressure_status"),
                  (layout.temperature, "temperature", "temperature_status"),
                  (layout.flow, "flow", "flow_status"))
        for channels, values_name, status_name in groups:
            values = getattr(raw, values_name, None) if raw is not None else None
            status = getattr(raw, status_name, None) if raw is not None else None
            for i, c in enumerate(channels):
                health = self.sensor_health.get(c.id)
                out.append({
                    "id": c.id, "kind": c.kind.name.lower(), "module": c.module,
                    "value": values[i] if values is not None and i < len(values) else None,
                    "sample_status": _enum_name(SampleStatus, status[i]) if status is not None and i < len(status) else None,
                    "health": health["health"] if health else "OK",
                    "bias": health["bias"] if health else None,
                })
        return out

    # ------------------------------------------------------------------------------------------
    # series for the plots

    def series_window(self, window_s: float | None, points: int) -> dict[str, Any]:
        """The plot data of the last ``window_s`` mission seconds (all when None), at most about
        ``points`` rows: ``t`` (UTC s) and per quantity a list per module."""
        with self.lock:
            if self.series is None or self.layout is None:
                return {"t": [], "modules": [], "stats": []}
            t, v = self.series.window(window_s, points)
            first_t = float(t[0]) if len(t) else None
            stats = [s for s in self.stats if first_t is None or s[0] >= first_t]
            return self._series_dict(t, v, stats)

    def series_since(self, after_utc: float, window_s: float, points: int, hint: int,
                     stat_after: float) -> tuple[dict[str, Any], int]:
        """New plot rows after ``after_utc`` (thinned for a ``window_s`` plot of ``points``
        points) and test-statistic points after ``stat_after``; with the next ``hint``."""
        with self.lock:
            if self.series is None or self.layout is None:
                return {"t": [], "modules": [], "stats": []}, 0
            t, v, nxt = self.series.since(after_utc, window_s, points, hint)
            stats = [s for s in self.stats if s[0] > stat_after]
            return self._series_dict(t, v, stats), nxt

    def _series_dict(self, t: np.ndarray, v: np.ndarray, stats: list[tuple[float, str, float]]) -> dict[str, Any]:
        assert self.layout is not None
        out: dict[str, Any] = {"t": t.tolist(), "modules": [m.name for m in self.layout.modules],
                               "stats": [{"utc_s": u, "subject": s, "value": x} for u, s, x in stats]}
        for q, (name, _unit) in enumerate(QUANTITIES):
            out[name] = v[:, q, :].T.tolist()
        out["inventory_ref_mol"] = list(self.inventory_ref or [])
        return out

    def layout_generation(self) -> tuple[str, int]:
        with self.lock:
            return self.layout_json, self.layout_changes
