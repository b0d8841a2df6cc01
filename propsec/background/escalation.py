"""Escalation of alerts nobody acknowledges (contract section 13).

An alert still `open` `PROPSEC_ESCALATION_SECONDS` after it was raised, or after its last
escalation, goes up one level (at most 3) and `events.alert-escalated` is logged. The
schedule is the alerts table itself (`timestamp`, `escalated_at`, `escalation_level`,
`state`), so it survives any process: every server process runs this worker, and whichever
finds a due alert first escalates it. A step reads only the due alerts, longest waiting
first, through a partial index (`ix_alerts_escalation_due`), however many stay open.

What it guarantees: each level is reached exactly once. A step claims the due alerts with
`FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer), raises each one's level with a
conditional UPDATE (still open, still at the level it read) and logs the event in the same
transaction, so two processes never both escalate one level, a process that dies mid-step
escalates nothing (its transaction rolls back and another process finds the alert due), and
an alert acknowledged or resolved meanwhile is left alone."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import literal_column, select, text, update

from ..extensions import db
from ..models import OPEN, SEVERITIES, Alert, Property
from ..models.activity import escalation_due, escalation_pending
from ..models._common import utcnow
from ..protocol.events import PendingEvent
from . import Worker

BATCH = 100
# Written as the partial index ix_alerts_escalation_due is (models/activity.py), with
# literals rather than parameters: a planner can only use a partial index for a query whose
# conditions it sees imply the index's, and SQLite cannot see that through a parameter.
_PENDING = text(escalation_pending("alerts"))
_DUE_AT = literal_column(escalation_due("alerts"))


def due_query(now):
    """The next alerts due at `now`, longest waiting first, claimed (PostgreSQL: rows
    another process is escalating are skipped)."""
    wait = timedelta(seconds=current_app.config["PROPSEC_ESCALATION_SECONDS"])
    due = (select(Alert.id, Alert.escalation_level, Alert.severity, Alert.property_id,
                  Property.owner_id)
           .join(Property, Property.id == Alert.property_id)
           .where(_PENDING, _DUE_AT <= now - wait)
           .order_by(_DUE_AT, Alert.id).limit(BATCH))
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(of=Alert, skip_locked=True)
    return due


def escalate_due() -> int:
    """Escalate every alert that is due now; returns how many were escalated."""
    now = utcnow()
    pending = []
    rows = db.session.execute(due_query(now)).all()
    for alert_id, level, severity, property_id, owner_id in rows:
        changed = db.session.execute(
            update(Alert).where(Alert.id == alert_id, Alert.state == OPEN,
                                Alert.escalation_level == level)
            .values(escalation_level=level + 1, escalated_at=now)).rowcount
        if changed == 1:
            pending.append(PendingEvent("events.alert-escalated", property_id, owner_id, {
                "propertyId": property_id, "alertId": alert_id, "level": level + 1,
                "severity": SEVERITIES[severity]}))
    from ..pipeline import pipeline

    if pending:
        pipeline().record(pending)
    db.session.commit()
    if pending:
        pipeline().committed()
    return len(pending)


def _step() -> float:
    try:
        escalate_due()
    finally:
        db.session.remove()
    # look again within a tenth of the wait (and at least every 5 s)
    return min(5.0, max(0.2, current_app.config["PROPSEC_ESCALATION_SECONDS"] / 10))


escalator = Worker("alert escalation", _step, poll=5.0)
