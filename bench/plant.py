"""Benchmark: plant-plus-sensor steps per second on soyuz-ms09, and the plant alone.

Prints, beside the targets (docs/architecture.md, "Reference figures"):

* plant + sensors: one 0.1 s cycle as the executive drives it (``clock.sleep_until`` then
  ``read(frame)``) on ``sim://soyuz-ms09`` (6 modules, 18 pressure, 12 temperature and 1 flow
  channels). Target: >= 50,000 steps/s on one core (20 us per step; the closed-loop budget
  allots ~12 us of a 33 us cycle to the plant and sensors).
* plant alone at a 0.1 s step: simulated seconds per wall second, and the cost of one step
  (the reference in docs/architecture.md: a 6-module step in plain Python ~4 us).
* the same cycle with every hatch closed (six pressure nodes and orifice flow between them
  through a few small valves), the costliest configuration.

Usage: ``python bench/plant.py [--seconds S]`` (simulated seconds per measurement, default 3000).
Timings are noisy on a shared 2-core machine: the best of three runs is reported.
"""

from __future__ import annotations

import argparse
import time

from hullwatch import hal
from hullwatch.sim.device import SimDevice
from hullwatch.sim.scenario import preset_dict, scenario_from_dict

TARGET_STEPS_PER_S = 50_000
REFERENCE_STEP_US = 4.0


def _best(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cycle_rate(dev: SimDevice, seconds: float) -> float:
    """Plant+sensor steps per wall second (0.1 s cycles: sleep_until then read)."""
    frame = dev.layout.new_frame()
    n = int(seconds * 10)

    def run() -> None:
        clock, read = dev.clock, dev.read
        t0 = clock.now()
        for k in range(1, n + 1):
            clock.sleep_until(t0 + k * 0.1)
            read(frame)

    return n / _best(run)


def plant_rate(dev: SimDevice, seconds: float) -> float:
    """Plant steps (0.1 s) per wall second, no sensors."""
    n = int(seconds * 10)
    plant = dev.plant

    def run() -> None:
        step = plant.step
        for _ in range(n):
            step(0.1)

    return n / _best(run)


def split_station() -> SimDevice:
    data = preset_dict("soyuz-ms09")
    for c in data["connections"]:
        c["open"] = False
    for k, c in enumerate(list(data["connections"][:3])):
        data["connections"].append({"id": f"mpev{k}", "kind": "valve", "modules": c["modules"],
                                    "diameter_m": 0.02})
    return SimDevice(scenario_from_dict(data, "bench: split station"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3000.0,
                        help="simulated seconds per measurement (default 3000)")
    args = parser.parse_args()

    dev = hal.open("sim://soyuz-ms09?seed=7")
    channels = len(dev.layout.pressure) + len(dev.layout.temperature) + len(dev.layout.flow)
    steps = cycle_rate(dev, args.seconds)
    plant = plant_rate(hal.open("sim://soyuz-ms09?seed=7"), args.seconds)
    split = cycle_rate(split_station(), args.seconds)

    print(f"soyuz-ms09: {len(dev.layout.modules)} modules, {channels} channels, 0.1 s step")
    print(f"plant + sensors  {steps:10,.0f} steps/s  ({1e6 / steps:5.1f} us/step)   "
          f"target >= {TARGET_STEPS_PER_S:,} steps/s: {steps / TARGET_STEPS_PER_S:.2f}x "
          f"{'OK' if steps >= TARGET_STEPS_PER_S else 'BELOW TARGET'}")
    print(f"  = {steps * 0.1:10,.0f} simulated s per wall s  ({steps * 0.1:,.0f}x real time)")
    print(f"plant alone      {plant:10,.0f} steps/s  ({1e6 / plant:5.1f} us/step)   "
          f"{plant * 0.1:,.0f} simulated s per wall s; reference ~{REFERENCE_STEP_US:g} us/step: "
          f"{(1e6 / plant) / REFERENCE_STEP_US:.2f}x")
    print(f"split station    {split:10,.0f} steps/s  ({1e6 / split:5.1f} us/step)   "
          "(every hatch closed, 6 nodes, 3 small valves open)")


if __name__ == "__main__":
    main()
