"""Python client SDK for the propsec Socket.IO API (contract: docs/protocol.md).

A small, thread-based wrapper around python-socketio's ``socketio.Client`` for
devices and scripts::

    from propsec.client import PropsecClient, NotFound

    with PropsecClient("http://127.0.0.1:5000", token) as client:
        props = client.call("get-map")["properties"]
        client.subscribe("events.alerts", lambda ev: print(ev["eventId"], ev))

``call`` returns the ``data`` of a data/success/status envelope and raises a
typed :class:`PropsecError` subclass for an error envelope. ``subscribe``
survives reconnects: after every reconnect it subscribes again with
``since`` = the last event id delivered, and it never hands the same event id
to a handler twice.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any, Callable, Iterable, Mapping

import engineio
import socketio

from .client_types import QueryName

__all__ = [
    "PropsecClient",
    "PropsecError",
    "Unauthenticated",
    "Forbidden",
    "ValidationError",
    "NotFound",
    "Conflict",
    "UnknownQuery",
    "RateLimited",
    "InternalError",
    "ConnectionFailed",
    "Disconnected",
    "RequestTimeout",
    "ERRORS",
    "NAMESPACE",
]

NAMESPACE = "/propsec"
QUERY_PREFIX = "queries."

log = logging.getLogger("propsec.client")


# --------------------------------------------------------------------------
# errors


class PropsecError(Exception):
    """An error envelope (or a client-side failure) with its contract code."""

    code = "error"

    def __init__(self, code: str | None = None, message: str = "", fields: dict | None = None):
        self.code = code or type(self).code
        self.message = message or self.code
        self.fields = dict(fields or {})
        super().__init__(self.code, self.message, self.fields)

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.fields:
            text += " " + ", ".join(f"{k}: {v}" for k, v in self.fields.items())
        return text


class Unauthenticated(PropsecError):
    """No valid login or token (also raised when the connect is refused)."""

    code = "unauthenticated"


class Forbidden(PropsecError):
    """The caller's role may not do this."""

    code = "forbidden"


class ValidationError(PropsecError):
    """The request data broke a rule; ``fields`` maps field name to reason."""

    code = "validation_error"


class NotFound(PropsecError):
    """The addressed object does not exist (or is not visible to the caller)."""

    code = "not_found"


class Conflict(PropsecError):
    """The request clashes with the current state (e.g. no free drone)."""

    code = "conflict"


class UnknownQuery(PropsecError):
    """No query of that name exists."""

    code = "unknown_query"


class RateLimited(PropsecError):
    """Too many requests on this connection; slow down and retry."""

    code = "rate_limited"


class InternalError(PropsecError):
    """The server failed; nothing was changed."""

    code = "internal_error"


class ConnectionFailed(PropsecError):
    """Client side: the server could not be reached or refused the connect."""

    code = "connection_failed"


class Disconnected(PropsecError):
    """Client side: not connected, or the connection dropped before the answer.

    A request interrupted this way may or may not have been applied.
    """

    code = "disconnected"


class RequestTimeout(PropsecError, TimeoutError):
    """Client side: no acknowledgement arrived within the timeout."""

    code = "timeout"


#: contract error code -> exception class
ERRORS: dict[str, type[PropsecError]] = {
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "validation_error": ValidationError,
    "not_found": NotFound,
    "conflict": Conflict,
    "unknown_query": UnknownQuery,
    "rate_limited": RateLimited,
    "internal_error": InternalError,
}


def error_from_envelope(data: Any) -> PropsecError:
    """Build the typed exception for the ``data`` of an error envelope."""
    if not isinstance(data, dict):
        return InternalError(message=f"malformed error envelope: {data!r}")
    code = str(data.get("code") or "internal_error")
    cls = ERRORS.get(code, PropsecError)
    fields = data.get("fields") if isinstance(data.get("fields"), dict) else None
    return cls(code, str(data.get("message") or code), fields)


def unwrap(envelope: Any) -> dict:
    """Return ``data`` of a data/success/status envelope, raise for an error one."""
    if not isinstance(envelope, dict) or "type" not in envelope:
        raise PropsecError("bad_response", f"not a response envelope: {envelope!r}")
    if envelope["type"] == "error":
        raise error_from_envelope(envelope.get("data"))
    data = envelope.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PropsecError("bad_response", f"envelope data is not an object: {data!r}")
    return data


