"""pytest plugin (entry point ``pytest11``): hardware-in-the-loop fixtures for hullwatch.

Fixtures (docs/hil.md is the user's guide):

``board`` (session)
    The board under test, a :class:`~hullwatch.tools.board.hil_board.HilBoard` (``url``, ``emulated``,
    ``board_id``, ``protocol``; ``power_cycle()``, ``reset()``...). By default an emulator
    process (``hullwatch board --pty``) behind a stable symbolic link in the session's tmp
    directory; with ``--hil-device URL`` the board at URL.
``scenario``
    The :class:`~hullwatch.sim.scenario.Scenario` (default ``soyuz-ms09``), chosen with
    ``@pytest.mark.scenario(NAME, seed=N)`` or by indirect parametrization
    (``@pytest.mark.parametrize("scenario", [...], indirect=True)``: preset names, TOML paths,
    dicts, Scenario objects). ``scenario.seed`` is the seed the plant runs with.
``plant``
    The plant simulation of that scenario (a ``sim://`` device: ground truth in ``plant.truth()``).
``hil_device``
    The HIL device (board + plant); the board must fit the scenario's station exactly, or the
    test errors naming every difference (:func:`~hullwatch.tools.board.hil_check.check_board`).
``flight``
    A :class:`~hullwatch.tools.board.hil_flight.FlightUnderTest`: the flight software on the HIL
    device, with waits and assertions on mission-time deadlines, a wall-clock guard, the
    telemetry history ``flight.tm`` and a capture file per test in its ``tmp_path``.
``link_faults``
    The line faults between host and board (noise, drop, burst, unplug, plug, unplug_until): the
    in-process emulator's for ``--hil-device emuboard://NAME``, otherwise those of a pty relay
    the plugin puts between the test and the board for that test.

Options: ``--hil-device URL``, ``--hil-baud N``, ``--hil-timeout S``, ``--hil-relay``,
``--hil-report FILE``. Markers: ``hil`` (added automatically), ``scenario(name, seed=N)``,
``hil_timeout(seconds)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

# Light imports only: pytest loads this plugin in every session (entry point), so the board, the
# plant and the flight software load inside the fixtures, when a hil test first uses them.
from ...hal.errors import HalError
from ...sim.errors import SimError
from ..errors import DeviceProblem, ToolError
from .hil_check import BoardMismatch
from .hil_report import (DEFAULT_WALL_TIMEOUT_S, SLOW_CYCLES_PER_S, HilRecord, estimated_cycles_per_s,
                         summary_lines, write_report)

if TYPE_CHECKING:
    from .hil_board import HilBoard
    from .hil_flight import FlightUnderTest
    from .hil_history import SeenEvent

#: Public names re-exported from the modules that define them, imported on first use.
_LAZY = {"FlightUnderTest": "hil_flight", "HilTimeout": "hil_flight", "WallClockTimeout": "hil_flight",
         "SeenEvent": "hil_history", "TelemetryHistory": "hil_history", "TmPacket": "hil_history",
         "TmSample": "hil_history", "HilBoard": "hil_board", "BoardMismatch": "hil_check",
         "check_board": "hil_check", "layout_differences": "hil_check", "PtyRelay": "hil_relay"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: Kept for compatibility: awaits now stop at the cycle of the match, not in steps.
AWAIT_STEP_S = 1.0
HIL_FIXTURES = {"board", "plant", "hil_device", "flight", "link_faults"}
DEFAULT_SCENARIO = "soyuz-ms09"
#: Keyword arguments the ``scenario`` marker takes.
SCENARIO_MARKER_KEYS = frozenset({"seed"})
#: Below this baud rate the emulated board is warned about (it caps the HIL cycle rate).
SLOW_BAUD = 1_000_000

_RECORD = pytest.StashKey[HilRecord]()
_RELAY = pytest.StashKey[Any]()
_RECORDS = pytest.StashKey[list[HilRecord]]()


class HilSpeedWarning(UserWarning):
    """A HIL run is slow: a paced (low baud) board, or a board that answers slowly."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hullwatch", "hullwatch hardware-in-the-loop")
    group.addoption("--hil-device", action="store", default=None, metavar="URL",
                    help="run hil tests against this board (any pyserial URL, emuboard://NAME); "
                    "default: the board emulator in its own process")
    group.addoption("--hil-baud", action="store", type=int, default=None, metavar="N",
                    help="pace the emulated board like a UART at N baud (slow: 115200 allows "
                    "about 25 cycles/s; default: as fast as the pty goes)")
    group.addoption("--hil-timeout", action="store", type=float, default=DEFAULT_WALL_TIMEOUT_S,
                    metavar="S", help="wall-clock budget of each hil test's flight loop, s "
                    f"(default {DEFAULT_WALL_TIMEOUT_S:g}; per test: @pytest.mark.hil_timeout(S))")
    group.addoption("--hil-relay", action="store_true", default=False,
                    help="put a pty relay (line-fault injection) between every hil test and the board")
    group.addoption("--hil-report", action="store", default=None, metavar="FILE",
                    help="write the hil test summary to FILE: JUnit XML for *.xml, else JSON")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: tests that also run against a real board with --hil-device URL")
    config.addinivalue_line("markers", "scenario(name=None, seed=None): the scenario of the hil fixtures "
                            "(a preset name, TOML path or dict) and the seed its plant runs with")
    config.addinivalue_line("markers", "hil_timeout(seconds): wall-clock budget of this test's flight loop")
    config.stash[_RECORDS] = []
    if config.getoption("--hil-timeout", DEFAULT_WALL_TIMEOUT_S) <= 0:
        raise pytest.UsageError("--hil-timeout: expected a positive number of seconds")
    baud = config.getoption("--hil-baud", None)
    if baud is not None and baud <= 0:
        raise pytest.UsageError(f"--hil-baud: expected a positive baud rate, got {baud}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.hil)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse misspelt marker arguments before any fixture runs."""
    for marker in item.iter_markers("scenario"):
        _scenario_marker(marker)
    for marker in item.iter_markers("hil_timeout"):
        _timeout_marker(marker)


def _scenario_marker(marker: pytest.Mark) -> tuple[Any, int | None]:
    unknown = set(marker.kwargs) - SCENARIO_MARKER_KEYS
    if unknown:
        pytest.fail(f"@pytest.mark.scenario: unknown argument(s) {', '.join(sorted(unknown))}; "
                    f"expected scenario(NAME, seed=N)", pytrace=False)
    if len(marker.args) > 1:
        pytest.fail(f"@pytest.mark.scenario: expected one scenario, got {len(marker.args)} "
                    "(parametrize the scenario fixture for several)", pytrace=False)
    seed = marker.kwargs.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        pytest.fail(f"@pytest.mark.scenario: seed must be an integer >= 0, got {seed!r}", pytrace=False)
    return (marker.args[0] if marker.args else None), seed


def _timeout_marker(marker: pytest.Mark) -> float:
    if marker.kwargs or len(marker.args) != 1:
        pytest.fail("@pytest.mark.hil_timeout: expected hil_timeout(SECONDS)", pytrace=False)
    value = marker.args[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        pytest.fail(f"@pytest.mark.hil_timeout: expected a positive number of seconds, got {value!r}",
                    pytrace=False)
    return float(value)


# --------------------------------------------------------------------------------------------
# The board


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HilBoard]:
    from .hil_board import HilBoard  # deferred: the emulator and serial link (see the imports above)

    config = request.config
    url = config.getoption("--hil-device")
    if url:
        if url.lower().startswith("emuboard://") and _emuboard_unnamed(url):
            # A named board stays the same board across the session's opens (and has faults).
            url = url.replace("emuboard://", f"emuboard://hil-session-{os.getpid()}", 1)
        problem = ""
        try:
            real = HilBoard(url)
        except (HalError, ToolError) as exc:
            problem = f"--hil-device {url}: {exc}"
        if problem:
            pytest.fail(problem, pytrace=False)
        yield real
        return
    where = tmp_path_factory.mktemp("board")
    args = ["--flash", str(where / "board.flash")]
    baud = config.getoption("--hil-baud")
    if baud:
        args += ["--baud", str(baud)]
    hil_board = HilBoard("", emulator_args=args, link_path=where / "board-link")
    if baud and baud < SLOW_BAUD:
        warnings.warn(HilSpeedWarning(
            f"--hil-baud {baud}: the emulated board answers at most about "
            f"{estimated_cycles_per_s(baud, 31, 6):.0f} HIL cycles/s for soyuz-ms09's 31 channels "
            f"and 6 valves ({estimated_cycles_per_s(baud, 31, 6) / 10:.1f}x real time); a test of "
            "an hour of mission time takes minutes"), stacklevel=1)
    try:
        yield hil_board
    finally:
        hil_board.stop()


def _emuboard_unnamed(url: str) -> bool:
    from ...sim.urlhandler.protocol_emuboard import parse_url  # deferred: the board emulator (see the imports above)

    return not parse_url(url)[0]


# --------------------------------------------------------------------------------------------
# Scenario, plant, HIL device, flight software


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Any:
    """The test's scenario; ``scenario.seed`` is the seed its plant runs with."""
    from ...sim.scenario import Scenario, load_scenario, scenario_from_dict  # deferred: see the imports above

    marker = request.node.get_closest_marker("scenario")
    source, seed = _scenario_marker(marker) if marker else (None, None)
    if hasattr(request, "param"):  # indirect parametrization wins over the marker's name
        source = request.param
    if source is None:
        source = DEFAULT_SCENARIO
    if not isinstance(source, (Scenario, dict, str, os.PathLike)):
        pytest.fail(f"scenario: expected a preset name, TOML path, dict or Scenario, got "
                    f"{type(source).__name__}", pytrace=False)
    problem = ""
    try:
        if isinstance(source, Scenario):
            loaded = source
        elif isinstance(source, dict):
            loaded = scenario_from_dict(dict(source), f"<scenario of {request.node.name}>")
        else:
            loaded = load_scenario(os.fspath(source))
    except SimError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"scenario: {problem}", pytrace=False)
    if seed is not None and seed != loaded.seed:
        loaded = dataclasses.replace(loaded, seed=seed)
    return loaded


