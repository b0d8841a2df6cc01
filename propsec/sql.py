"""Hot-path statements: compiled once per engine, run straight on the driver's cursor.

Each execution through the ORM session, or even Core's `Connection.execute`, costs tens of
microseconds of bookkeeping (cache keys, execution contexts, result metadata, unit of
work), several times the database's own work for a one-row statement. The request paths
that run all the time (a query's target property, the writes that raise alerts, visits
and entries, appending events, the tailer reading the log) run a handful of fixed
statements, so each is a `Prepared`: built once as a Core statement, compiled once per
engine, with SQLAlchemy's own bind and result processors for the types that need them
(dates on SQLite, JSON), and executed on a DBAPI cursor.

On PostgreSQL (psycopg2, which speaks the simple query protocol) a statement is also
prepared on the server, with SQL `PREPARE`, the first time a connection runs it, in the
same round trip, and executed by name from then on: parsed, analysed and planned once per
connection (the tailer's read of the log went from 0.43 to 0.06 ms of server time). The
names live as long as the connection; a pooler that shares server connections between
clients per transaction (PgBouncer's transaction mode) cannot carry them, see
docs/deployment.md.

Where the cursor comes from:
- `in_transaction()`: the request's own transaction (the ORM session's connection), so a
  prepared statement and the session's work commit or roll back together;
- `autocommit()`: a pooled connection for one-statement reads outside any transaction
  (on PostgreSQL in autocommit: no BEGIN/ROLLBACK round trips).

Driver errors come out as SQLAlchemy's (`DBAPIError.instance`), with a connection that was
lost invalidated, so the dispatcher answers them as it answers the ORM's."""
from __future__ import annotations

import itertools
import re
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from . import literals
from .extensions import db


_SERVER_NAMES = itertools.count(1)


def batches(engine: Engine) -> bool:
    """Whether a request's own transaction on `engine` sends its statements in batches
    (`_BatchingCursor`): PostgreSQL through psycopg2."""
    return _psycopg2(engine)


def _psycopg2(engine: Engine) -> bool:
    """Whether the engine talks to PostgreSQL through psycopg2: then our own transactions
    run with the driver in autocommit (BEGIN is sent by us, with the first read), and
    statements are prepared on the server (`_ServerStatement`)."""
    return engine.dialect.driver == "psycopg2"


class _Compiled:
    def __init__(self, statement, engine: Engine, appends: bool = False):
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.server = (_ServerStatement(self.sql, {name: bind.type for name, bind in
                                                   compiled.binds.items()}, appends)
                       if _psycopg2(engine) else None)
        processors = {name: _faster(compiled.binds.get(name), dialect, process)
                      for name, process in compiled._bind_processors.items()}
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


def _faster(bind, dialect, process):
    """`process`, or a quicker one that gives the same result: SQLite's DATETIME stores
    'YYYY-MM-DD HH:MM:SS.ffffff' (any time zone dropped), built by SQLAlchemy with a %-format
    over a dict of seven fields; `isoformat` writes the same text in C (several bound per
    write)."""
    from sqlalchemy.dialects.sqlite import DATETIME

    impl = bind.type.dialect_impl(dialect) if bind is not None else None
    if not (type(impl) is DATETIME and impl._storage_format == DATETIME._storage_format):
        return process

    def stored(value):
        if type(value) is not datetime:
            return process(value)  # None, a date, a subclass: as SQLAlchemy does
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        return value.isoformat(" ", "microseconds")
    return stored


