"""HIL_STEP (protocol 1.2): one exchange per HIL cycle, exactly what HIL_INJECT + READ_SAMPLES
give; older boards still get the two-exchange cycle."""

from __future__ import annotations

from hullwatch.hal import wire
from hullwatch.hal.framing import FrameReader
from hullwatch.sim.board_emulator import BoardEmulator, open_flash
from hullwatch.sim.urlhandler import protocol_emuboard
from hullwatch.tools.board.hil_device import open_hil_device
from hullwatch.tools.closed_loop.runner import run_scenario


def ask(board: BoardEmulator, msg: wire.Message, seq: int = 1) -> wire.Message:
    (f,) = FrameReader().feed(board.receive(wire.encode(msg, seq)))
    return wire.decode(f.type, f.payload)


def test_step_reply_is_the_samples_after_the_inject() -> None:
    a, b = BoardEmulator(open_flash(None)), BoardEmulator(open_flash(None))
    for board in (a, b):
        assert ask(board, wire.HilEnter(1)) == wire.HilEnterReply(1)
    n = len(a.channels)
    for k in range(1, 6):
        values = tuple(100_000.0 + 10 * k + i if i < 18 else 295.0 + 0.01 * k for i in range(n - 1)) + (0.0,)
        valves = wire.ValveStimulus(0, (10_000,) * 5 + (k * 100,))
        t = k * 100_000
        step = ask(a, wire.HilStep(t, 0, values, valves))
        assert isinstance(step, wire.HilStepReply)
        assert ask(b, wire.HilInject(t, 0, values, valves)) == wire.HilInjectReply(t, n)
        samples = ask(b, wire.ReadSamples())
        assert (step.board_time_us, step.flags, step.channels, step.valves) == \
            (samples.board_time_us, samples.flags, samples.channels, samples.valves)


def test_step_is_refused_as_an_inject_and_by_older_boards() -> None:
    board = BoardEmulator(open_flash(None))
    nak = ask(board, wire.HilStep(0, 0, (1.0,)))
    assert isinstance(nak, wire.Nak) and nak.code == wire.NakCode.NOT_IN_HIL
    old = BoardEmulator(open_flash(None), protocol_minor=1)
    ask(old, wire.HilEnter(1))
    nak = ask(old, wire.HilStep(0, 0, (1.0,)))
    assert isinstance(nak, wire.Nak) and nak.code == wire.NakCode.UNKNOWN_TYPE


def hil_run(protocol: str) -> tuple[list[tuple[float, str, str]], int, int]:
    """(events, requests, cycles) of a 400 s soyuz-ms09 HIL run on an in-process board."""
    name = f"step-{protocol}"
    try:
        with open_hil_device(f"emuboard://{name}?protocol={protocol}", scenario="soyuz-ms09") as dev:
            before = dev.health()["requests"]
            result = run_scenario(dev, until=400.0)
            requests = dev.health()["requests"] - before
    finally:
        protocol_emuboard.forget(name)
    return [(round(e.t, 6), e.name, e.subject) for e in result.events], requests, result.cycles


def test_hil_runs_are_identical_with_one_or_two_exchanges() -> None:
    events_12, requests_12, cycles = hil_run("1.2")
    events_11, requests_11, cycles_11 = hil_run("1.1")
    assert cycles == cycles_11
    assert abs(requests_12 - cycles) < 20 and abs(requests_11 - 2 * cycles) < 20
    assert events_12 == events_11
    assert any(name == "LEAK_CONFIRMED" for _, name, _ in events_12)