# --------------------------------------------------------------------------
# transport: deliver Socket.IO packets in arrival order


class _InOrderEngineIOClient(engineio.Client):
    """engine.io client that handles messages on its read thread, in order.

    The stock client starts one thread per message, so two events sent in
    order may reach the handlers out of order. The SDK's own handlers never
    block (user callbacks run on a separate dispatcher thread), so handling
    messages inline is safe.
    """

    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderSocketIOClient(socketio.Client):
    """``socketio.Client`` whose handlers see packets in the order they arrived (the SDK's
    transport; also what tests and tools that check event order should connect with)."""

    def _engineio_client_class(self):
        return _InOrderEngineIOClient


_DISCONNECTED = object()
_STOP = object()


class _Subscription:
    __slots__ = ("event", "handlers", "last_id", "baseline", "buffering", "buffer", "replayed", "generation")

    def __init__(self, event: str, last_id: int | None):
        self.event = event
        self.handlers: list[Callable[[dict], Any]] = []
        self.last_id = last_id  # last eventId handed to the handlers (or `since`)
        self.baseline: int | None = None  # newest id at subscribe time, for resubscribing
        self.buffering = False  # a subscribe is in flight: hold events until its ack
        self.buffer: list[dict] = []
        self.replayed = 0  # events the server replayed over all (re)subscribes
        self.generation = 0  # bumps on every (re)subscribe; stale acks are ignored


def _event_id(payload: Any) -> int | None:
    if isinstance(payload, dict):
        eid = payload.get("eventId")
        if isinstance(eid, int) and not isinstance(eid, bool):
            return eid
    return None


# --------------------------------------------------------------------------
# the client


