"""Escalation of alerts nobody acknowledges (contract section 13).

An alert still `open` `PROPSEC_ESCALATION_SECONDS` after it was raised, or after its last
escalation, goes up one level (at most 3) and `events.alert-escalated` is logged. The
schedule is the alerts table itself (`timestamp`, `escalated_at`, `escalation_level`,
`state`), so it survives any process: every server process runs this worker, and whichever
finds a due alert first escalates it. A step reads only the due alerts, longest waiting
first, through a partial index (`ix_alerts_escalation_due`), however many stay open, at
most `BATCH` at a time; after a full batch the next follows at once.

What it guarantees: each level is reached exactly once. A step raises each due alert's
level with a conditional UPDATE (still open, still at the level it read) and logs the
event in the same transaction, so two processes never both escalate one level, a process
that dies mid-step escalates nothing (its transaction rolls back and another process finds
the alert due), and an alert acknowledged or resolved meanwhile is left alone. On
PostgreSQL the step reads the due alerts without a lock and raises them all with one
statement (`_RAISE_DUE`), which locks them first and passes over those another process is
raising; on SQLite, which has one writer, it raises them one by one in the session's
transaction."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import literal_column, select, text, update

from .. import sql
from ..extensions import db
from ..models import OPEN, SEVERITIES, Alert, Property
from ..models.activity import escalation_due, escalation_pending
from ..models._common import utcnow
from ..protocol import wirejson
from ..protocol.events import PendingEvent
from . import Worker

BATCH = 100
# Written as the partial index ix_alerts_escalation_due is (models/activity.py), with
# literals rather than parameters: a planner can only use a partial index for a query whose
# conditions it sees imply the index's, and SQLite cannot see that through a parameter.
_PENDING = text(escalation_pending("alerts"))
_DUE_AT = literal_column(escalation_due("alerts"))


def due_query(now):
    """The next alerts due at `now`, longest waiting first (read without a lock)."""
    wait = timedelta(seconds=current_app.config["PROPSEC_ESCALATION_SECONDS"])
    return (select(Alert.id, Alert.escalation_level, Alert.severity, Alert.property_id,
                   Property.owner_id)
            .join(Property, Property.id == Alert.property_id)
            .where(_PENDING, _DUE_AT <= now - wait)
            .order_by(_DUE_AT, Alert.id).limit(BATCH))


# PostgreSQL: the alerts found due are raised, and their events logged, by one statement
# in autocommit, so the transaction id it takes is held only while the database runs it. A
# transaction that locked the due alerts first, then raised them one round trip each, held
# back every tailer's delivery for as long as its busy process took to come back to it
# between round trips (docs/performance.md, W36). The alerts are locked first, skipping
# those another process is raising (two processes that read the same due alerts would
# otherwise lock them in different orders and deadlock, each holding its transaction id
# until PostgreSQL notices, a second later); an alert another process raised or resolved
# meanwhile no longer matches the conditions, and gets no event. Each is looked up by its
# id alone, the conditions checked once it is locked (`OFFSET 0` keeps the planner from
# moving them into the lookup): given `state = 'open'` with the ids, a planner with stale
# statistics went through every open alert instead (1.4-1.8 s with 42,000 of them in the
# benchmark, holding the horizon all along).
_RAISE_DUE = sql.Prepared(text(
    "WITH due AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:levels AS integer[]), "
    "CAST(:properties AS integer[]), CAST(:owners AS text[]), CAST(:payloads AS text[]), "
    "CAST(:ordinals AS integer[])) AS d(alert_id, level, property_id, owner_id, payload, ordinal)), "
    "mine AS (SELECT a.id FROM due CROSS JOIN LATERAL (SELECT id, state, escalation_level "
    "FROM alerts WHERE alerts.id = due.alert_id FOR UPDATE SKIP LOCKED OFFSET 0) AS a "
    "WHERE a.state = :open AND a.escalation_level = due.level), "
    "raised AS (UPDATE alerts SET escalation_level = alerts.escalation_level + 1, "
    "escalated_at = :now FROM mine WHERE alerts.id = mine.id RETURNING alerts.id), "
    "logged AS (INSERT INTO event_log (name, property_id, owner_id, payload, created_at) "
    "SELECT :event, due.property_id, due.owner_id, CAST(due.payload AS json), :now "
    "FROM due JOIN raised ON raised.id = due.alert_id ORDER BY due.ordinal RETURNING 1) "
    "SELECT count(*) FROM logged"))
ESCALATED = "events.alert-escalated"


def _escalated_payload(alert_id: int, level: int, severity: int, property_id: int) -> dict:
    return {"propertyId": property_id, "alertId": alert_id, "level": level + 1,
            "severity": SEVERITIES[severity]}


def escalate_due() -> int:
    """Escalate the alerts that are due now, at most `BATCH` of them (longest waiting
    first); returns how many were escalated."""
    return _escalate_batch()[0]


def _escalate_batch() -> tuple[int, bool]:
    """One batch: (how many were escalated, whether the batch was full, so more may be
    due)."""
    now = utcnow()
    rows = db.session.execute(due_query(now)).all()
    full = len(rows) == BATCH
    if sql.batches(db.engine):
        return _escalate_at_once(rows), full
    pending = []
    for alert_id, level, severity, property_id, owner_id in rows:
        changed = db.session.execute(
            update(Alert).where(Alert.id == alert_id, Alert.state == OPEN,
                                Alert.escalation_level == level)
            .values(escalation_level=level + 1, escalated_at=now)).rowcount
        if changed == 1:
            pending.append(PendingEvent(ESCALATED, property_id, owner_id, _escalated_payload(
                alert_id, level, severity, property_id)))
    from ..pipeline import pipeline

    if pending:
        pipeline().record(pending)
    db.session.commit()
    if pending:
        pipeline().committed()
    return len(pending), full


def _escalate_at_once(rows) -> int:
    """PostgreSQL: `rows`, read as due without a lock, raised in one statement."""
    db.session.rollback()
    if not rows:
        return 0
    now = utcnow()  # (the events' time: when they are written, not when the search began)
    with sql.autocommit() as cursor:
        raised = _RAISE_DUE.scalar(
            cursor, ids=[r[0] for r in rows], levels=[r[1] for r in rows],
            properties=[r[3] for r in rows], owners=[r[4] for r in rows],
            payloads=[wirejson.dumps(_escalated_payload(*r[:4])) for r in rows],
            ordinals=list(range(len(rows))), now=now, open=OPEN, event=ESCALATED)
    if raised:
        from ..pipeline import pipeline

        pipeline().committed()
    return raised


def _step() -> float:
    try:
        _, full = _escalate_batch()
    finally:
        db.session.remove()
    if full:
        # More may be due (a burst of alerts left unacknowledged): the next batch now, not
        # at the next look, which would raise at most BATCH alerts every 5 s.
        return 0
    # look again within a tenth of the wait (and at least every 5 s)
    return min(5.0, max(0.2, current_app.config["PROPSEC_ESCALATION_SECONDS"] / 10))


escalator = Worker("alert escalation", _step, poll=5.0)
