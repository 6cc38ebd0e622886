"""A small segmented club for the campaign tests: members, a title, segments and plans."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Connection, insert, select

from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage.bulk import bulk_insert
from recsys.storage.schema import Member, Purchase, Title

QUARTER = "2026Q4"
TIERS = ("core", "regular", "occasional", "lapsed")


def member_id(i: int) -> str:
    return f"M{i:06d}"


def insert_club(connection: Connection, members: int, *, segments: int = 4, quarter: str = QUARTER) -> None:
    """``members`` members (every 97th closed, every 89th without an address) in ``segments``
    segments and four tiers, one title T1 at 20.00, and a stored plan per segment."""
    bulk_insert(
        connection, Member.__tablename__, ("member_id", "name", "address", "status", "channel"),
        (
            (
                member_id(i), f"Member {i}", None if i % 89 == 5 else f"{i} Book Street",
                "closed" if i % 97 == 3 else "active", "mail",
            )
            for i in range(members)
        ),
    )
    connection.execute(insert(Title).values(title_id="T1", title="A book", price=Decimal("20.00"), in_stock=True))
    rows = [
        segments_db.MemberSegmentRow(member_id(i), TIERS[(i // segments) % 4], i % segments, 30, 2, 40.0 + i % 50)
        for i in range(members)
    ]
    segments_db.store_member_segments(connection, quarter, rows)
    segments_db.store_segment_profiles(
        connection, quarter,
        [(s, f"segment {s}", sum(1 for r in rows if r.segment == s), "{}", "v-test") for s in range(segments)],
    )
    for s in range(segments):
        plans_db.store_plan(connection, quarter, s, "v-test", f"hash{s}", "{}")


def segment_with_rfm(connection: Connection, members: int, quarter: str, segments: int = 4) -> None:
    """Segment the first ``members`` members in ``quarter`` with R/F/M that vary from member to
    member (the uplift features need spread), tiers and segments as :func:`insert_club`."""
    rows = [
        segments_db.MemberSegmentRow(member_id(i), TIERS[(i // segments) % 4], i % segments, 30 + i % 200, 1 + i % 5,
                                     40.0 + i % 50)
        for i in range(members)
    ]  # fmt: skip
    segments_db.store_member_segments(connection, quarter, rows)
    segments_db.store_segment_profiles(
        connection, quarter, [(s, f"segment {s}", members // segments, "{}", "v") for s in range(segments)]
    )


def add_lines(connection: Connection, lines: list[tuple[str, str, dt.datetime, float, str | None]]) -> None:
    """Order lines (line_id, member_id, purchased_at, unit price, key code) of title T1, quantity 1."""
    keys = {m: k for m, k in connection.execute(select(Member.member_id, Member.id))}
    title_key = connection.execute(select(Title.id).where(Title.title_id == "T1")).scalar_one()
    bulk_insert(
        connection, Purchase.__tablename__,
        ("line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel", "key_code"),
        (
            (line_id, line_id, keys[mid], title_key, 1, Decimal(str(price)), at, "mail", code)
            for line_id, mid, at, price, code in lines
        ),
    )
