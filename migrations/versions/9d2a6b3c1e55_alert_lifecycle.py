"""alert lifecycle: severity, state, assignee, resolution, escalation level (contract 13)

Revision ID: 9d2a6b3c1e55
Revises: 7c4e2f1a9b30
Create Date: 2026-12-01 19:45:00.000000

Existing alerts become `high` (severity 2), and `acknowledged` where they were.
"""
import sqlalchemy as sa
from alembic import op


revision = '9d2a6b3c1e55'
down_revision = '7c4e2f1a9b30'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('severity', sa.Integer(), nullable=False,
                                      server_default='2'))
        batch_op.add_column(sa.Column('state', sa.String(length=16), nullable=False,
                                      server_default='open'))
        batch_op.add_column(sa.Column('assignee', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_alerts_state_property', ['state', 'property_id'],
                              unique=False)
    op.execute("UPDATE alerts SET state = 'acknowledged' WHERE acknowledged_by IS NOT NULL")


def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_state_property')
        for column in ('escalated_at', 'escalation_level', 'note', 'resolved_at', 'resolved_by', 'assignee',
                       'state', 'severity'):
            batch_op.drop_column(column)
