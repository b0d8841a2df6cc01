"""property extent indexes: MAX(width) and MAX(height) bound get-map's index search

Revision ID: 5b1e0c2d9a47
Revises: 241549cdb38d
Create Date: 2026-11-28 03:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b1e0c2d9a47'
down_revision = '241549cdb38d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('properties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_properties_width'), ['width'], unique=False)
        batch_op.create_index(batch_op.f('ix_properties_height'), ['height'], unique=False)


def downgrade():
    with op.batch_alter_table('properties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_properties_height'))
        batch_op.drop_index(batch_op.f('ix_properties_width'))
