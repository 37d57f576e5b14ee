"""Hardware in the loop: a Device made of a sensor board (real or emulated) and a plant simulation.

Each cycle of the flight loop (``read``):

1. the plant has advanced to mission time ``t`` (the device clock is the plant's lockstep clock:
   the executive's ``sleep_until`` steps it);
2. the plant's sensor readings at ``t`` are injected into the board (one HIL_INJECT for every
   channel, stamped ``t``, so the board's time is mission time); the same message stimulates each
   valve's position sensor with the plant's valve feedback (protocol 1.1), so a stuck or
   mis-reporting plant valve reaches FDIR through the board as it would on a HIL rig;
3. the flight software's frame is read back *through the board*: the board's calibration,
   quantisation, valve feedback and the link are in the loop. Steps 2 and 3 are one HIL_STEP
   exchange on a board of protocol 1.2 or later, HIL_INJECT then READ_SAMPLES on an older one;
4. the board's valve outputs (its commanded positions) are forwarded to the plant's valves, which
   move with their own actuation time and faults.

``command_valve`` goes to the board only. The layout the flight software sees is the board's
(its configuration), which must fit the scenario's station exactly (hil_check.check_board).

A lost link is handled by the serial device (STALE samples, LINK_LOST, reconnect); on restore the
board is put back in HIL mode. The plant keeps running throughout, as a station would.

``open_hil_device(url, scenario=..., seed=...)`` is what ``hullwatch run --device URL --scenario
NAME`` uses (tools/closed_loop/runner.py).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from ...hal.board_check import BoardDescriptionError
from ...hal.errors import HalError, NakError
from ...hal.interfaces import Device, DeviceInfo, Frame, SampleStatus
from ...hal import wire
from ...hal.serial_device import SerialBoardDevice
from ...hal.serial_device import open_url as open_board
from ...hal.wire import NakCode, ReadValves, ValveCommand
from ...sim.device import open_url as open_sim
from ...sim.scenario import Scenario, load_scenario, scenario_from_dict
from ..errors import DeviceProblem, InputError
from .hil_check import check_board

_NAN = math.nan
_OK = int(SampleStatus.OK)
_INVALID = int(SampleStatus.INVALID)


class HilDevice(Device):
    """The board as the flight software's device, stimulated by ``plant`` (a sim device).

    Attributes (besides the Device ones): ``board`` (the serial device), ``plant`` (the sim
    device: ground truth), ``scenario`` and ``seed`` (the plant's, so runs get a verdict),
    ``stimulates_valves`` (the board speaks protocol 1.1 or later: its valve feedback is the
    plant's; on a 1.0 board it is the board's own and plant valve faults do not reach FDIR).
    """

    def __init__(self, board: SerialBoardDevice, plant: Any) -> None:
        self.board = board
        self.plant = plant
        self.scenario = plant.scenario
        self.seed = plant.seed
        self.layout = board.layout
        self.clock = plant.clock
        self.epoch_utc = plant.epoch_utc
        self.stimulates_valves = \
            board.description.identity.protocol_minor >= wire.VALVE_STIMULUS_MINOR
        self.info = DeviceInfo("hil", f"{board.info.name}+{plant.info.name}", {
            "board": dict(board.info.details), "plant": dict(plant.info.details),
            "valve_feedback": "plant (stimulated)" if self.stimulates_valves else "board's own"})
        plant_ids = {}
        pl = plant.layout
        for kind, channels in enumerate((pl.pressure, pl.temperature, pl.flow)):
            for j, c in enumerate(channels):
                plant_ids[c.id] = (kind, j)
        # The board must carry this station's configuration: every module, volume, channel,
        # valve and kind (BoardMismatch, exit status 2, names each difference).
        check_board(board.layout, pl, board_name=repr(board.info.name), scenario_name=plant.scenario.name)
        plant_valves = {v.id: i for i, v in enumerate(pl.valves)}
        # Board channel b <- plant (kind, j); board valve i -> plant valve index.
        self._sources = [plant_ids[cid] for cid in board.channel_ids]
        # Board channel b <- plant channel _board_order[b] in the plant's flat order (pressure,
        # temperature, flow); None when the two orders agree (the usual case).
        base = (0, len(pl.pressure), len(pl.pressure) + len(pl.temperature))
        order = [base[kind] + j for kind, j in self._sources]
        self._board_order: list[int] | None = None if order == list(range(len(order))) else order
        self._valve_to_plant = [plant_valves[v.id] for v in board.layout.valves]
        self._plant_frame = pl.new_frame()
        # Board valve order; None when the board cannot take valve stimulus (protocol 1.0).
        self._valve_fb: list[float] | None = [0.0] * len(self._valve_to_plant) \
            if self.stimulates_valves else None
        self._valves_in_order = self._valve_to_plant == list(range(len(pl.valves)))
        # The plant's valves start as the scenario says; forward only what the board changes.
        self._forwarded = [int(plant.plant.valve_command[p]) for p in self._valve_to_plant]
        self.stats = {"injected": 0, "inject_failed": 0, "valves_forwarded": 0, "hil_entries": 0}
        self._enter_hil()
        self._align_valves()
        board.on_restore.append(self._enter_hil)

    def _enter_hil(self) -> None:
        """Put the board in HIL mode with its stimulus clock restarted (leave, then enter)."""
        try:
            self.board.hil_enter(False)
            self.board.hil_enter(True)
        except NakError as exc:
            if exc.code == NakCode.HIL_NOT_ALLOWED:
                raise DeviceProblem(
                    f"board {self.board.info.name!r} refuses HIL: its configuration has "
                    "hil_allowed = false; flash one that allows it (hil_allowed = true)") from exc
            raise
        self.stats["hil_entries"] += 1

    def _align_valves(self) -> None:
        """Command the board's valves to the plant's initial state where they differ (a board
        left with hatches closed by an earlier run would otherwise close the plant's)."""
        reply = self.board.link.request(ReadValves())  # type: ignore[union-attr]
        if len(reply.valves) != len(self._forwarded):
            raise BoardDescriptionError(
                f"board {self.board.info.name!r} sent an impossible VALVES_REPLY.valve_count: it "
                f"described {len(self._forwarded)} valves, the reply carries {len(reply.valves)}",
                "VALVES_REPLY.valve_count")
        for i, state in enumerate(reply.valves):
            want = self._forwarded[i]
            have = state.commanded if state.commanded != ValveCommand.NONE else int(state.position >= 0.5)
            if have != want:
                self.board.command_valve(i, bool(want))

    # -- the per-cycle path ------------------------------------------------------------------

    def read(self, frame: Frame) -> None:
        """Stimulate the board with the plant's readings at the current mission time, read the
        board back into ``frame``, forward the board's valve outputs to the plant. Never raises."""
        t = self.clock.now()
        pf = self._plant_frame
        self.plant.read(pf)
        # The plant's readings in its layout order (pressure, temperature, flow), then in board
        # channel order. A sample the plant's sensor did not deliver (dropout, stale) is not
        # stimulated: the board channel then reads STALE, as the sensor would.
        flat = pf.pressure + pf.temperature + pf.flow
        status = pf.pressure_status + pf.temperature_status + pf.flow_status
        if self._board_order is not None:
            flat = [flat[i] for i in self._board_order]
            status = [status[i] for i in self._board_order]
        if status.count(_OK) + status.count(_INVALID) == len(status):
            values = flat  # every sample delivered (the usual cycle): nothing to blank
        else:
            values = [v if s == _OK or s == _INVALID else _NAN for v, s in zip(flat, status)]
        # The plant's valve position sensors (a feedback_mismatch fault freezes them), not truth.
        valve_fb = self._valve_fb
        if valve_fb is not None:
            if self._valves_in_order:
                valve_fb = pf.valve_fb
            else:
                fb = pf.valve_fb
                for i, p in enumerate(self._valve_to_plant):
                    valve_fb[i] = fb[p]
        # One exchange on a 1.2 board (HIL_STEP), inject then read on an older one.
        if self.board.hil_step(t, values, valve_fb, frame):
            self.stats["injected"] += 1
        else:
            self.stats["inject_failed"] += 1
        frame.t = t
        if self.board.link_up:
            self._forward_valves(frame)

    def _forward_valves(self, frame: Frame) -> None:
        fwd = self._forwarded
        if frame.valve_cmd == fwd:
            return  # the usual cycle: the board's outputs are what the plant already has
        plant = self.plant
        for i, cmd in enumerate(frame.valve_cmd):
            if cmd != fwd[i] and frame.valve_status[i] == _OK:
                fwd[i] = cmd
                plant.command_valve(self._valve_to_plant[i], bool(cmd))
                self.stats["valves_forwarded"] += 1

    def command_valve(self, index: int, open_: bool) -> None:
        """Command the board's valve driver (the plant follows the board's outputs)."""
        self.board.command_valve(index, open_)

    @property
    def link_up(self) -> bool:
        return self.board.link_up

    def health(self) -> dict[str, int]:
        out = dict(self.board.health())
        out.update(self.stats)
        out.update({f"plant_{k}": v for k, v in self.plant.health().items()})
        return out

    def _close(self) -> None:
        try:
            if self.board.link_up:
                self.board.hil_enter(False)
        except HalError:
            pass  # the board may be gone; closing must not fail
        finally:
            self.board.close()
            self.plant.close()


def open_hil_device(url: str, *, scenario: Any, seed: int | None = None, **board_options: Any) -> HilDevice:
    """Open the board at ``url`` and the plant of ``scenario`` (preset name, TOML path, Scenario
    or dict) and join them. ``board_options`` go to the serial device (``timeout_s``...).

    Raises:
        DeviceOpenError/LinkError (hal): the board cannot be opened or does not answer.
        ScenarioError: bad scenario.
        BoardMismatch (an InputError): the board's configuration does not fit the scenario.
        DeviceProblem: the board's configuration forbids HIL.
    """
    if isinstance(scenario, dict):
        scenario = scenario_from_dict(dict(scenario), "<scenario>")
    elif not isinstance(scenario, Scenario):
        scenario = load_scenario(str(scenario))
    if url.lower().startswith("sim://"):
        raise InputError(f"{url}: HIL needs a board URL (serial port, emuboard://...), not sim://")
    options: dict[str, Any] = {"scenario": scenario}
    if seed is not None:
        options["seed"] = seed
    plant = open_sim("sim://", **options)
    try:
        board = open_board(url, clock=plant.clock, **board_options)
    except BaseException:
        plant.close()
        raise
    try:
        return HilDevice(board, plant)
    except BaseException:
        board.close()
        plant.close()
        raise


#: Seconds to wait for an emulator process to print its device path.
EMULATOR_START_TIMEOUT_S = 30.0


@dataclass
class BoardUnderTest:
    """A board to run HIL against: ``url`` opens it; ``process`` is the emulator's, if emulated."""

    url: str
    emulated: bool
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Stop the emulator process (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "BoardUnderTest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(*args: str, timeout_s: float = EMULATOR_START_TIMEOUT_S) -> BoardUnderTest:
    """Start ``hullwatch board --pty ARGS...`` in its own process (its own core: no GIL shared
    with the host) and return it once it serves; ``url`` is ``serial:///dev/pts/N``.

    Raises DeviceProblem (with the emulator's output) if it does not print its path in time.
    """
    cmd = [sys.executable, "-m", "hullwatch.tools", "board", "--pty", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        m = re.search(r"serving on (\S+)", line)
        if m:
            return BoardUnderTest(f"serial://{m.group(1)}", emulated=True, process=proc)
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise DeviceProblem(f"board emulator did not start ({' '.join(cmd)}): {line.strip()} {err.strip()}")
