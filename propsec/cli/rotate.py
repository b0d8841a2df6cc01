"""Re-sealing stored secrets after a change of `PROPSEC_SECRET_KEY` (`rotate-secrets`).

Each secret the current key does not open yet is opened with a previous key and sealed
again with the current one, a batch per transaction, so a server running meanwhile keeps
working (it opens either form). Each row is written only if its secret is still the one
read (compare and set): a secret changed or removed meanwhile (a 2FA enrolment, a webhook
removed) is left as the server wrote it. A secret no known key opens is left as it is and
named (by webhook or user id); the command is safe to repeat. One audit entry records the
rotation."""
from __future__ import annotations

from sqlalchemy import select, update

from .. import audit
from ..extensions import db
from ..models import User, Webhook
from ..notify import secrets

BATCH = 500
# What holds a sealed secret: (label, model, column name).
SEALED = (("webhook secrets", Webhook, "secret"), ("two-factor secrets", User, "totp_secret"))


def rotate_secrets() -> tuple[dict[str, int], list[str]]:
    """(how many were sealed again, per kind; the ones no known key opens)."""
    done: dict[str, int] = {}
    unreadable: list[str] = []
    for label, model, column in SEALED:
        field = getattr(model, column)
        done[label], after = 0, None
        while True:
            query = select(model.id, field).where(field.is_not(None)).order_by(model.id)
            if after is not None:
                query = query.where(model.id > after)
            rows = db.session.execute(query.limit(BATCH)).all()
            for row_id, sealed in rows:
                if secrets.opens_with_current_key(sealed):
                    continue
                fresh = secrets.reseal(sealed)
                if fresh is None:
                    unreadable.append(f"{model.__tablename__} {row_id}")
                    continue
                done[label] += db.session.execute(
                    update(model).where(model.id == row_id, field == sealed)
                    .values({column: fresh})).rowcount
            db.session.commit()
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
    audit.record("rotate-secrets", actor=None, detail={**done, "unreadable": len(unreadable)})
    db.session.commit()
    return done, unreadable
