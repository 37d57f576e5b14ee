"""The flight loop's fast encoders (firmware/telemetry/rawencode.py) against the construct
declarations: same bytes for the same report, errors that advance no counter, and the emitter
and flight software use them."""

from __future__ import annotations

import random

import pytest

from hullwatch.firmware.errors import TelemetryError
from hullwatch.firmware.telemetry import ListSink, TelemetryEmitter, decode, encode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.telemetry.fastcodec import MessageCounters, SequenceCounters
from hullwatch.firmware.telemetry.rawencode import HousekeepingEncoder, RawSampleEncoder

from telemetry_samples import EPOCH, raw_samples, sample_data, soyuz_layout


def _fill(frame, rs: P.RawSamples) -> None:
    for name in ("pressure", "pressure_status", "temperature", "temperature_status", "flow", "flow_status",
                 "valve_cmd", "valve_fb", "valve_status"):
        getattr(frame, name)[:] = getattr(rs, name)


def _cuc(t: float) -> float:
    secs, frac = P.utc_to_cuc(t)
    return secs + frac / 65536


@pytest.mark.parametrize("n_modules", [1, 3, 6, 8])
def test_raw_samples_same_bytes_as_construct(n_modules):
    layout = soyuz_layout(n_modules)
    seq, msg = SequenceCounters(), MessageCounters()
    enc = RawSampleEncoder(layout, dest_id=7, seq_counters=seq, msg_counters=msg)
    frame = layout.new_frame()
    rng = random.Random(n_modules)
    for cycle in range(60):
        rs = raw_samples(layout, cycle, rng)
        if cycle % 7 == 3:  # statuses and valve commands change now and then; the cache must follow
            rs.temperature_status[rng.randrange(len(rs.temperature_status))] = 2
            rs.flow_status[0] = 1
        _fill(frame, rs)
        t = EPOCH + cycle * 0.1 + rng.random() * 1e-3
        raw = enc.encode(frame, cycle * 1000, t)
        expected = P.Packet(P.APID_RAW, cycle, P.PacketType.TM, 3, 25, _cuc(t), cycle, 7,
                            P.RawSamples(cycle * 1000, *[getattr(rs, f) for f in (
                                "pressure", "pressure_status", "temperature", "temperature_status", "flow",
                                "flow_status", "valve_cmd", "valve_fb", "valve_status")]))
        assert raw == encode(expected), f"cycle {cycle}"
        assert len(raw) == enc.size
    assert seq.peek(P.APID_RAW) == 60


def test_raw_samples_sequence_and_message_counters_wrap():
    layout = soyuz_layout(2)
    seq, msg = SequenceCounters(), MessageCounters()
    seq._counts[P.APID_RAW] = 16383
    msg._counts[(3 << 8) | 25] = 65535
    enc = RawSampleEncoder(layout, seq_counters=seq, msg_counters=msg)
    frame = layout.new_frame()
    frame.pressure_status[:] = [0] * len(frame.pressure_status)
    first = decode(enc.encode(frame, 1, EPOCH))
    second = decode(enc.encode(frame, 2, EPOCH + 0.1))
    assert (first.seq, first.msg_counter) == (16383, 65535)
    assert (second.seq, second.msg_counter) == (0, 0)


def test_raw_samples_bad_values_raise_and_advance_no_counter():
    layout = soyuz_layout()
    seq = SequenceCounters()
    enc = RawSampleEncoder(layout, seq_counters=seq)
    frame = layout.new_frame()
    frame.valve_status[1] = 300
    with pytest.raises(TelemetryError, match="cycle 4"):
        enc.encode(frame, 4, EPOCH)
    frame.valve_status[1] = 1
    for bad_time in (-1.0, float("nan"), float("inf"), 2.0**32):
        with pytest.raises(TelemetryError):
            enc.encode(frame, 4, bad_time)
    with pytest.raises(TelemetryError):
        enc.encode(frame, 2**32, EPOCH)
    assert seq.peek(P.APID_RAW) == 0
    # after the failures the status caches were reset: the good values are encoded
    assert decode(enc.encode(frame, 4, EPOCH)).data.valve_status == frame.valve_status
    assert frame.valve_status[1] == 1


def test_raw_samples_counts_out_of_range_are_refused():
    with pytest.raises(TelemetryError):
        RawSampleEncoder((256, 0, 0, 0))
    with pytest.raises(TelemetryError):
        RawSampleEncoder((1, 2, 3))


def test_housekeeping_same_bytes_as_construct():
    layout = soyuz_layout()
    hk = sample_data(layout)[0]
    enc = HousekeepingEncoder(len(layout.modules), len(layout.valves), dest_id=3)
    rng = random.Random(5)
    for i in range(20):
        for m in hk.modules:
            m.pressure_pa = 90000.0 + rng.random() * 20000.0
            m.leak_rate_kg_s = rng.gauss(0.0, 1e-4)
        hk.cycle = i * 10
        t = EPOCH + i + rng.random()
        raw = enc.encode_report(hk, t)
        expected = P.Packet(P.APID_HOUSEKEEPING, i, P.PacketType.TM, 3, 25, _cuc(t), i, 3, hk)
        assert raw == encode(expected)
        assert decode(raw).data == hk
    assert len(raw) == enc.size


def test_housekeeping_flat_values_and_errors():
    enc = HousekeepingEncoder(2, 1)
    head = (2, 0, 10, 0, 0, 0, 1, 0, 0)
    mods = [101325.0, 295.0, 40.0, 0.0, 0, 100000.0, 296.0, 41.0, 1e-5, 3]
    raw = enc.encode(head, mods, [1, 1.0, 0], EPOCH)
    data = decode(raw).data
    assert data.modules[1] == P.ModuleHk(100000.0, 296.0, 41.0, 1e-5, 3)
    assert data.valves == [P.ValveHk(1, 1.0, 0)]
    with pytest.raises(TelemetryError, match="expected 9 head values"):
        enc.encode(head, mods[:-1], [1, 1.0, 0], EPOCH)
    with pytest.raises(TelemetryError):
        enc.encode((2, 0, -1, 0, 0, 0, 1, 0, 0), mods, [1, 1.0, 0], EPOCH)  # cycle is a u32
    assert decode(enc.encode(head, mods, [1, 1.0, 0], EPOCH)).seq == 1  # the failure used no count


def test_emitter_uses_the_fast_encoders_and_the_general_path_agrees():
    layout = soyuz_layout()
    hk = sample_data(layout)[0]
    sink = ListSink()
    em = TelemetryEmitter([sink], layout, EPOCH)
    head = (int(hk.mode), int(hk.isolation_state), hk.cycle, hk.cycle_time_us, hk.max_cycle_time_us,
            hk.overruns, 1, hk.link_errors, hk.sensors_failed)
    mods = [v for m in hk.modules for v in (m.pressure_pa, m.temperature_k, m.inventory_mol, m.leak_rate_kg_s,
                                             m.status)]
    valves = [v for x in hk.valves for v in (x.cmd, x.fb, x.health)]
    a = em.emit_hk_values(head, mods, valves, 5.0)
    b = em.emit_hk(hk, 5.0)
    assert decode(a).data == decode(b).data == hk
    assert (decode(a).seq, decode(b).seq) == (0, 1)
    assert sink.packets_list == [a, b]
