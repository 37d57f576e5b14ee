"""``hullwatch decode CAPTURE``: print or export the packets of a telemetry capture."""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import IO, Any

from ...firmware.errors import TelemetryError
from ...firmware.telemetry import packets as P
from ...firmware.telemetry.layoutjson import layout_from_json
from ...firmware.types import EventId
from ..captures import formats as F
from ..ground.capture import iter_capture
from .common import check_capture_content, check_capture_path, file_kept_text, progress_bar
from ..errors import EXIT_DAMAGED, EXIT_OK, InputError
from ..timeparse import time_arg
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch decode run.tm                              # readable table
  hullwatch decode run.tm --event LEAK_LOCATED         # when and where the leak was located
  hullwatch decode run.tm --service 5 --since 600      # every event after 10 minutes of mission time
  hullwatch decode run.tm --format csv -o raw.csv --service 3,25 --apid 102   # raw samples, one column per sensor
  hullwatch decode run.tm --format jsonl --since 2018-08-29T20:30:00Z --until 2018-08-29T21:00:00Z
  hullwatch decode run.tm --format parquet -o run.parquet   # the same rows, typed columns

Times (--since/--until) are mission time, in seconds or with units (600, 15m, 1h30m; 0 = the
epoch in the capture's layout report; without one, the first packet), or ISO 8601 UTC. CSV and JSON-lines columns carry their units in their
names (pressure_pa, temperature_k, leak_rate_kg_s); raw-sample columns are named from the layout
report (soyuz-om.p1_pa, soyuz-om.p1_status, ...).

exit status: 0 all decoded (an empty capture too, with a warning); 2 bad arguments, an unreadable
file or a file that is not a capture; 3 the capture is damaged (every intact packet was decoded;
each skipped byte range is listed on stderr).
"""

#: above this size a progress bar is shown (on a terminal only)
PROGRESS_MIN_BYTES = 16 << 20
#: above this size CSV/Parquet export frames the capture in several processes by default
PARALLEL_MIN_BYTES = 32 << 20


#: the one time syntax of every verb (mission time with units, or ISO UTC), checked at parse time
parse_time = time_arg


def _service(text: str) -> tuple[int, int | None]:
    parts = text.split(",")
    try:
        if len(parts) == 1:
            return int(parts[0]), None
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected SERVICE or SERVICE,SUBTYPE (e.g. 5 or 3,25), got {text!r}")


def _apid(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an APID 0..2047, got {text!r}") from exc
    if not 0 <= value <= 2047:
        raise argparse.ArgumentTypeError(f"expected an APID 0..2047, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "decode",
        help=SUMMARIES["decode"],
        description="Decode a telemetry capture (.tm): a readable table by default, or one row per "
        "packet as CSV, JSON lines or Parquet. Damaged stretches are skipped and listed on stderr (exit 3).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")
    p.add_argument("--format", choices=("table", "csv", "jsonl", "parquet"), default="table",
                   help="output format (default table); parquet needs -o FILE")
    p.add_argument("--apid", type=_apid, action="append", metavar="N", help="only this APID (repeatable)")
    p.add_argument("--service", type=_service, action="append", metavar="S[,SUBTYPE]",
                   help="only this PUS service, or service and subtype (repeatable)")
    p.add_argument("--event", action="append", metavar="NAME",
                   help="only events of this name, e.g. LEAK_LOCATED (repeatable; see hullwatch dictionary)")
    p.add_argument("--since", type=parse_time, metavar="T", help="from this time: mission time (600, 15m, 1h30m) or ISO UTC")
    p.add_argument("--until", type=parse_time, metavar="T", help="up to this time (inclusive)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="processes framing and checking the capture for --format csv/parquet (default: one "
                   "per core, up to 4, for a capture over "
                   f"{PARALLEL_MIN_BYTES >> 20} MB, else 1)")
    p.set_defaults(func=handler)


def _event_ids(names: list[str] | None) -> set[int] | None:
    if not names:
        return None
    ids = set()
    for name in names:
        key = name.strip().upper()
        if key not in EventId.__members__:
            raise InputError(f"--event {name}: unknown event; known: {', '.join(EventId.__members__)}")
        ids.add(int(EventId[key]))
    return ids


def _scan_layout(path: str) -> tuple[Any, tuple[int, int, int, int, int], float | None, float | None]:
    """The first layout report (before the first raw or housekeeping packet), the channel counts
    of the first raw-samples/housekeeping packets, the layout's epoch, and the first TM time."""
    layout = None
    epoch = first_time = None
    counts = [0, 0, 0, 0, 0]
    seen_raw = seen_hk = False
    for n, captured in enumerate(iter_capture(path)):
        packet = captured.packet
        if first_time is None and packet.packet_type == P.PacketType.TM:
            first_time = packet.time_utc
        d = packet.data
        if isinstance(d, P.LayoutReport) and layout is None:
            try:
                layout = layout_from_json(d.layout_json)
                epoch = d.epoch_utc
            except Exception:  # noqa: BLE001 - an unreadable layout only costs the column names
                pass
            if layout is not None:
                break
        elif isinstance(d, P.RawSamples) and not seen_raw:
            counts[:4] = [len(d.pressure), len(d.temperature), len(d.flow), len(d.valve_cmd)]
            seen_raw = True
        elif isinstance(d, P.Housekeeping) and not seen_hk:
            counts[4] = len(d.modules)
            counts[3] = counts[3] or len(d.valves)
            seen_hk = True
        if (seen_raw and seen_hk) or n > 10_000:
            break
    return layout, tuple(counts), epoch, first_time  # type: ignore[return-value]


def _decode_rows(args: argparse.Namespace, path: str, rows: Any, selector: Any, on_skip: Any, bar: Any) -> None:
    """Table and JSON lines: every packet decoded, filtered and written by captures.formats."""
    out: IO[str]
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        table = args.format == "table"
        writer: Any = F.TableWriter(out) if table else F.JsonlWriter(out, rows)
        # The table names modules and valves from the latest layout report (recordings of two
        # stations back to back); JSON lines keep the columns of the first.
        layout = rows.layout
        for offset, _raw, packet in iter_capture(path, on_skip=on_skip, on_progress=bar.update if bar else None):
            if table and isinstance(packet.data, P.LayoutReport):
                try:
                    layout = layout_from_json(packet.data.layout_json)
                except TelemetryError:
                    pass  # (an unreadable report: the names of the last good one)
            accepted, t_mission = selector.accept(packet)
            if accepted:
                writer.write(offset, packet, t_mission, packet.name, layout if table else rows.layout)
        writer.close()
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()


def _export_table(args: argparse.Namespace, path: str, rows: Any, selector: Any, on_skip: Any, bar: Any) -> None:
    """CSV and Parquet: the rows as Arrow columns (captures.table_export), to a file or stdout."""
    # deferred: pyarrow costs about 0.1 s to import, and only --format csv/parquet needs it
    from ..captures.table_export import export_csv, export_parquet

    workers = args.workers
    if workers <= 0:
        workers = min(os.cpu_count() or 1, 4) if os.path.getsize(path) >= PARALLEL_MIN_BYTES else 1
    export = export_csv if args.format == "csv" else export_parquet
    options = {"workers": workers, "on_progress": bar.update if bar else None}
    if args.output:
        with open(args.output, "wb") as f:
            export(path, f, rows, selector, on_skip, **options)
        return
    binary = getattr(sys.stdout, "buffer", None)
    if args.format == "parquet" and (binary is None or sys.stdout.isatty()):
        raise InputError("--format parquet is binary: give -o FILE (or redirect standard output to a file)")
    sys.stdout.flush()
    if binary is not None:
        export(path, binary, rows, selector, on_skip, **options)
        binary.flush()
        return
    # a text-only standard output (some test harnesses): CSV is UTF-8 text
    buffer = io.BytesIO()
    export(path, buffer, rows, selector, on_skip, **options)
    sys.stdout.write(buffer.getvalue().decode("utf-8"))


def handler(args: argparse.Namespace) -> int:
    path = args.capture
    check_capture_path(path)
    with open(path, "rb"):  # unreadable: PermissionError, turned into one line by the CLI
        pass
    empty = check_capture_content(path)  # not a capture: InputError, exit 2
    if empty:
        print(f"hullwatch: decode: warning: {empty}", file=sys.stderr)
    event_ids = _event_ids(args.event)
    apids = set(args.apid) if args.apid else None
    services = args.service
    since, until = args.since, args.until

    layout, counts, epoch, first_time = _scan_layout(path)
    # CSV/JSONL columns: only those of the packet kinds the filters can let through
    kinds = {d.name for d in P.PACKET_DEFS
             if (apids is None or d.apid in apids)
             and (services is None or any(d.service == s and sub in (None, d.subtype) for s, sub in services))
             and (event_ids is None or d.service == 5)}
    if event_ids is None:
        kinds.add("unknown")
    rows = F.RowBuilder(kinds, layout, counts)
    selector = F.Selector(apids, services, event_ids, since, until, epoch if epoch is not None else first_time)
    skipped = [0, 0]

    def on_skip(skip: Any) -> None:
        skipped[0] += 1
        skipped[1] += skip.length
        print(f"hullwatch: decode: {path}: {skip}", file=sys.stderr)

    bar = None
    size = os.path.getsize(path)
    if not args.no_progress and sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES:
        bar = progress_bar(total=size, unit="B", unit_scale=True, desc="decode", leave=False)
    try:
        if args.format in ("csv", "parquet"):
            _export_table(args, path, rows, selector, on_skip, bar)
        else:
            _decode_rows(args, path, rows, selector, on_skip, bar)
    finally:
        if bar is not None:
            bar.close()
    if rows.mismatches and args.format != "table":
        print(f"hullwatch: decode: {path}: warning: {rows.mismatches} packets do not match the layout report, "
              f"their per-channel columns are empty; first: {rows.first_mismatch}", file=sys.stderr)
    if skipped[0]:
        print(f"hullwatch: decode: {path}: damaged: {skipped[0]} byte ranges skipped "
              f"({skipped[1]} bytes); everything else decoded", file=sys.stderr)
        return EXIT_DAMAGED
    return EXIT_OK


def on_interrupt(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves: the output file holds the rows written so far; the capture is untouched."""
    if args.output:
        return f"{file_kept_text(args.output)} holds the rows decoded so far; {args.capture} is untouched"
    return f"{args.capture} is untouched"
