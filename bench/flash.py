"""Benchmark: flashing a 4 KiB configuration image over a pseudo-terminal.

Prints, beside the targets:

* seconds to flash and verify a 4 KiB image (IDENTIFY, FLASH_INFO, FLASH_BEGIN, 1 KiB
  FLASH_WRITE blocks, verify, FLASH_COMMIT, IDENTIFY to confirm) against ``hullwatch board --pty``
  running in its own process. A pseudo-terminal ignores the baud rate, so this is the protocol and
  host/board code cost, not the UART's;
* wire efficiency = image bytes / bytes on the wire in both directions for the whole flash,
  verify included (target >= 85 %), and the wire time that implies at 115200 baud, 10 bits per
  byte (target <= 0.45 s);
* the same for ``--verify read`` (every byte read back over the link), for comparison: a full read
  back doubles the bytes, so it cannot meet the efficiency target; the default verify has the
  board compute the CRC-32 of each written block from its flash (docs/config-image.md).

Usage: ``python bench/flash.py [--runs N]`` (default 5 flashes per verify mode; the median and
the best are printed). Timings are noisy on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hullwatch.hal.board_link import BoardLink
from hullwatch.hal.config_image import ChannelConfig, ModuleConfig, ValveConfig, encode_image
from hullwatch.hal.interfaces import ChannelKind, ValveKind
from hullwatch.sim.board_flash import default_factory_config
from hullwatch.tools.board import flashing

TARGET_EFFICIENCY = 0.85
TARGET_WIRE_S = 0.45
BAUD = 115200
IMAGE_TARGET_BYTES = 4096


class CountingPort:
    """A pyserial port that counts the bytes it moves (the wire, as the host sees it)."""

    def __init__(self, port: Any) -> None:
        self._port = port
        self.sent = 0
        self.received = 0

    def write(self, data: bytes) -> int:
        self.sent += len(data)
        return self._port.write(data)

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        self.received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)


def config_of_size(size: int):  # type: ignore[no-untyped-def]
    """The soyuz-ms09 board grown to an image of exactly ``size`` bytes: extra 5-channel modules,
    then hatches between them whose id lengths take up the last bytes."""
    config = default_factory_config()
    cal = dict(offset=0.0, gain=0.01, temp_coeff=0.0, valid_min=30000.0, valid_max=125000.0)
    tcal = dict(offset=200.0, gain=1e-5, temp_coeff=0.0, valid_min=233.15, valid_max=358.15)

    def length(c) -> int:  # type: ignore[no-untyped-def]
        return len(encode_image(c.with_generation(1)))

    n = 0
    while length(config) < size - 400:  # a 5-channel module is ~300 bytes
        n += 1
        name = f"extra{n}"
        config = dataclasses.replace(
            config,
            modules=config.modules + (ModuleConfig(name, 10.0),),
            channels=config.channels
            + tuple(ChannelConfig(f"{name}.p{i}", ChannelKind.PRESSURE, name, **cal) for i in (1, 2, 3))
            + tuple(ChannelConfig(f"{name}.t{i}", ChannelKind.TEMPERATURE, name, **tcal) for i in (1, 2)),
        )
    entry = 12  # a hatch entry without its id: length byte, kind, two modules, f64 timeout
    k = 0
    while (missing := size - length(config)) > 0:
        k += 1
        # Leave at least one entry's worth for the last hatch.
        id_len = min(63, missing - entry) if missing - entry <= 63 else min(63, missing - 2 * entry - 1)
        vid = (f"h{k}-" + "x" * 63)[:id_len]
        config = dataclasses.replace(config, valves=config.valves + (
            ValveConfig(vid, ValveKind.HATCH, "extra1", "usos", 8.0),))
    assert length(config) == size, length(config)
    return config


def start_board(flash_file: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hullwatch.tools", "board", "--pty", "--flash", str(flash_file)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on " not in line:
        proc.kill()
        raise SystemExit(f"bench/flash.py: the board did not start: {line!r}")
    return proc, line.split("serving on ", 1)[1].split()[0]


def measure(path: str, config, verify: str, runs: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    seconds, wire_bytes, sizes, retries = [], [], [], 0
    for _ in range(runs):
        link = BoardLink.open(path)
        port = CountingPort(link.port)
        link.port = port
        try:
            t0 = time.perf_counter()
            result = flashing.flash_config(link, config, verify=verify)
            seconds.append(time.perf_counter() - t0)
        finally:
            link.close()
        wire_bytes.append(port.sent + port.received)
        sizes.append(result.size)
        retries += result.retries
    size = sizes[-1]
    wire = statistics.median(wire_bytes)
    return dict(size=size, seconds=statistics.median(seconds), best=min(seconds), wire=wire,
                efficiency=size / wire, wire_s=wire * 10 / BAUD, retries=retries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    config = config_of_size(IMAGE_TARGET_BYTES)
    with tempfile.TemporaryDirectory() as tmp:
        proc, path = start_board(Path(tmp) / "bench.flash")
        try:
            results = {mode: measure(path, config, mode, args.runs) for mode in ("crc", "read")}
        finally:
            proc.terminate()
            proc.wait(timeout=5)

    crc = results["crc"]
    print(f"flash + verify of a {crc['size']}-byte image ({len(config.channels)} channels) over a "
          f"pseudo-terminal, board in its own process, {args.runs} runs per mode")
    print(f"{'verify':<8} {'median s':>9} {'best s':>8} {'wire bytes':>11} {'efficiency':>11} "
          f"{'wire s @115200':>15} {'retries':>8}")
    for mode, r in results.items():
        print(f"{mode:<8} {r['seconds']:>9.4f} {r['best']:>8.4f} {r['wire']:>11.0f} "
              f"{r['efficiency']:>10.1%} {r['wire_s']:>15.3f} {r['retries']:>8}")
    ok_eff = crc["efficiency"] >= TARGET_EFFICIENCY
    ok_wire = crc["wire_s"] <= TARGET_WIRE_S
    print(f"wire efficiency (default verify): {crc['efficiency']:.1%}   target >= "
          f"{TARGET_EFFICIENCY:.0%}   {'met' if ok_eff else 'MISSED'}")
    print(f"wire time at {BAUD} baud:        {crc['wire_s']:.3f} s   target <= {TARGET_WIRE_S} s   "
          f"{'met' if ok_wire else 'MISSED'}")
    print(f"seconds to flash and verify:      {crc['seconds']:.4f} s median over a pty "
          f"({crc['wire_s'] / crc['seconds']:.0f}x faster than the same bytes at {BAUD} baud)")
    print(f"full read-back verify:            {results['read']['efficiency']:.1%} efficiency, "
          f"{results['read']['wire_s']:.3f} s at {BAUD} baud (for comparison; cannot reach 85 %)")


if __name__ == "__main__":
    main()
