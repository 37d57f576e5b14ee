"""The codec compiler (hal/codec.py): struct layouts derived from construct declarations agree with
construct byte for byte, and what has no fixed layout is refused by name."""

from __future__ import annotations

import random

import construct as cs
import pytest

from hullwatch.hal import codec, wire
from hullwatch.firmware.telemetry import packets as P


def test_a_prefixed_array_of_structs_lays_out_as_construct_builds_it() -> None:
    decl = wire.DECLARATIONS[wire.MsgType.SAMPLES]
    rng = random.Random(3)
    for n_channels, n_valves in ((0, 0), (1, 0), (3, 2), (18, 7)):
        channels = [dict(raw=rng.randint(-2**31, 2**31 - 1), value=rng.choice([0.0, 101325.0, -1.5]),
                         age_us=rng.randint(0, 2**32 - 1), status=rng.randint(0, 3)) for _ in range(n_channels)]
        valves = [dict(commanded=rng.choice([0, 1, 255]), feedback=rng.randint(0, 65535), status=rng.randint(0, 3))
                  for _ in range(n_valves)]
        value = dict(board_time_us=rng.randint(0, 2**64 - 1), flags=rng.randint(0, 255), channels=channels,
                     valves=valves)
        built = decl.build(value)
        fields = codec.flatten(decl, {"channels": n_channels, "valves": n_valves})
        flat = [value["board_time_us"], value["flags"], n_channels]
        flat += [c[k] for c in channels for k in ("raw", "value", "age_us", "status")]
        flat += [n_valves] + [v[k] for v in valves for k in ("commanded", "feedback", "status")]
        compiled = codec.compile_fields(fields)
        assert compiled.pack(*flat) == built and compiled.size == len(built)
        offsets = codec.field_offsets(fields)
        assert built[offsets["valves.count"]] == n_valves and built[offsets["channels.count"]] == n_channels


def test_paths_name_each_value() -> None:
    fields = codec.flatten(wire.DECLARATIONS[wire.MsgType.SAMPLES], {"channels": 1, "valves": 1})
    assert [f.path for f in fields] == ["board_time_us", "flags", "channels.count", "channels[0].raw",
                                        "channels[0].value", "channels[0].age_us", "channels[0].status",
                                        "valves.count", "valves[0].commanded", "valves[0].feedback",
                                        "valves[0].status"]


def test_bit_fields_and_constants_come_with_the_code() -> None:
    [packet_id, seq_ctrl, length] = codec.flatten(P.PRIMARY_HEADER)
    assert (packet_id.code, seq_ctrl.code, length.code) == ("H", "H", "H")
    # (name, shift, width, constant) per sub-field, most significant first
    assert packet_id.bits == (("version", 13, 3, 0), ("packet_type", 12, 1, None), ("sec_hdr_flag", 11, 1, 1),
                              ("apid", 0, 11, None))
    assert seq_ctrl.bits == (("seq_flags", 14, 2, None), ("seq_count", 0, 14, None)) and length.bits == ()


@pytest.mark.parametrize("decl, message", [
    (cs.Struct("data" / cs.GreedyBytes), "GreedyBytes"),
    (cs.Struct("n" / cs.Int8ub, "text" / cs.PascalString(cs.Int8ub, "utf8")), "text"),
    (cs.Struct("x" / cs.Int16ul), "not big-endian"),
])
def test_what_has_no_fixed_layout_is_refused_by_name(decl, message) -> None:
    with pytest.raises(TypeError, match=message):
        codec.compile_struct(decl)


def test_a_prefixed_array_needs_its_count() -> None:
    with pytest.raises(TypeError, match="counts\\['valves'\\]"):
        codec.flatten(wire.DECLARATIONS[wire.MsgType.VALVES_REPLY])


def test_no_hand_typed_struct_format_is_left_in_the_codecs() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ("hal/wire.py", "firmware/telemetry/fastcodec.py", "firmware/telemetry/rawencode.py",
                 "tools/ground/capture.py"):
        text = (root / name).read_text()
        assert 'struct.Struct(">' not in text and "struct.Struct('>" not in text, name


def test_flash_refusal_nak_codes_are_defined_once() -> None:
    for refusal in wire.FlashRefusal:
        code = wire.nak_code_of(refusal)
        assert code.name == f"FLASH_{refusal.name}" and code == wire.FLASH_NAK_BASE + refusal
    # the emulator's refusal carries that code
    from hullwatch.sim.board_flash import FlashRefused

    assert FlashRefused(wire.FlashRefusal.BAD_SLOT, "slot 7").nak_code is wire.NakCode.FLASH_BAD_SLOT
