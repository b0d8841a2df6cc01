"""`python app.py`: prepare the database on first start, then serve."""
from __future__ import annotations

import gc

import click
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


def main(app: Flask) -> None:
    prepare(app)
    host, port = app.config["PROPSEC_HOST"], app.config["PROPSEC_PORT"]
    click.echo(f"propsec serving on http://{host}:{port} ({app.config['PROPSEC_ASYNC_MODE']})",
               err=True)
    # Everything built so far (app, mappers, compiled statements, modules) lives as long as
    # the process: moved out of the collector's way, the full collections that requests'
    # garbage triggers no longer walk it (docs/performance.md, fix 6).
    gc.collect()
    gc.freeze()
    limit = raise_file_limit(app.config["PROPSEC_MAX_CONNECTIONS"])
    app.config["PROPSEC_MAX_CONNECTIONS"] = limit
    mode = app.config["PROPSEC_ASYNC_MODE"]
    options = {"allow_unsafe_werkzeug": True} if mode == "threading" else {}
    if mode == "eventlet":
        # eventlet's WSGI server serves 1,024 connections at once unless told otherwise; the
        # rest would wait unanswered. Room for the limit, the reserve and the 503 gate.
        options["max_size"] = gate(limit) + 64
    socketio.run(app, host=host, port=port, log_output=False, **options)
