"""A member's profile: value tier and segment, favourite categories, purchase counts."""

from __future__ import annotations

from sqlalchemy import Connection

from api.schemas import (
    CategoryCountPublic,
    MemberPersonalPublic,
    MemberProfilePublic,
    PurchaseCountsPublic,
    SegmentPublic,
)
from recsys.errors import UnknownMemberError
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db
from recsys.storage import segments as segments_db


def member_profile(
    connection: Connection, member_id: str, *, personal: bool, top: int
) -> MemberProfilePublic:
    """The profile; ``personal`` adds name and address (admin callers only)."""
    member = members_db.find_member(connection, member_id)
    if member is None:
        raise UnknownMemberError(f"unknown member {member_id!r}: check the member id")
    segment = segments_db.latest_segment(connection, member.key)
    summary = purchases_db.purchase_summary(connection, member.key)
    return MemberProfilePublic(
        member_id=member.member_id,
        status=member.status,
        value_tier=segment.tier if segment else None,
        segment=(
            SegmentPublic(quarter=segment.quarter, segment=segment.segment, name=segment.segment_name)
            if segment
            else None
        ),
        top_categories=[
            CategoryCountPublic(code=c.code, name=c.name, units=c.units)
            for c in purchases_db.top_categories(connection, member.key, top)
        ],
        declared_categories=members_db.declared_categories(connection, [member.member_id]).get(member.member_id, []),
        purchases=PurchaseCountsPublic(
            lines=summary.lines,
            orders=summary.orders,
            units_bought=summary.units_bought,
            units_returned=summary.units_returned,
            spent=float(summary.spent),
            first_purchase_at=summary.first_purchase_at,
            last_purchase_at=summary.last_purchase_at,
        ),
        personal=(
            MemberPersonalPublic(
                name=member.name,
                address=member.address,
                postcode=member.postcode,
                city=member.city,
                birth_year=member.birth_year,
                joined_on=member.joined_on,
                channel=member.channel,
            )
            if personal
            else None
        ),
    )
