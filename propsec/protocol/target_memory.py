"""What a process remembers of the targets its PostgreSQL groups read, and the ids it holds
in reserve, so that a group of requests for targets seen before needs one round trip (its
COMMIT) instead of two.

A PostgreSQL group reads every member's target property, the rows its lookups find (is the
camera the property's, is the person on its allowed list) and the ids its new rows will have
in one statement before any member runs (`targets.prefetch`); with 8 writers in a closed
loop that round trip was an eighth of the cycle (docs/performance.md, eleventh round). The
devices that write all day write to the same properties again and again, and those rows
change seldom. So each process keeps the rows its groups read (with the version of each
property's row: its `xmin` and `ctid`), and the next group whose targets and lookups are
all remembered runs on them without asking, taking its new rows' ids from blocks reserved
beforehand.

What it guarantees:
- a group that ran on remembered rows commits only if they were still current: the first
  statement of its COMMIT round trip reads each remembered property's row version again,
  and a difference (or no row) raises SQLSTATE PS409 (`propsec_target_changed`, a
  migration), which aborts the transaction before any of its writes can commit. The group
  then runs again on rows read from the database, which replace what was remembered
  (group_commit.py). The comparison runs under READ COMMITTED at the COMMIT, later than
  the read it stands for would have run, so a remembered row is never older than a
  prefetched one would have been. A lookup needs no comparison of its own: whatever
  changes a row that a lookup reads at a property (an allowed user; a camera's id,
  property or type) gives that property's row a new version in the same transaction (the
  triggers of migration d8b3f5a1c726), as every UPDATE of the property itself does.
  Version, not contents: comparing one row version costs the database and the process far
  less than the md5 of every remembered row's text did (docs/performance.md, fifteenth
  round);
- a request refused on remembered rows (not allowed, not found, not the property's camera)
  is never answered from memory: it runs again on rows read from the database, since the
  refusal may rest on a row that changed;
- ids come from the same sequences, in blocks, so they are unique across every process. A
  block is never used for longer than `ID_MAX_AGE` (a quarter of a second) after it was
  taken: what is left is dropped, and the sequence moves on. So ids still follow the order
  in which rows were written, as the contract's "newest first" needs, to within that time
  (before, to within one group's round trips): two alerts on one property written less than
  a quarter of a second apart by different processes may list in either order. Within one
  process a read that takes ids from a sequence drops the ids held for that table, so its
  later rows never take older ones. Dropped and unused ids leave gaps, as rolled-back
  transactions always did.

Memory is per engine and per process, bounded (`TARGETS` properties, `LOOKUPS` remembered
lookups each), least recently used first out."""
from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ..models import Property
from ..sql import Prepared

CHANGED = "PS409"  # SQLSTATE of propsec_target_changed()
TARGETS = 10_000
LOOKUPS = 64
# Reserved ids: a refill takes twice what the table used since its last one (at least
# ID_BLOCK_MIN, at most ID_BLOCK), and ids held longer than ID_MAX_AGE seconds are dropped
# unused, so that an id is never older than that when a row takes it (see the docstring).
ID_BLOCK_MIN = 16
ID_BLOCK = 1024
ID_MAX_AGE = 0.25


def changed(exc: BaseException | None) -> bool:
    """Whether `exc` (or the error it was raised from) is the database saying a remembered
    row had changed."""
    while exc is not None:
        if isinstance(exc, DBAPIError) and getattr(exc.orig, "pgcode", None) == CHANGED:
            return True
        exc = exc.__cause__
    return False


class _Target:
    __slots__ = ("snapshot", "version", "lookups")

    def __init__(self, snapshot, version: str):
        self.snapshot, self.version = snapshot, version
        self.lookups: dict[tuple, object] = {}  # (lookup name, value) -> row or None


class Recalled:
    """One member's remembered target: what `prefetch` would have found, and the row version
    the COMMIT round trip compares."""

    __slots__ = ("property_id", "snapshot", "version", "looked_up")

    def __init__(self, property_id, snapshot, version, looked_up):
        self.property_id, self.snapshot, self.version = property_id, snapshot, version
        self.looked_up = looked_up


