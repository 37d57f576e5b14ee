"""Golden byte vectors for every packet kind, and packets built by hand with struct as an
independent oracle (construct's declarativeunittest style: one line per case)."""

from __future__ import annotations

import binascii
import struct

import pytest

from hullwatch.firmware.errors import PacketDecodeError
from hullwatch.firmware.telemetry import decode, encode, fast_decode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.types import EventId, FdirMode, Severity

T = 1535572800.5  # 2018-08-29T20:00:00.5Z, exactly representable in CUC

CASES = {
    "housekeeping": P.make_packet(P.Housekeeping(2, 0, 100, 31, 480, 1, True, 2, 0, [P.ModuleHk(101325.0, 295.0, 41.5, 1e-5, 1)], [P.ValveHk(1, 1.0, 0)]), seq=1, time_utc=T, msg_counter=2),
    "raw_samples": P.make_packet(P.RawSamples(7, [101325.0, 101330.5], [0, 2], [295.25], [0], [0.0], [3], [1], [0.5], [1]), seq=16383, time_utc=T, msg_counter=65535, dest_id=1),
    "layout": P.make_packet(P.LayoutReport(1535572800.0, '{"format":1}'), seq=0, time_utc=T),
    "event_high": P.make_packet(P.Event(EventId.LEAK_LOCATED, "soyuz-om", (0.002, 3600.0, 1.5e-4), Severity.HIGH), seq=5, time_utc=T, msg_counter=1),
    "event_info": P.make_packet(P.Event(EventId.MODE_CHANGED, "fdir", (2.0, 1.0, 0.0), Severity.INFO), seq=6, time_utc=T),
    "valve_command": P.make_packet(P.ValveCommand(3, False), seq=9, dest_id=42, ack_flags=9),
    "set_fdir_mode": P.make_packet(P.SetFdirMode(FdirMode.PASSIVE), seq=10, ack_flags=9),
    "acknowledge": P.make_packet(P.Acknowledge(2), seq=11),
    "load_fdir_params": P.make_packet(P.LoadFdirParams("a = 1\n"), seq=12),
    "are_you_alive": P.make_packet(P.AreYouAlive(), seq=13),
    "alive_report": P.make_packet(P.AliveReport(), seq=3, time_utc=T),
    "verification_acceptance_success": P.make_packet(P.VerificationReport(P.VerificationStage.ACCEPTANCE_SUCCESS, 100, 9), seq=4, time_utc=T),
    "verification_completion_failure": P.make_packet(P.VerificationReport(P.VerificationStage.COMPLETION_FAILURE, 100, 12, 4), seq=7, time_utc=T),
    "verification_start_failure": P.make_packet(P.VerificationReport(P.VerificationStage.START_FAILURE, 100, 13, 4, "bad"), seq=9, time_utc=T),
    "enable_housekeeping": P.make_packet(P.EnableHousekeeping([1, 2]), seq=14),
    "set_housekeeping_period": P.make_packet(P.SetHousekeepingPeriod([(1, 5000)]), seq=15),
    "disable_events": P.make_packet(P.DisableEvents([30]), seq=16),
    "report_parameter": P.make_packet(P.ReportParameter(0, "leak.miss_prob"), seq=17),
    "parameter_report": P.make_packet(P.ParameterReport(23, "leak.windows_s", [2.0, 4.0]), seq=8, time_utc=T),
}

