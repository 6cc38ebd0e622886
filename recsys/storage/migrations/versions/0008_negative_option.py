"""negative option: order line kinds (order, autoship) and members' replies to the main selection

Revision ID: 0008_negative_option
Revises: 0007_contact_titles
Create Date: 2026-11-30 23:21:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_negative_option'
down_revision = '0007_contact_titles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a constant default: PostgreSQL adds the column without rewriting the table; no CHECK
    # (SQLite would rebuild a 20M-row table for it) — the kind is checked in code
    op.add_column('purchases', sa.Column('kind', sa.String(length=8), server_default='order', nullable=False))
    op.create_table('selection_replies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('member_key', sa.Integer(), nullable=False),
    sa.Column('reply', sa.String(length=8), nullable=False),
    sa.Column('replied_at', sa.DateTime(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.CheckConstraint("reply IN ('declined')", name=op.f('ck_selection_replies_reply')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_selection_replies_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_key'], ['members.id'], name=op.f('fk_selection_replies_member_key_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_selection_replies')),
    sa.UniqueConstraint('campaign_id', 'member_key', name='campaign_member')
    )


def downgrade() -> None:
    op.drop_table('selection_replies')
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.drop_column('kind')
