"""allowed users' schedules: weekly windows and an end date (contract section 14)

Revision ID: c3f8a2d6e714
Revises: b7e1f0c4d2a8
Create Date: 2026-12-01 21:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


revision = 'c3f8a2d6e714'
down_revision = 'b7e1f0c4d2a8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('allowed_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('valid_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('allowed_users', schema=None) as batch_op:
        batch_op.drop_column('valid_until')
        batch_op.drop_column('schedule')
