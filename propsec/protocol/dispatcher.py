"""The one way a request flows: lookup → access → validation → handler in one
transaction → events logged in it → commit → acknowledgement envelope. The events reach
subscribers from the committed log (propsec/pipeline), never from here."""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from .. import audit, sql
from ..ops import logs, metrics
from ..extensions import db
from ..models.properties import PropertyShape
from . import envelopes, group_commit, targets
from .access import Principal, check_owner, check_role, check_self
from .errors import Conflict, InternalError, NotFound, ProtocolError, ValidationFailed
from ..pipeline import pipeline
from .events import PendingEvent
from .registry import Declaration, lookup, lookup_name
from .schemas import Payload

log = logging.getLogger("propsec.dispatch")


@dataclass
class Request:
    """What a handler gets besides its validated data."""

    user: Principal
    connection: object  # namespace.Connection; internal events use it
    # The target property's columns (targets.py), read in the transaction for writers.
    target: PropertyShape | None = None
    pending: list[PendingEvent] = field(default_factory=list)
    # From here on a failure is never retried: a commit began (it may have gone through), or
    # something was already sent to the client.
    settled: bool = False
    # The query's wire name as the client sent it (aliases included): the audit's action.
    action: str = ""
    # Work to do once the transaction has committed (and only then), e.g. cutting the
    # connections of a revoked token.
    on_commit: list = field(default_factory=list)
    # Ids reserved with the target (the declaration's `reserves`), by table name.
    reserved: dict = field(default_factory=dict)
    # Committed with a PostgreSQL commit group (the pipeline's tailer then follows the next).
    in_group: bool = False

    def after_commit(self, work) -> None:
        self.on_commit.append(work)

    def emit(self, event: str, prop: PropertyShape, **payload) -> None:
        """Record an event about `prop`; it is logged and pushed when the request commits."""
        self.pending.append(PendingEvent(event, prop.id, prop.owner_id, payload))


def validate(decl: Declaration, payload) -> Payload:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValidationFailed.on("data", "must be a JSON object")
    try:
        return decl.schema.model_validate(payload)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors(include_url=False, include_input=False):
            name = str(err["loc"][0]) if err["loc"] else "data"
            fields.setdefault(name, err["msg"].removeprefix("Value error, "))
        raise ValidationFailed(fields) from None


def load_target(decl: Declaration, request: Request, data: Payload) -> PropertyShape | None:
    property_id = decl.target_id(data)
    if property_id is None:
        return None
    user = request.user
    if decl.mutates:
        prop, request.reserved = targets.in_transaction(property_id, decl.lock, decl.reserves)
    else:
        prop = targets.snapshot(property_id)
    if prop is None:
        raise NotFound(f"property {property_id} not found")
    check_owner(decl.allow, user, prop.owner_id)
    if decl.mutates and prop.removed:
        raise Conflict(f"property {property_id} has been removed")
    return prop


def run(decl: Declaration, request: Request, payload) -> dict:
    check_role(decl.allow, request.user)
    data = validate(decl, payload)
    if decl.checks_self:
        check_self(decl.allow, request.user, data.userId)
    try:
        envelope = transaction(decl, request, data)
    except DBAPIError as exc:
        # A pooled connection lost before the commit (the database restarted since it was
        # last used): nothing happened, so the request runs once more on a fresh one.
        if not (exc.connection_invalidated and not request.settled):
            raise
        envelope = transaction(decl, request, data)
    if request.pending:
        pipeline().committed(in_group=request.in_group)
    for work in request.on_commit:
        work()
    return envelope


def transaction(decl: Declaration, request: Request, data: Payload) -> dict:
    """Load the target, run the handler, log its events and commit, all or nothing."""
    on_sqlite = decl.mutates and db.engine.dialect.name == "sqlite"
    if decl.mutates and decl.prepared and (on_sqlite or sql.batches(db.engine)):
        request.in_group = not on_sqlite
        return group_commit.groups.run(lambda: _work(decl, request, data),
                                       None if on_sqlite else _wanted(decl, data))
    with group_commit.TURN if on_sqlite else nullcontext(), sql.transaction(decl.prepared) as tx:
        envelope = _work(decl, request, data)
        tx.commit()
        return envelope


