"""event log by time: on PostgreSQL a block-range (BRIN) index on event_log.created_at
instead of a b-tree

Revision ID: c6a1d9f3e257
Revises: b4f6e2a9c831
Create Date: 2026-12-08 01:55:00.000000

Rows are appended to the log in time order, so the pages of a range of times lie together:
a BRIN index (a summary per range of pages) finds them as well as a b-tree for what reads
the log by time (`prune-events`, the incident page's window), and a new row adds no entry
to it, where the b-tree took one per event on every write (docs/performance.md, W39).
SQLite has no BRIN; its b-tree stays.
"""
from alembic import op

revision = 'c6a1d9f3e257'
down_revision = 'b4f6e2a9c831'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index('ix_event_log_created_at', table_name='event_log')
    op.create_index('ix_event_log_created_at', 'event_log', ['created_at'],
                    postgresql_using='brin')


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index('ix_event_log_created_at', table_name='event_log')
    op.create_index('ix_event_log_created_at', 'event_log', ['created_at'])