@pytest.fixture
def plant(scenario: Any) -> Iterator[Any]:
    """The plant of ``scenario`` (seed ``scenario.seed``)."""
    from ...sim.device import open_url  # deferred: the plant needs numpy (see the imports above)

    with open_url("sim://", scenario=scenario) as device:
        yield device


@pytest.fixture
def hil_device(request: pytest.FixtureRequest, board: HilBoard, plant: Any,
               tmp_path: Any) -> Iterator[Any]:
    """The HIL device: ``board`` stimulated by ``plant``; refused (test error naming every
    difference) when the board's configuration does not fit the scenario."""
    # deferred: the serial link, the HIL device and the relay load with the first hil test (see above)
    from ...hal.serial_device import open_url as open_board
    from .hil_device import HilDevice  # deferred: as the serial link
    from .hil_relay import PtyRelay  # deferred: as the serial link

    if not board.powered:
        board.power_on()  # an earlier test left it off
    url = board.url
    relay = None
    if request.config.getoption("--hil-relay") or \
            ("link_faults" in request.fixturenames and not board.in_process):
        relay = PtyRelay(board.url, tmp_path / "relay-link")
        url = relay.url
    request.node.stash[_RELAY] = relay
    problem = ""
    try:
        serial_board = open_board(url, clock=plant.clock)
    except HalError as exc:  # not answering, no such port, a board that describes itself badly
        problem = f"{board.url}: {exc}"
    except BaseException:
        if relay is not None:
            relay.stop()
        raise
    if problem:
        if relay is not None:
            relay.stop()
        pytest.fail(problem, pytrace=False)
    try:
        device = HilDevice(serial_board, plant)
    except (BoardMismatch, DeviceProblem) as exc:  # another station's board; HIL not allowed
        serial_board.close()
        if relay is not None:
            relay.stop()
        pytest.fail(str(exc), pytrace=False)
    except BaseException:
        serial_board.close()
        if relay is not None:
            relay.stop()
        raise
    board.active_device = device
    try:
        yield device
    finally:
        board.active_device = None
        device.board.close()  # the plant is closed by its own fixture
        if relay is not None:
            relay.stop()