class _ServerStatement:
    """The statement prepared on the PostgreSQL server (PREPARE once per connection, then
    EXECUTE with the values): parsed, analysed and planned once per connection instead of at
    every execution. psycopg2 speaks the simple query protocol, so this is done in SQL."""

    def __init__(self, sql: str, types: dict, appends: bool = False):
        self.name = f"propsec_{next(_SERVER_NAMES)}"
        order: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(0) == "%%":
                return "%"
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"

        text = _PYFORMAT.sub(number, sql)
        # Integers are declared bigint: inferred from an int4 column, a parameter would turn
        # an id beyond 2**31 (valid input, answered "not found") into an out-of-range error.
        # The rest is inferred from the statement, as for a literal.
        declared = ", ".join("bigint" if isinstance(types.get(n), Integer) else "unknown"
                             for n in order)
        signature = f" ({declared})" if order else ""
        self.prepare = f"PREPARE {self.name}{signature} AS {text}".encode()
        arguments = ", ".join(f"%({name})s" for name in order)
        self.execute = f"EXECUTE {self.name}({arguments})" if order else f"EXECUTE {self.name}"
        self.order = order
        # An append (`Prepared(appends=True)`) of the form INSERT INTO t (a, b) VALUES
        # ($1, $2::JSON) can also be sent as one row of a multi-row INSERT (`_BatchingCursor`):
        # the row is the VALUES tuple with each parameter's literal in its place.
        into, _, values = text.partition(" VALUES ")
        pieces = _NUMBERED.split(values)[::2]  # (the text around the $n)
        numbers = [int(n) for n in _NUMBERED.findall(values)]
        fits = (appends and into.startswith("INSERT INTO ") and _one_tuple(values)
                and numbers == list(range(1, len(order) + 1)))
        self.rows_head = f"{into} VALUES ".encode() if fits else None
        self._row_pieces = pieces
        self.row_template = "".join(
            piece.replace("%", "%%") + (f"%({order[n]})s" if n < len(order) else "")
            for n, piece in enumerate(pieces)) if fits else None

    def written(self, params: dict) -> bytes | None:
        """The EXECUTE with `params` written as literals by literals.py (None: a value of a
        type left to the driver's `mogrify`)."""
        if not self.order:
            return self.execute.encode()
        given = literals.arguments(params, self.order)
        return None if given is None else f"EXECUTE {self.name}({given})".encode()

    def row(self, params: dict) -> bytes | None:
        """`params` as one row of a multi-row INSERT (None: a value left to `mogrify`)."""
        given = literals.each(params, self.order)
        if given is None:
            return None
        pieces = self._row_pieces
        return "".join([piece + value for piece, value in zip(pieces, given)]
                       + [pieces[-1]]).encode()


def _one_tuple(text: str) -> bool:
    """Whether `text` is one parenthesised list and nothing more (no RETURNING, no second
    row, no quoted text)."""
    if not text.startswith("(") or "'" in text or '"' in text:
        return False
    depth = 0
    for at, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0:
            return at == len(text) - 1
    return False


_PYFORMAT = re.compile(r"%%|%\((\w+)\)s")
_NUMBERED = re.compile(r"\$(\d+)")


class Prepared:
    """One Core statement, compiled per engine on first use. Bind parameters by name.

    `appends`: an INSERT of rows that only ever accumulate in a transaction: no other table
    refers to them, nothing reads or changes them before the commit, no trigger watches
    them (the event log, the audit trail). On PostgreSQL a request's transaction may then
    send a batch's rows of one table as one multi-row INSERT where their run of queued
    statements ends, in the order they were given (`_appended_together`)."""

    def __init__(self, statement, appends: bool = False):
        self.statement = statement
        self.appends = appends
        self._compiled: weakref.WeakKeyDictionary[Engine, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, engine: Engine) -> _Compiled:
        found = self._compiled.get(engine)
        if found is None:
            found = self._compiled[engine] = _Compiled(self.statement, engine, self.appends)
        return found

    def all(self, cursor_source: "_Cursor", **values) -> list:
        compiled = self.compiled(cursor_source.engine)
        return compiled.rows(cursor_source.run(compiled, compiled.params(values), True))

    def all_ahead(self, cursor_source: "_Cursor", **values) -> list:
        """`all()`, sent ahead of the cursor's transaction where it can be
        (`_BatchingCursor.run_ahead`)."""
        compiled = self.compiled(cursor_source.engine)
        return compiled.rows(cursor_source.run_ahead(compiled, compiled.params(values)))

    def first(self, cursor_source: "_Cursor", **values):
        rows = self.all(cursor_source, **values)
        return rows[0] if rows else None

    def scalar(self, cursor_source: "_Cursor", **values):
        row = self.first(cursor_source, **values)
        return None if row is None else row[0]

    def run(self, cursor_source: "_Cursor", **values) -> None:
        compiled = self.compiled(cursor_source.engine)
        cursor_source.run(compiled, compiled.params(values), False)

    def run_many(self, cursor_source: "_Cursor", rows: list[dict]) -> None:
        compiled = self.compiled(cursor_source.engine)
        cursor_source.run_many(compiled, [compiled.params(r) for r in rows])


