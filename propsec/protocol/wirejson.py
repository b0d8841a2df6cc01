"""The JSON module Socket.IO packets are encoded and decoded with: orjson first, the
standard library wherever orjson refuses or would read differently.

python-socketio and python-engineio take a `json` module with `dumps` and `loads`; the
standard one was a few percent of every round trip and most of a large reply's cost
(docs/performance.md, fix 7). orjson accepts less than the standard library (NaN and
Infinity on input, lone surrogates, integers beyond 64 bits) and reads some integers just
outside 64 bits as floats. For any value it refuses, and for any text holding a run of 19
or more digits, the standard library answers instead, so what decodes, to what, and what
fails to decode is exactly as before (tests/test_wirejson.py). Output differs only in
form: non-ASCII characters are written as UTF-8 rather than \\u escapes (the same JSON
text to any parser) and a non-finite float becomes null rather than the non-JSON `NaN`."""
from __future__ import annotations

import json as _stdlib
import re

import orjson
from engineio import json as _engineio_json

_OPTIONS = orjson.OPT_NON_STR_KEYS
# A number this long may be outside 64 bits, where orjson's reading differs.
_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")  # (the Redis queue's messages arrive as bytes)


def dumps(obj, **kwargs) -> str:
    try:
        return orjson.dumps(obj, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        # Too large an integer, a lone surrogate, a type orjson does not know (bytes: the
        # packet layer then sends a binary packet), ...: the standard library decides.
        return _stdlib.dumps(obj, **kwargs)


def loads(s, **kwargs):
    long_number = _LONG_NUMBER if isinstance(s, str) else _LONG_NUMBER_BYTES
    if not long_number.search(s):
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            pass
    # python-engineio's own json module: ValueError on malformed input, no huge integers.
    return _engineio_json.loads(s, **kwargs)
