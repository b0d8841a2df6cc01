"""Changing requests on SQLite: one writer at a time, and the requests that arrive together
committed together.

SQLite has one writer at a time, and a writer that waits for another inside the driver
blocks the whole process under eventlet or gevent, so the changing requests of a process
take turns (`TURN`). PostgreSQL writers run side by side; nothing here applies to them.

Group commit. Most of a SQLite commit is writing every page the transaction changed to the
write-ahead log, and the writes of a busy process change the same few pages (the last leaf
of each table and index) over and over: eight requests in one transaction cost about half
as much each as eight transactions (docs/performance.md, W16). So the requests that run
prepared statements only (their declarations say `prepared`: the alerts, visits and
entries that devices send all day) are gathered: the first to arrive lets the requests that
are ready to run join it (it passes control to the event loop while others keep joining,
before any transaction is open), then runs them one after another in one transaction, each
inside its own SAVEPOINT, and commits once for all. What it guarantees:

- no request is answered before the commit that holds its changes has succeeded; when that
  commit fails, every request in the group gets the error and none of their changes is kept;
- a request that fails is rolled back alone (to its savepoint); when SQLite has rolled back
  the whole transaction instead (it does so on a full disk or an I/O error), the requests
  before it in the group fail too, and the ones after it start a new transaction;
- the log's order holds: the members run one after another on one connection, so their
  event rows take increasing ids, and the tailer sees none of them before the commit;
- no transaction is open while the gathering yields: nothing else in the process can find
  the database locked by a group that waits for more members."""
from __future__ import annotations

import contextvars
import threading
from typing import Callable

from .. import sql
from ..extensions import db, socketio
from ..ops import metrics

# One writer at a time in this process (groups and every other changing request).
TURN = threading.Lock()
# A group never grows past this many requests (each waits for the whole group's commit).
MAX_GROUP = 64
# How many times the first request of a group yields at most while the others gather.
MAX_PASSES = 4


class _Member:
    __slots__ = ("work", "context", "done", "result", "error")

    def __init__(self, work: Callable):
        self.work = work
        self.context = contextvars.copy_context()
        self.done = threading.Event()
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
        brings nobody new. At least two passes (the first runs the requests already read,
        the second reads the sockets that became ready meanwhile), at most `MAX_PASSES`."""
        for passes in range(1, MAX_PASSES + 1):
            waiting = len(self._queue)
            socketio.sleep(0)
            if passes >= 2 and len(self._queue) == waiting:
                return

    def run(self, work: Callable[[], object]):
        """Run `work()` in a transaction shared with the requests that arrive with it;
        return its result once the transaction has committed, or raise its error (or the
        commit's)."""
        member = _Member(work)
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

    def _lead(self) -> None:
        """Commit what has gathered, group by group, until nobody is left waiting."""
        more = True
        while more:
            with TURN:
                with self._mutex:
                    batch = self._queue[:MAX_GROUP]
                    del self._queue[:MAX_GROUP]
                    more = self._gathering = bool(self._queue)
                self._commit_group(batch)

    @staticmethod
    def _commit_group(batch: list[_Member]) -> None:
        """Run every member's work in one transaction and commit it; always wakes them all."""
        kept: list[_Member] = []  # members whose changes are in the open transaction
        try:
            tx = sql.OwnTransaction(db.engine)
            try:
                tx.begin()
                alone = len(batch) == 1  # (nobody else's work to keep: no savepoint)
                for member in batch:
                    if not alone:
                        tx.savepoint()
                    try:
                        member.result = member.context.run(_as_member, member.work, tx)
                    except Exception as exc:  # noqa: BLE001 - handed to its own request
                        member.error = exc
                        if alone:
                            continue  # (closing the transaction rolls it back)
                        if not tx.rollback_to_savepoint():
                            for earlier in kept:  # SQLite dropped the whole transaction
                                earlier.error = exc
                            kept = []
                            tx.begin()
                        continue
                    if not alone:
                        tx.release_savepoint()
                    kept.append(member)
                if kept:
                    tx.commit()
                metrics.commit_group.observe(len(batch))
            finally:
                tx.close()
        except BaseException as exc:  # the connection, BEGIN or COMMIT failed: all of them
            for member in batch:
                if member.error is None:  # kept, or not reached
                    member.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for member in batch:
                member.done.set()


def _as_member(work: Callable, tx: sql.OwnTransaction):
    """One member's work, in its own request's context, on the group's transaction."""
    with sql.shared(tx):
        result = work()
    tx.refuse_session()
    return result


groups = CommitGroups()