class _OnServer:
    """What one PostgreSQL connection has prepared (kept in the pooled connection's `info`,
    which lives exactly as long as the DBAPI connection)."""

    def __init__(self):
        self.names: set[str] = set()
        # A round trip that carried a PREPARE failed: whether it ran is unknown, so the
        # next one starts with DEALLOCATE ALL and prepares afresh.
        self.unsure = False

    @staticmethod
    def of(info: dict) -> "_OnServer":
        found = info.get("propsec_prepared")
        if found is None:
            found = info["propsec_prepared"] = _OnServer()
        return found

    def statements(self, runs: list[bytes], compiled: _Compiled) -> tuple[list[bytes], list[str]]:
        """The SQL that runs `compiled` with the EXECUTEs `runs` on this connection, and the
        names it prepares."""
        server = compiled.server
        out: list[bytes] = []
        if self.unsure:
            out.append(b"DEALLOCATE ALL")
            self.names.clear()
            self.unsure = False
        new = []
        if server.name not in self.names:
            out.append(server.prepare)
            self.names.add(server.name)
            new.append(server.name)
        return out + runs, new


class _Cursor:
    """Runs prepared statements on one DBAPI connection, translating the driver's errors.
    On PostgreSQL each statement is prepared on the server at its first use on a connection
    (in the same round trip) and executed by name from then on (`_ServerStatement`)."""

    def __init__(self, engine: Engine, dbapi_connection, on_lost, info: dict):
        self.engine = engine
        self._connection = dbapi_connection
        self._on_lost = on_lost
        self._server = _OnServer.of(info) if _psycopg2(engine) else None
        self._errors = engine.dialect.loaded_dbapi.Error

    def _fail(self, sql: str, exc: Exception):
        dialect = self.engine.dialect
        lost = dialect.is_disconnect(exc, self._connection, None)
        if lost:
            self._on_lost(exc)
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=dialect,
                                  connection_invalidated=lost) from None

    def _with_cursor(self, sql: str, work, on_error=None):
        """`work(cursor)` on a DBAPI cursor of its own, closed after; the driver's errors
        come out as SQLAlchemy's (after `on_error`, if given). A plain try block, not a
        context manager: every statement of the write path comes through here."""
        try:
            cursor = self._connection.cursor()
            try:
                return work(cursor)
            finally:
                cursor.close()
        except self._errors as exc:
            if on_error is not None:
                on_error()
            self._fail(sql, exc)

    def _written(self, compiled: _Compiled, rows: list, write, template: str) -> list[bytes]:
        """Each of `rows` written by `write` (literals.py); all of them by the driver's
        `mogrify` into `template` when one cannot be, or the connection quotes otherwise."""
        written = ([write(params) for params in rows]
                   if literals.writes_literals(self._connection) else [None])
        if None in written:
            written = self._with_cursor(compiled.sql, lambda cursor: [
                cursor.mogrify(template, params) for params in rows])
        return written

    def _on_server(self, compiled: _Compiled, rows: list) -> tuple[list[bytes], list[str]]:
        server = compiled.server
        runs = self._written(compiled, rows, server.written, server.execute)
        return self._server.statements(runs, compiled)

    def _unsure(self) -> None:
        self._server.unsure = True

    def _execute(self, sql: str, statement, params=None, fetch: bool = False,
                 many: bool = False, on_error=None) -> list:
        """`statement` (`executemany` when `many`); its rows if `fetch`."""
        def work(cursor) -> list:
            if many:
                cursor.executemany(statement, params)
            elif params is None:
                cursor.execute(statement)
            else:
                cursor.execute(statement, params)
            return cursor.fetchall() if fetch else []
        return self._with_cursor(sql, work, on_error)

    def _round_trip(self, statements: list[bytes], fetch: bool, sql: str) -> list:
        """Send the statements as one query string; the rows of the last one if `fetch`."""
        return self._execute(sql, b";".join(statements), fetch=fetch, on_error=self._unsure)

    def run(self, compiled: _Compiled, params, fetch: bool) -> list:
        if self._server is not None:
            return self._round_trip(self._on_server(compiled, [params])[0], fetch, compiled.sql)
        return self._execute(compiled.sql, compiled.sql, params, fetch)

    def run_ahead(self, compiled: _Compiled, params) -> list:
        """A read that may go ahead of the transaction (`_BatchingCursor`); here it simply
        runs where the cursor is."""
        return self.run(compiled, params, True)

    def run_many(self, compiled: _Compiled, params: list) -> None:
        if self._server is not None:  # one round trip for them all
            self._round_trip(self._on_server(compiled, params)[0], False, compiled.sql)
            return
        self._execute(compiled.sql, compiled.sql, params, many=True)

    def as_text(self, compiled: _Compiled, params) -> str:
        """The statement with its values written in, quoted by the driver, and read back in
        the connection's client encoding (psycopg2's `encodings` names its Python codec)."""
        written = self._with_cursor(compiled.sql, lambda cursor: cursor.mogrify(
            compiled.sql, params))
        encodings = self.engine.dialect.loaded_dbapi.extensions.encodings
        return written.decode(encodings[self._connection.encoding])

    def plain(self, statement: str) -> None:
        """A statement without parameters or rows (transaction control)."""
        self._execute(statement, statement)

    def commit(self) -> None:
        try:
            self._connection.commit()
        except self._errors as exc:
            self._fail("COMMIT", exc)


