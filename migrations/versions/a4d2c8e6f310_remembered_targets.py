"""remembered targets: a PostgreSQL group that used what its process remembers of its
targets has the database confirm it, in the group's COMMIT round trip

Revision ID: a4d2c8e6f310
Revises: f2b6d8e4a1c3
Create Date: 2026-12-07 11:00:00.000000

propsec_target_changed(property_id) raises SQLSTATE PS409, which aborts the transaction it
is called in: the group's check (propsec/protocol/targets.py) calls it for a target whose
row, or a row looked up at it, is no longer what the process remembered, and the group runs
again on what the database holds. SQLite groups read their targets every time; nothing to
add there.
"""
from alembic import op


revision = 'a4d2c8e6f310'
down_revision = 'f2b6d8e4a1c3'
branch_labels = None
depends_on = None

CHANGED = """
CREATE OR REPLACE FUNCTION propsec_target_changed(property_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'property % changed since its process read it', property_id
        USING ERRCODE = 'PS409';
END $$
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CHANGED)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS propsec_target_changed(bigint)")
