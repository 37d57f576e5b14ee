"""The board emulator: calibration, HIL, valves, flash persistence, bad input, pty service."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib

import pytest

from hullwatch.hal import wire
from hullwatch.hal.board_link import BoardLink
from hullwatch.hal.config_image import encode_image, image_crc
from hullwatch.hal.errors import NakError
from hullwatch.hal.framing import MAX_WIRE_FRAME, FrameReader, encode_frame
from hullwatch.sim.board_emulator import BoardEmulator, PtyBoard, open_flash
from hullwatch.sim.board_flash import config_for_scenario


def f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


class Host:
    """Talks to a BoardEmulator in process, frame by frame (no serial port)."""

    def __init__(self, board: BoardEmulator) -> None:
        self.board = board
        self.reader = FrameReader()
        self.seq = 0

    def send_raw(self, data: bytes) -> list:
        return [wire.decode(f.type, f.payload) for f in self.reader.feed(self.board.receive(data))]

    def ask(self, msg: wire.Message):
        self.seq = (self.seq + 1) & 0xFF
        frames = self.reader.feed(self.board.receive(wire.encode(msg, self.seq)))
        assert len(frames) == 1, frames
        assert frames[0].seq == self.seq
        return wire.decode(frames[0].type, frames[0].payload)


@pytest.fixture
def config():
    return config_for_scenario("soyuz-ms09")


@pytest.fixture
def host(config):
    return Host(BoardEmulator(open_flash(None, config=config)))


def hil(host: Host) -> None:
    assert host.ask(wire.HilEnter(1)) == wire.HilEnterReply(1)


def test_identify_and_tables_match_the_configuration(host, config):
    ident = host.ask(wire.Identify())
    assert (ident.protocol_major, ident.board_id) == (wire.PROTOCOL_MAJOR, "hwb-emu-0001")
    assert ident.channel_count == len(config.channels) == 31
    assert ident.valve_count == 6 and ident.module_count == 6
    assert ident.flags & wire.BoardFlags.CONFIG_VALID and ident.flags & wire.BoardFlags.HIL_ALLOWED
    assert ident.generation == 1 and ident.active_slot == 0
    ch = host.ask(wire.DescribeChannel(30))
    assert ch.id == "progress-air.flow" and ch.kind == 2
    v = host.ask(wire.DescribeValve(5))
    assert v.id == "progress-air" and v.module_b == wire.NO_MODULE
    nak = host.ask(wire.DescribeChannel(31))
    assert isinstance(nak, wire.Nak) and nak.code == wire.NakCode.BAD_ARGUMENT and "31" in nak.text


def test_calibration_is_applied_to_stimulated_values(host, config):
    hil(host)
    values = [100_000.004] * 18 + [295.123456] * 12 + [0.0123]
    values[1] = 200_000.0  # past the ADC's top (167772 Pa): saturates, and outside the valid range
    values[2] = float("nan")
    reply = host.ask(wire.HilInject(5_000_000, 0, tuple(values)))
    assert reply == wire.HilInjectReply(5_000_000, 30)  # the NaN is not stimulated
    s = host.ask(wire.ReadSamples())
    p, t, f = s.channels[0], s.channels[18], s.channels[30]
    cal = config.channels[0]
    # The stimulus travels as binary32 (100000.004 -> 100000.0078125), then the ADC quantises.
    assert p.raw == round((f32(100_000.004) - cal.offset) / cal.gain) == 10_000_001
    assert p.value == f32(cal.offset + cal.gain * p.raw) and p.status == wire.SampleState.OK
    tcal = config.channels[18]
    assert t.raw == round((f32(295.123456) - tcal.offset) / tcal.gain)
    assert t.value == pytest.approx(tcal.offset + tcal.gain * t.raw, rel=1e-7)
    assert abs(t.value - 295.123456) <= tcal.gain + 3.1e-5  # ADC step + binary32 step at 295 K
    assert f.value == pytest.approx(0.0123, abs=1e-7)
    assert s.channels[1].raw == 2**24 - 1 and s.channels[1].status == wire.SampleState.INVALID
    assert s.channels[2].status == wire.SampleState.NO_DATA
    assert s.board_time_us == 5_000_000 and p.age_us == 0
    assert s.flags & wire.BoardFlags.HIL_ACTIVE
    again = host.ask(wire.ReadSamples())
    assert again.channels[0].status == wire.SampleState.STALE  # no conversion since the last read


def test_temperature_coefficient_uses_the_module_temperature(config):
    ch0 = dataclasses.replace(config.channels[0], temp_coeff=0.75)
    config = dataclasses.replace(config, channels=(ch0,) + config.channels[1:])
    host = Host(BoardEmulator(open_flash(None, config=config)))
    hil(host)
    values = [100_000.0] * 18 + [305.0] * 12 + [0.0]  # 10 K above the 295 K reference
    host.ask(wire.HilInject(0, 0, tuple(values)))
    s = host.ask(wire.ReadSamples())
    # The board inverts the calibration with the module's temperature, so the value is right...
    assert s.channels[0].value == pytest.approx(100_000.0, abs=0.01)
    # ...and the counts differ from an uncompensated channel by tempco * dT / gain.
    assert s.channels[0].raw - s.channels[1].raw == pytest.approx(-0.75 * 10 / ch0.gain, abs=2)


def test_hil_refused_unless_configuration_allows(config):
    host = Host(BoardEmulator(open_flash(None, config=dataclasses.replace(config, hil_allowed=False))))
    nak = host.ask(wire.HilEnter(1))
    assert nak.code == wire.NakCode.HIL_NOT_ALLOWED and "hil_allowed" in nak.text
    nak = host.ask(wire.HilInject(0, 0, (1.0,)))
    assert nak.code == wire.NakCode.NOT_IN_HIL


def test_valves_travel_with_actuation_time_and_report_feedback(config):
    board = BoardEmulator(open_flash(None, config=config), valve_travel_s={"dm-om": 5.0})
    host = Host(board)
    hil(host)
    host.ask(wire.HilInject(0, 0, ()))
    reply = host.ask(wire.CommandValve(0, 0))
    assert reply.state.commanded == 0 and reply.state.feedback == wire.FEEDBACK_SCALE  # not moved yet
    host.ask(wire.HilInject(2_000_000, 0, ()))
    fb = host.ask(wire.ReadValves()).valves[0]
    assert fb.feedback == pytest.approx(0.6 * wire.FEEDBACK_SCALE, abs=1)
    host.ask(wire.HilInject(6_000_000, 0, ()))
    assert host.ask(wire.ReadSamples()).valves[0] == wire.ValveState(0, 0, 0)
    assert host.ask(wire.CommandValve(9, 1)).code == wire.NakCode.BAD_ARGUMENT
    assert host.ask(wire.CommandValve(0, 7)).code == wire.NakCode.BAD_ARGUMENT
    assert host.ask(wire.HilInject(1_000_000, 0, ())).code == wire.NakCode.BAD_ARGUMENT  # backwards


def test_hil_valve_feedback_stimulus_replaces_the_actuator_model(config):
    board = BoardEmulator(open_flash(None, config=config), valve_travel_s={"dm-om": 5.0})
    host = Host(board)
    hil(host)
    stim = wire.ValveStimulus
    host.ask(wire.HilInject(0, 0, (), stim(0, (2_500,))))
    assert host.ask(wire.ReadSamples()).valves[:2] == (wire.ValveState(255, 2_500, 0), wire.ValveState(255, 10_000, 0))
    # The stimulus is what the board reads; its drivers still follow the command.
    reply = host.ask(wire.CommandValve(0, 0))
    assert reply.state == wire.ValveState(0, 2_500, 0)
    # Held until the next value: an inject without the block (or not naming the valve) keeps it.
    host.ask(wire.HilInject(10_000_000, 0, ()))
    host.ask(wire.HilInject(11_000_000, 0, (), stim(1, (0, 4_000))))
    assert [v.feedback for v in host.ask(wire.ReadValves()).valves[:4]] == [2_500, 0, 4_000, 10_000]
    assert host.ask(wire.ReadSamples()).valves[0].commanded == 0
    # Released: the board's own model again, which has closed the valve meanwhile.
    host.ask(wire.HilInject(12_000_000, 0, (), stim(0, (wire.FEEDBACK_RELEASE,))))
    assert host.ask(wire.ReadSamples()).valves[0] == wire.ValveState(0, 0, 0)
    # Leaving HIL mode restores every real position sensor.
    assert host.ask(wire.HilEnter(0)) == wire.HilEnterReply(0)
    assert [v.feedback for v in host.ask(wire.ReadValves()).valves[:4]] == [0, 10_000, 10_000, 10_000]


def test_hil_valve_feedback_refused_unless_hil_allowed(config):
    host = Host(BoardEmulator(open_flash(None, config=dataclasses.replace(config, hil_allowed=False))))
    assert host.ask(wire.HilEnter(1)).code == wire.NakCode.HIL_NOT_ALLOWED
    nak = host.ask(wire.HilInject(0, 0, (), wire.ValveStimulus(0, (0,) * 6)))
    assert nak.code == wire.NakCode.NOT_IN_HIL
    # The position sensors still read the valves: all open hatches, closed repress valve.
    assert [v.feedback for v in host.ask(wire.ReadValves()).valves] == [10_000] * 5 + [0]


def test_hil_valve_feedback_needs_hil_mode_even_where_allowed(host):
    nak = host.ask(wire.HilInject(0, 0, (), wire.ValveStimulus(0, (0,))))
    assert nak.code == wire.NakCode.NOT_IN_HIL
    assert host.ask(wire.ReadValves()).valves[0].feedback == 10_000


@pytest.mark.parametrize("stimulus, words", [
    (wire.ValveStimulus(5, (0, 0)), "valves 5..6; the board has 6"),
    (wire.ValveStimulus(0, (0, 10_001)), "valve 1 feedback 10001"),
])
def test_bad_valve_stimulus_is_refused_and_changes_nothing(host, stimulus, words):
    hil(host)
    nak = host.ask(wire.HilInject(1_000_000, 0, (100_000.0,), stimulus))
    assert nak.code == wire.NakCode.BAD_ARGUMENT and words in nak.text
    s = host.ask(wire.ReadSamples())
    assert s.board_time_us == 0 and s.channels[0].status == wire.SampleState.NO_DATA
    assert [v.feedback for v in s.valves] == [10_000] * 5 + [0]


def test_protocol_1_0_board_refuses_the_valve_block(config):
    host = Host(BoardEmulator(open_flash(None, config=config), protocol_minor=0))
    assert host.ask(wire.Identify()).protocol_version == "1.0"
    hil(host)
    nak = host.ask(wire.HilInject(0, 0, (1.0,), wire.ValveStimulus(0, (0,))))
    assert nak.code == wire.NakCode.BAD_LENGTH and "1.0" in nak.text
    assert host.ask(wire.HilInject(0, 0, (1.0,))) == wire.HilInjectReply(0, 1)


@pytest.mark.parametrize("protocol, stimulated", [("1.2", True), ("1.1", True), ("1.0", False)])
def test_hil_device_sends_valve_feedback_only_to_a_board_that_knows_it(protocol, stimulated):
    from hullwatch.sim.urlhandler import protocol_emuboard
    from hullwatch.tools.board.hil_device import open_hil_device

    name = f"valve-stim-{protocol}"
    try:
        with open_hil_device(f"emuboard://{name}?protocol={protocol}", scenario="valve-fault") as dev:
            assert dev.stimulates_valves is stimulated
            board = protocol_emuboard.link(name).board
            hatch = dev.layout.valve_index("om-rassvet")
            frame = dev.layout.new_frame()
            dev.command_valve(hatch, False)  # the plant's hatch is stuck open (valve-fault)
            for _ in range(100):  # 10 s: the hatch's actuation time has long passed
                dev.clock.sleep_until(dev.clock.now() + 0.1)
                dev.read(frame)
            assert dev.health()["naks"] == 0 and dev.stats["inject_failed"] == 0
            assert dev.plant.truth().valve_position["om-rassvet"] == 1.0
            assert frame.valve_cmd[hatch] == 0
            # Through the board: the plant's stuck hatch with 1.1, the board's own closed one with 1.0.
            assert frame.valve_fb[hatch] == (1.0 if stimulated else 0.0)
            assert board.valves[hatch].position == 0.0
    finally:
        protocol_emuboard.forget(name)


def test_flash_survives_restart(tmp_path, config):
    path = tmp_path / "board.flash"
    host = Host(BoardEmulator(open_flash(path, config=config)))
    assert host.ask(wire.Identify()).generation == 1
    image = encode_image(dataclasses.replace(config, generation=2, sample_rate_hz=25))
    assert host.ask(wire.FlashBegin(len(image), image_crc(image))) == wire.FlashBeginReply(1, len(image))
    for off in range(0, len(image), 1024):
        assert host.ask(wire.FlashWrite(off, image[off:off + 1024])).written == min(off + 1024, len(image))
    assert host.ask(wire.FlashCrc(1, 0, len(image) - 4)).crc32 == image_crc(image) == zlib.crc32(image[:-4])
    assert host.ask(wire.FlashCommit()) == wire.FlashCommitReply(1, 2, image_crc(image))
    assert host.ask(wire.Identify()).sample_rate_hz == 25
    host.board.flash.close()
    # Power the board up again on the same file: it boots the new image.
    again = Host(BoardEmulator(open_flash(path, config=config)))
    ident = again.ask(wire.Identify())
    assert (ident.generation, ident.active_slot, ident.sample_rate_hz) == (2, 1, 25)
    info = again.ask(wire.FlashInfo())
    assert [s.state for s in info.slots] == [wire.SlotState.VALID, wire.SlotState.ACTIVE]


def test_flash_refusals_are_naks(host, config):
    assert host.ask(wire.FlashCommit()).code == wire.NakCode.FLASH_NO_SESSION
    image = encode_image(dataclasses.replace(config, generation=1))  # not above the active one
    host.ask(wire.FlashBegin(len(image), image_crc(image)))
    assert host.ask(wire.FlashWrite(1024, image[1024:])).code == wire.NakCode.FLASH_OUT_OF_ORDER
    for off in range(0, len(image), 1024):
        host.ask(wire.FlashWrite(off, image[off:off + 1024]))
    nak = host.ask(wire.FlashCommit())
    assert nak.code == wire.NakCode.FLASH_STALE_GENERATION and "generation" in nak.text
    assert host.ask(wire.Identify()).generation == 1


def test_garbage_oversized_and_malformed_input_never_crash(host):
    rx = host.board.rx_counters
    assert host.send_raw(bytes(range(1, 200)) * 20) == []  # no delimiter: oversized, skipped
    assert host.send_raw(b"\x00") == []
    assert rx()["oversized"] == 1 and rx()["dropped_bytes"] >= 3980
    bad = bytearray(wire.encode(wire.Identify(), 1))
    bad[3] ^= 0x40
    assert host.send_raw(bytes(bad)) == []  # bad CRC: dropped, not answered
    assert rx()["crc_errors"] + rx()["cobs_errors"] == 1
    (nak,) = host.send_raw(encode_frame(0x7E, 3, b"xyz"))
    assert nak.code == wire.NakCode.UNKNOWN_TYPE
    (nak,) = host.send_raw(encode_frame(wire.MsgType.COMMAND_VALVE, 4, b"\x01"))
    assert nak.code == wire.NakCode.BAD_LENGTH and "COMMAND_VALVE" in nak.text
    assert host.send_raw(wire.encode(wire.PingReply(b""), 5)) == []  # a response type: ignored
    assert host.board.counters["unexpected_frames"] == 1
    assert host.ask(wire.Ping(b"still here")) == wire.PingReply(b"still here")
    assert len(bytes(range(1, 200)) * 20) > MAX_WIRE_FRAME


def test_streaming_sends_frames_with_counting_seq(config):
    now = [100.0]
    host = Host(BoardEmulator(open_flash(None, config=config), clock=lambda: now[0]))
    assert host.ask(wire.StreamSamples(50)).rate_hz == 10  # clamped to the sample rate
    frames = []
    for _ in range(5):
        now[0] += 0.1
        frames += host.reader.feed(host.board.poll())
    assert [f.seq for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.type == wire.MsgType.STREAM_FRAME for f in frames)
    msg = wire.decode(frames[-1].type, frames[-1].payload)
    assert msg.flags & wire.BoardFlags.STREAMING and msg.channels[0].value == 101_325.0
    host.ask(wire.StreamSamples(0))
    now[0] += 1
    assert host.board.poll() == b""


def test_reset_leaves_hil_and_reloads(host):
    hil(host)
    assert host.ask(wire.Reset(0)) == wire.ResetReply()
    assert not host.ask(wire.Identify()).flags & wire.BoardFlags.HIL_ACTIVE
    assert host.ask(wire.Reset(9)).code == wire.NakCode.BAD_ARGUMENT


def test_pty_board_serves_the_serial_device():
    from hullwatch import hal

    board = BoardEmulator(open_flash(None))
    with PtyBoard(board) as pty:
        link = BoardLink.open(pty.path)
        assert link.identify().board_id == "hwb-emu-0001"
        link.close()
        with hal.open(f"serial://{pty.path}") as dev:
            frame = dev.layout.new_frame()
            dev.read(frame)
            assert frame.pressure[0] == 101_325.0
        with pytest.raises(NakError, match="HIL_NOT_ALLOWED|NOT_IN_HIL"):
            link = BoardLink.open(pty.path)
            try:
                link.request(wire.HilInject(0, 0, (1.0,)))
            finally:
                link.close()


def test_a_polling_board_answers_every_request_and_still_stops():
    """serve_fd with spin_s (``hullwatch board --pty``'s default): requests right after a reply
    and requests after a pause are answered alike, and stop() ends it."""
    import threading

    from hullwatch.sim.board_serve import make_pty, serve_fd

    board = BoardEmulator(open_flash(None))
    master, slave, path = make_pty()
    stopping = [False]
    server = threading.Thread(target=serve_fd, args=(board, master),
                              kwargs={"stop": lambda: stopping[0], "poll_s": 0.02, "spin_s": 300e-6})
    server.start()
    try:
        link = BoardLink.open(path)
        link._io.spin_s = 0.0  # the host thread must not poll against a board thread
        for i in range(50):
            assert link.request(wire.Ping(bytes([i]))).data == bytes([i])
            if i % 10 == 0:
                time.sleep(0.01)  # past the board's poll: it sleeps, and still wakes
        link.close()
    finally:
        stopping[0] = True
        server.join(timeout=2.0)
        os.close(master)
        os.close(slave)
    assert not server.is_alive()
    assert board.counters["requests"] == 50


def test_paced_board_behaves_like_a_uart():
    board = BoardEmulator(open_flash(None))
    with PtyBoard(board, baud=115_200) as pty:
        link = BoardLink.open(pty.path, timeout_s=0.5)
        link.identify()
        t0 = time.perf_counter()
        for _ in range(3):
            link.request_raw(wire.ReadSamples())
        per = (time.perf_counter() - t0) / 3
        link.close()
    # 31 channels + 6 valves = 440 bytes on the wire: 38 ms at 115200 baud.
    assert per >= 0.9 * 440 * 10 / 115_200


def test_cli_board_pty_prints_path_and_stops_on_interrupt(tmp_path):
    flash = tmp_path / "b.flash"
    proc = subprocess.Popen([sys.executable, "-m", "hullwatch.tools", "board", "--pty", "--flash", str(flash)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"(/dev/pts/\d+)", line)
        assert m, line
        from hullwatch.hal.board_link import BoardLink as Link

        link = Link.open(m.group(1))
        assert link.identify().generation == 1
        link.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "stopped after" in err
    assert os.path.getsize(flash) > 0


def test_serve_port_serves_any_pyserial_port():
    """``hullwatch board --port URL`` path: the board on a pyserial port (here a pty's slave end;
    the host talks on the master)."""
    import threading

    import serial

    from hullwatch.sim.board_emulator import make_pty, serve_port

    master, slave, path = make_pty()
    port = serial.serial_for_url(path, timeout=0.02)
    stop = threading.Event()
    board = BoardEmulator(open_flash(None))
    t = threading.Thread(target=serve_port, args=(board, port), kwargs={"stop": stop.is_set, "poll_s": 0.02},
                         daemon=True)
    t.start()
    try:
        os.write(master, wire.encode(wire.Ping(b"port"), 3))
        reader, frames, deadline = FrameReader(), [], time.monotonic() + 5
        while not frames and time.monotonic() < deadline:
            frames = reader.feed(os.read(master, 4096))
        assert wire.decode(frames[0].type, frames[0].payload) == wire.PingReply(b"port")
    finally:
        stop.set()
        t.join(2)
        port.close()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("value", ["2.0", "1.9", "1", "x"])
def test_emuboard_protocol_option_is_checked(value):
    import serial

    with pytest.raises(serial.SerialException, match=f"protocol='{value}': expected 1.0 .. 1.2"):
        serial.serial_for_url(f"emuboard://?protocol={value}")


def test_a_polling_board_offers_its_core_away_between_turns(monkeypatch):
    """The board's poll yields the core each turn that found nothing (on a loaded machine the
    host it waits for may need that core), and returns at once when a request is there."""
    from hullwatch.hal import port_io
    from hullwatch.sim import board_serve
    from hullwatch.sim.board_serve import make_pty

    _poll_readable = board_serve.poll_readable  # the one poll both ends of a pty use
    yields = []
    monkeypatch.setattr(port_io.os, "sched_yield", lambda: yields.append(1))
    master, slave, _ = make_pty()
    try:
        assert _poll_readable(master, time.perf_counter() + 0.002) is False
        assert len(yields) > 0
        os.write(slave, b"\x00")
        before = len(yields)
        assert _poll_readable(master, time.perf_counter() + 0.002) is True
        assert len(yields) == before
    finally:
        os.close(master)
        os.close(slave)
