"""The payload codec's fast path (msgspec) gives exactly what the reference codec (the standard
library's json, configured as jsonvalues says) gives, byte for byte, value for value."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_operator.transformers.jsonvalues import MISSING, decode, encode

REFERENCE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                     check_circular=False)


def reference_encode(value: Any) -> bytes:
    return REFERENCE_ENCODER.encode(value).encode("utf-8")


def reference_decode(data: bytes) -> Any:
    def reject(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.JSONDecoder(parse_constant=reject).decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return MISSING


# Every binary exponent a double has, so every float form (fixed, exponent, subnormal) comes up.
FLOATS = st.builds(lambda mantissa, exponent, negative: (-1 if negative else 1) * math.ldexp(1 + mantissa, exponent),
                   st.floats(min_value=0, max_value=1, exclude_max=True), st.integers(-1074, 1022), st.booleans()
                   ).filter(math.isfinite) | st.floats(allow_nan=False, allow_infinity=False)
# Strings with the characters that need escaping, non-ASCII and text that looks like a number.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["1e5", ":1e5", "[0.00001", "null", "a,12345678901234567890", "\u2028", "\x7f", "\x00", "\"\\/"])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | FLOATS | TEXT)
VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(TEXT, children, max_size=4), max_leaves=25)


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_encode_writes_the_reference_bytes(value: Any) -> None:
    assert encode(value) == reference_encode(value)


@settings(max_examples=500, deadline=None)
@given(FLOATS)
def test_every_float_is_written_as_python_writes_it(value: float) -> None:
    assert encode(value) == reference_encode(value)
    assert encode([value]) == reference_encode([value])
    assert encode({"k": value}) == reference_encode({"k": value})


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_doubles_from_any_bit_pattern_are_written_as_python_writes_them(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if math.isfinite(value):
        assert encode({"v": [value, -value]}) == reference_encode({"v": [value, -value]})


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_decode_reads_what_the_reference_reads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(value, indent=1)):
        data = text.encode("utf-8", "surrogatepass")
        decoded = decode(data)
        assert decoded == reference_decode(data)
        assert encode(decoded) == reference_encode(reference_decode(data))


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?\Z"))
def test_number_literals_read_as_the_reference_reads_them(literal: str) -> None:
    data = f'{{"n":{literal}}}'.encode()
    decoded, expected = decode(data), reference_decode(data)
    assert decoded == expected and type(decoded["n"]) is type(expected["n"])


@pytest.mark.parametrize("data", [b"[1e400]", b'"\\ud800"', b"[NaN]", b"\xef\xbb\xbf{}", b'{"a":"\xff"}',
                                  b'"\x01"', b"[" * 100_000 + b"]" * 100_000, b"{} x", b"", b" ", b"01",
                                  b'{"a":1,"a":2}', b"-0", b"1e-400"])
def test_the_edges_read_as_the_reference_reads_them(data: bytes) -> None:
    decoded = decode(data)
    expected = reference_decode(data)
    assert decoded is expected if expected is MISSING else decoded == expected


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, {"a": [math.inf]},
                                   {"none": None, "nan": math.nan}, [None, -math.inf]])
def test_non_finite_floats_are_refused_as_the_reference_refuses_them(value: Any) -> None:
    with pytest.raises(ValueError):
        encode(value)


@pytest.mark.parametrize("value", ["\ud800", {"a": "\udfff"}])
def test_lone_surrogates_are_refused_as_the_reference_refuses_them(value: Any) -> None:
    with pytest.raises(UnicodeEncodeError):
        encode(value)


@pytest.mark.parametrize("value", [{1: "a"}, {True: 1}, {None: 1}, (1, 2), {"a": None}])
def test_what_msgspec_writes_otherwise_or_not_at_all_goes_the_reference_way(value: Any) -> None:
    assert encode(value) == reference_encode(value)
