"""Client websocket frames are unmasked by propsec's integer XOR exactly as RFC 6455 and
eventlet's own byte loop do (every websocket test against a real eventlet server also runs
through it)."""
from __future__ import annotations

import os
import random

import pytest

from propsec.protocol import unmasking

websocket = pytest.importorskip("eventlet.websocket")
EVENTLET_UNMASK = websocket.RFC6455WebSocket.__dict__["_apply_mask"].__func__ \
    if websocket.RFC6455WebSocket._apply_mask is not unmasking.unmask else None


def _reference(data, mask, length, offset):
    """RFC 6455 section 5.3, spelled out."""
    return bytes(data[i] ^ mask[(offset + i) % 4] for i in range(length))


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 8, 63, 64, 125, 126, 1000, 70_000])
def test_every_length_and_offset_unmasks_like_the_rfc(length):
    rng = random.Random(length)
    data = os.urandom(length)
    mask = [rng.randrange(256) for _ in range(4)]
    for offset in range(0, 9):
        expected = _reference(data, mask, length, offset)
        assert unmasking.unmask(data, mask, length, offset) == expected
        assert unmasking.unmask(bytearray(data), bytes(mask), length, offset) == expected
        if EVENTLET_UNMASK is not None and length < 2000:
            assert EVENTLET_UNMASK(data, mask, length, offset) == expected


def test_a_shorter_length_reads_only_the_front():
    data = bytes(range(20))
    assert unmasking.unmask(data, [9, 9, 9, 9], 5) == bytes(b ^ 9 for b in range(5))
    assert unmasking.unmask(data, [1, 2, 3, 4]) == _reference(data, [1, 2, 3, 4], 20, 0)


def test_masking_twice_gives_the_frame_back():
    data = os.urandom(333)
    mask = [0xA5, 0x01, 0xFF, 0x10]
    assert unmasking.unmask(unmasking.unmask(data, mask, None, 3), mask, None, 3) == data
