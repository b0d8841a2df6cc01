"""event ids by transaction: on PostgreSQL an event's id is its transaction's id and ordinal

Revision ID: 7c4e2f1a9b30
Revises: 5b1e0c2d9a47
Create Date: 2026-12-01 18:40:00.000000

A sequence hands out ids in insert order, but transactions commit in any order, so a reader
could see id 11 before a late commit of id 10. From here on the default of event_log.id is
propsec_next_event_id(): the writing transaction's xid8 shifted left by 16 bits, plus the
row's ordinal within the transaction (a transaction-local counter); propsec_event_horizon()
is pg_snapshot_xmin << 16, below which no row can appear any more (propsec/pipeline/log.py).
Both add propsec_event_id_offset() to the transaction id, 0 until a move to a new cluster
makes init_db raise it.
SQLite has one writer at a time; its rowids need no change.
"""
from alembic import op


revision = '7c4e2f1a9b30'
down_revision = '5b1e0c2d9a47'
branch_labels = None
depends_on = None

# The offset keeps ids growing across a move to a new cluster, whose transaction ids start
# again (a logical dump and restore): propsec.database.init_db raises it when needed.
OFFSET = """
CREATE OR REPLACE FUNCTION propsec_event_id_offset() RETURNS bigint
LANGUAGE sql STABLE AS 'SELECT 0::bigint'
"""

NEXT_EVENT_ID = """
CREATE OR REPLACE FUNCTION propsec_next_event_id() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer := coalesce(nullif(current_setting('propsec.event_ordinal', true), ''), '0')::integer;
BEGIN
    IF n >= 65536 THEN
        RAISE EXCEPTION 'more than 65536 events in one transaction';
    END IF;
    -- transaction-local: back to 0 at the next transaction (and undone with a savepoint)
    PERFORM set_config('propsec.event_ordinal', (n + 1)::text, true);
    RETURN ((pg_current_xact_id()::text::bigint + propsec_event_id_offset()) << 16) + n;
END $$
"""

# Below this id every row is final: no transaction that could still write one is running.
HORIZON = """
CREATE OR REPLACE FUNCTION propsec_event_horizon() RETURNS bigint
LANGUAGE sql STABLE AS
'SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint + propsec_event_id_offset()) << 16'
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(OFFSET)
    op.execute(NEXT_EVENT_ID)
    op.execute(HORIZON)
    # (Existing ids came from the sequence; init_db raises the offset if any is not below
    # the new ids.)
    op.execute("ALTER TABLE event_log ALTER COLUMN id SET DEFAULT propsec_next_event_id()")
    op.execute("DROP SEQUENCE IF EXISTS event_log_id_seq")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE event_log_id_seq OWNED BY event_log.id")
    op.execute("SELECT setval('event_log_id_seq', greatest((SELECT max(id) FROM event_log), 1))")
    op.execute("ALTER TABLE event_log ALTER COLUMN id SET DEFAULT nextval('event_log_id_seq')")
    op.execute("DROP FUNCTION IF EXISTS propsec_next_event_id()")
    op.execute("DROP FUNCTION IF EXISTS propsec_event_horizon()")
    op.execute("DROP FUNCTION IF EXISTS propsec_event_id_offset()")