def _lost_everywhere(engine: Engine, pooled, invalidate):
    """What to do when a driver call finds its connection lost (the server restarted, say):
    drop it, and mark every connection of the pool opened before now for replacement at its
    next checkout, as SQLAlchemy does when its own statements find a lost connection."""
    def lost(exc) -> None:
        engine.pool._invalidate(pooled, exc, _checkin=False)
        invalidate(exc)
    return lost


_CURRENT: ContextVar["OwnTransaction | None"] = ContextVar("propsec_transaction", default=None)


def _appended_together(waiting: list) -> list[bytes]:
    """The waiting statements as sent: the rows of appends (`Prepared(appends=True)`),
    queued as (INSERT head, row) pairs, become one multi-row INSERT per head, placed where
    the run of statements they belong to ends. A run ends at anything that is not an
    EXECUTE or a PREPARE (a SAVEPOINT, RELEASE, ROLLBACK TO: a request's rows never cross
    its own or another request's savepoint) and at the end of the batch. Within a head the
    rows keep their order, so ids drawn from a default (the event log's) keep it too. On
    PostgreSQL each row as an EXECUTE costs the server about twice a row of a multi-row
    INSERT (docs/performance.md, eighth round)."""
    out: list[bytes] = []
    rows: dict[bytes, list[bytes]] = {}

    def flush() -> None:
        for head, values in rows.items():
            out.append(head + b", ".join(values))
        rows.clear()
    for statement in waiting:
        if type(statement) is tuple:
            rows.setdefault(statement[0], []).append(statement[1])
            continue
        if not statement.startswith((b"EXECUTE ", b"PREPARE ")):
            flush()
        out.append(statement)
    flush()
    return out


