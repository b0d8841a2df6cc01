"""`flask --app app prune-events`: old events go, the last --keep-days stay (never fewer
than the contract's 7), and replay afterwards gives back exactly what was kept."""
from __future__ import annotations

from datetime import timedelta

from helpers import expect
from propsec.cli import PRUNE_BATCH
from propsec.extensions import db
from propsec.models import EventRecord
from propsec.models._common import utcnow


def add_events(app, ages_in_days: list[float], owner: str, property_id: int) -> list[int]:
    with app.app_context():
        records = [EventRecord(name="events.alerts", property_id=property_id, owner_id=owner,
                               payload={"propertyId": property_id, "reason": f"{age} days"},
                               created_at=utcnow() - timedelta(days=age))
                   for age in ages_in_days]
        db.session.add_all(records)
        db.session.commit()
        return [r.id for r in records]


def kept_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(db.select(EventRecord.id).order_by(EventRecord.id)))


def test_prune_events_keeps_the_last_days_and_replay_gives_them_back(app, site, connect):
    ids = add_events(app, [40, 31, 29.9, 8, 6.5, 0.01], "owner", site["p1"])
    result = app.test_cli_runner().invoke(args=["prune-events", "--keep-days", "30"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 event(s) older than 30 days" in result.output
    assert kept_ids(app) == ids[2:]

    client = connect("owner")
    status = expect(client.call("subscribe", id="events.alerts", since=0), "status", "replayed")
    assert status["replayed"] == 4
    replayed = [payload["eventId"] for _, payload in client.events("events.alerts")]
    assert replayed == ids[2:]


def test_prune_events_never_keeps_less_than_seven_days(app, site):
    ids = add_events(app, [8, 6.9], "owner", site["p1"])
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["prune-events", "--keep-days", "6"])
    assert refused.exit_code != 0 and "6 is not in the range x>=7" in refused.output
    assert kept_ids(app) == ids
    assert runner.invoke(args=["prune-events", "--keep-days", "7"]).exit_code == 0
    assert kept_ids(app) == ids[1:]


def test_prune_events_works_through_batches(app, site):
    add_events(app, [20] * (PRUNE_BATCH + 5) + [1], "owner", site["p1"])
    result = app.test_cli_runner().invoke(args=["prune-events", "--keep-days", "10"])
    assert result.exit_code == 0, result.output
    assert f"deleted {PRUNE_BATCH + 5:,} event(s)" in result.output
    assert len(kept_ids(app)) == 1
