"""The JSON module Socket.IO packets are encoded and decoded with: orjson first, the
standard library wherever orjson refuses.

python-socketio and python-engineio take a `json` module with `dumps` and `loads`; the
standard one was a few percent of every round trip and most of a large reply's cost
(docs/performance.md, fix 7). orjson accepts less than the standard library: integers
beyond 64 bits, NaN and Infinity on input, lone surrogates in strings. For any value it
refuses, the standard library answers instead, so what decodes and what fails to decode is
exactly as before; only well-formed values take the fast path. Output differs only in
form: non-ASCII characters are written as UTF-8 rather than \\u escapes (the same JSON
text to any parser) and a non-finite float becomes null rather than the non-JSON `NaN`."""
from __future__ import annotations

import json as _stdlib

import orjson
from engineio import json as _engineio_json

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(obj, **kwargs) -> str:
    try:
        return orjson.dumps(obj, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        # Too large an integer, a lone surrogate, a type orjson does not know (bytes: the
        # packet layer then sends a binary packet), ...: the standard library decides.
        return _stdlib.dumps(obj, **kwargs)


def loads(s, **kwargs):
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        # Raises ValueError on malformed input, like python-engineio's own json module.
        return _engineio_json.loads(s, **kwargs)