class _BatchingCursor(_Cursor):
    """A request's own transaction on PostgreSQL in as few round trips as it can be.

    psycopg2 sends BEGIN, each statement and COMMIT as a round trip apiece, and each round
    trip costs both servers CPU (a wake-up, parse, plan, a pass through eventlet's hub) and
    keeps the transaction open longer. The connection runs in autocommit here and the
    cursor opens the transaction itself: `BEGIN` travels with the first statement that
    needs an answer; statements whose answer nobody reads (the audit entry, the events,
    any INSERT without RETURNING) wait and travel with the next statement that does, or
    with `COMMIT`. add-alert: 6 round trips → 2 (its alert's id is reserved with the target:
    `NewRow`). The order of the statements is unchanged;
    an error in a waiting statement surfaces at the next round trip (at the latest the
    commit), and the transaction is then rolled back as any failed one."""

    def __init__(self, engine: Engine, dbapi_connection, on_lost, info: dict):
        super().__init__(engine, dbapi_connection, on_lost, info)
        self.begun = False
        self._waiting: list[bytes] = []
        self._waiting_names: list[str] = []  # prepared by statements not sent yet
        self.round_trips = 0

    def _send(self, statements: list[bytes], fetch: bool) -> list:
        self._waiting_names = []
        self.round_trips += 1
        return self._round_trip(statements, fetch, statements[-1].decode(errors="replace"))

    def _opening(self) -> list[bytes]:
        """What goes before the next statement sent: BEGIN once, then whatever waits."""
        head = [] if self.begun else [b"BEGIN"]
        self.begun = True
        head.extend(_appended_together(self._waiting))
        self._waiting = []
        return head

    def run(self, compiled: _Compiled, params, fetch: bool) -> list:
        if not fetch and compiled.server.rows_head is not None:
            self._waiting.extend(self._rows(compiled, [params]))
            return []
        statements, new = self._on_server(compiled, [params])
        if not fetch:
            self._waiting.extend(statements)
            self._waiting_names.extend(new)
            return []
        return self._send([*self._opening(), *statements], True)

    def run_ahead(self, compiled: _Compiled, params) -> list:
        """A read sent before the transaction opens, as a round trip (and an implicit
        transaction) of its own; inside the transaction when it is open already. For reads
        whose answer is as current either way (READ COMMITTED: a statement sees what was
        committed when it began) that may take a transaction id: `nextval` does every 32
        values, when it logs the sequence. Taken inside the transaction, that id would stay
        open until the COMMIT round trip, and a busy process takes milliseconds to get
        there: the event horizon of the whole cluster would wait that long (W36)."""
        if self.begun or self._waiting:
            return self.run(compiled, params, True)
        return self._send(self._on_server(compiled, [params])[0], True)

    def run_many(self, compiled: _Compiled, params: list) -> None:
        if compiled.server.rows_head is not None:
            self._waiting.extend(self._rows(compiled, params))
            return
        statements, new = self._on_server(compiled, params)
        self._waiting.extend(statements)
        self._waiting_names.extend(new)

    def _rows(self, compiled: _Compiled, rows: list) -> list[tuple[bytes, bytes]]:
        """An append's rows as (INSERT head, row) pairs, joined when the batch is sent."""
        server = compiled.server
        return [(server.rows_head, row)
                for row in self._written(compiled, rows, server.row, server.row_template)]

    def commit(self) -> None:
        if not self.begun and not self._waiting:
            return  # nothing was asked of the database
        self._send([*self._opening(), b"COMMIT"], False)
        self.begun = False

    # For PostgreSQL's group commit (protocol/group_commit.py): a request's statements can be
    # taken back as long as none of them has been sent.
    def queue(self, statement: bytes) -> None:
        """A statement with no parameters and no answer, sent with the next round trip."""
        self._waiting.append(statement)

    def mark(self) -> tuple[int, int, int]:
        return len(self._waiting), len(self._waiting_names), self.round_trips

    def unsend(self, mark: tuple[int, int, int]) -> bool:
        """Drop the statements queued since `mark`; False (nothing dropped) when a round trip
        has gone since, which may have carried some of them."""
        statements, names, trips = mark
        if trips != self.round_trips:
            return False
        self._forget(self._waiting[statements:], self._waiting_names[names:])
        del self._waiting[statements:], self._waiting_names[names:]
        return True

    def withdraw(self, mark: tuple[int, int, int]) -> bool:
        """Take back the one statement queued right at `mark` (leaving those after it);
        False when a round trip has gone since."""
        if mark[2] != self.round_trips:
            return False
        del self._waiting[mark[0]]
        return True

    def _forget(self, statements: list[bytes], names: list[str]) -> None:
        """Statements that will never be sent prepared (and deallocated) nothing."""
        self._server.names.difference_update(names)
        if b"DEALLOCATE ALL" in statements:
            self._server.unsure = True  # still to be done

    def rollback(self) -> None:
        """End whatever was begun and not committed (also a transaction a failed statement
        left aborted)."""
        self._forget(self._waiting, self._waiting_names)
        self._waiting, self._waiting_names = [], []
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
        self._batching = _psycopg2(engine)
        self._savepoint_at = None  # (mark() before the current request's SAVEPOINT)
        if self._batching:
            self._driver.autocommit = True
            self.cursor = _BatchingCursor(engine, self._driver, lost, self._pooled.info)
        else:
            self.cursor = _Cursor(engine, self._driver, lost, self._pooled.info)

    def commit(self) -> None:
        self.refuse_session()
        self.cursor.commit()

    @staticmethod
    def refuse_session() -> None:
        if db.session.registry.has():
            # A `prepared` handler that opened the ORM session would have split its work
            # over two transactions: a bug, refused before anything is committed.
            raise RuntimeError("a prepared query used the ORM session")

    # For group commit (protocol/group_commit.py): one transaction for several requests; on
    # PostgreSQL a savepoint per request in it, sent with the next round trip.
    def _control(self, statement: str) -> None:
        self.cursor.queue(statement.encode())  # (savepoints are PostgreSQL's only)

    def mark(self):
        """Where the request's part begins, to undo back to: on PostgreSQL where the
        statements not sent yet end (`_BatchingCursor.unsend`); on SQLite how many rows the
        connection has changed so far (a failing statement changes none)."""
        return self.cursor.mark() if self._batching else self._driver.total_changes

    def begin(self) -> None:
        """SQLite: BEGIN IMMEDIATE, the write lock from the start. A deferred BEGIN reads
        the target in a snapshot and asks for the lock at the first INSERT; when another
        connection of the process (a background worker on a thread of its own, as in the
        threading mode) has committed in between, SQLite cannot let the transaction write
        on that snapshot and fails it at once with "database is locked", whatever the busy
        timeout: the request was answered `internal_error`."""
        if not self._batching:  # (the batching cursor sends BEGIN with its first statement)
            self.cursor.plain("BEGIN IMMEDIATE")

    def in_transaction(self) -> bool:
        """SQLite: whether the transaction is still open (SQLite rolls it back by itself on
        a full disk or an I/O error)."""
        return self._driver.in_transaction

    def restart(self) -> None:
        """SQLite: roll back everything so far and begin again."""
        self.cursor.plain("ROLLBACK")
        self.begin()

    def savepoint(self) -> None:
        self._savepoint_at = self.mark()
        self._control("SAVEPOINT propsec_request")

    def release_savepoint(self) -> None:
        """The request's part is done. On PostgreSQL, when none of it has been sent yet
        (it read nothing mid-way), its SAVEPOINT is taken back instead of released: it
        could only have been needed to undo statements already on the server, and a
        savepoint in which a request writes costs the server a subtransaction."""
        if self.cursor.withdraw(self._savepoint_at):
            return
        self._control("RELEASE propsec_request")

    def rollback_to_savepoint(self) -> None:
        """Undo the current request's part (PostgreSQL)."""
        self._control("ROLLBACK TO propsec_request")
        self._control("RELEASE propsec_request")

    def close(self) -> None:
        """Back to the pool, which rolls back whatever was not committed."""
        if self._batching and self._pooled.dbapi_connection is not None:
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
    try:
        with shared(tx):
            yield tx
    finally:
        tx.close()


