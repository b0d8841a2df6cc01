"""protocol/wirejson.py must accept, refuse and produce exactly what the standard JSON
module (python-engineio's flavour of it) would: it is only allowed to be faster."""
from __future__ import annotations

import json
import math

import pytest
from engineio import json as engineio_json
from hypothesis import given, settings
from hypothesis import strategies as st

from propsec.protocol import wirejson

scalars = (st.none() | st.booleans() | st.integers(min_value=-10**40, max_value=10**40)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


def stdlib_loads(text):
    try:
        return ("ok", engineio_json.loads(text))
    except (ValueError, RecursionError) as exc:
        return ("refused", type(exc))


def wire_loads(text):
    try:
        return ("ok", wirejson.loads(text))
    except (ValueError, RecursionError) as exc:
        return ("refused", type(exc))


def same(a, b) -> bool:
    """Equal, with NaN equal to itself (json.loads('NaN') is a float NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(values)
def test_encoding_means_the_same_json_as_the_standard_library(value):
    assert json.loads(wirejson.dumps(value, separators=(",", ":"))) == \
        json.loads(json.dumps(value, separators=(",", ":")))


@settings(max_examples=300, deadline=None)
@given(values)
def test_decoding_well_formed_json_gives_the_same_values(value):
    text = json.dumps(value)
    assert same(wire_loads(text), stdlib_loads(text))


EDGE_CASES = [
    '"\\ud800"',                    # a lone surrogate: orjson refuses, stdlib accepts
    '[NaN, Infinity, -Infinity]',   # not JSON, but accepted by the standard library
    "1" * 30,                       # beyond 64 bits: orjson refuses, stdlib accepts
    "1" * 101,                      # beyond python-engineio's limit: refused by both
    '{"a": 1, "a": 2}',             # duplicate keys: the last wins in both
    '[' * 5000 + ']' * 5000,        # deeper than either parser goes
    '{"a": 1',                      # truncated
    '',
    '"\u00e9\u4e2d\U0001f600"',
    '1.0000000000000002',
    '-0.0',
    '1e400',                        # overflows to inf in the standard library
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_decoding_edge_cases_matches_the_standard_library(text):
    assert same(wire_loads(text), stdlib_loads(text))


@pytest.mark.parametrize("text", EDGE_CASES[:6] + ['{"method": "emit", "data": [1, "x"]}'])
def test_decoding_bytes_matches_the_standard_library(text):
    """The Redis message queue hands its messages over as bytes."""
    raw = text.encode("utf-8", "surrogatepass")
    assert same(wire_loads(raw), stdlib_loads(raw))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[]{}\":,0123456789.eE+-truefalsnNIfinity \\ud800", max_size=40))
def test_decoding_any_text_accepts_and_refuses_what_the_standard_library_does(text):
    assert same(wire_loads(text), stdlib_loads(text))


def test_values_orjson_refuses_are_encoded_by_the_standard_library():
    for value in (10**30, "\ud800", {"n": -(10**25)}):
        assert wirejson.dumps(value) == json.dumps(value)


def test_bytes_are_still_refused_so_binary_packets_keep_working():
    with pytest.raises(TypeError):
        wirejson.dumps({"blob": b"\x00\x01"})
