"""target row versions: whatever changes a row that a write looks up at its property gives
that property's row a new version, so that a remembered target is confirmed by comparing
one row version instead of digests of every row

Revision ID: d8b3f5a1c726
Revises: c9e4a7b2d815
Create Date: 2026-12-07 23:00:00.000000

A process remembers the property rows its PostgreSQL groups read, and the rows their lookups
found there (is this person on the property's allowed list, is this camera the property's);
the group's COMMIT round trip confirms them (propsec/protocol/target_memory.py). Until now it
compared an md5 of each row's text, target and lookups alike, at about 0.2 ms of the
database's time a group (docs/performance.md, fifteenth round). Now it compares the
property row's version, `xmin` and `ctid`: the transaction that wrote the version the
process read, and where that version lies. An UPDATE of the property writes a new version
(a new `xmin`, a new place), a DELETE leaves no row, and the triggers here give the
property a new version whenever one of its allowed users (any change) or one of its
cameras (added, removed, or its id, property or type changed) does, once per statement
and property, and every property does at a TRUNCATE of either table. The property's
columns and key are left as they are: no foreign key is checked again, and the writes that
refer to the property (their KEY SHARE locks) do not wait. What does wait: a change to an
allowed user or a camera takes the property's row lock (NO KEY UPDATE) until it commits,
so it waits for an edit of the property or a drone's dispatch there, and they for it.

SQLite groups read their targets every time; nothing to add there.
"""
from alembic import op


revision = 'd8b3f5a1c726'
down_revision = 'c9e4a7b2d815'
branch_labels = None
depends_on = None

# The properties that the changed rows belong to (before and after) get a new row version.
# Cameras only (type 1, `CAMERA` in propsec/models/equipment.py), and only when what the
# lookup reads of one changed (id, property, type): drones, alarms and scanners live in the
# same table, and a drone's dispatch locks its property before it updates the drone, so a
# trigger that locked the property after a drone's row could wait on a dispatch that waits
# on that drone. TRUNCATE has no transition tables: every property gets a new version.
TOUCH = """
CREATE OR REPLACE FUNCTION propsec_touch_targets() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE properties SET id = id;
    ELSIF TG_TABLE_NAME = 'allowed_users' THEN
        IF TG_OP = 'INSERT' THEN
            UPDATE properties SET id = id WHERE id IN (SELECT property_id FROM changed_after);
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE properties SET id = id WHERE id IN (SELECT property_id FROM changed_before);
        ELSE
            UPDATE properties SET id = id WHERE id IN (
                SELECT property_id FROM changed_after
                UNION SELECT property_id FROM changed_before);
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        UPDATE properties SET id = id
         WHERE id IN (SELECT property_id FROM changed_after WHERE type_id = 1);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE properties SET id = id
         WHERE id IN (SELECT property_id FROM changed_before WHERE type_id = 1);
    ELSE
        UPDATE properties SET id = id WHERE id IN (
            SELECT property_id FROM (SELECT id, property_id, type_id FROM changed_after
                                     EXCEPT SELECT id, property_id, type_id FROM changed_before) a
             WHERE type_id = 1
            UNION
            SELECT property_id FROM (SELECT id, property_id, type_id FROM changed_before
                                     EXCEPT SELECT id, property_id, type_id FROM changed_after) b
             WHERE type_id = 1);
    END IF;
    RETURN NULL;
END $$
"""

# One statement-level trigger per table and event (transition tables: once per statement,
# however many rows it changed).
TRIGGERS = [
    (table, event, referencing)
    for table in ("allowed_users", "equipment")
    for event, referencing in (
        ("INSERT", "REFERENCING NEW TABLE AS changed_after"),
        ("UPDATE", "REFERENCING OLD TABLE AS changed_before NEW TABLE AS changed_after"),
        ("DELETE", "REFERENCING OLD TABLE AS changed_before"),
        ("TRUNCATE", ""))
]


def _name(table: str, event: str) -> str:
    return f"propsec_touch_targets_{table}_{event.lower()}"


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(TOUCH)
    for table, event, referencing in TRIGGERS:
        op.execute(f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} "
                   f"{referencing} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION propsec_touch_targets()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, event, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {_name(table, event)} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS propsec_touch_targets()")
