"""A seed x hole-size matrix on the soyuz-ms09 station: every combination is located and sealed
in the orbital module, and the estimated hole is near the true one. Each case is a scenario dict
given to the ``scenario`` fixture by indirect parametrization."""

import pytest

from hullwatch.sim.scenario import preset_dict

SEEDS = (1, 2)
HOLES_MM = (1.5, 3.0)


def leak(seed: int, hole_mm: float) -> dict:
    data = preset_dict("soyuz-ms09")
    data["name"] = f"ms09-{hole_mm}mm"
    data["seed"] = seed
    data["leaks"][0]["diameter_m"] = hole_mm / 1000.0
    return data


CASES = [leak(s, h) for s in SEEDS for h in HOLES_MM]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", CASES, ids=[f"seed{c['seed']}-{c['name']}" for c in CASES], indirect=True)
def test_located_and_sealed(flight, scenario):
    sealed = flight.await_event("SEGMENT_SEALED", within_s=900, subject="soyuz-om")
    located = flight.assert_event("LEAK_LOCATED", subject="soyuz-om")
    assert located.t <= sealed.t
    true_m = scenario.leaks[0].diameter_m
    assert located.values[0] == pytest.approx(true_m, rel=0.35)  # equivalent hole, m
    assert flight.device.seed == scenario.seed
