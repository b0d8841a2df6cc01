"""cursor moves: a background step moves its log cursor and writes its work in one round
trip, holding a transaction id only while the database runs it

Revision ID: c9e4a7b2d815
Revises: a4d2c8e6f310
Create Date: 2026-12-07 14:20:00.000000

propsec_move_cursor(name, from, to) moves the log cursor `name` from `from` to `to`, and
raises SQLSTATE PS410 when it is no longer at `from` (another process moved it first),
which aborts the transaction it is called in: the step's writes, sent after it in the same
round trip, are then not kept (propsec/background/cursors.py). SQLite's steps check the
cursor in their own transaction; nothing to add there.
"""
from alembic import op


revision = 'c9e4a7b2d815'
down_revision = 'a4d2c8e6f310'
branch_labels = None
depends_on = None

MOVE = """
CREATE OR REPLACE FUNCTION propsec_move_cursor(cursor_name text, from_id bigint, to_id bigint)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE log_cursors SET last_id = to_id WHERE name = cursor_name AND last_id = from_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cursor % is no longer at %', cursor_name, from_id
            USING ERRCODE = 'PS410';
    END IF;
    RETURN true;
END $$
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(MOVE)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS propsec_move_cursor(text, bigint, bigint)")
