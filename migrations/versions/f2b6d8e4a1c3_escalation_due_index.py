"""escalation due index: the escalation worker reads only alerts that are due

Revision ID: f2b6d8e4a1c3
Revises: 01f8d7be2f6d
Create Date: 2026-12-02 05:20:00.000000

A partial index on when each alert escalation may still raise (open, below the top level)
was raised or last escalated, then its id: the worker reads the due ones in that order,
longest waiting first; its scan used to read every open alert each time.
"""
from alembic import op
import sqlalchemy as sa


revision = 'f2b6d8e4a1c3'
down_revision = '01f8d7be2f6d'
branch_labels = None
depends_on = None

DUE = 'coalesce(escalated_at, "timestamp")'
PENDING = "state = 'open' AND escalation_level < 3"


def upgrade():
    op.create_index('ix_alerts_escalation_due', 'alerts', [sa.text(DUE), 'id'], unique=False,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade():
    op.drop_index('ix_alerts_escalation_due', table_name='alerts')
