"""Hot-path statements: compiled once per engine, run straight on the driver's cursor.

Each execution through the ORM session, or even Core's `Connection.execute`, costs tens of
microseconds of bookkeeping (cache keys, execution contexts, result metadata, unit of
work), several times the database's own work for a one-row statement. The request paths
that run all the time (a query's target property, the writes that raise alerts, visits
and entries, appending events, the tailer reading the log) run a handful of fixed
statements, so each is a `Prepared`: built once as a Core statement, compiled once per
engine, with SQLAlchemy's own bind and result processors for the types that need them
(dates on SQLite, JSON), and executed on a DBAPI cursor.

Where the cursor comes from:
- `in_transaction()`: the request's own transaction (the ORM session's connection), so a
  prepared statement and the session's work commit or roll back together;
- `autocommit()`: a pooled connection for one-statement reads outside any transaction
  (on PostgreSQL in autocommit: no BEGIN/ROLLBACK round trips).

Driver errors come out as SQLAlchemy's (`DBAPIError.instance`), with a connection that was
lost invalidated, so the dispatcher answers them as it answers the ORM's."""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .extensions import db


class _Compiled:
    def __init__(self, statement, engine: Engine):
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        processors = compiled._bind_processors
        names = list(compiled.positiontup) if dialect.positional else list(compiled.binds)
        self.positional = dialect.positional
        self.names = names
        # Values the statement carries itself (a literal such as coalesce(max(id), 0)'s 0).
        self.fixed = {n: compiled.binds[n].effective_value for n in names
                      if n in compiled.binds and not compiled.binds[n].required}
        self.bind = [(n, processors[n]) for n in names if n in processors]
        columns = getattr(statement, "selected_columns", None) or []
        if getattr(statement, "_returning", None):
            columns = statement._returning
        self.result = [(i, p) for i, p in enumerate(
            c.type._cached_result_processor(dialect, None) for c in columns) if p is not None]

    def params(self, values: dict):
        if self.fixed:
            values = {**self.fixed, **values}
        for name, process in self.bind:
            values[name] = process(values[name])
        if self.positional:
            return tuple(values[n] for n in self.names)
        return values

    def rows(self, fetched: list) -> list:
        if not self.result:
            return fetched
        out = []
        for row in fetched:
            row = list(row)
            for index, process in self.result:
                row[index] = process(row[index])
            out.append(tuple(row))
        return out


class Prepared:
    """One Core statement, compiled per engine on first use. Bind parameters by name."""

    def __init__(self, statement):
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Engine, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, engine: Engine) -> _Compiled:
        found = self._compiled.get(engine)
        if found is None:
            found = self._compiled[engine] = _Compiled(self.statement, engine)
        return found

    def all(self, cursor_source: "_Cursor", **values) -> list:
        compiled = self.compiled(cursor_source.engine)
        return compiled.rows(cursor_source.run(compiled.sql, compiled.params(values), True))

    def first(self, cursor_source: "_Cursor", **values):
        rows = self.all(cursor_source, **values)
        return rows[0] if rows else None

    def scalar(self, cursor_source: "_Cursor", **values):
        row = self.first(cursor_source, **values)
        return None if row is None else row[0]

    def run(self, cursor_source: "_Cursor", **values) -> None:
        compiled = self.compiled(cursor_source.engine)
        cursor_source.run(compiled.sql, compiled.params(values), False)

    def run_many(self, cursor_source: "_Cursor", rows: list[dict]) -> None:
        compiled = self.compiled(cursor_source.engine)
        cursor_source.run_many(compiled.sql, [compiled.params(r) for r in rows])


class _Cursor:
    """Runs SQL on one DBAPI connection, translating the driver's errors."""

    def __init__(self, engine: Engine, dbapi_connection, on_lost):
        self.engine = engine
        self._connection = dbapi_connection
        self._on_lost = on_lost

    def _fail(self, sql: str, exc: Exception):
        dialect = self.engine.dialect
        lost = dialect.is_disconnect(exc, self._connection, None)
        if lost:
            self._on_lost(exc)
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=dialect,
                                  connection_invalidated=lost) from None

    def run(self, sql: str, params, fetch: bool) -> list:
        try:
            cursor = self._connection.cursor()
            try:
                cursor.execute(sql, params)
                return cursor.fetchall() if fetch else []
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._fail(sql, exc)

    def run_many(self, sql: str, params: list) -> None:
        try:
            cursor = self._connection.cursor()
            try:
                if len(params) == 1:
                    cursor.execute(sql, params[0])
                elif self.engine.dialect.driver == "psycopg2":
                    # one round trip for them all (executemany would make one per row)
                    from psycopg2.extras import execute_batch

                    execute_batch(cursor, sql, params, page_size=len(params))
                else:
                    cursor.executemany(sql, params)
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._fail(sql, exc)