@contextmanager
def shared(tx: OwnTransaction):
    """The prepared statements of the block run in `tx`: the request's own transaction, or
    one that another request opened and commits for several (SQLite's group commit)."""
    token = _CURRENT.set(tx)
    try:
        yield tx
    finally:
        _CURRENT.reset(token)


def in_transaction() -> _Cursor:
    """The request's transaction: its own connection, or the ORM session's (begun if need
    be)."""
    own = _CURRENT.get()
    if own is not None:
        return own.cursor
    connection = db.session.connection()
    return _Cursor(connection.engine, connection.connection.dbapi_connection,
                   _lost_everywhere(connection.engine, connection.connection,
                                    connection.invalidate), connection.connection.info)


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
    autocommits = _psycopg2(engine)
    try:
        driver = pooled.dbapi_connection
        if autocommits:
            driver.autocommit = True
        yield _Cursor(engine, driver, _lost_everywhere(engine, pooled, pooled.invalidate),
                      pooled.info)
    finally:
        try:
            if autocommits and pooled.dbapi_connection is not None:
                pooled.dbapi_connection.autocommit = False
        except engine.dialect.loaded_dbapi.Error:
            pooled.invalidate()
        pooled.close()


def inserting(table, *columns: str, returning_id: bool = True, appends: bool = False) -> Prepared:
    """INSERT of the named columns (bound by the same names, typed as the columns), with
    RETURNING id for a single row, or without (for executemany); `appends`: see Prepared."""
    from sqlalchemy import bindparam, insert

    statement = insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    statement = statement.returning(table.c.id) if returning_id else statement.inline()
    return Prepared(statement, appends=appends and not returning_id)


