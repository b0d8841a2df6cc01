"""`python app.py`: prepare the database on first start, then serve."""
from __future__ import annotations

import atexit
import logging
import gc
import hashlib
import json
import os
from pathlib import Path

from flask import Flask

from .database import database_is_empty, init_db
from .extensions import socketio
from .protocol.capacity import gate, raise_file_limit


def prepare(app: Flask) -> None:
    with app.app_context():
        empty = database_is_empty()
        init_db(app)
        if empty and app.config["PROPSEC_SEED_DEMO"]:
            from .cli.seed import print_logins, seed_demo
            print_logins(seed_demo(60))


def address_file(app: Flask) -> Path:
    """Where a serving process notes its address, one file per database: the CLI started
    with the same settings (`simulate`) finds the server even on a port it was not told."""
    key = hashlib.sha256(app.config["SQLALCHEMY_DATABASE_URI"].encode()).hexdigest()[:16]
    return Path(app.instance_path) / f"serving-{key}.json"


def running_server_url(app: Flask) -> str | None:
    """The address of a live process serving this app's database, if one noted it."""
    try:
        noted = json.loads(address_file(app).read_text())
        os.kill(int(noted["pid"]), 0)  # still running? (signal 0 only checks)
        return str(noted["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _note_address(app: Flask, host: str, port: int) -> None:
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    path = address_file(app)
    try:
        path.write_text(json.dumps({"url": f"http://{reachable}:{port}", "pid": os.getpid()}))
    except OSError:
        return  # a read-only instance folder: the CLI then needs --url
    pid = os.getpid()

    def forget():
        try:
            if json.loads(path.read_text()).get("pid") == pid:
                path.unlink()
        except (OSError, ValueError):
            pass
    atexit.register(forget)


YOUNG_GENERATION_THRESHOLD = 10_000


def main(app: Flask) -> None:
    prepare(app)
    host, port = app.config["PROPSEC_HOST"], app.config["PROPSEC_PORT"]
    _note_address(app, host, port)
    logging.getLogger("propsec.serve").info(
        "propsec serving on http://%s:%s (%s)", host, port, app.config["PROPSEC_ASYNC_MODE"])
    # Everything built so far (app, mappers, compiled statements, modules) lives as long as
    # the process: moved out of the collector's way, the full collections that requests'
    # garbage triggers no longer walk it (docs/performance.md, fix 6).
    gc.collect()
    gc.freeze()
    # The young generation is collected when allocations outnumber deallocations by 700,
    # which the requests in flight alone reach all the time: every few requests, ~2 % of a
    # busy process's CPU. At 10,000 it runs a few times a minute (docs/performance.md,
    # seventh round); reference counting frees nearly everything meanwhile.
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
    with app.app_context():
        # background work (escalation, notifications...) resumes at once, not at the first
        # connection: deliveries left pending by a restart go out with nobody connected
        from .pipeline import pipeline

        pipeline().start()
    limit = raise_file_limit(app.config["PROPSEC_MAX_CONNECTIONS"])
    app.config["PROPSEC_MAX_CONNECTIONS"] = limit
    mode = app.config["PROPSEC_ASYNC_MODE"]
    options = {"allow_unsafe_werkzeug": True} if mode == "threading" else {}
    if mode == "eventlet":
        # eventlet's WSGI server serves 1,024 connections at once unless told otherwise; the
        # rest would wait unanswered. Room for the limit, the reserve and the 503 gate.
        options["max_size"] = gate(limit) + 64
    socketio.run(app, host=host, port=port, log_output=False, **options)