GOLDEN = {
    "housekeeping": "0865c0010056200319000200005b86fb40800000010200000000640000001f000001e000000001010000000200000140f8bcd00000000040727000000000004044c000000000003ee4f8b588e368f10101013ff00000000000000011bd",
    "raw_samples": "0866ffff0046200319ffff00015b86fb4080000002000000070201010140f8bcd00000000040f8bd28000000000002407274000000000000000000000000000003013fe000000000000001ec7e",
    "layout": "0865c0000026200319000000005b86fb408000000341d6e1bed0000000000c7b22666f726d6174223a317d11ac",
    "event_high": "0867c0050038200504000100005b86fb4080000007736f79757a2d6f6d00000000000000003f60624dd2f1a9fc40ac2000000000003f23a92a30553261410e",
    "event_info": "0867c0060038200501000000005b86fb40800000226664697200000000000000000000000040000000000000003ff00000000000000000000000000000c83d",
    "valve_command": "1864c009000a290801002a00010300e057",
    "set_fdir_mode": "1864c00a00092908010000000201c3cc",
    "acknowledge": "1864c00b000a200801000000030002710a",
    "load_fdir_params": "1864c00c001020080100000004000661203d20310aa287",
    "are_you_alive": "1864c00d00062011010000ace7",
    "alive_report": "0864c003000e201102000000005b86fb4080003f0f",
    "verification_acceptance_success": "0864c0040012200101000000005b86fb4080001864c0093185",
    "verification_completion_failure": "0864c0070015200108000000005b86fb4080001864c00c000400c1ba",
    "verification_start_failure": "0864c0090018200104000000005b86fb4080001864c00d00040362616423fd",
    "enable_housekeeping": "1864c00e000b2003050000020001000259a8",
    "set_housekeeping_period": "1864c00f000d20031f0000010001000013885147",
    "disable_events": "1864c0100009200506000001001e5d02",
    "report_parameter": "1864c0110017201401000000000e6c65616b2e6d6973735f70726f62c1e8",
    "parameter_report": "0864c0080030201402000000005b86fb40800000170e6c65616b2e77696e646f77735f7302400000000000000040100000000000006cfd",
}


def test_golden_set_covers_every_declaration():
    # every application-data declaration has a vector (event and verification subtypes share theirs)
    names = {CASES[name].name for name in CASES}
    assert names == set(GOLDEN) <= {d.name for d in P.PACKET_DEFS}
    assert {id(d.body) for d in P.PACKET_DEFS if d.name in names} == {id(d.body) for d in P.PACKET_DEFS}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden(name):
    packet, golden = CASES[name], bytes.fromhex(GOLDEN[name])
    assert encode(packet) == golden
    assert decode(golden) == packet
    assert fast_decode(golden) == packet
    assert binascii.crc_hqx(golden, 0xFFFF) == 0  # the CRC field closes the CRC over the packet


def _crc(buf: bytes) -> bytes:
    """CRC-16/CCITT-FALSE written out bit by bit: the oracle does not trust any CRC library."""
    crc = 0xFFFF
    for byte in buf:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return struct.pack(">H", crc)


def _tm(apid: int, seq: int, service: int, subtype: int, counter: int, dest: int, t: float, data: bytes) -> bytes:
    secs = int(t)
    frac = int((t - secs) * 65536)
    secondary = struct.pack(">BBBHHIH", 0x20, service, subtype, counter, dest, secs, frac)
    length = len(secondary) + len(data) + 2 - 1
    head = struct.pack(">HHH", (0 << 13) | (0 << 12) | (1 << 11) | apid, (3 << 14) | seq, length)
    body = head + secondary + data
    return body + _crc(body)


def test_hand_built_raw_samples_packet():
    data = struct.pack(">HIBBBB", 2, 7, 2, 1, 1, 1)
    data += struct.pack(">2d", 101325.0, 101330.5) + bytes([0, 2])
    data += struct.pack(">d", 295.25) + bytes([0])
    data += struct.pack(">d", 0.0) + bytes([3])
    data += bytes([1]) + struct.pack(">d", 0.5) + bytes([1])
    oracle = _tm(102, 16383, 3, 25, 65535, 1, T, data)
    assert oracle == encode(CASES["raw_samples"])
    assert decode(oracle) == CASES["raw_samples"]


def test_hand_built_event_packet():
    data = struct.pack(">H16s3d", 7, b"soyuz-om", 0.002, 3600.0, 1.5e-4)
    oracle = _tm(103, 5, 5, 4, 1, 0, T, data)
    assert oracle == encode(CASES["event_high"])


def test_hand_built_telecommand():
    data = struct.pack(">HBB", 1, 3, 0)
    secondary = struct.pack(">BBBH", (2 << 4) | 9, 8, 1, 42)
    head = struct.pack(">HHH", (1 << 12) | (1 << 11) | 100, (3 << 14) | 9, len(secondary) + len(data) + 1)
    body = head + secondary + data
    assert body + _crc(body) == encode(CASES["valve_command"])


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_single_bit_flip_is_rejected(name):
    golden = bytes.fromhex(GOLDEN[name])
    for bit in range(len(golden) * 8):
        flipped = bytearray(golden)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(PacketDecodeError):
            decode(bytes(flipped))
        with pytest.raises(PacketDecodeError):
            fast_decode(bytes(flipped))