class Memory:
    """One engine's remembered targets and reserved ids (thread-safe: in the threading mode
    two groups can be at the database at once)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._targets: OrderedDict[int, _Target] = OrderedDict()
        self._ids: dict[str, _Pool] = {}

    def recall(self, asked: list) -> list[Recalled] | None:
        """Every asked (property id, reserves, lookups) from memory, or None when any part of
        any of them is not remembered (the group then reads them all)."""
        out = []
        with self._lock:
            for property_id, _, pairs in asked:
                target = self._targets.get(property_id)
                if target is None:
                    return None
                looked_up = {}
                for lookup, value in pairs:
                    key = (lookup.name, value)
                    if key not in target.lookups:
                        return None
                    looked_up[lookup.name] = (value, target.lookups[key])
                out.append(Recalled(property_id, target.snapshot, target.version, looked_up))
            for recalled in out:
                self._targets.move_to_end(recalled.property_id)
        return out

    def remember(self, property_id: int, snapshot, version: str, lookups: dict) -> None:
        """A row just read, at row version `version` (`lookups`: {(lookup name, value): row
        or None}, read in the same statement: they belong to that version)."""
        with self._lock:
            target = self._targets.get(property_id)
            if target is None or target.version != version:
                target = self._targets[property_id] = _Target(snapshot, version)
            if len(target.lookups) + len(lookups) > LOOKUPS:
                target.lookups.clear()
            target.lookups.update(lookups)
            self._targets.move_to_end(property_id)
            while len(self._targets) > TARGETS:
                self._targets.popitem(last=False)

    def forget(self, property_ids) -> None:
        with self._lock:
            for property_id in property_ids:
                self._targets.pop(property_id, None)

    def drop_ids(self, tables) -> None:
        """Forget the ids held for `tables`: a read has just taken newer ones from their
        sequences, and this process's rows should not go back to older ids after it."""
        with self._lock:
            for table in tables:
                pool = self._ids.get(table)
                if pool is not None:
                    pool.ids.clear()

    def take_ids(self, cursor, needs: dict[str, int]) -> dict[str, list[int]]:
        """`needs[table]` reserved ids of each table, in increasing order. Blocks that are
        short or too old are refilled first, every table's in one round trip. Checked again
        after every refill: while one group waits for its refill, another may take what was
        there."""
        while True:
            with self._lock:
                now = time.monotonic()
                for table in needs:
                    pool = self._ids.setdefault(table, _Pool())
                    if now - pool.taken_at > ID_MAX_AGE:
                        pool.ids.clear()
                short = {t: max(n, ID_BLOCK_MIN, min(ID_BLOCK, 2 * self._ids[t].used))
                         for t, n in needs.items() if len(self._ids[t].ids) < n}
                if not short:
                    taken = {}
                    for table, n in needs.items():
                        pool = self._ids[table]
                        taken[table], pool.ids[:n] = pool.ids[:n], []
                        pool.used += n
                    return taken
            tables = tuple(sorted(short))
            [blocks] = _refill(tables).all_ahead(cursor, **{f"n{i}": short[t]
                                                           for i, t in enumerate(tables)})
            with self._lock:
                now = time.monotonic()
                for table, block in zip(tables, blocks):
                    pool = self._ids[table]
                    pool.ids[:] = block  # (anything left was taken earlier: dropped)
                    pool.taken_at, pool.used = now, 0


class _Pool:
    __slots__ = ("ids", "taken_at", "used")

    def __init__(self):
        self.ids: list[int] = []
        self.taken_at = float("-inf")
        self.used = 0


_MEMORIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MEMORIES_LOCK = threading.Lock()


def of(engine) -> Memory:
    memory = _MEMORIES.get(engine)
    if memory is None:
        with _MEMORIES_LOCK:
            memory = _MEMORIES.setdefault(engine, Memory())
    return memory


_REFILLS: dict[tuple, Prepared] = {}


def _refill(tables: tuple[str, ...]) -> Prepared:
    found = _REFILLS.get(tables)
    if found is None:
        arrays = ", ".join(f"ARRAY(SELECT nextval('{name}_id_seq') "
                           f"FROM generate_series(1, CAST(:n{i} AS integer)))"
                           for i, name in enumerate(tables))
        found = _REFILLS[tables] = Prepared(text(f"SELECT {arrays}"))
    return found


# The SQL both statements share, so that what the check compares is exactly what the read
# remembered: the version of the target's row `p` (NULL for no row), the transaction that
# wrote it and where it lies. An UPDATE by another transaction writes a new row version,
# with that transaction's id and at a new place. `xmin` alone is a 32-bit id that comes
# round again after about four billion transactions; a stale row would then also have to
# lie at the very same place. (A row that only moved, by VACUUM FULL or CLUSTER, reads as
# changed: read again, no harm.) Lookup n's row is `x{n}`, a LATERAL join on the unnested
# `m.id` and `m.l{n}` (the value it was asked for).
TARGET_VERSION = "CAST(p.xmin AS text) || ' ' || CAST(p.ctid AS text)"


def lookup_joins(engine, lookups) -> str:
    return "".join(f" LEFT JOIN LATERAL ({lookup.lateral(engine, f'l{n}')}) AS x{n} ON true"
                   for n, lookup in enumerate(lookups))


def confirm(cursor, recalled: list[Recalled]) -> None:
    """Queue the statement that has the database compare the row version of every
    remembered target of `recalled` with its own (it travels with the group's next round
    trip, at the latest its COMMIT). A property asked for by several members is compared
    once."""
    versions = {r.property_id: r.version for r in recalled}
    _CHECK.run(cursor, ids=list(versions), v=list(versions.values()))


_CHECK = Prepared(text(
    f"SELECT propsec_target_changed(m.id) "
    f"FROM unnest(CAST(:ids AS bigint[]), CAST(:v AS text[])) AS m(id, v) "
    f"LEFT JOIN {Property.__table__.name} p ON p.id = m.id "
    f"WHERE {TARGET_VERSION} IS DISTINCT FROM m.v"))
