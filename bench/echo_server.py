"""The floor: a bare Flask-SocketIO server under the same async mode as propsec.

`python bench/echo_server.py` (or `python -m bench.echo_server`) serves on
BENCH_HOST:BENCH_PORT in namespace /propsec, so the load generator speaks to it exactly as
to propsec:

- `echo`: the acknowledgement is the argument, untouched (the round-trip floor);
- `join`: puts the connection in the room `fanout` (acknowledged);
- `fanout`: emits its argument as event `events.alerts` to the room `fanout` (`copies`
  times, default once), then acknowledges (the fan-out floor: one bare room emit of the
  same payload; the write floor: as many emits as the propsec request it stands for makes
  events).

GET /healthz answers 200 once it is up. No authentication, no database: only the
framework's own cost (with propsec's transport setting: no websocket compression)."""
import os

_MODE = os.environ.get("PROPSEC_ASYNC_MODE") or "eventlet"
if __name__ == "__main__":
    if _MODE == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    elif _MODE == "gevent":
        from gevent import monkey

        monkey.patch_all()

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

NAMESPACE = "/propsec"
ROOM = "fanout"

app = Flask(__name__)
socketio = SocketIO(app, async_mode=_MODE, max_http_buffer_size=64 * 1024, logger=False,
                    engineio_logger=False)
# The same transport as propsec's: websocket compression declined (as propsec/protocol/
# capacity.py does). Python clients never offer it; Node's socket.io-client and browsers do.
if _MODE == "eventlet":
    class _Uncompressed(socketio.server.eio._async["websocket"]):
        def _negotiate_permessage_deflate(self, extensions):
            return None

    socketio.server.eio._async["websocket"] = _Uncompressed


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@socketio.on("echo", namespace=NAMESPACE)
def echo(data=None):
    return data


@socketio.on("join", namespace=NAMESPACE)
def join(data=None):
    join_room(ROOM)
    return {"type": "status"}


@socketio.on("fanout", namespace=NAMESPACE)
def fanout(data=None):
    copies = data.get("copies", 1) if isinstance(data, dict) else 1
    for _ in range(copies):
        socketio.emit("events.alerts", data, to=ROOM, namespace=NAMESPACE)
    return {"type": "success"}


if __name__ == "__main__":
    host = os.environ.get("BENCH_HOST", "127.0.0.1")
    port = int(os.environ.get("BENCH_PORT", "5055"))
    options = {"allow_unsafe_werkzeug": True} if _MODE == "threading" else {}
    if _MODE == "eventlet":
        # as many connections at once as the capacity benchmark asks for (eventlet's
        # default is 1,024), and the open files for them
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
        options["max_size"] = int(os.environ.get("BENCH_MAX_CONNECTIONS", "1024"))
    socketio.run(app, host=host, port=port, log_output=False, **options)
