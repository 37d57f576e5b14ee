"""The HIL test summary: one record per test, a table for the terminal, a JSON or JUnit file.

A :class:`HilRecord` holds what a HIL test did: scenario and seed, board id, mission time run,
wall time spent in the flight loop, cycles, cycles per second and the capture file.
:func:`summary_lines` renders the session's records for the terminal; :func:`write_report`
writes them to ``--hil-report FILE``: JUnit XML when FILE ends in ``.xml`` (one ``testcase``
per test, the figures as ``property`` elements, a ``failure`` element for a failed test), else
JSON (``{"version": 1, "tests": [record, ...]}`` with the fields of :class:`HilRecord`).

:func:`board_bytes_per_cycle` and :func:`estimated_cycles_per_s` say what a UART's baud rate
allows: the board sends a HIL_STEP reply every cycle (protocol 1.2; a SAMPLES and a HIL_INJECT
reply from an older board), 10 bits per byte.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field

from ...hal import framing, wire

#: Default wall-clock budget of one test's flight loop, s (``--hil-timeout``, ``hil_timeout``).
DEFAULT_WALL_TIMEOUT_S = 300.0
#: Below this many cycles per second (10x real time at 10 Hz) a test's speed is warned about.
SLOW_CYCLES_PER_S = 100.0
REPORT_VERSION = 1


@dataclass
class HilRecord:
    """What one HIL test did (see the module docstring). Times in seconds."""

    nodeid: str
    outcome: str = "passed"  #: passed, failed, skipped (the call phase; setup errors: error)
    scenario: str = ""
    seed: int | None = None
    board_id: str = ""
    board_url: str = ""
    mission_s: float = 0.0  #: mission time the flight loop ran
    wall_s: float = 0.0  #: wall time spent in the flight loop
    cycles: int = 0
    capture: str = ""  #: the test's capture file ("" when the test used no flight fixture)
    message: str = field(default="", repr=False)  #: first line of the failure, if any

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["cycles_per_s"] = round(self.cycles_per_s, 1)
        return d


def board_bytes_per_cycle(n_channels: int, n_valves: int, protocol_minor: int = wire.PROTOCOL_MINOR) -> int:
    """Bytes a board sends each HIL cycle: one framed HIL_STEP reply (protocol 1.2 and later),
    or a SAMPLES reply and a HIL_INJECT reply (older boards)."""
    codec = wire.SamplesCodec(n_channels, n_valves)
    payload = codec.pack(0, 0, [0] * n_channels, [101325.0] * n_channels, [0] * n_channels,
                         [0] * n_channels, [1] * n_valves, [0] * n_valves, [0] * n_valves)
    if protocol_minor >= wire.HIL_STEP_MINOR:
        return len(framing.encode_frame(wire.MsgType.HIL_STEP_REPLY, 1, payload))
    samples = framing.encode_frame(wire.MsgType.SAMPLES, 1, payload)
    ack = framing.encode_frame(wire.MsgType.HIL_INJECT_REPLY, 2, wire.encode_fast(wire.HilInjectReply(0, 1)))
    return len(samples) + len(ack)


def estimated_cycles_per_s(baud: int, n_channels: int, n_valves: int,
                           protocol_minor: int = wire.PROTOCOL_MINOR) -> float:
    """The most HIL cycles per second a board on a UART at ``baud`` can answer (10 bits a byte)."""
    return baud / 10.0 / board_bytes_per_cycle(n_channels, n_valves, protocol_minor)


def summary_lines(records: list[HilRecord]) -> list[str]:
    """The terminal table: one line per test."""
    if not records:
        return []
    lines = [f"{'mission s':>10} {'wall s':>8} {'cycles/s':>9}  {'outcome':<7} test / capture"]
    for r in records:
        lines.append(f"{r.mission_s:10.1f} {r.wall_s:8.2f} {r.cycles_per_s:9.0f}  {r.outcome:<7} {r.nodeid}")
        if r.capture:
            lines.append(f"{'':39} {r.capture}")
    total_m = sum(r.mission_s for r in records)
    total_w = sum(r.wall_s for r in records)
    cycles = sum(r.cycles for r in records)
    lines.append(f"{total_m:10.1f} {total_w:8.2f} {cycles / total_w if total_w else 0:9.0f}  "
                 f"{len(records)} HIL test(s) in total")
    return lines


def write_report(path: str | os.PathLike[str], records: list[HilRecord]) -> None:
    """Write ``records`` to ``path``: JUnit XML for ``*.xml``, JSON otherwise. Raises OSError."""
    path = os.fspath(path)
    if path.lower().endswith(".xml"):
        _write_junit(path, records)
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": REPORT_VERSION, "tests": [r.as_dict() for r in records]}, f, indent=2)
        f.write("\n")


def _write_junit(path: str, records: list[HilRecord]) -> None:
    suite = ET.Element("testsuite", name="hullwatch-hil", tests=str(len(records)),
                       failures=str(sum(r.outcome == "failed" for r in records)),
                       errors=str(sum(r.outcome == "error" for r in records)),
                       skipped=str(sum(r.outcome == "skipped" for r in records)),
                       time=f"{sum(r.wall_s for r in records):.3f}")
    for r in records:
        module, _, name = r.nodeid.rpartition("::")
        case = ET.SubElement(suite, "testcase", classname=module.replace("/", ".").removesuffix(".py"),
                             name=name or r.nodeid, time=f"{r.wall_s:.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in r.as_dict().items():
            if key not in ("nodeid", "outcome", "message"):
                ET.SubElement(props, "property", name=key, value="" if value is None else str(value))
        if r.outcome in ("failed", "error"):
            ET.SubElement(case, "failure" if r.outcome == "failed" else "error", message=r.message)
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


__all__ = ["DEFAULT_WALL_TIMEOUT_S", "HilRecord", "SLOW_CYCLES_PER_S", "board_bytes_per_cycle", "estimated_cycles_per_s",
           "summary_lines", "write_report"]
