"""Group commit: the changing requests that arrive together share one transaction and one
commit, on SQLite and on PostgreSQL; and SQLite's writers take turns.

SQLite has one writer at a time, and a writer that waits for another inside the driver
blocks the whole process under eventlet or gevent, so the changing requests of a process
take turns (`TURN`). PostgreSQL writers run side by side.

Why group. A SQLite commit is mostly writing every page the transaction changed to the
write-ahead log, and the writes of a busy process change the same few pages (the last leaf
of each table and index) over and over: eight requests in one transaction cost about half
as much each as eight transactions (docs/performance.md, W16). On PostgreSQL each request
paid for its own round trips (BEGIN with the target's read, COMMIT with the writes), each
a wake-up of a server process and a pass through the event loop, and for its own WAL
flush at commit: a group reads every member's target in one statement (with the ids they
reserve, `targets.prefetch`) and sends everyone's writes with one COMMIT (W19); when the
process remembers every target and lookup of a group, it skips that read and the database
confirms the remembered rows at the COMMIT instead (W35, target_memory.py).

How. The requests that run prepared statements only (their declarations say `prepared`:
the alerts, visits and entries that devices send all day) are gathered: the first to
arrive lets the requests that are ready to run join it (it passes control to the event
loop while others keep joining, before any transaction is open), then runs them one after
another in one transaction (on PostgreSQL each inside its own SAVEPOINT) and commits once
for all. On SQLite one group runs at a time (`TURN`); on PostgreSQL the next group gathers
while the last one is still out on the network. What it guarantees:

- no request is answered before the commit that holds its changes has succeeded; when that
  commit fails, every request in the group gets the error and none of their changes is kept;
- a request that fails is rolled back alone: on SQLite nothing is left to undo when it
  failed before changing a row, and otherwise the transaction starts again without it; on
  PostgreSQL its statements are dropped before they are sent, or undone to its savepoint.
  When the database refuses the group's transaction instead (SQLite rolls it back on a
  full disk or an I/O error; on PostgreSQL a statement sent with others fails and nobody
  can tell whose it was), SQLite's requests before it fail too and the ones after start a
  new transaction; PostgreSQL's run again one by one, each in a transaction of its own, so
  each gets the answer it would have had alone;
- the log's order holds: members' event rows are written in one transaction, in turn, and
  the tailer sees none of them before the commit (on PostgreSQL a group's events take
  increasing ids of its one transaction id, docs/architecture.md);
- no transaction is open while the gathering yields: nothing else in the process can find
  the database locked by a group that waits for more members.

What it asks of the queries it groups: on PostgreSQL a member's target and lookups are read
when its group begins, before the members ahead of it have run, so no prepared changing
query may read what another one writes (today they read properties, cameras and allowed
users, and write alerts, visits, entries, their audit entries and events)."""
from __future__ import annotations

import contextvars
import threading
from typing import Callable

from sqlalchemy.exc import DBAPIError

from .. import sql
from ..signals import signal
from ..extensions import db, socketio
from ..ops import metrics
from .. import pipeline as event_pipeline
from . import target_memory, targets

# One writer at a time in this process, on SQLite (groups and every other changing request).
TURN = threading.Lock()
# A group never grows past this many requests (each waits for the whole group's commit).
MAX_GROUP = 64
# How many times the first request of a group passes control to the event loop while the
# others gather (at least, at most), by database. On PostgreSQL longer gathering made larger
# groups and spent less CPU a write on both sides: with 8 writers 2-4 passes gave ~10 %
# fewer writes a second than 3-6, and 3-6 ~9 % fewer than 4-8. On SQLite, where the process
# itself is the limit, 4-8 cost ~7 % with 32 writers: it keeps 2-4 (docs/performance.md,
# W30). Alone, a pass with nothing else to run costs microseconds.
PASSES = {"postgresql": (4, 8), "sqlite": (2, 4)}


class _Member:
    __slots__ = ("work", "wanted", "context", "done", "result", "error")

    def __init__(self, work: Callable, wanted: targets.Wanted | None):
        self.work = work
        self.wanted = wanted
        self.context = contextvars.copy_context()
        self.done = signal()
        self.result = None
        self.error: BaseException | None = None