def _lost_everywhere(engine: Engine, pooled, invalidate):
    """What to do when a driver call finds its connection lost (the server restarted, say):
    drop it, and mark every connection of the pool opened before now for replacement at its
    next checkout, as SQLAlchemy does when its own statements find a lost connection."""
    def lost(exc) -> None:
        engine.pool._invalidate(pooled, exc, _checkin=False)
        invalidate(exc)
    return lost


_CURRENT: ContextVar["OwnTransaction | None"] = ContextVar("propsec_transaction", default=None)


class _BatchingCursor(_Cursor):
    """A request's own transaction on PostgreSQL in as few round trips as it can be.

    psycopg2 sends BEGIN, each statement and COMMIT as a round trip apiece, and each round
    trip costs both servers CPU (a wake-up, parse, plan, a pass through eventlet's hub) and
    keeps the transaction open longer. The connection runs in autocommit here and the
    cursor opens the transaction itself: `BEGIN` travels with the first statement that
    needs an answer; statements whose answer nobody reads (the audit entry, the events,
    any INSERT without RETURNING) wait and travel with the next statement that does, or
    with `COMMIT`. add-alert: 6 round trips → 3. The order of the statements is unchanged;
    an error in a waiting statement surfaces at the next round trip (at the latest the
    commit), and the transaction is then rolled back as any failed one."""

    def __init__(self, engine: Engine, dbapi_connection, on_lost):
        super().__init__(engine, dbapi_connection, on_lost)
        self.begun = False
        self._waiting: list[bytes] = []

    def _send(self, statements: list[bytes], fetch: bool) -> list:
        try:
            cursor = self._connection.cursor()
            try:
                cursor.execute(b";".join(statements))
                return cursor.fetchall() if fetch else []
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._fail(statements[-1].decode(errors="replace"), exc)

    def _opening(self) -> list[bytes]:
        """What goes before the next statement sent: BEGIN once, then whatever waits."""
        head = [] if self.begun else [b"BEGIN"]
        self.begun = True
        head.extend(self._waiting)
        self._waiting = []
        return head

    def run(self, sql: str, params, fetch: bool) -> list:
        try:
            cursor = self._connection.cursor()
            try:
                statement = cursor.mogrify(sql, params)
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._fail(sql, exc)
        if not fetch:
            self._waiting.append(statement)
            return []
        return self._send([*self._opening(), statement], True)

    def run_many(self, sql: str, params: list) -> None:
        for one in params:
            self.run(sql, one, False)

    def commit(self) -> None:
        if not self.begun and not self._waiting:
            return  # nothing was asked of the database
        self._send([*self._opening(), b"COMMIT"], False)
        self.begun = False

    def rollback(self) -> None:
        """End whatever was begun and not committed (also a transaction a failed statement
        left aborted)."""
        self._waiting = []
        if self.begun:
            self.begun = False
            self._send([b"ROLLBACK"], False)


class OwnTransaction:
    """A request's transaction on a pooled driver connection of its own, for handlers that
    run prepared statements only (their declarations say `prepared`): no ORM session is
    opened, begun, flushed or committed for them. On PostgreSQL its statements travel in as
    few round trips as they can (`_BatchingCursor`)."""

    def __init__(self, engine: Engine):
        self._pooled = _checkout(engine)
        self._driver = self._pooled.dbapi_connection
        lost = _lost_everywhere(engine, self._pooled, self._pooled.invalidate)
        if engine.dialect.driver == "psycopg2":
            self._driver.autocommit = True
            self.cursor = _BatchingCursor(engine, self._driver, lost)
        else:
            self.cursor = _Cursor(engine, self._driver, lost)

    def commit(self) -> None:
        if db.session.registry.has():
            # A `prepared` handler that opened the ORM session would have split its work
            # over two transactions: a bug, refused before anything is committed.
            raise RuntimeError("a prepared query used the ORM session")
        if isinstance(self.cursor, _BatchingCursor):
            self.cursor.commit()
            return
        try:
            self._driver.commit()
        except self.cursor.engine.dialect.loaded_dbapi.Error as exc:
            self.cursor._fail("COMMIT", exc)

    def close(self) -> None:
        """Back to the pool, which rolls back whatever was not committed."""
        if isinstance(self.cursor, _BatchingCursor) and self._pooled.dbapi_connection is not None:
            try:
                self.cursor.rollback()
                self._driver.autocommit = False  # as the pool expects its connections
            except Exception:  # noqa: BLE001 - a broken connection is not handed back
                self._pooled.invalidate()
        self._pooled.close()


