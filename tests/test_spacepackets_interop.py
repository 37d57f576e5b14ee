"""Our packets, decoded by the independent ``spacepackets`` library, agree with our decoder field by
field, CRC included; and packets built by spacepackets decode with ours."""

from __future__ import annotations

import warnings

import pytest

spacepackets = pytest.importorskip("spacepackets")
from spacepackets.ecss import PusTc, PusTm  # noqa: E402

from hullwatch.firmware.errors import PacketDecodeError  # noqa: E402
from hullwatch.firmware.telemetry import decode, encode, fast_decode  # noqa: E402
from hullwatch.firmware.telemetry import packets as P  # noqa: E402

from telemetry_samples import sample_packets  # noqa: E402

CUC_SIZE = 6


def _app_data(raw: bytes, packet_type: P.PacketType) -> bytes:
    start = P.PRIMARY_HEADER_SIZE + (P.TM_SECONDARY_HEADER_SIZE if packet_type == P.PacketType.TM
                                     else P.TC_SECONDARY_HEADER_SIZE)
    return raw[start:-2]


@pytest.mark.parametrize("packet", sample_packets(), ids=lambda p: p.name)
def test_spacepackets_reads_our_packets(packet):
    raw = encode(packet)
    ours = decode(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if packet.packet_type == P.PacketType.TM:
            theirs = PusTm.unpack(raw, timestamp_len=CUC_SIZE)  # verifies the CRC itself
            sec = theirs.pus_tm_sec_header
            assert sec.pus_version == 2
            assert sec.spacecraft_time_ref == ours.time_ref_status
            assert sec.message_counter == ours.msg_counter
            assert sec.dest_id == ours.dest_id
            secs = int.from_bytes(theirs.timestamp[:4], "big")
            frac = int.from_bytes(theirs.timestamp[4:], "big")
            assert secs + frac / 65536 == ours.time_utc
            assert theirs.source_data == _app_data(raw, P.PacketType.TM)
        else:
            theirs = PusTc.unpack(raw)
            assert theirs.source_id == ours.dest_id
            assert theirs.app_data == _app_data(raw, P.PacketType.TC)
        assert int(theirs.packet_type) == int(ours.packet_type)
        assert theirs.apid == ours.apid
        assert theirs.seq_count == ours.seq
        assert int(theirs.seq_flags) == ours.seq_flags
        assert theirs.service == ours.service
        assert theirs.message_subtype == ours.subtype
        assert theirs.crc16 == raw[-2:]
        assert theirs.pack() == raw  # their re-encoding, CRC included, is byte for byte ours


def test_spacepackets_rejects_what_we_reject():
    from spacepackets.ecss.tm import InvalidTmCrc16Error

    raw = bytearray(encode(sample_packets()[0]))
    raw[30] ^= 0x04
    with pytest.raises(InvalidTmCrc16Error):
        PusTm.unpack(bytes(raw), timestamp_len=CUC_SIZE)
    with pytest.raises(PacketDecodeError, match="CRC"):
        decode(bytes(raw))


def test_we_read_packets_built_by_spacepackets():
    from spacepackets.ccsds.spacepacket import SequenceFlags
    from spacepackets.ecss import PusTc as Tc
    from spacepackets.ecss.tm import PusTm as Tm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            tc = Tc(apid=P.APID_COMMAND, service=8, subservice=1, app_data=bytes.fromhex("00010501"),
                    seq_count=77, source_id=12)  # function 1 (valve command), valve 5, open
        except TypeError:  # newer spelling
            tc = Tc(apid=P.APID_COMMAND, service=8, message_subtype=1, app_data=bytes.fromhex("00010501"),
                    seq_count=77, source_id=12)
        ours = fast_decode(tc.pack())
        assert ours == decode(tc.pack())
        assert ours.data == P.ValveCommand(5, True)
        assert (ours.apid, ours.seq, ours.dest_id) == (P.APID_COMMAND, 77, 12)
        timestamp = (1535572800).to_bytes(4, "big") + (0x4000).to_bytes(2, "big")
        try:
            tm = Tm(apid=P.APID_COMMAND, service=17, subservice=2, timestamp=timestamp, seq_count=3,
                    message_counter=4, destination_id=5)
        except TypeError:
            tm = Tm(apid=P.APID_COMMAND, service=17, message_subtype=2, timestamp=timestamp, seq_count=3,
                    message_counter=4, destination_id=5)
        assert tm.sp_header.seq_flags == SequenceFlags.UNSEGMENTED
        ours = decode(tm.pack())
        assert ours.data == P.AliveReport()
        assert ours.time_utc == 1535572800.25
        assert (ours.seq, ours.msg_counter, ours.dest_id) == (3, 4, 5)
