"""audit seals: each entry's hash in a table of its own, written once by the seal; the
audit log's rows are never updated

Revision ID: b4f6e2a9c831
Revises: d8b3f5a1c726
Create Date: 2026-12-08 01:45:00.000000

The seal used to fill in `audit_log.hash` after each entry's commit. On PostgreSQL such an
UPDATE finds no room on the entry's page almost every time (94 % of them, measured under
the write benchmark), so it writes a whole new row version elsewhere, and an entry in each
of the table's four indexes again: about a fifth of the write path's log volume
(docs/performance.md, W38). An entry's hash is now a row of `audit_seals` (its id, its
hash), inserted once; what the hash means is unchanged (contract section 16). Existing
hashes move across.
"""
import sqlalchemy as sa
from alembic import op

revision = 'b4f6e2a9c831'
down_revision = 'd8b3f5a1c726'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_seals',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False,
                  autoincrement=False),  # (the entry's id: no sequence)
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.execute("INSERT INTO audit_seals (id, hash) SELECT id, hash FROM audit_log "
               "WHERE hash IS NOT NULL")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('hash')


def downgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    op.execute("UPDATE audit_log SET hash = (SELECT hash FROM audit_seals "
               "WHERE audit_seals.id = audit_log.id)")
    op.drop_table('audit_seals')
