"""partial indexes on the auto-ship lines: the return test's probe, and a campaign's lines by line id

Revision ID: 0012_purchases_autoship_indexes
Revises: 0011_contact_titles_price
Create Date: 2026-12-01 07:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_purchases_autoship_indexes'
down_revision = '0011_contact_titles_price'
branch_labels = None
depends_on = None

AUTOSHIP = sa.text("kind = 'autoship'")


def upgrade() -> None:
    # Partial: only the auto-ship lines are in them (few beside the members' own orders), so
    # importing order lines costs nothing more; building them reads the table once.
    # (member_key, title_key, purchased_at): "is this negative line the return of an auto-ship?"
    # (line_kinds.active_order_line), asked of every return the value model, the RFM and
    # the category units read.
    op.create_index('ix_purchases_autoship', 'purchases', ['member_key', 'title_key', 'purchased_at'], unique=False,
                    sqlite_where=AUTOSHIP, postgresql_where=AUTOSHIP)
    if op.get_bind().dialect.name == 'postgresql':
        # a campaign's auto-ship lines are a range of line ids in byte order; under a non-C
        # collation the unique index on line_id is in another order (LIKE 'prefix%' cannot use
        # it), so the range is read in "C" order from this one. SQLite compares text bytewise
        # (BINARY): its unique index on line_id serves the same range.
        op.create_index('ix_purchases_autoship_line_id', 'purchases', [sa.text('line_id COLLATE "C"')],
                        unique=False, postgresql_where=AUTOSHIP)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_purchases_autoship_line_id', table_name='purchases')
    op.drop_index('ix_purchases_autoship', table_name='purchases')
