"""cursor moves: a background step moves its log cursor and writes its work in one
statement, holding a transaction id only while the database runs it

Revision ID: c9e4a7b2d815
Revises: a4d2c8e6f310
Create Date: 2026-12-07 14:20:00.000000

propsec_advance_cursor(name, from, to, writes) moves the log cursor `name` from `from` to
`to` and runs each of `writes` (SQL with its values written in), all in the one statement
that calls it; when the cursor is no longer at `from` (another process moved it first) it
writes nothing and answers false (propsec/background/cursors.py). SQLite's steps check the
cursor in their own transaction; nothing to add there.
"""
from alembic import op


revision = 'c9e4a7b2d815'
down_revision = 'a4d2c8e6f310'
branch_labels = None
depends_on = None

ADVANCE = """
CREATE OR REPLACE FUNCTION propsec_advance_cursor(cursor_name text, from_id bigint,
                                                  to_id bigint, writes text[])
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    statement text;
BEGIN
    UPDATE log_cursors SET last_id = to_id WHERE name = cursor_name AND last_id = from_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    FOREACH statement IN ARRAY writes LOOP
        EXECUTE statement;
    END LOOP;
    RETURN true;
END $$
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(ADVANCE)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS propsec_advance_cursor(text, bigint, bigint, text[])")