class CommitGroups:
    """Gathers prepared changing requests into shared transactions (see the module's text).
    `gather` is the pause that lets ready requests join (tests pass their own)."""

    def __init__(self, gather: Callable[[], None] | None = None):
        self._gather = gather or self._gather_ready
        self._mutex = threading.Lock()
        self._queue: list[_Member] = []
        self._gathering = False

    def _gather_ready(self) -> None:
        """Let the requests that are ready join: pass control to the event loop until a pass
        brings nobody new: at least two (the first runs the requests already read, the
        next ones read the sockets that became ready meanwhile), more on PostgreSQL
        (`PASSES`)."""
        fewest, most = PASSES.get(db.engine.dialect.name, PASSES["sqlite"])
        for passes in range(1, most + 1):
            waiting = len(self._queue)
            socketio.sleep(0)
            if passes >= fewest and len(self._queue) == waiting:
                return

    def run(self, work: Callable[[], object], wanted: targets.Wanted | None = None):
        """Run `work()` in a transaction shared with the requests that arrive with it;
        return its result once the transaction has committed, or raise its error (or the
        commit's). `wanted`: what its target read would ask for (property id, reserved
        tables, lookups), read for the whole group at once on PostgreSQL."""
        member = _Member(work, wanted)
        with self._mutex:
            self._queue.append(member)
            leads = not self._gathering
            self._gathering = True
        if leads:
            try:
                self._gather()
            finally:
                self._lead()
        else:
            member.done.wait()
        if member.error is not None:
            raise member.error
        return member.result

    def _take(self) -> tuple[list[_Member], bool]:
        """The next group, and whether more are waiting. While more wait this leader goes
        on; otherwise the next arrival leads and gathers at once (on PostgreSQL while this
        group is on its way; on SQLite it then waits for its `TURN`)."""
        with self._mutex:
            batch = self._queue[:MAX_GROUP]
            del self._queue[:MAX_GROUP]
            more = self._gathering = bool(self._queue)
        return batch, more

    def _lead(self) -> None:
        """Commit what has gathered, group by group, until nobody is left waiting."""
        on_sqlite = db.engine.dialect.name == "sqlite"
        more = True
        while more:
            if on_sqlite:
                with TURN:
                    batch, more = self._take()
                    _commit_sqlite(batch)
            else:
                batch, more = self._take()
                _commit_postgresql(batch)


def _run_each(tx: sql.OwnTransaction, batch: list[_Member], found: list, undo,
              savepoints: bool) -> list[_Member]:
    """Run every member's work in `tx`, each inside its own savepoint when `savepoints`;
    `undo(tx, exc, mark, kept)` takes back a failed member's part and returns who is still
    kept (None: nothing to take back, a member alone is undone by closing `tx`). Returns the
    members whose changes the transaction holds."""
    kept: list[_Member] = []
    for member, target in zip(batch, found):
        mark = tx.mark()
        if savepoints:
            tx.savepoint()
        try:
            member.result = member.context.run(_as_member, member.work, tx, target)
        except Exception as exc:  # noqa: BLE001 - handed to its own request
            if undo is not None:
                kept = undo(tx, exc, mark, kept)
            member.error = exc
            continue
        if savepoints:
            tx.release_savepoint()
        kept.append(member)
    return kept


def _commit_sqlite(batch: list[_Member]) -> None:
    """Run every member's work in one transaction and commit it; always wakes them all."""
    try:
        tx = sql.OwnTransaction(db.engine)
        try:
            tx.begin()
            if _run_each(tx, batch, [None] * len(batch),
                         _undo_sqlite if len(batch) > 1 else None, savepoints=False):
                tx.commit()
            metrics.commit_group.observe(len(batch))
        finally:
            tx.close()
    except BaseException as exc:  # the connection, BEGIN or COMMIT failed: all of them
        _fail_all(batch, exc)
        if not isinstance(exc, Exception):
            raise
    finally:
        for member in batch:
            member.done.set()


