"""Parameter values written as PostgreSQL literals, for the `EXECUTE name(...)` statements of
sql.py, without the driver.

psycopg2 speaks the simple query protocol: a prepared statement's values travel inside the
SQL text, and `cursor.mogrify` builds that text by adapting each value through its adapter
registry. That costs 2–5 µs per value (18 µs for an event row's five), about a tenth of
the process's CPU per write on PostgreSQL (docs/performance.md, seventh round). The values
on the hot paths are a handful of plain types, which this module writes itself, the way
psycopg2 writes them:

- `None` → NULL, `True`/`False` → true/false, an int in decimal, a finite float by its
  `repr` (NaN and the infinities as quoted float8 literals);
- a str between single quotes with each quote doubled. That is the whole of the escaping
  only with `standard_conforming_strings` on (a backslash is then an ordinary character)
  and with a UTF-8 client encoding; sql.py asks the connection at every statement
  (`writes_literals`: the server reports each change of either setting, so a session that
  turned one off is seen at once) and uses `mogrify` when either differs. A NUL cannot be
  stored in PostgreSQL text and is refused, as psycopg2 refuses it;
- a naive datetime as `'…'::timestamp`, an aware one as `'…'::timestamptz`, a date as
  `'…'::date`;
- a flat list as `ARRAY[…]` of the above (`'{}'` when empty, `'{NULL,…}'` when it holds
  only None, so that it takes the parameter's array type).

Anything else (bytes, Decimal, UUID, a time, a dict…) makes `arguments` answer None, and
the caller lets the driver adapt the whole statement."""
from __future__ import annotations

import math
from datetime import date, datetime

NUL_REFUSED = "A string literal cannot contain NUL (0x00) characters."


class _Unknown(Exception):
    """A value of a type this module does not write."""


def _text(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_REFUSED)
    return "'" + value.replace("'", "''") + "'"


def _float(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return "'NaN'::float8" if math.isnan(value) else (
        "'Infinity'::float8" if value > 0 else "'-Infinity'::float8")


def _datetime(value: datetime) -> str:
    kind = "timestamp" if value.tzinfo is None else "timestamptz"
    return f"'{value.isoformat()}'::{kind}"


def _array(value: list) -> str:
    if not value:
        return "'{}'"
    if all(item is None for item in value):
        # (ARRAY[NULL] would be a text[], which a parameter of another array type refuses;
        # the untyped '{NULL}' takes the parameter's type, as psycopg2 writes it)
        return "'{" + ",".join(["NULL"] * len(value)) + "}'"
    return "ARRAY[" + ",".join(_element(item) for item in value) + "]"


def _element(item) -> str:
    if type(item) is list:  # nested arrays (none on our paths) are left to the driver
        raise _Unknown
    return literal(item)


_WRITERS = {
    type(None): lambda _: "NULL",
    bool: lambda value: "true" if value else "false",
    int: int.__repr__,
    str: _text,
    float: _float,
    datetime: _datetime,
    date: lambda value: f"'{value.isoformat()}'::date",
    list: _array,
}


def literal(value) -> str:
    """`value` as a PostgreSQL literal; `_Unknown` for a type not written here."""
    writer = _WRITERS.get(type(value))
    if writer is None:
        raise _Unknown
    return writer(value)


def writes_literals(connection) -> bool:
    """Whether this module's quoting is right on the psycopg2 `connection` now."""
    return (connection.get_parameter_status("standard_conforming_strings") == "on"
            and connection.get_parameter_status("client_encoding") == "UTF8")


def each(values, names: list[str]) -> list[str] | None:
    """The values of `names` as literals, or None when one of them is of a type left to the
    driver."""
    try:
        return [literal(values[name]) for name in names]
    except _Unknown:
        return None


def arguments(values, names: list[str]) -> str | None:
    """The values of `names` as a comma-separated argument list (None: see `each`)."""
    given = each(values, names)
    return None if given is None else ", ".join(given)
