"""Big-capture benchmark: bulk decode, CSV export, plot and replay of a 1 GB capture.

    python bench/replay.py [--size-mb 1000] [--block-s 600] [--only decode,export,plot,replay] [--keep]

Builds a capture of ``--size-mb`` MB in the temporary directory from a real closed-loop run of
``soyuz-ms09`` (``--block-s`` mission seconds: one raw-sample packet per 10 Hz cycle, housekeeping
at 1 Hz, layout reports every 60 s, the leak's events), repeated with each copy's CUC times shifted
on (CRCs recomputed) so that the capture covers one continuous stretch of mission time; sequence
counts and cycle numbers repeat, which none of the measured paths cares about. Then each job
runs in a fresh process so that its peak memory (``ru_maxrss``) is its own:

- decode: the ground bulk reader (``iter_packet_batches``: framing, every CRC checked, header
  columns vectorised), packets/s, in one process; decode2 with ``workers=2``. Target >=
  1,000,000 packets/s.
- export: ``hullwatch decode CAPTURE --format csv -o /dev/null`` (one row per packet, the raw
  samples one column per sensor; the text made from Arrow columns by captures/csv_lines.py),
  rows/s, ``--workers 1``; export2 with ``--workers 2`` (the capture framed in two processes;
  the default on a 2-core machine for a capture this big). Target >= 200,000 rows per CPU
  second: what one core does, whatever else runs on the machine (the wall-clock rate is printed
  beside it). The verb's modules are imported before the clock starts.
- parquet: ``hullwatch decode CAPTURE --format parquet -o FILE``, rows/s, one process (the file is
  deleted after). Target: more rows per CPU second than CSV.
- plot: ``hullwatch plot CAPTURE -o PNG``, MB/s of capture.
- replay: ``hullwatch replay CAPTURE --to udp://127.0.0.1:PORT --fast``, packets/s.
- rerun (not in the default set: about 10,000 cycles/s, so minutes per GB): the flight software
  on ``replay://CAPTURE`` and the event comparison, cycles/s (``--only rerun --size-mb 100``).

Peak memory target for every job: < 200 MB whatever the capture's size. The capture is deleted
at the end (``--keep`` keeps it and prints its path). Timing figures are noisy on a shared 2-core
machine.
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

import hullwatch.tools.cli.decode  # noqa: F401 - the verb's module, loaded before an export's clock starts
from hullwatch.firmware.telemetry.fastcodec import TM_HEADER_FIELDS
from hullwatch.firmware.telemetry.fields import field_offsets
from hullwatch.tools.captures.plot import plot_capture
from hullwatch.tools.captures.replay import open_sink, replay_capture
from hullwatch.tools.captures.rerun import rerun_capture
from hullwatch.tools.cli import main as hullwatch_main
from hullwatch.tools.closed_loop.runner import run_scenario
from hullwatch.tools.ground.capture import iter_packet_batches

TARGET_DECODE = 1_000_000
TARGET_EXPORT = 200_000
TARGET_PARQUET = TARGET_EXPORT  # "more than CSV": the CSV figure of the same run when there is one
TARGET_MEMORY_MB = 200.0


# ----------------------------------------------------------------------------------------------
# building the capture


def record_block(path: str, seconds: float) -> None:
    """A real closed-loop capture of soyuz-ms09 (seed 7): the leak, its detection and isolation."""
    run_scenario("sim://soyuz-ms09?seed=7", until=seconds, capture=path)


def build_capture(path: str, size_mb: float, block_s: float, workdir: str) -> tuple[int, float]:
    """Write a capture of about ``size_mb`` MB to ``path``; return (packets, mission seconds)."""
    block_path = os.path.join(workdir, "block.tm")
    record_block(block_path, block_s)
    with open(block_path, "rb") as f:
        block = f.read()
    os.unlink(block_path)
    starts_l: list[int] = []
    lengths_l: list[int] = []
    for batch in iter_packet_batches(block):
        starts_l.extend((batch.base + batch.starts).tolist())
        lengths_l.extend(batch.lengths.tolist())
    starts = np.asarray(starts_l, np.int64)
    ends = starts + np.asarray(lengths_l, np.int64)
    assert ends[-1] == len(block), "the recorded block must be whole packets"
    secs_off = field_offsets(TM_HEADER_FIELDS)["secondary.cuc_seconds"]
    idx = starts[:, None] + secs_off + np.arange(4)
    base = np.frombuffer(block, np.uint8)
    secs0 = base[idx].astype(np.uint32) @ np.array([1 << 24, 1 << 16, 1 << 8, 1], np.uint32)
    shift = int(round(block_s))
    target = int(size_mb * 1e6)
    written = packets = rep = 0
    with open(path, "wb") as out:
        while written < target:
            if rep == 0:
                data = block
            else:
                arr = base.copy()
                secs = (secs0 + np.uint32(rep * shift)).astype(">u4")
                arr[idx] = secs.view(np.uint8).reshape(-1, 4)
                buf = bytearray(arr.tobytes())
                mv = memoryview(buf)
                crc = binascii.crc_hqx
                for s, e in zip(starts.tolist(), ends.tolist()):
                    c = crc(mv[s:e - 2], 0xFFFF)
                    buf[e - 2] = c >> 8
                    buf[e - 1] = c & 0xFF
                data = bytes(buf)
            out.write(data)
            written += len(data)
            packets += len(starts)
            rep += 1
    return packets, rep * block_s


# ----------------------------------------------------------------------------------------------
# the jobs, each run in its own process (``--job NAME CAPTURE``)


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _decode(path: str, workers: int) -> dict:
    n = 0
    t0, c0 = time.perf_counter(), _cpu()
    for batch in iter_packet_batches(path, workers=workers):  # frames, checks every CRC, header columns
        batch.headers()
        n += len(batch)
    return {"count": n, "seconds": time.perf_counter() - t0, "cpu": _cpu() - c0}


def job_decode(path: str) -> dict:
    return _decode(path, 1)


def job_decode2(path: str) -> dict:
    return _decode(path, 2)


def _export(path: str, workers: int, fmt: str = "csv") -> dict:
    # the modules the verb loads (pyarrow, the ground reader: a constant 0.2-0.4 s of start-up,
    # not a rate) are imported before the clock starts.
    # deferred: pyarrow (40 MB resident) is for the export jobs only; each job's peak is its figure
    import hullwatch.tools.captures.table_export  # noqa: F401

    out = os.devnull if fmt == "csv" else path + ".parquet"
    t0, c0 = time.perf_counter(), _cpu()
    code = hullwatch_main(["decode", path, "--format", fmt, "-o", out, "--no-progress", "--workers", str(workers)])
    result = {"seconds": time.perf_counter() - t0, "cpu": _cpu() - c0, "exit": code}
    if out != os.devnull:
        result["out_mb"] = os.path.getsize(out) / 1e6
        os.unlink(out)
    return result


def job_export(path: str) -> dict:
    return _export(path, 1)


def job_export2(path: str) -> dict:
    return _export(path, 2)


def job_parquet(path: str) -> dict:
    return _export(path, 1, "parquet")


def job_plot(path: str) -> dict:
    png = path + ".png"
    t0 = time.perf_counter()
    data = plot_capture(path, png)
    seconds = time.perf_counter() - t0
    size = os.path.getsize(png)
    os.unlink(png)
    return {"seconds": seconds, "housekeeping": data.housekeeping, "points": len(data.t), "png_bytes": size}


def job_replay(path: str) -> dict:
    # a socket that is never read: datagrams to it are dropped by the kernel once its buffer is
    # full, which is what a busy ground station does too; the sender is what is measured
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    sink = open_sink(f"udp://127.0.0.1:{listener.getsockname()[1]}")
    t0 = time.perf_counter()
    stats = replay_capture(path, sink, speed=None)
    seconds = time.perf_counter() - t0
    sink.close()
    listener.close()
    return {"count": stats.packets, "seconds": seconds}


def job_rerun(path: str) -> dict:
    t0 = time.perf_counter()
    report = rerun_capture(path)
    return {"count": report.cycles, "seconds": time.perf_counter() - t0, "diffs": len(report.diffs)}


JOBS = {"decode": job_decode, "decode2": job_decode2, "export": job_export, "export2": job_export2,
        "parquet": job_parquet, "plot": job_plot, "replay": job_replay, "rerun": job_rerun}


def run_job(name: str, path: str) -> dict:
    """Run job ``name`` in a fresh interpreter; its result with ``peak_mb`` (ru_maxrss)."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--job", name, path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"job {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000.0, help="capture size in MB (default 1000)")
    ap.add_argument("--block-s", type=float, default=600.0,
                    help="mission seconds of the recorded block that is repeated (default 600)")
    ap.add_argument("--only", default="decode,decode2,export,export2,parquet,plot,replay",
                    help="jobs to run, comma-separated (decode2/export2: two processes)")
    ap.add_argument("--keep", action="store_true", help="keep the capture file")
    ap.add_argument("--job", nargs=2, metavar=("NAME", "CAPTURE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.job:
        name, path = args.job
        result = JOBS[name](path)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
        # the largest worker process, if the job had any
        result["peak_child_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        print(json.dumps(result))
        return 0

    jobs = [j.strip() for j in args.only.split(",") if j.strip()]
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        ap.error(f"--only: unknown job(s) {', '.join(unknown)}; choose from {', '.join(JOBS)}")
    workdir = tempfile.mkdtemp(prefix="hullwatch-bench-")
    path = os.path.join(workdir, "big.tm")
    try:
        t0 = time.perf_counter()
        packets, span = build_capture(path, args.size_mb, args.block_s, workdir)
        size = os.path.getsize(path)
        print(f"capture: {size / 1e6:,.0f} MB, {packets:,} packets, {span / 3600:,.1f} h of mission time "
              f"(soyuz-ms09 block of {args.block_s:g} s repeated; built in {time.perf_counter() - t0:.0f} s)")
        print("(decode/export: one process; decode2/export2: two worker processes. 'per CPU s' is the")
        print(" figure per second of CPU used (the process and its workers), what the code does on a core")
        print(" of its own; the machine may be shared. Export targets are judged on it)")
        print(f"(load average at the start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
        print(f"{'job':8s} {'figure':>28s} {'target':>22s} {'peak memory':>13s}   per CPU s")
        worst_mb = 0.0
        csv_per_cpu = None
        for name in jobs:
            r = run_job(name, path)
            peak = max(r["peak_mb"], r.get("peak_child_mb", 0.0))
            worst_mb = max(worst_mb, peak)
            mem = f"{peak:8.0f} MB {_verdict(peak < TARGET_MEMORY_MB)}"
            if name in ("decode", "decode2"):
                rate = r["count"] / r["seconds"]
                if r["count"] != packets:
                    raise SystemExit(f"decode found {r['count']} packets, the capture holds {packets}")
                print(f"{name:8s} {rate:>16,.0f} packets/s {f'>= {TARGET_DECODE:,} {_verdict(rate >= TARGET_DECODE)}':>22s} {mem}"
                      f"   {r['count'] / r['cpu']:,.0f}")
            elif name in ("export", "export2", "parquet"):
                if r["exit"] != 0:
                    raise SystemExit(f"hullwatch decode --format {'parquet' if name == 'parquet' else 'csv'} "
                                     f"exited {r['exit']}")
                rate = packets / r["seconds"]
                per_cpu = packets / r["cpu"]
                if name == "export":
                    csv_per_cpu = per_cpu
                if name == "parquet" and csv_per_cpu is not None:
                    goal = f"> CSV {csv_per_cpu:,.0f} {_verdict(per_cpu > csv_per_cpu)}"
                else:
                    target = TARGET_PARQUET if name == "parquet" else TARGET_EXPORT
                    goal = f">= {target:,} {_verdict(per_cpu >= target)}"
                extra = f" ({r['out_mb']:,.0f} MB file)" if "out_mb" in r else ""
                print(f"{name:8s} {rate:>16,.0f} rows/s    {goal:>22s} {mem}   {per_cpu:,.0f}{extra}")
            elif name == "plot":
                rate = size / 1e6 / r["seconds"]
                print(f"{name:8s} {rate:>16,.1f} MB/s       {'-':>22s} {mem}   "
                      f"({r['housekeeping']:,} housekeeping samples -> {r['points']} points per series)")
            elif name == "replay":
                rate = r["count"] / r["seconds"]
                print(f"{name:8s} {rate:>16,.0f} packets/s {'(--fast, UDP)':>22s} {mem}")
            elif name == "rerun":
                rate = r["count"] / r["seconds"]
                print(f"{name:8s} {rate:>16,.0f} cycles/s  {'-':>22s} {mem}   "
                      f"({r['count']:,} cycles of flight software on replay://)")
        print(f"peak memory of the worst job (any one process): {worst_mb:.0f} MB, target < {TARGET_MEMORY_MB:.0f} MB "
              f"{_verdict(worst_mb < TARGET_MEMORY_MB)}")
        print(f"(load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    finally:
        if args.keep and os.path.exists(path):
            print(f"kept {path}")
        else:
            if os.path.exists(path):
                os.unlink(path)
            try:
                os.rmdir(workdir)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
