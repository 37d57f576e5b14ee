"""Device URL schemes come from the ``hullwatch.devices`` and ``hullwatch.serial_handlers``
entry-point groups: hal names no backend of the layers above, and another package adds a scheme."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from hullwatch import hal
from hullwatch.hal import registry
from hullwatch.hal.errors import DeviceOpenError, UnknownSchemeError

ROOT = Path(__file__).resolve().parents[1]


def test_hal_sources_name_no_module_of_sim_or_tools() -> None:
    for path in sorted((ROOT / "hal").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert "hullwatch.sim" not in node.value and "hullwatch.tools" not in node.value, path


def test_the_built_in_schemes_are_registered_by_entry_point() -> None:
    backends = registry.device_backends()
    assert backends["sim"] == "hullwatch.sim.device:open_url"
    assert backends["replay"] == "hullwatch.tools.captures.replay_device:open_url"
    assert registry.serial_handlers() == {"emuboard": "hullwatch.sim.urlhandler.protocol_emuboard"}
    assert {"sim", "replay", "serial", "emuboard", "loop"} <= set(registry.known_schemes())
    dev = hal.open("sim://soyuz-ms09?seed=3")
    try:
        assert dev.info.kind == "sim"
    finally:
        dev.close()


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, group: str, *pairs: tuple[str, str]) -> None:
    real = registry.importlib.metadata.entry_points

    def entry_points(group: str = "", **kw: object):
        if group == wanted:
            return [EntryPoint(name, value, group) for name, value in pairs]
        return real(group=group, **kw)

    wanted = group
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", entry_points)


def test_a_scheme_registered_twice_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, registry.DEVICES_GROUP, ("dup", "a.b:open_url"), ("dup", "c.d:open_url"))
    with pytest.raises(UnknownSchemeError, match="'dup' is registered twice.*'a.b:open_url' and 'c.d:open_url'"):
        hal.open("dup://x")


def test_a_backend_that_cannot_be_loaded_is_a_device_open_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, registry.DEVICES_GROUP, ("gone", "no_such_package_xyz.device:open_url"))
    with pytest.raises(DeviceOpenError, match=r"gone:// \(no_such_package_xyz.device:open_url\) cannot be loaded"):
        hal.open("gone://x")


def test_a_serial_handler_must_follow_pyserials_naming(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, registry.SERIAL_HANDLERS_GROUP, ("odd", "somepkg.handler"))
    with pytest.raises(UnknownSchemeError, match="expected a module 'PACKAGE.protocol_odd'"):
        hal.open("odd://x")


def test_an_unknown_scheme_lists_the_registered_ones() -> None:
    with pytest.raises(UnknownSchemeError, match=r"'nope'.*emuboard://.*replay://.*sim://"):
        hal.open("nope://x")


def _install_third_party(site: Path) -> None:
    """A real (tiny) installed distribution: dist-info with entry points, and its modules."""
    dist = site / "toy_devices-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-devices\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[hullwatch.devices]\ntoy = toydev:open_url\n\n"
        "[hullwatch.serial_handlers]\ntoyloop = toyserial.protocol_toyloop\n")
    (site / "toydev.py").write_text(textwrap.dedent('''
        """A third-party device: the simulated station under another scheme, seed 11 unless given."""
        from hullwatch.sim.device import open_url as open_sim

        def open_url(url, **options):
            rest = url.split("://", 1)[1]
            return open_sim("sim://" + (rest if "seed=" in rest else rest + "?seed=11"), **options)
        '''))
    (site / "toyserial").mkdir()
    (site / "toyserial" / "__init__.py").write_text("")
    # a pyserial URL handler of its own: pyserial's loopback under another name
    (site / "toyserial" / "protocol_toyloop.py").write_text(textwrap.dedent('''
        from serial.urlhandler.protocol_loop import Serial as _Loop

        class Serial(_Loop):
            def from_url(self, url):
                return super().from_url("loop://" + url.split("://", 1)[1])
        '''))


def test_a_third_party_package_adds_schemes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install_third_party(site)
    code = textwrap.dedent("""
        import serial
        from hullwatch import hal
        from hullwatch.hal import registry
        dev = hal.open("toy://prk-slow")
        assert (dev.info.kind, dev.seed) == ("sim", 11), (dev.info, dev.seed)
        dev.close()
        assert "toy" in registry.known_schemes() and "toyloop" in registry.known_schemes()
        assert registry.is_serial_scheme("toyloop")
        registry.install_serial_handlers()
        port = serial.serial_for_url("toyloop://", timeout=1)
        port.write(b"ping")
        assert port.read(4) == b"ping"
        port.close()
        print("ok")
    """)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    # and the command line takes the new scheme like any other device URL
    result = subprocess.run([sys.executable, "-m", "hullwatch.tools", "run", "--device", "toy://nominal-24h",
                             "--until", "2m", "--quiet", "--capture", str(tmp_path / "toy.tm")],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verdict:"), result.stdout
    assert (tmp_path / "toy.tm").stat().st_size > 0
