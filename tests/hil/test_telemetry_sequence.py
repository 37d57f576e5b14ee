"""Telemetry as a ground system sees it: per-APID sequence counts without gaps, raw samples every
0.1 s, housekeeping every second, and the leak's events in their order."""

from hullwatch.firmware.telemetry import APID_EVENT, APID_HOUSEKEEPING, APID_RAW


def test_sequence_counts_and_rates(flight):
    flight.run_for(30)
    for apid in (APID_HOUSEKEEPING, APID_RAW):
        seqs = [p.seq for p in flight.tm.packets(apid=apid)]
        assert seqs == list(range(len(seqs))), apid  # no gap, no repeat (wraps at 16384)
    raw = flight.tm.packets(apid=APID_RAW)
    assert len(raw) == 300 and [p.t for p in raw[:3]] == [0.0, 0.1, 0.2]
    assert [p.t for p in flight.tm.housekeeping] == [float(s) for s in range(30)]
    assert flight.tm.packets()[0].name == "layout"  # a capture starts with the layout report


def test_leak_events_in_order(flight):
    events = flight.assert_event_sequence(
        ["LEAK_SUSPECTED", "LEAK_CONFIRMED", "ISOLATION_STARTED", ("LEAK_LOCATED", "soyuz-om"),
         ("SEGMENT_SEALED", "soyuz-om")], within_s=900)
    seqs = [e.seq for e in flight.events]
    assert seqs == list(range(len(seqs)))  # every event packet, none lost
    assert [p.seq for p in flight.tm.packets(apid=APID_EVENT)] == seqs
    assert events[0].t < events[1].t <= events[2].t < events[3].t <= events[4].t
