"""Sample telemetry shared by the telemetry tests: a soyuz-like layout and one packet of each kind."""

from __future__ import annotations

import random

from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.types import EventId, FdirMode, Severity
from hullwatch.hal.interfaces import ChannelInfo, ChannelKind, Layout, ModuleInfo, ValveInfo, ValveKind

EPOCH = 1535572800.0  # 2018-08-29T20:00:00Z


def soyuz_layout(n_modules: int = 6) -> Layout:
    """n modules x (3 pressure + 2 temperature), one repress flow, n-1 hatches + 1 repress valve."""
    names = ["soyuz-om", "soyuz-dm", "mrm2", "zvezda", "zarya", "node1", "node2", "lab"][:n_modules]
    modules = tuple(ModuleInfo(n, 10.0 + i) for i, n in enumerate(names))
    pressure = tuple(ChannelInfo(f"{m}.p{j}", ChannelKind.PRESSURE, m, 0.0, 120000.0)
                     for m in names for j in (1, 2, 3))
    temperature = tuple(ChannelInfo(f"{m}.t{j}", ChannelKind.TEMPERATURE, m, 200.0, 350.0)
                        for m in names for j in (1, 2))
    flow = (ChannelInfo("repress.flow", ChannelKind.FLOW, names[-1], 0.0, 1.0),)
    valves = tuple(ValveInfo(f"{a}-{b}", ValveKind.HATCH, a, b, 5.0) for a, b in zip(names, names[1:]))
    valves += (ValveInfo("repress", ValveKind.REPRESS, names[-1], None, 2.0),)
    return Layout(modules, pressure, temperature, flow, valves)


def raw_samples(layout: Layout, cycle: int = 7, rng: random.Random | None = None) -> P.RawSamples:
    rng = rng or random.Random(cycle)
    n_p, n_t, n_f, n_v = len(layout.pressure), len(layout.temperature), len(layout.flow), len(layout.valves)
    return P.RawSamples(
        cycle,
        [101325.0 + rng.gauss(0, 3) for _ in range(n_p)], [rng.choice((0, 0, 0, 1, 2)) for _ in range(n_p)],
        [295.0 + rng.gauss(0, 0.5) for _ in range(n_t)], [0] * n_t,
        [rng.random() * 1e-3 for _ in range(n_f)], [0] * n_f,
        [rng.randint(0, 1) for _ in range(n_v)], [rng.random() for _ in range(n_v)], [0] * n_v,
    )


def sample_data(layout: Layout | None = None) -> list:
    """One data object of every packet kind in PACKET_DEFS."""
    from hullwatch.firmware.telemetry.layoutjson import layout_to_json

    layout = layout or soyuz_layout()
    hk = P.Housekeeping(2, 1, 1234, 31, 480, 2, True, 5, 1,
                        [P.ModuleHk(101325.0 - i, 295.0 + i / 10, 400.0 + i, 1e-5 * i, i % 7)
                         for i in range(len(layout.modules))],
                        [P.ValveHk(i % 2, 0.5 + i / 20, i % 2) for i in range(len(layout.valves))])
    return [
        hk,
        raw_samples(layout),
        P.LayoutReport(EPOCH, layout_to_json(layout)),
        *(P.Event(EventId.LEAK_LOCATED, "soyuz-om", (0.002, 3600.5, 1.25e-4), sev) for sev in Severity),
        P.ValveCommand(3, True),
        P.SetFdirMode(FdirMode.PASSIVE),
        P.Acknowledge(int(EventId.LEAK_CONFIRMED)),
        P.LoadFdirParams('[leak]\nalpha = 1e-3\nname = "é"\n'),
        P.AreYouAlive(),
        P.AliveReport(),
        P.EnableHousekeeping([1, 2]),
        P.DisableHousekeeping([2]),
        P.OneShotHousekeeping([1, 3]),
        P.SetHousekeepingPeriod([(1, 5000), (2, 200)]),
        P.EnableEvents([int(EventId.LEAK_SUSPECTED), int(EventId.CYCLE_OVERRUN)]),
        P.DisableEvents([int(EventId.CYCLE_OVERRUN)]),
        P.ReportParameter(0, "leak.miss_prob"),
        P.SetParameter(12, "", [0.25]),
        P.ParameterReport(23, "leak.windows_s", [2.0, 4.0, 8.0]),
        *(P.VerificationReport(stage, P.APID_COMMAND, 16383, 4 if stage in (2, 4, 8) else 0,
                               "leak.miss_prob: expected a number" if stage in (2, 4, 8) else "")
          for stage in P.VerificationStage),
    ]


def sample_packets() -> list[P.Packet]:
    return [P.make_packet(d, seq=100 + i, time_utc=EPOCH + 12.5 + i, msg_counter=i, dest_id=3)
            for i, d in enumerate(sample_data())]
