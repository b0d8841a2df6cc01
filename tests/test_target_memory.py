"""The memory of targets and reserved ids behind PostgreSQL's one-round-trip groups
(propsec/protocol/target_memory.py), on its own: what it hands out when groups interleave,
and how much it keeps. Its use by real requests is in test_write_path.py."""
from __future__ import annotations

import itertools

import pytest

from propsec.protocol import target_memory
from propsec.protocol.target_memory import ID_BLOCK, ID_BLOCK_MIN, ID_MAX_AGE, Memory


@pytest.fixture
def sequences(monkeypatch):
    """A stand-in for the refill's round trip: each table's ids count up from 1, and
    `during_refill` (when set) runs while the refill is out, as another group would."""
    counters: dict[str, itertools.count] = {}
    state = {"during_refill": None, "refills": [], "now": 1000.0}

    class Refill:
        def __init__(self, tables):
            self.tables = tables

        def first(self, cursor, **sizes):
            state["refills"].append({t: sizes[f"n{i}"] for i, t in enumerate(self.tables)})
            hook, state["during_refill"] = state["during_refill"], None
            if hook is not None:
                hook()
            return tuple([next(counters.setdefault(t, itertools.count(1)))
                          for _ in range(sizes[f"n{i}"])] for i, t in enumerate(self.tables))

        def all_ahead(self, cursor, **sizes):
            return [self.first(cursor, **sizes)]

    monkeypatch.setattr(target_memory, "_refill", Refill)
    monkeypatch.setattr(target_memory.time, "monotonic", lambda: state["now"])
    return state


def test_ids_are_never_short_when_another_group_takes_them_during_a_refill(sequences):
    memory = Memory()
    first = memory.take_ids(None, {"visits": 1})["visits"]
    left = ID_BLOCK_MIN - 1
    # This group needs a refill of alerts; while it is out, another group takes every
    # visit id left: the first must still get all it asked for, none handed out twice.
    other = {}
    sequences["during_refill"] = lambda: other.update(memory.take_ids(None, {"visits": left}))
    taken = memory.take_ids(None, {"alerts": 3, "visits": 5})
    assert len(taken["alerts"]) == 3 and len(taken["visits"]) == 5
    visits = first + other["visits"] + taken["visits"]
    assert len(visits) == len(set(visits)) == ID_BLOCK_MIN + 5
    assert [sorted(r) for r in sequences["refills"]] == [["visits"], ["alerts"], ["visits"]]


def test_ids_held_too_long_are_dropped_and_blocks_follow_the_pace(sequences):
    """An id is never older than ID_MAX_AGE when a row takes it (newest first still means
    newest, to within that), and a busy table gets larger blocks, a quiet one small ones."""
    memory = Memory()
    assert memory.take_ids(None, {"alerts": 2})["alerts"] == [1, 2]
    sequences["now"] += ID_MAX_AGE / 2
    assert memory.take_ids(None, {"alerts": 1})["alerts"] == [3]  # (still young)
    sequences["now"] += ID_MAX_AGE
    later = memory.take_ids(None, {"alerts": 1})["alerts"]
    assert later == [ID_BLOCK_MIN + 1]  # the rest of the first block was dropped
    for _ in range(40):  # busy: each refill takes twice what was used since the last
        memory.take_ids(None, {"alerts": 8})
    sizes = [r["alerts"] for r in sequences["refills"]]
    assert sizes[:2] == [ID_BLOCK_MIN, ID_BLOCK_MIN] and sizes[-1] > sizes[2] >= 2 * 8
    assert max(sizes) <= ID_BLOCK
    # a read that took a newer id from the sequence drops the older ones held
    memory.drop_ids(["alerts"])
    before = len(sequences["refills"])
    memory.take_ids(None, {"alerts": 1})
    assert len(sequences["refills"]) == before + 1


def test_what_it_remembers_is_bounded_and_can_be_forgotten(monkeypatch):
    monkeypatch.setattr(target_memory, "TARGETS", 3)
    memory = Memory()
    for property_id in range(1, 6):
        memory.remember(property_id, f"snapshot {property_id}", f"version {property_id}", {})
    assert memory.recall([(1, (), ())]) is None  # the least recently used went first
    assert [r.snapshot for r in memory.recall([(3, (), ()), (5, (), ())])] == [
        "snapshot 3", "snapshot 5"]
    memory.forget([5])
    assert memory.recall([(3, (), ()), (5, (), ())]) is None
    assert memory.recall([(3, (), ())]) is not None
