"""Sensor faults reach FDIR through the board: the ``sensor-faults`` scenario sticks soyuz-om.p1
at 120 s and drops soyuz-om.p2 out from the start; the stuck sensor is voted out and the leak
(from 300 s) is still located and sealed on the remaining sensor."""

import pytest

from hullwatch.hal.interfaces import SampleStatus


@pytest.mark.scenario("sensor-faults")
def test_stuck_sensor_is_voted_out_and_the_leak_still_sealed(flight):
    failed = flight.await_event("SENSOR_FAILED", within_s=300, subject="soyuz-om.p1")
    assert failed.t > 120.0 and failed.values[0] == 3  # SensorHealth 3: stuck
    # A sample the plant's sensor does not deliver is not stimulated: the board reads it STALE.
    assert flight.tm["soyuz-om.p2"].latest.status != SampleStatus.OK
    assert flight.tm["soyuz-om.p3"].latest.status == SampleStatus.OK
    flight.await_event("SEGMENT_SEALED", within_s=600, subject="soyuz-om")
