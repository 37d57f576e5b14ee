"""pytest plugin (entry point ``pytest11``): hardware-in-the-loop fixtures for hullwatch.

Fixtures:

``board`` (session)
    The sensor board under test, as a :class:`BoardUnderTest` (``url``, ``emulated``). By default
    an emulated board served on a real pseudo-terminal by a ``hullwatch board --pty`` process;
    with ``--hil-device URL`` the board at URL (any pyserial URL: ``/dev/ttyACM0``,
    ``socket://bench:7000``...). Its configuration must match the scenario and allow HIL.
``scenario``
    The :class:`~hullwatch.sim.scenario.Scenario` (default ``soyuz-ms09``; choose with
    ``@pytest.mark.scenario("nominal-24h", seed=3)``).
``plant``
    The plant simulation of that scenario (a ``sim://`` device: ground truth in ``plant.truth()``).
``flight``
    A :class:`FlightUnderTest`: the flight software running on the HIL device (board + plant), with
    ``await_event(name, within_s)``, ``await_telemetry(predicate, within_s)``, ``run_for(s)``,
    ``telecommand(tc)``, ``events``, ``device``, ``now``. Times are mission seconds: the plant
    runs in lockstep, as fast as the board answers.

Tests that use these are marked ``hil`` automatically; ``pytest -m hil`` runs only them and
``pytest --hil-device /dev/ttyACM0 -m hil`` runs the same tests against a real board.
docs/hil.md shows how to write one.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from .hil_device import BoardUnderTest

#: Mission seconds run between two checks of an await (10 cycles at 10 Hz).
AWAIT_STEP_S = 1.0
HIL_FIXTURES = {"board", "plant", "flight"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hullwatch")
    group.addoption(
        "--hil-device",
        action="store",
        default=None,
        metavar="URL",
        help="run hil tests against this board (any pyserial URL); default: the board emulator",
    )
    group.addoption(
        "--hil-baud",
        action="store",
        type=int,
        default=None,
        metavar="N",
        help="pace the emulated board like a UART at N baud (default: as fast as the pty goes)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: tests that also run against a real board with --hil-device URL")
    config.addinivalue_line("markers", "scenario(name, seed=None): the scenario of the hil fixtures")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.hil)


# --------------------------------------------------------------------------------------------
# The board


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoardUnderTest]:
    from .hil_device import BoardUnderTest, start_emulator

    url = request.config.getoption("--hil-device")
    if url:
        yield BoardUnderTest(url, emulated=False)
        return
    args = ["--flash", str(tmp_path_factory.mktemp("board") / "board.flash")]
    baud = request.config.getoption("--hil-baud")
    if baud:
        args += ["--baud", str(baud)]
    emulator = start_emulator(*args)
    try:
        yield emulator
    finally:
        emulator.stop()


# --------------------------------------------------------------------------------------------
# Scenario, plant, flight software


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Any:
    from ...sim.scenario import load_scenario

    marker = request.node.get_closest_marker("scenario")
    name = marker.args[0] if marker and marker.args else "soyuz-ms09"
    return load_scenario(name)


@pytest.fixture
def plant(request: pytest.FixtureRequest, scenario: Any) -> Iterator[Any]:
    from ...sim.device import open_url

    marker = request.node.get_closest_marker("scenario")
    seed = marker.kwargs.get("seed") if marker else None
    options: dict[str, Any] = {"scenario": scenario}
    if seed is not None:
        options["seed"] = seed
    with open_url("sim://", **options) as device:
        yield device


@dataclass(frozen=True)
class SeenEvent:
    """An FDIR event as the test sees it: mission time, name (EventId), subject, values (SI)."""

    t: float
    name: str
    subject: str
    values: tuple[float, float, float]


class FlightUnderTest:
    """The flight software running on a device, stepped in mission time by the test.

    ``await_event`` and ``await_telemetry`` run the loop until what they wait for happens, or
    fail the test (AssertionError listing what did happen) after ``within_s`` mission seconds.
    """

    def __init__(self, device: Any, params: Any = None, mode: Any = None) -> None:
        from ...firmware.flight import FlightSoftware
        from ...firmware.telemetry.sinks import CallbackSink
        from ...firmware.types import EventId, FdirMode

        self.device = device
        self.events: list[SeenEvent] = []
        self._event_ids = EventId
        self._packets: collections.deque[bytes] = collections.deque(maxlen=4096)
        self._listening = False
        self._include_raw = False
        self.software = FlightSoftware(device, params, mode if mode is not None else FdirMode.ACTIVE,
                                       sinks=[CallbackSink(self._on_packet)], on_event=self._on_event)

    def _on_event(self, rec: tuple) -> None:
        t, eid, _sev, subject, v1, v2, v3 = rec
        self.events.append(SeenEvent(t, self._event_ids(eid).name, subject, (v1, v2, v3)))

    def _on_packet(self, packet: bytes) -> None:
        if self._listening:
            apid = ((packet[0] & 0x07) << 8) | packet[1]
            if self._include_raw or apid != 102:  # APID_RAW: one per cycle, skipped unless asked
                self._packets.append(packet)

    @property
    def now(self) -> float:
        """Mission time, s."""
        return self.software.executive.clock.now()

    def run_for(self, seconds: float) -> None:
        """Run the loop for ``seconds`` of mission time."""
        self.software.run(self.now + seconds)

    def telecommand(self, command: Any) -> bool:
        """Queue a telecommand (hullwatch.firmware.telemetry.ValveCommand, SetFdirMode...)."""
        return self.software.telecommand(command)

    def await_event(self, name: str, within_s: float, subject: str | None = None) -> SeenEvent:
        """Run until event ``name`` (an EventId name, e.g. ``"LEAK_LOCATED"``), optionally with
        ``subject``, has happened (now or before), at most ``within_s`` mission seconds more."""
        def find() -> SeenEvent | None:
            for e in self.events:
                if e.name == name and (subject is None or e.subject == subject):
                    return e
            return None

        deadline = self.now + within_s
        while True:
            found = find()
            if found is not None:
                return found
            if self.now >= deadline - 1e-9:
                seen = ", ".join(f"{e.name}({e.subject})@{e.t:.1f}" for e in self.events[-12:]) or "none"
                raise AssertionError(f"no {name}{f' for {subject}' if subject else ''} within "
                                     f"{within_s:g} s of mission time (now {self.now:.1f} s); "
                                     f"events: {seen}")
            self.software.run(min(deadline, self.now + AWAIT_STEP_S))

    def await_telemetry(self, predicate: Callable[[Any], bool], within_s: float, *,
                        include_raw: bool = False) -> Any:
        """Run until ``predicate(report)`` is true for a telemetry report (the decoded
        application data: Housekeeping, Event, LayoutReport; RawSamples with ``include_raw``);
        return that report. At most ``within_s`` mission seconds."""
        from ...firmware.telemetry import decode

        deadline = self.now + within_s
        self._packets.clear()
        self._listening, self._include_raw = True, include_raw
        try:
            while True:
                while self._packets:
                    report = decode(self._packets.popleft()).data
                    if predicate(report):
                        return report
                if self.now >= deadline - 1e-9:
                    raise AssertionError(f"no telemetry matched within {within_s:g} s of mission time "
                                         f"(now {self.now:.1f} s)")
                self.software.run(min(deadline, self.now + AWAIT_STEP_S))
        finally:
            self._listening = False
            self._packets.clear()

    def close(self) -> None:
        self.software.close()


@pytest.fixture
def hil_device(board: BoardUnderTest, plant: Any) -> Iterator[Any]:
    """The HIL device: ``board`` stimulated by ``plant`` (see hullwatch.tools.board.hil_device)."""
    from ...hal.serial_device import open_url as open_board
    from .hil_device import HilDevice

    serial_board = open_board(board.url, clock=plant.clock)
    try:
        device = HilDevice(serial_board, plant)
    except BaseException:
        serial_board.close()
        raise
    yield device
    device.board.close()  # the plant is closed by its own fixture


@pytest.fixture
def flight(hil_device: Any) -> Iterator[FlightUnderTest]:
    f = FlightUnderTest(hil_device)
    yield f
    f.close()


def await_event(flight: FlightUnderTest, name: str, within_s: float, subject: str | None = None) -> SeenEvent:
    """Module-level form of :meth:`FlightUnderTest.await_event`."""
    return flight.await_event(name, within_s, subject)


def await_telemetry(flight: FlightUnderTest, predicate: Callable[[Any], bool], within_s: float) -> Any:
    """Module-level form of :meth:`FlightUnderTest.await_telemetry`."""
    return flight.await_telemetry(predicate, within_s)


__all__ = ["FlightUnderTest", "SeenEvent", "await_event", "await_telemetry"]