def _undo_sqlite(tx: sql.OwnTransaction, exc: Exception, mark, kept: list) -> list:
    """SQLite's members run without savepoints (two statements fewer each): a member that
    failed before it changed a row leaves nothing to undo (a failing statement undoes
    itself), which is how requests fail almost always (not found, not allowed, invalid).
    One that changed rows and then failed takes the whole transaction back, and the members
    kept so far run again in a new one. When SQLite has dropped the transaction itself (a
    full disk, an I/O error), the members before it lose their changes: they fail too."""
    if not tx.in_transaction():
        for earlier in kept:
            earlier.error = exc
        tx.begin()
        return []
    if tx.mark() == mark:
        return kept
    tx.restart()
    return _run_each(tx, kept, [None] * len(kept), _undo_sqlite, savepoints=False)


class _Split(Exception):
    """PostgreSQL refused a statement of a group's transaction: whose is not known."""


def _refused(exc: BaseException) -> bool:
    """The server answered a round trip with an error (the connection is fine, the
    transaction aborted, nothing of it committed) rather than the connection failing."""
    return (isinstance(exc, DBAPIError) and not exc.connection_invalidated
            and getattr(exc.orig, "pgcode", None) is not None)


def _undo_postgresql(tx: sql.OwnTransaction, exc: Exception, mark, kept: list) -> list:
    if _refused(exc):
        raise _Split from exc
    if not tx.cursor.unsend(mark):
        tx.rollback_to_savepoint()
    return kept


def _commit_postgresql(batch: list[_Member], recall: bool = True) -> None:
    """One transaction for the group: one statement reads every member's target (or they
    come from the process's memory, `recall`, and the database confirms them at the
    COMMIT), members' statements travel with the next round trip that one of them needs, or
    with COMMIT. Always wakes them all, after running again those a refused transaction left
    unanswered and those whose answer rested on remembered rows that may have changed (the
    rerun reads their targets afresh, and memory keeps what it read)."""
    again: list[_Member] = []  # each alone, in a transaction of its own
    afresh: list[_Member] = []  # again together, on targets read from the database
    recalled, failure = False, None
    try:
        tx = sql.OwnTransaction(db.engine)
        try:
            found, recalled = targets.prefetch(tx.cursor, [m.wanted for m in batch], recall)
            alone = len(batch) == 1  # (nobody else's work to keep: no savepoint)
            if _run_each(tx, batch, found, None if alone else _undo_postgresql,
                         savepoints=not alone):
                event_pipeline.pipeline().commit_sent()
                tx.commit()
            metrics.commit_group.observe(len(batch))
        finally:
            tx.close()
    except Exception as exc:  # noqa: BLE001 - handed to the members below
        failure = exc
    except BaseException as exc:  # the process is stopping: wake everyone with it
        _fail_all(batch, exc)
        for member in batch:
            member.done.set()
        raise
    if recalled:  # a refusal may rest on a remembered row that changed: ask again
        afresh = (batch if target_memory.changed(failure)
                  else [m for m in batch if m.error is not None])
    if failure is not None and afresh is not batch:
        if len(batch) > 1 and (isinstance(failure, _Split) or _refused(failure)):
            again = [m for m in batch if m.error is None]
        else:
            _fail_all(batch, failure)
    metrics.child(metrics.group_targets, "memory" if recalled else "database").inc()
    for member in batch:
        if member not in again and member not in afresh:
            member.done.set()
    if afresh:
        if afresh is batch:
            metrics.child(metrics.group_targets, "changed").inc()
        for member in afresh:
            member.result = member.error = None
        _commit_postgresql(afresh, recall=False)
    for member in again:
        member.result = None
        _commit_postgresql([member])


def _fail_all(batch: list[_Member], exc: BaseException) -> None:
    for member in batch:
        if member.error is None:  # kept, or not reached
            member.error = exc


def _as_member(work: Callable, tx: sql.OwnTransaction, target: tuple | None):
    """One member's work, in its own request's context, on the group's transaction (and on
    PostgreSQL with its target read already)."""
    with sql.shared(tx), targets.prefetched(target):
        result = work()
    tx.refuse_session()
    return result


groups = CommitGroups()
