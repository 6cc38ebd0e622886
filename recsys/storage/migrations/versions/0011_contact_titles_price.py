"""contact_titles carry the price the edition printed (the negative option bills it, not a later price)

Revision ID: 0011_contact_titles_price
Revises: 0010_contacts_member_value
Create Date: 2026-12-01 04:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_contact_titles_price'
down_revision = '0010_contacts_member_value'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: neither database rewrites the table; rows written before have none
    op.add_column('contact_titles', sa.Column('price', sa.Numeric(12, 2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('contact_titles', schema=None) as batch_op:
        batch_op.drop_column('price')
