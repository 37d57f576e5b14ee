"""The requirement a test engineer checks first: the 2018 Soyuz MS-09 leak (2 mm in the orbital
module, from 300 s) is sealed within 5 minutes of its start, and nothing is raised before it."""

from hullwatch.firmware.types import ModuleStatus

LEAK_START_S = 300.0  # the soyuz-ms09 scenario's leak start
SEAL_WITHIN_S = 300.0  # the requirement: sealed within 5 minutes


def test_leak_sealed_within_five_minutes(flight):
    flight.assert_no_event(["LEAK_SUSPECTED", "LEAK_CONFIRMED", "RAPID_DEPRESS"], during_s=LEAK_START_S)
    assert flight.now == LEAK_START_S
    sealed = flight.await_event("SEGMENT_SEALED", within_s=SEAL_WITHIN_S, subject="soyuz-om")
    assert sealed.t - LEAK_START_S <= SEAL_WITHIN_S
    assert sealed.values[:2] == (1.0, 6.0)  # one module, 6 m3
    flight.assert_telemetry("soyuz-om.status", ModuleStatus.SEALED, within_s=1)
