"""propsec: a property-security service. `create_app` builds the Flask app."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from flask import Flask

from .config import engine_options, load_settings
from .extensions import csrf, db, login_manager, migrate, socketio
from .protocol import wirejson
from .protocol.packet import Packet
from .protocol.queue import queue_options

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
MAX_MESSAGE_BYTES = 64 * 1024

# eventlet announces its maintenance mode on import; it is our chosen default all the same.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
# eventlet's resolver imports dnspython's DNSSEC algorithms, which newer cryptography
# releases warn about (DSA); propsec never validates DNSSEC.
warnings.filterwarnings("ignore", module=r"dns\.dnssecalgs\.")


def _origin_checker(extra_origins: list[str]):
    """Same-origin websocket connections are fine; other origins only when configured."""
    def allowed(origin, environ=None):
        if origin is None:
            return True  # not a browser: devices and scripts send no Origin
        if origin in extra_origins:
            return True
        environ = environ or {}
        host = environ.get("HTTP_X_FORWARDED_HOST") or environ.get("HTTP_HOST")
        scheme = (environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme", "http"))
        return host is not None and origin == f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}"
    return allowed


def _one_line(record: logging.LogRecord) -> bool:
    """Socket.IO's libraries log malformed packets with a traceback; keep one line instead."""
    if record.exc_info and record.exc_info[1] is not None:
        record.msg = f"{record.getMessage()} ({type(record.exc_info[1]).__name__})"
        record.args, record.exc_info, record.exc_text = (), None, None
    return True


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=str(ROOT / "static"),
                template_folder=str(ROOT / "templates"), instance_path=str(ROOT / "instance"))
    app.config.update(load_settings(Path(app.instance_path)))
    app.config.update(overrides or {})
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    from .ops import logs

    logs.configure(app.config["PROPSEC_LOG_FORMAT"])
    for name in ("engineio.server", "socketio.server"):
        logging.getLogger(name).addFilter(_one_line)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    socketio.init_app(
        app, async_mode=app.config["PROPSEC_ASYNC_MODE"],
        **queue_options(app.config["PROPSEC_MESSAGE_QUEUE"],
                        app.config.get("PROPSEC_MESSAGE_QUEUE_CHANNEL") or "flask-socketio"),
        cors_allowed_origins=_origin_checker(app.config["PROPSEC_CORS_ORIGINS"]),
        max_http_buffer_size=MAX_MESSAGE_BYTES, logger=False, engineio_logger=False,
        serializer=Packet, json=wirejson)

    from . import handlers  # noqa: F401  (registers every query)
    from .cli import register_cli
    from .database import configure_engine
    from . import pipeline
    from .protocol.namespace import register_namespace
    from .web import web
    from .web.apidoc import apidoc
    from .web.exports import exports

    configure_engine(app)
    pipeline.init_app(app)
    register_namespace()
    app.register_blueprint(web)
    app.register_blueprint(exports)
    app.register_blueprint(apidoc)
    register_cli(app)
    from .protocol.capacity import FullGate, without_compression
    without_compression(socketio.server)
    if socketio.server.eio.async_mode == "eventlet":
        from .protocol import unmasking
        unmasking.install()
    app.wsgi_app = FullGate(app.wsgi_app, "/socket.io",
                            lambda: len(socketio.server.eio.sockets),
                            lambda: app.config["PROPSEC_MAX_CONNECTIONS"])
    hops = app.config["PROPSEC_TRUSTED_PROXIES"]
    if hops:  # behind nginx: the client's own address counts for the login throttle
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app
