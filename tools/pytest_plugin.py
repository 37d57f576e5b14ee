"""pytest plugin (entry point ``pytest11``): HIL fixtures for hullwatch.

``--hil-device URL`` runs the ``hil``-marked tests against a real board; without it they run
against the board emulator.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hullwatch")
    group.addoption(
        "--hil-device",
        action="store",
        default=None,
        metavar="URL",
        help="run hil tests against this board (any pyserial URL); default: the board emulator",
    )
