"""The board path's per-cycle column code decides exactly as the per-channel rules it batches:
the emulator's channel conversion and report, its valve bank, the stimulus decoder, the frame
reader's one-frame read and the in-process port's reads (docs/architecture.md, "The sensor board")."""

from __future__ import annotations

import math
import random
import struct

import pytest

from hullwatch.hal import wire
from hullwatch.hal.config_model import (COUNTS_MAX, REFERENCE_TEMPERATURE_K, ChannelConfig, adc_counts,
                                        calibrated_values)
from hullwatch.hal.errors import ProtocolError
from hullwatch.hal.framing import FrameReader, encode_frame
from hullwatch.hal.interfaces import ChannelKind
from hullwatch.hal.ports import open_port
from hullwatch.sim import board_factory
from hullwatch.sim.board_channels import ChannelBank
from hullwatch.sim.board_valves import ValveBank
from hullwatch.sim.urlhandler import protocol_emuboard

OK, STALE, INVALID, NO_DATA = (int(s) for s in (wire.SampleState.OK, wire.SampleState.STALE,
                                               wire.SampleState.INVALID, wire.SampleState.NO_DATA))


def f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


def test_adc_counts_round_half_even_clamp_and_read_nan_as_zero() -> None:
    values = [2.5, 3.5, -1.0, -0.0, math.nan, math.inf, -math.inf, 1e300, COUNTS_MAX + 0.4]
    n = len(values)
    expected = [2, 4, 0, 0, 0, COUNTS_MAX, 0, COUNTS_MAX, COUNTS_MAX]
    assert adc_counts(values, [0.0] * n, [1.0] * n) == expected
    assert adc_counts(values, [0.0] * n, [1.0] * n, [0.0] * n) == expected
    # offset, gain and drift: (value - offset - drift) / gain
    assert adc_counts([10.0], [2.0], [0.5], [1.0]) == [14]
    assert calibrated_values([14], [2.0], [0.5], [1.0]) == [10.0]
    assert calibrated_values([14], [2.0], [0.5]) == [9.0]


class Reference:
    """The emulator's channels one at a time, as docs/protocol.md says them: temperature
    channels first, a compensated channel drifts with its module's first temperature channel
    when that reads OK, NaN is no conversion."""

    def __init__(self, channels: list[ChannelConfig]) -> None:
        self.channels = channels
        n = len(channels)
        self.raw, self.value, self.time_us = [0] * n, [0.0] * n, [-1] * n
        self.state, self.fresh = [NO_DATA] * n, [False] * n

    def convert(self, values: list[float], first: int, t_us: int) -> None:
        chans = self.channels
        temps = {}
        for i, c in enumerate(chans):
            if c.kind == ChannelKind.TEMPERATURE:
                temps.setdefault(c.module, i)
        order = sorted(range(len(chans)), key=lambda i: chans[i].kind != ChannelKind.TEMPERATURE)
        for i in order:
            if not first <= i < first + len(values) or math.isnan(values[i - first]):
                continue
            c, x = chans[i], values[i - first]
            ti = temps.get(c.module) if c.kind != ChannelKind.TEMPERATURE and c.temp_coeff else None
            t_k = self.value[ti] if ti is not None and self.state[ti] == OK else REFERENCE_TEMPERATURE_K
            self.raw[i] = c.counts_for(x, t_k)
            self.value[i] = f32(c.calibrate(self.raw[i], t_k))
            self.state[i] = OK if c.valid_min <= self.value[i] <= c.valid_max else INVALID
            self.time_us[i], self.fresh[i] = t_us, True

    def report(self, now_us: int) -> tuple[list[int], list[int]]:
        ages = [wire.AGE_NEVER if t < 0 else min(now_us - t, wire.AGE_NEVER - 1) for t in self.time_us]
        status = [s if f or s == NO_DATA else STALE for s, f in zip(self.state, self.fresh)]
        self.fresh = [False] * len(self.fresh)
        return ages, status


def random_channel(rng: random.Random, i: int) -> ChannelConfig:
    kind = rng.choice(list(ChannelKind))
    lo = rng.uniform(-100.0, 300.0)
    return ChannelConfig(f"c{i}", kind, rng.choice("AB"), rng.choice([0.0, -0.0, 200.0, -0.1]),
                         rng.choice([0.01, 1e-5, -0.02, 3.0]), rng.choice([0.0, 0.0, 0.75, -2.0]),
                         lo, lo + rng.uniform(0.0, 2e5))


