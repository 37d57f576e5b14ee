"""Helpers to annotate construct declarations with units and describe them for the dictionary.

Every binary layout of the telemetry is declared once with construct (packets.py). The per-cycle
and bulk paths need ``struct.Struct`` formats instead (construct costs about 100 us per packet,
struct 1-2 us); the codec compiler (:mod:`hullwatch.hal.codec`: :func:`flatten`,
:func:`struct_format`, :func:`field_offsets`, re-exported here) derives them from the declarations,
so the fast codecs are never typed by hand a second time.
"""

from __future__ import annotations

import construct as cs

from ...hal.codec import FlatField, compile_struct, field_offsets, flatten, struct_format

__all__ = ["FlatField", "compile_struct", "describe", "field", "field_offsets", "flatten", "struct_format",
           "subfields"]


def field(name: str, subcon: cs.Construct, unit: str = "", doc: str = "") -> cs.Renamed:
    """``name / subcon`` with a unit ("Pa", "K", "s", "" for a count or code) and a description.

    The unit and description are what ``hullwatch dictionary`` exports for the field.
    """
    renamed = cs.Renamed(subcon, newname=name, newdocs=doc)
    renamed.unit = unit  # construct objects accept attributes; the dictionary reads it back
    return renamed


def describe(con: cs.Construct) -> str:
    """A short type name for the dictionary: ``u16``, ``f64``, ``u8[n_pressure]``, ``ascii[16]``..."""
    while isinstance(con, (cs.Renamed, cs.Rebuild, cs.Const)):
        con = con.subcon
    if isinstance(con, cs.FormatField):
        code = con.fmtstr[1:]
        return {
            "B": "u8", "H": "u16", "I": "u32", "L": "u32", "Q": "u64", "b": "i8", "h": "i16", "i": "i32", "l": "i32",
            "q": "i64", "f": "f32", "d": "f64",
        }[code]
    if isinstance(con, cs.Array):
        count = con.count
        count_s = str(count).replace("this['", "").replace("']", "") if callable(count) else str(count)
        return f"{describe(con.subcon)}[{count_s}]"
    if isinstance(con, cs.BitsInteger):
        return f"u{con.length} (bits)"
    if con is cs.Flag:
        return "bool (1 bit)"
    if isinstance(con, cs.StringEncoded):
        inner = con.subcon
        if isinstance(inner, cs.FixedSized):
            return f"{con.encoding}[{inner.length}] (NUL padded)"
        if isinstance(inner, cs.Prefixed):  # the prefix's own width (u8 in 20/x, u16 elsewhere)
            return f"{con.encoding} text, {describe(inner.lengthfield)} byte length prefix"
        return f"{con.encoding} text"
    if isinstance(con, cs.Adapter):
        return describe(con.subcon)
    if isinstance(con, cs.Struct):
        return "struct"
    if isinstance(con, cs.Transformed):
        return f"u{con.sizeof() * 8} bit fields"
    return type(con).__name__


def subfields(con: cs.Construct) -> list[cs.Renamed]:
    """The named sub-fields of a Struct, BitStruct, or an Array of Structs (else empty)."""
    while isinstance(con, (cs.Renamed, cs.Array, cs.Transformed)) and not isinstance(con, cs.Struct):
        con = con.subcon
    if isinstance(con, cs.Struct):
        return [s for s in con.subcons if isinstance(s, cs.Renamed)]
    return []
