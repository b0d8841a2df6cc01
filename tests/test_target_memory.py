"""The memory of targets and reserved ids behind PostgreSQL's one-round-trip groups
(propsec/protocol/target_memory.py), on its own: what it hands out when groups interleave,
and how much it keeps. Its use by real requests is in test_write_path.py."""
from __future__ import annotations

import itertools

import pytest

from propsec.protocol import target_memory
from propsec.protocol.target_memory import ID_BLOCK, Memory


@pytest.fixture
def sequences(monkeypatch):
    """A stand-in for the refill's round trip: each table's ids count up from 1, and
    `during_refill` (when set) runs while the refill is out, as another group would."""
    counters: dict[str, itertools.count] = {}
    state = {"during_refill": None, "refills": 0}

    class Refill:
        def __init__(self, tables):
            self.tables = tables

        def first(self, cursor):
            state["refills"] += 1
            hook, state["during_refill"] = state["during_refill"], None
            if hook is not None:
                hook()
            return tuple([next(counters.setdefault(t, itertools.count(1)))
                          for _ in range(ID_BLOCK)] for t in self.tables)

    monkeypatch.setattr(target_memory, "_refill", Refill)
    return state


def test_ids_are_never_short_when_another_group_takes_them_during_a_refill(sequences):
    memory = Memory()
    first = memory.take_ids(None, {"visits": 1})["visits"]
    # This group needs a refill of alerts; while it is out, another group takes every
    # visit id left: the first must still get all it asked for, none handed out twice.
    other = {}
    sequences["during_refill"] = lambda: other.update(
        memory.take_ids(None, {"visits": ID_BLOCK - 1}))
    taken = memory.take_ids(None, {"alerts": 3, "visits": 5})
    assert len(taken["alerts"]) == 3 and len(taken["visits"]) == 5
    visits = first + other["visits"] + taken["visits"]
    assert len(visits) == len(set(visits)) == ID_BLOCK + 5
    assert sequences["refills"] == 3  # visits, alerts, and visits again


def test_what_it_remembers_is_bounded_and_can_be_forgotten(monkeypatch):
    monkeypatch.setattr(target_memory, "TARGETS", 3)
    memory = Memory()
    for property_id in range(1, 6):
        memory.remember(property_id, f"snapshot {property_id}", f"digest {property_id}", {})
    assert memory.recall([(1, (), ())]) is None  # the least recently used went first
    assert [r.snapshot for r in memory.recall([(3, (), ()), (5, (), ())])] == [
        "snapshot 3", "snapshot 5"]
    memory.forget([5])
    assert memory.recall([(3, (), ()), (5, (), ())]) is None
    assert memory.recall([(3, (), ())]) is not None