@pytest.fixture
def link_faults(request: pytest.FixtureRequest, hil_device: Any, board: HilBoard) -> Iterator[Any]:
    """The line faults between the host and the board (a LineFaults: ``noise``, ``drop``,
    ``burst(n)``, ``unplug()``, ``plug()``, ``unplug_until(t, clock)``). A session's in-process
    board gets its line back as it was after the test."""
    relay = request.node.stash.get(_RELAY, None)
    if relay is not None:
        handle = TestLinkFaults(relay.faults)  # the relay is the test's own: it goes with the test
        try:
            yield handle
        finally:
            handle.end()
        return
    from ...sim.urlhandler.protocol_emuboard import link  # deferred: the board emulator (see the imports above)

    faults = link(board.emuboard).faults
    noise, drop = faults.noise, faults.drop
    handle = TestLinkFaults(faults)
    try:
        yield handle
    finally:
        handle.end()
        faults.noise, faults.drop = noise, drop
        faults.plug()
        faults.take_garbage()


class TestLinkFaults:
    """What a test's ``link_faults`` is: the line's faults (``noise``, ``drop``, ``burst(n)``,
    ``unplug()``, ``plug()``, ``unplug_until(t, clock)``) while the test runs, with its settings
    checked (``noise`` and ``drop`` probabilities in 0..1, ``burst`` sizes >= 0: ValueError);
    after the test, RuntimeError: a later test gets the line as it was."""

    __test__ = False  # (not a pytest test class)

    def __init__(self, faults: Any) -> None:
        object.__setattr__(self, "_faults", faults)
        object.__setattr__(self, "_open", True)

    def end(self) -> None:
        object.__setattr__(self, "_open", False)

    def _live(self) -> Any:
        if not self._open:
            raise RuntimeError("link_faults of a test that has ended: use the link_faults fixture "
                               "of the test that is running")
        return self._faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._live(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        faults = self._live()
        if name in ("noise", "drop") and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not 0.0 <= value <= 1.0):
            raise ValueError(f"link_faults.{name}: expected a probability per byte in 0..1, got {value!r}")
        setattr(faults, name, value)

    def burst(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"link_faults.burst: expected a byte count >= 0, got {n!r}")
        self._live().burst(n)


