"""contacts planned by expected profit carry the member's value: P(alive), expected purchases and value

Revision ID: 0010_contacts_member_value
Revises: 0009_contacts_not_mailed
Create Date: 2026-11-30 23:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_contacts_member_value'
down_revision = '0009_contacts_not_mailed'
branch_labels = None
depends_on = None

COLUMNS = ('p_alive', 'expected_purchases', 'expected_value')


def upgrade() -> None:
    # nullable, no default: neither database rewrites the table
    for name in COLUMNS:
        op.add_column('campaign_contacts', sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaign_contacts', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
