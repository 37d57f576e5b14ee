"""The board a HIL session runs against, and what a test can do to it (the ``board`` fixture).

:class:`HilBoard` is a real board (any pyserial URL) or an emulator process (``hullwatch board
--pty``). Attributes: ``url`` (what the host opens), ``emulated``, ``board_id`` (the id the board
reports in IDENTIFY: ``hwb-emu-0001`` for the emulator's factory image), ``protocol``
(``"1.1"``...), ``link_path`` (emulated: the stable name of its port).

An emulated board's port is a pseudo-terminal whose number changes every time the process starts,
so the host opens a symbolic link instead (``link_path``, in the session's tmp directory) that
always points at the live one: ``url`` stays the same across :meth:`HilBoard.power_cycle`, and a
host reconnecting after a restart finds the board again, with its flash (a file) unchanged.

Controls:

- :meth:`HilBoard.power_off` / :meth:`HilBoard.power_on` / :meth:`HilBoard.power_cycle`
  (emulated only): stop the emulator process (the host's port fails as when a board loses
  power) and start it again on the same flash file; for an in-process ``emuboard://NAME``
  board, pull its cable and boot it again (its flash kept);
- :meth:`HilBoard.reset` (any board): the protocol's RESET (soft: leave HIL, reload the
  configuration; boot: as a power cycle, valves de-energised) through the HIL device's own link,
  then HIL mode again.
"""

from __future__ import annotations

import os
from typing import Any

from ...hal import wire
from ...hal.board_link import BoardLink
from ...sim.urlhandler.protocol_emuboard import link as emuboard_link
from ...sim.urlhandler.protocol_emuboard import parse_url as parse_emuboard_url
from ..errors import DeviceProblem
from .hil_device import BoardUnderTest, start_emulator


class BoardControlError(DeviceProblem):
    """The board cannot do what was asked (power control of a real board)."""


class HilBoard:
    """See the module docstring. ``emulator_args`` are ``hullwatch board --pty`` arguments."""

    def __init__(self, url: str, *, emulator_args: list[str] | None = None,
                 link_path: str | os.PathLike[str] | None = None) -> None:
        self.emuboard = _emuboard_name(url) if emulator_args is None else None
        self.emulated = emulator_args is not None or self.emuboard is not None
        self.in_process = self.emuboard is not None  #: an emuboard:// board in this process
        self.emulator_args = list(emulator_args or [])
        self.link_path = os.fspath(link_path) if link_path is not None else None
        self._process: BoardUnderTest | None = None
        self.active_device: Any = None  #: the HIL device of the running test (set by the plugin)
        self.power_cycles = 0
        if emulator_args is not None:
            if self.link_path is None:
                raise ValueError("an emulated board needs a link_path")
            self.url = f"serial://{self.link_path}"
            self.power_on()
        else:
            self.url = url
        self.board_id, self.protocol = self._identify()

    @property
    def process(self) -> Any:
        """The emulator's subprocess.Popen (None for a real board or while powered off)."""
        return self._process.process if self._process is not None else None

    @property
    def powered(self) -> bool:
        if self.emuboard is not None:
            return not emuboard_link(self.emuboard).faults.unplugged
        return not self.emulated or self._process is not None

    def _identify(self) -> tuple[str, str]:
        link = BoardLink.open(self.url)
        try:
            ident = link.identify()
        finally:
            link.close()
        return ident.board_id, f"{ident.protocol_major}.{ident.protocol_minor}"

    # -- power (emulated) ---------------------------------------------------------------------

    def _require_emulated(self, what: str) -> None:
        if not self.emulated:
            raise BoardControlError(f"{what}: {self.url} is a real board; power control needs the "
                                    "emulator (run without --hil-device) or a switched supply")

    def power_off(self) -> None:
        """Stop the emulator process: the host's port fails and ``link_path`` points nowhere."""
        self._require_emulated("power_off")
        if self.emuboard is not None:
            emuboard_link(self.emuboard).faults.unplug()
            return
        if self._process is not None:
            self._process.stop()
            self._process = None
        assert self.link_path is not None
        if os.path.lexists(self.link_path):
            os.unlink(self.link_path)

    def power_on(self) -> None:
        """Start the emulator process (same flash file) and point ``link_path`` at its port.
        Raises DeviceProblem if it does not start."""
        self._require_emulated("power_on")
        if self.emuboard is not None:
            lk = emuboard_link(self.emuboard)
            if lk.faults.unplugged:
                lk.board.power_cycle()
                lk.faults.plug()
            return
        if self._process is not None:
            return
        proc = start_emulator(*self.emulator_args)
        assert self.link_path is not None
        tmp = f"{self.link_path}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(proc.url[len("serial://"):], tmp)
        os.replace(tmp, self.link_path)
        self._process = proc

    def power_cycle(self, off_s: float = 0.1) -> None:
        """Power off, then on: the board boots again from its flash (valves de-energised).

        The emulator process is off for as long as stopping and starting it takes (wall time; the
        flight loop is not running meanwhile). An ``emuboard://NAME`` board is off for ``off_s``
        s of the running test's mission time (at least one cycle, so the host sees the port fail
        and reconnects, as after a real power cut), or only for this call without a running test.
        """
        self._require_emulated("power_cycle")
        self.power_cycles += 1
        if self.emuboard is not None:
            lk = emuboard_link(self.emuboard)
            lk.board.power_cycle()
            device = self.active_device
            if device is not None:
                clock = device.clock.now
                lk.faults.unplug_until(clock() + off_s, clock)
            return
        self.power_off()
        self.power_on()

    # -- reset (any board) --------------------------------------------------------------------

    def reset(self, kind: str = "soft") -> None:
        """Send RESET (``"soft"`` or ``"boot"``) through the running test's HIL device and put the
        board back in HIL mode. Raises ValueError for another kind, BoardControlError without a
        running HIL device, hal LinkError when the board does not answer."""
        kinds = {"soft": wire.ResetKind.SOFT, "boot": wire.ResetKind.BOOT}
        if kind not in kinds:
            raise ValueError(f"reset kind {kind!r}; expected 'soft' or 'boot'")
        device = self.active_device
        if device is None or device.board.link is None:
            raise BoardControlError("reset: no HIL device with an open link (use it from a test "
                                    "that uses the flight or hil_device fixture)")
        device.board.link.reset(kinds[kind])
        device.board.hil_enter(True)

    def stop(self) -> None:
        """End of session: stop the emulator and remove ``link_path``. Idempotent."""
        if self.emulated and self.emuboard is None:
            self.power_off()

    def __repr__(self) -> str:
        return f"HilBoard({self.url!r}, board_id={self.board_id!r}, emulated={self.emulated})"


def _emuboard_name(url: str) -> str | None:
    """The board name of an ``emuboard://NAME`` URL (None for another URL or no name)."""
    if not url.lower().startswith("emuboard://"):
        return None
    name, _ = parse_emuboard_url(url)
    return name or None


__all__ = ["BoardControlError", "HilBoard"]