class SessionTransaction:
    """The same interface over the ORM session, for every other handler."""

    @staticmethod
    def commit() -> None:
        if db.session.registry.has():  # a reading query may never have opened one
            db.session.commit()

    @staticmethod
    def close() -> None:
        if db.session.registry.has():
            db.session.rollback()


@contextmanager
def transaction(own: bool):
    """The request's transaction: its own driver connection (`own`) or the ORM session.
    Whatever is not committed when the block ends is rolled back."""
    if not own:
        try:
            yield SessionTransaction
        finally:
            SessionTransaction.close()
        return
    tx = OwnTransaction(db.engine)
    token = _CURRENT.set(tx)
    try:
        yield tx
    finally:
        _CURRENT.reset(token)
        tx.close()


def in_transaction() -> _Cursor:
    """The request's transaction: its own connection, or the ORM session's (begun if need
    be)."""
    own = _CURRENT.get()
    if own is not None:
        return own.cursor
    connection = db.session.connection()
    return _Cursor(connection.engine, connection.connection.dbapi_connection,
                   _lost_everywhere(connection.engine, connection.connection,
                                    connection.invalidate))


def _checkout(engine: Engine):
    """A pooled DBAPI connection; failing to get one raises SQLAlchemy's error too."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance("(connect)", None, exc, engine.dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=engine.dialect) from None


@contextmanager
def autocommit(engine: Engine | None = None):
    """A pooled connection for statements that need no transaction of their own."""
    engine = engine or db.engine
    pooled = _checkout(engine)
    autocommits = engine.dialect.driver == "psycopg2"
    try:
        driver = pooled.dbapi_connection
        if autocommits:
            driver.autocommit = True
        yield _Cursor(engine, driver, _lost_everywhere(engine, pooled, pooled.invalidate))
    finally:
        try:
            if autocommits and pooled.dbapi_connection is not None:
                pooled.dbapi_connection.autocommit = False
        except engine.dialect.loaded_dbapi.Error:
            pooled.invalidate()
        pooled.close()


def inserting(table, *columns: str, returning_id: bool = True) -> Prepared:
    """INSERT of the named columns (bound by the same names, typed as the columns), with
    RETURNING id for a single row, or without (for executemany)."""
    from sqlalchemy import bindparam, insert

    statement = insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    statement = statement.returning(table.c.id) if returning_id else statement.inline()
    return Prepared(statement)


class Held:
    """A pooled connection one background worker keeps for itself (in autocommit on
    PostgreSQL): a worker that reads many times a second spares itself the pool's checkout
    and its liveness ping each time. A connection that fails is dropped and replaced at the
    next use."""

    def __init__(self):
        self._pooled = None
        self._engine = None

    @contextmanager
    def cursor(self):
        engine = db.engine
        if self._pooled is None or self._engine is not engine:
            self.release()
            self._pooled, self._engine = _checkout(engine), engine
            if engine.dialect.driver == "psycopg2":
                self._pooled.dbapi_connection.autocommit = True
        try:
            yield _Cursor(engine, self._pooled.dbapi_connection, self._lost)
        except Exception:
            if engine.dialect.name == "sqlite":
                self.release()  # nothing to keep: a file connection is cheap to open again
            raise

    def _lost(self, exc) -> None:
        if self._pooled is not None:
            _lost_everywhere(self._engine, self._pooled, self._pooled.invalidate)(exc)
            self._pooled = None

    def release(self) -> None:
        if self._pooled is not None:
            try:
                if self._engine.dialect.driver == "psycopg2":
                    self._pooled.dbapi_connection.autocommit = False  # as the pool expects
                self._pooled.close()
            except Exception:  # noqa: BLE001 - a broken connection: nothing to give back
                pass
            self._pooled = None