@pytest.fixture
def flight(request: pytest.FixtureRequest, hil_device: Any, board: HilBoard, scenario: Any,
           tmp_path: Any) -> Iterator[FlightUnderTest]:
    """The flight software on the HIL device; its capture is ``tmp_path/<test name>.tm``."""
    from .hil_flight import FlightUnderTest  # deferred: the flight software (see the imports above)

    marker = request.node.get_closest_marker("hil_timeout")
    wall = _timeout_marker(marker) if marker else request.config.getoption("--hil-timeout")
    capture = tmp_path / f"{_file_name(request.node.name)}.tm"
    f = FlightUnderTest(hil_device, capture=capture, wall_timeout_s=wall)
    relay = request.node.stash.get(_RELAY, None)
    if relay is not None:
        f.cycle_hooks.append(relay.sync)  # unplug_until on mission time lands on its cycle
    record = HilRecord(request.node.nodeid, scenario=scenario.name, seed=hil_device.seed,
                       board_id=board.board_id, board_url=board.url, capture=str(capture))
    request.node.stash[_RECORD] = record
    try:
        yield f
    finally:
        f.close()
        record.mission_s, record.wall_s, record.cycles = round(f.mission_s, 6), f.wall_s, f.cycles
        if f.cycles >= 100 and record.cycles_per_s < SLOW_CYCLES_PER_S:
            warnings.warn(HilSpeedWarning(
                f"{request.node.nodeid} ran at {record.cycles_per_s:.0f} HIL cycles/s "
                f"({record.cycles_per_s / 10:.1f}x real time): a slow link (--hil-baud?) or board"),
                stacklevel=1)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


# --------------------------------------------------------------------------------------------
# Reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    record = item.stash.get(_RECORD, None)
    if record is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        record.outcome = report.outcome if report.when == "call" else (
            "skipped" if report.skipped else "error")
        if report.failed:
            text = str(getattr(call.excinfo, "value", "") or "")
            record.message = text.splitlines()[0] if text else report.outcome
    if report.when == "teardown":
        if report.failed and record.outcome == "passed":
            record.outcome = "error"
        item.config.stash[_RECORDS].append(record)
    if report.failed and report.when == "call":
        report.sections.append(("hil", _record_text(record, item)))


def _record_text(record: HilRecord, item: pytest.Item) -> str:
    return (f"capture: {record.capture}\n"
            f"scenario {record.scenario} seed {record.seed} on board {record.board_id} ({record.board_url})\n"
            f"decode: hullwatch decode {record.capture}\n"
            f"plot:   hullwatch plot {record.capture} -o {os.path.splitext(record.capture)[0]}.png\n"
            f"rerun:  hullwatch rerun {record.capture}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    records = config.stash.get(_RECORDS, [])
    if not records:
        return
    terminalreporter.section("hil summary")
    for line in summary_lines(records):
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--hil-report", None)
    if path:
        write_report(path, session.config.stash.get(_RECORDS, []))


# --------------------------------------------------------------------------------------------
# Module-level forms (kept from the first release)


def await_event(flight: FlightUnderTest, name: str, within_s: float, subject: str | None = None) -> SeenEvent:
    """Module-level form of :meth:`FlightUnderTest.await_event`."""
    return flight.await_event(name, within_s, subject)


def await_telemetry(flight: FlightUnderTest, predicate: Callable[[Any], bool], within_s: float) -> Any:
    """Module-level form of :meth:`FlightUnderTest.await_telemetry`."""
    return flight.await_telemetry(predicate, within_s)


__all__ = ["BoardMismatch", "FlightUnderTest", "HilBoard", "HilSpeedWarning", "HilTimeout", "PtyRelay",
           "SeenEvent", "TelemetryHistory", "TmPacket", "TmSample", "WallClockTimeout", "await_event",
           "await_telemetry", "check_board", "layout_differences"]