def _wanted(decl: Declaration, data: Payload) -> tuple | None:
    """What a PostgreSQL group reads for this request before it runs (targets.prefetch): its
    target, the ids it reserves, its lookups' values. Nothing for a target locked FOR
    UPDATE in the transaction, or one that takes a query of its own to find."""
    if not isinstance(decl.target, str) or decl.lock:
        return None
    values = ((lookup, getattr(data, lookup.field)) for lookup in decl.looks_up)
    return (decl.target_id(data), decl.reserves,
            tuple((lookup, value) for lookup, value in values if value is not None))


def _work(decl: Declaration, request: Request, data: Payload) -> dict:
    """A request's part of its transaction, up to the commit. (It may run again, in a new
    transaction, when a shared one was refused: it starts afresh.)"""
    request.pending, request.on_commit, request.reserved = [], [], {}
    request.target = load_target(decl, request, data)
    envelope = decl.handler(request, data)
    if decl.mutates:
        audit.for_query(request.action or decl.name, request.user.id,
                        data.model_dump(by_alias=True, mode="json"), envelope.get("data"),
                        request.target, getattr(request.connection, "address", None))
    if request.pending:
        pipeline().record(request.pending)
    request.settled = True
    return envelope


def _measure(query: str, outcome: str, seconds: float) -> None:
    metrics.child(metrics.requests, query, outcome).inc()
    metrics.child(metrics.request_duration, query).observe(seconds)


def dispatch(user: Principal, connection, event: str, payload) -> dict:
    """Answer one Socket.IO event with one envelope; never raises."""
    started = time.perf_counter()
    request_id = payload.get("requestIdentifier") if isinstance(payload, dict) else None
    # the wire name when declared (an alias stays an alias), else "unknown": the label of
    # the metrics and the logs (a client's own event name is never written out)
    known = lookup_name(event)
    context = logs.REQUEST.set((getattr(connection, "sid", "-"), user.id, known))
    try:
        connection.take_token()
        decl = lookup(event)
        envelope = run(decl, Request(user, connection, action=event), payload)
    except ProtocolError as exc:
        envelope = envelopes.error(exc)
    except IntegrityError:
        envelope = envelopes.error(Conflict("conflicts with a concurrent change; try again"))
    except OperationalError as exc:
        log.warning("database unavailable while answering %s: %s", event,
                    logs.failure_kind(exc))
        envelope = envelopes.error(InternalError("the database is unavailable; try again shortly"))
    except SQLAlchemyError as exc:
        log.error("database error while answering %s: %s", event, logs.failure_kind(exc))
        envelope = envelopes.error(InternalError())
    except Exception as exc:  # noqa: BLE001 - neither client nor log gets a traceback
        log.error("unexpected %s while answering %s", type(exc).__name__, event)
        envelope = envelopes.error(InternalError())
    finally:
        if db.session.registry.has():  # (a reading query may not have opened a session)
            db.session.remove()
    if request_id is not None and isinstance(request_id, (str, int)) and not isinstance(request_id, bool):
        envelope["requestIdentifier"] = request_id
    outcome = envelope["data"].get("code", "error") if envelope["type"] == "error" else "ok"
    seconds = time.perf_counter() - started
    _measure(known, outcome, seconds)
    if outcome != "ok" or log.isEnabledFor(logging.DEBUG):
        log.log(logging.INFO if outcome != "ok" else logging.DEBUG, "%s answered: %s", known,
                outcome, extra={"outcome": outcome, "ms": round(seconds * 1000, 2)})
    logs.REQUEST.reset(context)
    return envelope
