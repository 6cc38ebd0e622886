"""titles shown in each contact's edition (rotation, main selection)

Revision ID: 0007_contact_titles
Revises: 0006_matches_no_fks
Create Date: 2026-11-30 23:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_contact_titles'
down_revision = '0006_matches_no_fks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contact_titles',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('member_key', sa.Integer(), nullable=False),
    sa.Column('title_key', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.CheckConstraint("role IN ('main', 'pick')", name=op.f('ck_contact_titles_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_titles')),
    sa.UniqueConstraint('contact_id', 'title_key', name='contact_title')
    )
    with op.batch_alter_table('contact_titles', schema=None) as batch_op:
        batch_op.create_index('ix_contact_titles_campaign_id', ['campaign_id'], unique=False)
        batch_op.create_index('ix_contact_titles_member_key_campaign_id', ['member_key', 'campaign_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contact_titles', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_titles_member_key_campaign_id')
        batch_op.drop_index('ix_contact_titles_campaign_id')

    op.drop_table('contact_titles')
