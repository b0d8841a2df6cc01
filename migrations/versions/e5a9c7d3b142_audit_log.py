"""audit log: every change and security event, chained by hash (contract section 16)

Revision ID: e5a9c7d3b142
Revises: adc1b6f19337
Create Date: 2026-12-01 21:40:00.000000

On PostgreSQL the id defaults to propsec_next_event_id() (migration 7c4e2f1a9b30), so that,
as for events, rows below propsec_event_horizon() are final and the seal chains them in id
order without ever meeting a late commit of a smaller id.
"""
import sqlalchemy as sa
from alembic import op

revision = 'e5a9c7d3b142'
down_revision = 'adc1b6f19337'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=True),
        sa.Column('action', sa.String(length=80), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=True),
        sa.Column('property_id', sa.Integer(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('hash', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_actor', ['actor', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_property_id', ['property_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_action', ['action', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log ALTER COLUMN id SET DEFAULT propsec_next_event_id()")
        op.execute("DROP SEQUENCE IF EXISTS audit_log_id_seq")


def downgrade():
    op.drop_table('audit_log')
