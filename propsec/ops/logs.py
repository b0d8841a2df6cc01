"""Log lines: readable text by default, or one JSON object per line with
PROPSEC_LOG_FORMAT=json (python-json-logger), each with time, level, logger and message and,
when written while answering a request, the connection id, the user and the query.

Nothing secret reaches a line: propsec's own messages never carry passwords, tokens or SQL
(docs/security.md, threat 13), tracebacks are cut to one line before formatting, and only
the fields named here are added."""
from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

# (connection id, user id, query) of the request being answered, if any
REQUEST: ContextVar[tuple[str, str, str] | None] = ContextVar("propsec_request", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_propsec_handler"


class _RequestFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = REQUEST.get()
        if current is not None:
            record.connection, record.user, record.query = current
        return True


def failure_kind(exc: BaseException) -> str:
    """What kind of failure `exc` is, fit for a log line: the exception's class and, for a
    database error, the driver's code (PostgreSQL's SQLSTATE, SQLite's result code such as
    SQLITE_BUSY); never its message, which can quote SQL and the values bound to it."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlite_errorname", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def json_formatter() -> logging.Formatter:
    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z")


def configure(log_format: str) -> None:
    """One handler on the root logger, writing to stderr (set up once per process)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, _MARK, False):
            return
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_RequestFields())
    root.addHandler(handler)
    logging.captureWarnings(True)  # a library's warning is a log line too (JSON when asked)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    logging.getLogger("propsec").setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.INFO)
