"""propsec/literals.py writes the values of prepared statements' EXECUTEs itself instead of
psycopg2's `mogrify`: what PostgreSQL reads from its literals must be exactly the value,
whatever a client put in a string, and anything it does not know goes to the driver."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from propsec import literals, sql
from services import POSTGRES_URL, require_postgres

HOSTILE = [
    "", "plain", "it's", "''", "'; DROP TABLE properties; --", "back\\slash", "\\'",
    "E'\\x41'", "$$dollar$$", "%s %(name)s %%", "line\nbreak\ttab\r", "ünïcødé 🚨 漢字",
    "\u2028\u00a0", "--comment", "/* open", "a" * 5000,
]
VALUES = [
    None, True, False, 0, 1, -1, 2 ** 31, -(2 ** 63), 2 ** 63 - 1, 0.0, -0.5, 1e-300, 1.5e300,
    float("inf"), float("-inf"),
    datetime(2026, 12, 6, 23, 20, 40, 123456), datetime(1, 1, 1), datetime(2026, 1, 2, 3, 4, 5),
    datetime(2026, 12, 6, 23, 20, 40, 5, tzinfo=timezone.utc),
    datetime(2026, 12, 6, 23, 20, 40, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    date(2026, 2, 28), [], [1, 2, 3], [None, 5], ["a'b", None, "c\\d"], [True, False, None],
    *HOSTILE,
]


@pytest.fixture(scope="module")
def pg():
    require_postgres()
    import psycopg2

    connection = psycopg2.connect(POSTGRES_URL)
    connection.autocommit = True
    yield connection
    connection.close()


def _read_back(pg, sql_text: str):
    with pg.cursor() as cursor:
        cursor.execute(sql_text)
        return cursor.fetchone()[0]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
def test_postgresql_reads_each_literal_as_the_value_the_driver_would_send(pg, value):
    written = literals.literal(value)
    with pg.cursor() as cursor:
        by_driver = cursor.mogrify("SELECT %s", (value,)).decode()
    assert _read_back(pg, f"SELECT {written}") == _read_back(pg, by_driver)
    if isinstance(value, str):
        assert _read_back(pg, f"SELECT {written}") == value


def test_nan_is_written_as_postgresql_spells_it(pg):
    assert math.isnan(_read_back(pg, f"SELECT {literals.literal(float('nan'))}"))


def test_a_string_with_nul_is_refused_as_the_driver_refuses_it(pg):
    with pytest.raises(ValueError):
        literals.literal("before\x00after")
    with pg.cursor() as cursor, pytest.raises(ValueError):
        cursor.mogrify("SELECT %s", ("before\x00after",))


@pytest.mark.parametrize("value", [Decimal("1.5"), b"bytes", {"a": 1}, (1, 2), [Decimal("1")],
                                   timedelta(seconds=1)])
def test_other_types_are_left_to_the_driver(value):
    assert literals.arguments({"v": value}, ["v"]) is None


def test_a_connection_without_standard_strings_goes_through_the_driver(pg):
    """With standard_conforming_strings off a backslash escapes: doubling quotes is then not
    enough, and the driver's own quoting is used. The setting is asked at every statement,
    so a session that turns it off later is seen at once."""
    import psycopg2

    connection = psycopg2.connect(POSTGRES_URL)
    try:
        assert literals.writes_literals(connection)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('standard_conforming_strings', 'off', false)")
        assert not literals.writes_literals(connection)
    finally:
        connection.close()


@pytest.mark.parametrize("value", [[None], [None, None], [None, 7]], ids=repr)
def test_a_list_of_nulls_takes_the_parameter_s_array_type(pg, value):
    assert _read_back(pg, f"SELECT CAST({literals.literal(value)} AS bigint[])") == value


@pytest.mark.parametrize("value", [[[]], [[1], [2]], [1, [2]]], ids=repr)
def test_nested_lists_are_left_to_the_driver(value):
    assert literals.arguments({"v": value}, ["v"]) is None


def test_prepared_statements_answer_the_same_with_written_values(app, backend, monkeypatch):
    """End to end: prepared statements given awkward values read back exactly them, written
    by literals.py (not the driver)."""
    if backend != "postgresql":
        pytest.skip("values are written as literals on PostgreSQL only")
    written = []
    original = literals.arguments
    monkeypatch.setattr(literals, "arguments",
                        lambda values, names: written.append(names) or original(values, names))
    from sqlalchemy import BigInteger, DateTime, String, bindparam, cast, literal_column, select

    echo = sql.Prepared(select(cast(bindparam("s", type_=String), String).label("s"),
                               cast(bindparam("n", type_=BigInteger), BigInteger).label("n"),
                               cast(bindparam("at", type_=DateTime), DateTime).label("at"),
                               literal_column("1").label("one")))
    with app.app_context():
        with sql.transaction(True) as tx:
            for text in HOSTILE:
                row = echo.first(tx.cursor, s=text, n=-(2 ** 40),
                                 at=datetime(2026, 12, 6, 1, 2, 3, 456789))
                assert row == (text, -(2 ** 40), datetime(2026, 12, 6, 1, 2, 3, 456789), 1)
    assert len(written) == len(HOSTILE)

    # The same connection, its session now with backslash escapes: the values still arrive
    # whole (the driver writes them), nothing of a value becomes SQL.
    escape = "\\'), 42 --"
    with app.app_context():
        with sql.transaction(True) as tx:
            tx.cursor.plain("SELECT set_config('standard_conforming_strings', 'off', false)")
            try:
                for text in [escape, *HOSTILE]:
                    row = echo.first(tx.cursor, s=text, n=1, at=datetime(2026, 12, 6))
                    assert row == (text, 1, datetime(2026, 12, 6), 1)
            finally:
                tx.cursor.plain("SELECT set_config('standard_conforming_strings', 'on', false)")
    assert len(written) == len(HOSTILE), "none of those was written as a literal"


def test_appended_rows_arrive_whole_as_literals_and_through_the_driver(app, backend):
    """The rows of appends (event log, audit trail) travel as a multi-row INSERT whose values
    are written here; on a session without standard_conforming_strings the driver writes
    them. Either way every hostile string is stored exactly."""
    if backend != "postgresql":
        pytest.skip("rows are joined into one INSERT on PostgreSQL only")
    from sqlalchemy import select

    from propsec import audit
    from propsec.extensions import db
    from propsec.models import AuditEntry

    def stored(texts: list[str], session_setup: str | None) -> list[str]:
        with app.app_context():
            with sql.transaction(True) as tx:
                if session_setup:
                    tx.cursor.plain(session_setup)
                try:
                    for text in texts:
                        audit.record("literals-test", actor="staff", target=text,
                                     detail={"text": text}, cursor=tx.cursor)
                    tx.commit()
                finally:
                    if session_setup:
                        tx.cursor.plain("SELECT set_config('standard_conforming_strings', "
                                        "'on', false)")
            rows = db.session.execute(select(AuditEntry.target, AuditEntry.detail)
                                      .where(AuditEntry.action == "literals-test")
                                      .order_by(AuditEntry.id)).all()[-len(texts):]
            db.session.remove()
        assert [r.detail["text"] for r in rows] == texts
        return [r.target for r in rows]

    texts = [t[:200] for t in HOSTILE]
    assert stored(texts, None) == texts
    escape = ["\\'), ('x', 'y') --", *texts]
    assert stored(escape, "SELECT set_config('standard_conforming_strings', 'off', false)") \
        == escape
