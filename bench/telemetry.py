"""Telemetry benchmark: per-cycle raw-samples encoding, bulk capture decoding, beside spacepackets.

Run: ``python bench/telemetry.py [--mb 100] [--seconds 2]``. Prints packets/s beside the targets:
encode >= 300,000 packets/s; bulk decode of a 100 MB capture with every CRC checked
>= 1,000,000 packets/s and >= 20x the spacepackets library on the same packets. The capture is
generated in the temporary directory and deleted afterwards. Times are noisy on a shared 2-core
machine: each figure is the best of a few short runs, and the figure per second of CPU used is
printed beside it (with ``workers`` > 1 it counts the worker processes' CPU too).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
import warnings

from spacepackets.ecss import PusTm

from hullwatch.firmware.telemetry import CaptureSink, RawSampleEncoder, TelemetryEmitter
from hullwatch.tools.ground import iter_packet_batches
from hullwatch.firmware.telemetry import packets as P
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind

EPOCH = 1535572800.0
TARGET_ENCODE = 300_000
TARGET_DECODE = 1_000_000
TARGET_RATIO = 20.0


def soyuz_like_layout() -> Layout:
    """6 modules x (3 pressure + 2 temperature), 1 repress flow, 7 valves (6 hatches + repress)."""
    names = ["soyuz-om", "soyuz-dm", "mrm2", "zvezda", "zarya", "node1"]
    modules = tuple(ModuleInfo(n, 10.0) for n in names)
    pressure = tuple(ChannelInfo(f"{m}.p{j}", ChannelKind.PRESSURE, m, 0.0, 120000.0) for m in names for j in (1, 2, 3))
    temperature = tuple(ChannelInfo(f"{m}.t{j}", ChannelKind.TEMPERATURE, m, 200.0, 350.0) for m in names for j in (1, 2))
    flow = (ChannelInfo("repress.flow", ChannelKind.FLOW, "zvezda", 0.0, 1.0),)
    hatches = [(a, b) for a, b in zip(names, names[1:])] + [("node1", "soyuz-om")]
    valves = tuple(ValveInfo(f"{a}-{b}", ValveKind.HATCH, a, b, 5.0) for a, b in hatches)
    valves += (ValveInfo("repress", ValveKind.REPRESS, "zvezda", None, 2.0),)
    return Layout(modules, pressure, temperature, flow, valves[:7])


def _best_rate(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_encode(seconds: float) -> tuple[float, float, int]:
    layout = soyuz_like_layout()
    enc = RawSampleEncoder(layout)
    frame = layout.new_frame()
    rng = random.Random(1)
    frame.pressure[:] = [101325.0 + rng.gauss(0, 3) for _ in frame.pressure]
    frame.temperature[:] = [295.0 + rng.gauss(0, 0.2) for _ in frame.temperature]
    frame.pressure_status[:] = [0] * len(frame.pressure)

    def ours(n: int) -> None:
        encode = enc.encode
        for cycle in range(n):
            encode(frame, cycle, EPOCH + cycle * 0.1)

    sample = enc.encode(frame, 0, EPOCH)
    app_data = sample[19:-2]  # spacepackets gets the application data already packed (in its favour)

    def theirs(n: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cycle in range(n):
                t = EPOCH + cycle * 0.1
                secs = int(t)
                stamp = secs.to_bytes(4, "big") + int((t - secs) * 65536).to_bytes(2, "big")
                PusTm(apid=P.APID_RAW, service=3, subservice=25, timestamp=stamp, source_data=app_data,
                      seq_count=cycle & 0x3FFF, message_counter=cycle & 0xFFFF).pack()

    n = max(1000, int(300_000 * seconds))
    ours_rate = _best_rate(ours, n, 3)
    theirs_rate = _best_rate(theirs, max(1000, n // 30), 2)
    return ours_rate, theirs_rate, len(sample)


def make_capture(path: str, megabytes: int) -> int:
    """A realistic capture: raw samples every cycle, housekeeping at 1 Hz, layout every 60 s."""
    layout = soyuz_like_layout()
    sink = CaptureSink(path)
    em = TelemetryEmitter([], layout, EPOCH)
    chunk: list[bytes] = []
    em.add_sink(type("Chunk", (), {"write": lambda self, b: chunk.append(b), "close": lambda self: None})())
    frame = layout.new_frame()
    rng = random.Random(2)
    hk = P.Housekeeping(2, 0, 0, 30, 50, 0, True, 0, 0,
                        [P.ModuleHk(101325.0, 295.0, 400.0, 0.0, 0)] * len(layout.modules),
                        [P.ValveHk(1, 1.0, 0)] * len(layout.valves))
    target = megabytes * 1_000_000
    written = packets = cycle = 0
    with open(path, "wb") as f:
        while written < target:
            t = cycle * 0.1
            em.emit_layout_if_due(t)
            frame.pressure[0] = 101325.0 + rng.gauss(0, 3)
            em.emit_raw(frame, cycle, t)
            if cycle % 10 == 0:
                em.emit_hk(hk, t)
            cycle += 1
            if len(chunk) > 10_000:
                data = b"".join(chunk)
                f.write(data)
                written += len(data)
                packets += len(chunk)
                chunk.clear()
        data = b"".join(chunk)
        f.write(data)
        packets += len(chunk)
    sink.close()
    return packets


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_decode(path: str, spacepackets_sample: int, workers: int) -> tuple[float, float, float, float, int]:
    """(ours packets/s wall, ours per CPU second, theirs wall, theirs per CPU second, count)."""
    def ours() -> int:
        n = 0
        for batch in iter_packet_batches(path, workers=workers):  # frames, checks every CRC
            batch.headers()  # header fields as numpy columns
            n += len(batch)
        return n

    best = best_cpu = float("inf")
    count = 0
    for _ in range(3):
        t0, c0 = time.perf_counter(), _cpu()
        count = ours()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, _cpu() - c0)

    raws = []
    for batch in iter_packet_batches(path):
        for s, n in zip(batch.starts.tolist(), batch.lengths.tolist()):
            raws.append(batch.buffer[s:s + n])
            if len(raws) >= spacepackets_sample:
                break
        if len(raws) >= spacepackets_sample:
            break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), time.process_time()
        for raw in raws:
            PusTm.unpack(raw, timestamp_len=6)  # parses headers, checks the CRC
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return count / best, count / best_cpu, len(raws) / wall, len(raws) / cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="capture size for the decode benchmark (MB)")
    parser.add_argument("--seconds", type=float, default=1.0, help="rough duration of each encode run")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel decode figure")
    args = parser.parse_args()

    ours, theirs, size = bench_encode(args.seconds)
    print(f"encode raw-samples packet ({size} bytes, 18 p + 12 T + 1 flow + 7 valves):")
    print(f"  hullwatch    {ours:12,.0f} packets/s   target >= {TARGET_ENCODE:,}  "
          f"{'OK' if ours >= TARGET_ENCODE else 'MISSED'}")
    print(f"  spacepackets {theirs:12,.0f} packets/s   (ratio {ours / theirs:.1f}x)")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.tm")
        t0 = time.perf_counter()
        n = make_capture(path, args.mb)
        size_mb = os.path.getsize(path) / 1e6
        print(f"capture: {n:,} packets, {size_mb:.0f} MB (made in {time.perf_counter() - t0:.1f} s)")
        print("bulk decode with every CRC checked (frame, CRC, header columns); wall clock, and per second")
        print("of CPU used (what the code does on a core of its own: the machine may be shared):")
        for workers in sorted({1, args.workers}):
            ours, ours_cpu, theirs, theirs_cpu, count = bench_decode(path, 50_000, workers)
            assert count == n, (count, n)
            ratio = ours / theirs
            print(f"  hullwatch, {workers} process{'es' if workers > 1 else '  '} {ours:12,.0f} packets/s   "
                  f"target >= {TARGET_DECODE:,}  {'OK' if ours >= TARGET_DECODE else 'MISSED'}"
                  f"   ({ours_cpu:,.0f} per CPU s)")
            print(f"  spacepackets          {theirs:12,.0f} packets/s   ratio {ratio:.1f}x, target >= "
                  f"{TARGET_RATIO:.0f}x  {'OK' if ratio >= TARGET_RATIO else 'MISSED'}"
                  f"   ({theirs_cpu:,.0f} per CPU s, ratio {ours_cpu / theirs_cpu:.1f}x)")
    print(f"(load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
