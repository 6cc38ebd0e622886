"""suppression list

Revision ID: 0004_suppressions
Revises: 0003_campaigns
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004_suppressions'
down_revision = '0003_campaigns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('suppressions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('member_key', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("reason IN ('deceased', 'moved', 'do_not_mail', 'do_not_email', 'bad_address')", name=op.f('ck_suppressions_reason')),
    sa.CheckConstraint("scope IN ('post', 'email', 'all')", name=op.f('ck_suppressions_scope')),
    sa.ForeignKeyConstraint(['member_key'], ['members.id'], name=op.f('fk_suppressions_member_key_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('member_key', 'reason', 'starts_on', name='member_reason_start')
    )
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppressions_member_key'), ['member_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppressions_member_key'))

    op.drop_table('suppressions')