class NewRow:
    """The INSERT of one row whose id the handler needs. When the request reserved that
    table's next id with its target (the declaration's `reserves`, PostgreSQL only) the
    INSERT names the id and needs no answer, so it travels with the next round trip;
    otherwise it is INSERT ... RETURNING id. The rows are a request's new alerts, visits and
    entries, which only refer to their property and which nothing changes before the
    commit: the INSERT with the id is an append (`Prepared`)."""

    def __init__(self, table, *columns: str):
        self.table = table
        self._returning = inserting(table, *columns)
        self._with_id = inserting(table, "id", *columns, returning_id=False, appends=True)

    def add(self, reserved: dict, **values) -> int:
        new_id = reserved.pop(self.table.name, None)
        if new_id is None:
            return self._returning.scalar(in_transaction(), **values)
        self._with_id.run(in_transaction(), id=new_id, **values)
        return new_id


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
            if _psycopg2(engine):
                self._pooled.dbapi_connection.autocommit = True
        try:
            yield _Cursor(engine, self._pooled.dbapi_connection, self._lost, self._pooled.info)
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
                if _psycopg2(self._engine):
                    self._pooled.dbapi_connection.autocommit = False  # as the pool expects
                self._pooled.close()
            except Exception:  # noqa: BLE001 - a broken connection: nothing to give back
                pass
            self._pooled = None