def random_value(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.1:
        return math.nan
    if r < 0.14:
        return rng.choice([math.inf, -math.inf, -0.0, 1e30])
    return rng.choice([rng.uniform(-100.0, 2e5), rng.uniform(250.0, 320.0), rng.uniform(-1.0, 2.0)])


@pytest.mark.parametrize("seed", range(6))
def test_channel_bank_converts_and_reports_as_the_per_channel_rules(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        channels = [random_channel(rng, i) for i in range(rng.randint(1, 10))]
        bank, ref = ChannelBank(channels), Reference(channels)
        n, t = len(channels), 0
        for _ in range(5):
            t += rng.choice([0, 1, 100_000])
            first = rng.randint(0, n - 1) if rng.random() < 0.3 else 0
            values = [random_value(rng) for _ in range(n - first if rng.random() < 0.7 else rng.randint(0, n - first))]
            bank.convert(values, first, t)
            ref.convert(values, first, t)
            assert (bank.raw, list(bank.value), bank.state, bank.time_us, bank.fresh) == \
                (ref.raw, ref.value, ref.state, ref.time_us, ref.fresh)
            assert [type(k) for k in bank.raw] == [int] * n
            if rng.random() < 0.7:
                now = t + rng.choice([0, 7, 2**33])
                assert bank.report(now) == ref.report(now)


def test_a_full_cycle_reports_one_age_and_the_conversion_states() -> None:
    config = board_factory.default_factory_config()
    bank = ChannelBank(config.channels)
    values = [101_325.0] * bank.n
    bank.convert(values, 0, 5_000)
    ages, status = bank.report(5_250)
    assert ages == [250] * bank.n and status == bank.state
    assert status is not bank.state  # a copy: the next conversion does not change a report


def test_valve_bank_settles_moves_on_command_and_reports_stimulus() -> None:
    config = board_factory.default_factory_config()
    bank = ValveBank(config.valves, travel_s={v.id: 1.0 for v in config.valves}, previous=None, keep=False,
                     initial_open=None, time_us=0)
    before = [v.position for v in bank.valves]
    bank.advance(500_000)  # settled: nothing moves
    assert [v.position for v in bank.valves] == before
    bank.command(0, wire.ValveCommand.CLOSE)
    bank.advance(1_000_000)
    assert bank.valves[0].position == pytest.approx(0.5)
    bank.advance(3_000_000)
    assert bank.valves[0].position == 0.0
    bank.advance(4_000_000)
    assert bank.valves[0].position == 0.0
    n = len(bank)
    own = bank.feedback()
    assert own[0] == 0 and own[1] == wire.FEEDBACK_SCALE
    bank.stimulate(0, [1234] * n)
    assert bank.feedback() == [1234] * n
    bank.stimulate(1, [wire.FEEDBACK_RELEASE])
    assert bank.feedback() == [1234, own[1]] + [1234] * (n - 2)


@pytest.mark.parametrize("feedback", [None, (0, 10_000, wire.FEEDBACK_RELEASE)])
def test_inject_fields_is_the_inverse_of_inject_payload(feedback) -> None:
    values = (101_325.0, math.inf, 0.5)
    payload = wire.inject_payload(7_000_000, 2, values, feedback, 1)
    t, first, got, valve_first, fb = wire.inject_fields(payload, wire.MsgType.HIL_STEP)
    assert (t, first, got) == (7_000_000, 2, values)
    assert (valve_first, fb) == ((0, None) if feedback is None else (1, feedback))
    with pytest.raises(ProtocolError, match="HIL_STEP: malformed payload"):
        wire.inject_fields(payload + b"\x00", wire.MsgType.HIL_STEP)
    with pytest.raises(ProtocolError, match="HIL_INJECT: malformed payload"):
        wire.inject_fields(payload[:9])


def test_a_one_frame_read_gives_what_the_stream_reader_gives() -> None:
    frame = encode_frame(0xB2, 9, bytes(range(256)) * 2)
    whole, split = FrameReader(), FrameReader()
    got = whole.feed(frame)
    assert got == split.feed(frame[:100]) + split.feed(frame[100:])
    assert got[0].payload == bytes(range(256)) * 2 and whole.counters() == split.counters()
    bad = bytearray(frame)
    bad[5] ^= 0x01
    assert whole.feed(bytes(bad)) == [] and whole.crc_errors == 1
    assert whole.feed(b"\x00") == [] and whole.frames == 1


def test_emuboard_read_hands_over_waiting_bytes_and_garbage_comes_after_them() -> None:
    name = "columns-read"
    try:
        port = open_port(f"emuboard://{name}", timeout=0.01)
        port.write(wire.encode(wire.Ping(b"abc"), 1))
        reply = port.read(port.in_waiting)
        assert FrameReader().feed(reply)[0].payload == b"abc"
        port.write(wire.encode(wire.Ping(b"xyz"), 2))
        protocol_emuboard.link(name).faults.burst(8)
        assert FrameReader().feed(port.read(len(reply)))[0].payload == b"xyz"
        assert port.in_waiting == 8  # the garbage queued after the reply
        assert len(port.read(100)) == 8
        port.close()
    finally:
        protocol_emuboard.forget(name)
