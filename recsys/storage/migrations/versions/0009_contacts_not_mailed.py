"""contacts planned by expected profit: a 'not_mailed' arm (with its reason) and the expected profit

Revision ID: 0009_contacts_not_mailed
Revises: 0008_negative_option
Create Date: 2026-11-30 23:22:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_contacts_not_mailed'
down_revision = '0008_negative_option'
branch_labels = None
depends_on = None

OLD = "arm IN ('mailed', 'holdout', 'suppressed', 'web')"
NEW = "arm IN ('mailed', 'holdout', 'suppressed', 'web', 'not_mailed')"


def upgrade() -> None:
    with op.batch_alter_table('campaign_contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expected_profit', sa.Float(), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_campaign_contacts_arm'), type_='check')
        batch_op.create_check_constraint('arm', NEW)


def downgrade() -> None:
    with op.batch_alter_table('campaign_contacts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_campaign_contacts_arm'), type_='check')
        batch_op.create_check_constraint('arm', OLD)
        batch_op.drop_column('expected_profit')