class PropsecClient:
    """A connection to the ``/propsec`` namespace authenticated with an API token.

    ``transports`` is e.g. ``["websocket"]`` or ``["polling"]`` (default: both).
    ``timeout`` is the default seconds :meth:`call` waits for an answer.
    Extra keyword arguments go to ``socketio.Client`` (e.g. ``reconnection_delay``).
    Handlers passed to :meth:`subscribe` run one at a time on a dedicated
    thread, so they need no locking among themselves and may call :meth:`call`.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transports: Iterable[str] | None = None,
        reconnection: bool = True,
        timeout: float = 10.0,
        namespace: str = NAMESPACE,
        **sio_options: Any,
    ):
        self.url = url
        self.token = token
        self.transports = list(transports) if transports else None
        self.namespace = namespace
        self.timeout = timeout
        self.reconnects = 0  #: how many times the connection was re-established
        self.user: dict | None = None  #: {id, fullName, role} after connect, if known
        sio_options.setdefault("handle_sigint", False)
        self._sio = InOrderSocketIOClient(reconnection=reconnection, **sio_options)
        self._lock = threading.RLock()  # guards subscriptions and pending requests
        self._emit_lock = threading.Lock()
        self._connected = threading.Event()
        self._closed = True
        self._ever_connected = False
        self._given_up = True  # not connected and no reconnect under way (see `gone`)
        self._connect_error: str | None = None
        self._refused = False  # the server answered the namespace connect with an error
        self._subs: dict[str, _Subscription] = {}
        self._pending: dict[int, list] = {}
        self._pending_ids = itertools.count(1)
        self._queue: queue.Queue = queue.Queue()
        self._dispatcher: threading.Thread | None = None

        ns = self.namespace
        self._sio.on("connect", self._on_connect, namespace=ns)
        self._sio.on("disconnect", self._on_disconnect, namespace=ns)
        # python-socketio's own signal that no reconnect follows a drop (reconnection off,
        # the server ended the session, or the reconnect attempts gave up)
        self._sio.on("__disconnect_final", self._on_final_disconnect, namespace=ns)
        self._sio.on("connect_error", self._on_connect_error, namespace=ns)
        self._sio.on("*", self._on_event, namespace=ns)

    # ---------------------------------------------------------------- lifecycle

    def connect(self, timeout: float | None = None) -> "PropsecClient":
        """Open the connection; raises :class:`Unauthenticated` for a bad token."""
        timeout = self.timeout if timeout is None else timeout
        self._closed = False
        self._ever_connected = False
        self._connect_error = None
        self._refused = False
        self._start_dispatcher()
        try:
            self._sio.connect(
                self.url,
                auth=self._auth,
                transports=self.transports,
                namespaces=[self.namespace],
                wait_timeout=timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            self._closed = True
            self._stop_dispatcher()
            message = self._connect_error or str(exc)
            # The server refuses a namespace connect only for missing or bad credentials.
            if self._refused or "authentication" in message.lower():
                raise Unauthenticated(message=message) from None
            raise ConnectionFailed(message=message) from None
        if not self._connected.wait(timeout):
            self.close()
            raise ConnectionFailed(message="namespace did not connect in time")
        try:
            self.user = self.request("session", {}, timeout=timeout).get("user")
        except PropsecError as exc:  # not fatal: the user is only informative
            log.debug("session query failed: %s", exc)
        with self._lock:
            fresh = [s for s in self._subs.values() if s.last_id is None and s.baseline is None]
        for sub in fresh:  # subscribed before connecting
            self._set_baseline(sub, {}, timeout)
        return self

    def close(self) -> None:
        """Disconnect, stop reconnecting and stop the handler thread."""
        self._closed = True
        try:
            self._sio.shutdown()
        except Exception:  # pragma: no cover - best effort on teardown
            log.debug("shutdown failed", exc_info=True)
        self._connected.clear()
        self._fail_pending()
        self._stop_dispatcher()

    def __enter__(self) -> "PropsecClient":
        return self if self.connected else self.connect()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """True while the namespace is connected."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until connected (e.g. after a drop); False on timeout."""
        return self._connected.wait(timeout)

    @property
    def gone(self) -> bool:
        """True when the connection is down and no reconnect is under way (closed,
        reconnection off, or the server ended the session, e.g. a revoked token)."""
        if self._closed:
            return True
        if self._connected.is_set():
            return False
        return self._given_up

    def wait(self) -> None:
        """Block while the client is connected or reconnecting (for device scripts)."""
        while self._await_connection(None):
            time.sleep(0.2)

    def _await_connection(self, timeout: float | None) -> bool:
        """Wait for the connection; False on timeout or when it will not come back."""
        deadline = None if timeout is None else time.monotonic() + timeout
        gone_since = None
        while True:
            if self._connected.is_set():
                return True
            if self.gone:  # the reconnect task may not have started yet: allow a grace
                gone_since = gone_since or time.monotonic()
                if self._closed or time.monotonic() - gone_since > 1.0:
                    return False
            else:
                gone_since = None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._connected.wait(0.2 if left is None else min(0.2, left))

    # ---------------------------------------------------------------- requests

    def call(self, query: QueryName | str, data: Mapping[str, Any] | None = None, /, *,
             timeout: float | None = None, **fields: Any) -> dict:
        """Run ``queries.<query>`` and return the response ``data``.

        Fields come as keyword arguments (``call("get-property", propertyId=3)``)
        or as a dict, e.g. one typed with :mod:`propsec.client_types`
        (``AddAlertRequest``). Raises the :class:`PropsecError` subclass of the error code.
        """
        name = query if query.startswith(QUERY_PREFIX) else QUERY_PREFIX + query
        payload = dict(data or {})
        payload.update(fields)
        return self.request(name, payload, timeout=timeout)

    def session(self, timeout: float | None = None) -> dict:
        """The connected user, ``{id, fullName, role}``."""
        return self.request("session", {}, timeout=timeout).get("user") or {}

    def request(self, event: str, data: Any = None, *, timeout: float | None = None) -> dict:
        """Emit any event name with an ack and unwrap the envelope (low level)."""
        envelope = self.raw_request(event, data, timeout=timeout)
        return unwrap(envelope)

    def raw_request(self, event: str, data: Any = None, *, timeout: float | None = None,
                    on_ack: Callable[[Any], None] | None = None) -> Any:
        """Emit ``event`` and return the acknowledgement as received (no unwrapping).

        While the client is reconnecting this waits (within ``timeout``) for
        the connection to come back before sending. ``on_ack`` (internal) runs
        on the socket thread when the answer arrives.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self._closed:
            raise Disconnected(message="client is closed")
        if not self._await_connection(timeout):
            state = "closed" if self.gone else "reconnecting"
            raise Disconnected(message=f"not connected ({self._connect_error or state})")
        done = threading.Event()
        box: list = []

        def ack(*args):
            envelope = args[0] if args else None
            if on_ack is not None:
                on_ack(envelope)
            if not box:
                box.append(envelope)
            done.set()

        with self._lock:
            key = next(self._pending_ids)
            self._pending[key] = [box, done]
        try:
            try:
                with self._emit_lock:
                    self._sio.emit(event, data, namespace=self.namespace, callback=ack)
            except socketio.exceptions.BadNamespaceError:
                raise Disconnected(message="connection dropped before sending") from None
            if not done.wait(max(0.0, deadline - time.monotonic())):
                raise RequestTimeout(message=f"no answer to {event} within {timeout:g}s")
        finally:
            with self._lock:
                self._pending.pop(key, None)
        if box and box[0] is _DISCONNECTED:
            raise Disconnected(message=f"connection dropped while waiting for {event}")
        return box[0] if box else None

    # ------------------------------------------------------------ subscriptions

    def subscribe(self, event: str, handler: Callable[[dict], Any], since: int | None = None,
                  *, timeout: float | None = None) -> dict:
        """Call ``handler(payload)`` for every ``event`` (e.g. ``"events.alerts"``).

        With ``since`` the server first replays the events after that id. The
        SDK resubscribes after each reconnect from the last id it delivered,
        and hands each event id to the handlers at most once, in increasing
        order. Returns the subscribe status data (``replayed`` etc.) when
        connected; when not yet connected the subscription is sent on connect.
        """
        with self._lock:
            sub = self._subs.get(event)
            if sub is not None:
                sub.handlers.append(handler)
                return {"message": "already subscribed", "replayed": 0}
            sub = self._subs[event] = _Subscription(event, since)
            sub.handlers.append(handler)
        if not self.connected:
            return {"message": "will subscribe on connect", "replayed": 0}
        try:
            result = self._send_subscribe(sub, wait=True, timeout=timeout)
        except PropsecError:
            with self._lock:
                if self._subs.get(event) is sub:
                    del self._subs[event]
            raise
        if sub.last_id is None:
            self._set_baseline(sub, result, timeout)
        return result

    def unsubscribe(self, event: str, *, timeout: float | None = None) -> None:
        """Stop receiving ``event`` (drops every handler of it)."""
        with self._lock:
            sub = self._subs.pop(event, None)
        if sub is not None and self.connected:
            try:
                self.request("unsubscribe", {"id": event}, timeout=timeout)
            except Disconnected:
                pass

    def last_event_id(self, event: str) -> int | None:
        """The last event id delivered (or ``since``) for a subscription."""
        sub = self._subs.get(event)
        return sub.last_id if sub else None

    def replayed(self, event: str) -> int:
        """How many events the server replayed to this subscription so far."""
        sub = self._subs.get(event)
        return sub.replayed if sub else 0

    # ------------------------------------------------------------------ internals

    def _auth(self) -> dict:
        return {"token": self.token}

    def _send_subscribe(self, sub: _Subscription, *, wait: bool, timeout: float | None = None):
        """Emit ``subscribe``; events for ``sub`` are held until the ack arrives."""
        with self._lock:
            sub.generation += 1
            generation = sub.generation
            sub.buffering = True
            payload: dict = {"id": sub.event}
            since = sub.last_id if sub.last_id is not None else sub.baseline
            if since is not None:
                payload["since"] = since

        def ack(envelope: Any = None, *_: Any) -> None:
            self._finish_subscribe(sub, generation, envelope)

        if not wait:
            with self._emit_lock:
                self._sio.emit("subscribe", payload, namespace=self.namespace, callback=ack)
            return None
        try:
            envelope = self.raw_request("subscribe", payload, timeout=timeout, on_ack=ack)
        except Disconnected:
            if self._closed:
                raise
            return {"message": "disconnected; will resubscribe on reconnect", "replayed": 0}
        return unwrap(envelope)

    def _finish_subscribe(self, sub: _Subscription, generation: int, envelope: Any) -> None:
        with self._lock:
            if generation != sub.generation:
                return
            sub.buffering = False
            held, sub.buffer = sub.buffer, []
            if isinstance(envelope, dict) and envelope.get("type") != "error":
                data = envelope.get("data") or {}
                replayed = data.get("replayed") if isinstance(data, dict) else None
                if isinstance(replayed, int):
                    sub.replayed += replayed
            elif self._subs.get(sub.event) is sub and self._ever_connected and self.reconnects:
                log.warning("resubscribe to %s failed: %r", sub.event, envelope)
            held.sort(key=lambda p: (_event_id(p) is None, _event_id(p) or 0))
            for payload in held:
                self._deliver(sub, payload)

    def _set_baseline(self, sub: _Subscription, result: dict, timeout: float | None) -> None:
        """Find the newest event id now, so a reconnect replays only newer ones."""
        for key in ("lastEventId", "latestEventId"):
            if isinstance(result.get(key), int):
                sub.baseline = result[key]
                return
        try:
            sub.baseline = self._newest_event_id(timeout)
        except PropsecError as exc:
            log.debug("could not find the newest event id: %s", exc)

    def _newest_event_id(self, timeout: float | None) -> int:
        """Largest visible event id, by bisection over ``get-events`` with ``since``."""

        def first_after(since: int) -> int | None:
            events = self.call("get-events", since=since, limit=1, timeout=timeout).get("events") or []
            ids = [_event_id(e) for e in events]
            ids = [i for i in ids if i is not None]
            return max(ids) if ids else None

        found = first_after(0)
        if found is None:
            return 0
        lo, hi = found, max(found * 2, found + 1)  # invariant: an event > lo-1 exists at lo
        while True:
            nxt = first_after(hi)
            if nxt is None:
                break
            lo, hi = nxt, max(nxt * 2, nxt + 1)
        # an event with id lo exists; none has an id > hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            nxt = first_after(mid)
            if nxt is None:
                hi = mid
            else:
                lo = nxt
        if first_after(lo) is None:
            return lo
        return hi

    def _deliver(self, sub: _Subscription, payload: Any) -> None:
        """Queue ``payload`` for the handlers unless its id was already delivered."""
        eid = _event_id(payload)
        if eid is not None:
            if sub.last_id is not None and eid <= sub.last_id:
                return
            sub.last_id = eid
        for handler in list(sub.handlers):
            self._queue.put((handler, payload))

    # -- socket.io callbacks (run on the socket's read thread: never block here)

    def _on_final_disconnect(self) -> None:
        self._given_up = True

    def _on_connect(self) -> None:
        self._given_up = False
        reconnect = self._ever_connected
        self._ever_connected = True
        self._connect_error = None
        if reconnect:
            self.reconnects += 1
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            try:
                self._send_subscribe(sub, wait=False)
            except Exception:  # pragma: no cover - connection dropped again
                log.warning("could not resubscribe to %s", sub.event, exc_info=True)
        self._connected.set()

    def _on_disconnect(self, reason: Any = None) -> None:
        self._connected.clear()
        self._fail_pending()
        with self._lock:
            for sub in self._subs.values():
                sub.generation += 1
                sub.buffering = False
                held, sub.buffer = sub.buffer, []
                held.sort(key=lambda p: (_event_id(p) is None, _event_id(p) or 0))
                for payload in held:
                    self._deliver(sub, payload)

    def _on_connect_error(self, data: Any = None, *args: Any) -> None:
        if isinstance(data, dict):  # a CONNECT_ERROR packet: the namespace refused us
            self._refused = True
            message = str(data.get("message") or data)
        else:  # the transport failed (server down, HTTP error)
            message = str(data)
        self._connect_error = message
        if self._ever_connected and not self._closed:
            auth_problem = "auth" in message.lower()
            log.log(logging.WARNING if auth_problem else logging.DEBUG, "propsec reconnect failed: %s", message)

    def _on_event(self, event: str, *args: Any) -> None:
        payload = args[0] if args else None
        with self._lock:
            sub = self._subs.get(event)
            if sub is None:
                return
            if sub.buffering:
                sub.buffer.append(payload)
            else:
                self._deliver(sub, payload)

    def _fail_pending(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        for box, done in pending:
            if not box:
                box.append(_DISCONNECTED)
            done.set()

    # -- handler thread

    def _start_dispatcher(self) -> None:
        if self._dispatcher is None or not self._dispatcher.is_alive():
            self._queue = queue.Queue()
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, args=(self._queue,), name="propsec-client-handlers", daemon=True
            )
            self._dispatcher.start()

    def _stop_dispatcher(self) -> None:
        thread = self._dispatcher
        if thread is None:
            return
        self._queue.put((_STOP, None))
        if thread is not threading.current_thread():
            thread.join(timeout=5)
        self._dispatcher = None

    @staticmethod
    def _dispatch_loop(q: queue.Queue) -> None:
        while True:
            handler, payload = q.get()
            if handler is _STOP:
                return
            try:
                handler(payload)
            except Exception:
                log.exception("propsec event handler failed")
