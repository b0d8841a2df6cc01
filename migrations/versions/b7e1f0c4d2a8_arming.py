"""arming: every property is disarmed, home or away (contract section 14)

Revision ID: b7e1f0c4d2a8
Revises: 9d2a6b3c1e55
Create Date: 2026-12-01 20:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


revision = 'b7e1f0c4d2a8'
down_revision = '9d2a6b3c1e55'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('properties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('armed', sa.String(length=16), nullable=False,
                                      server_default='disarmed'))


def downgrade():
    with op.batch_alter_table('properties', schema=None) as batch_op:
        batch_op.drop_column('armed')
