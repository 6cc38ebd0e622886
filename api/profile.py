"""A member's profile: value tier and segment, favourite categories, purchase counts, and what their
latest campaign planned for them (edition, reason, expected profit) with their value then — read
from the stored contact (:func:`recsys.storage.contacts.member_plan`), never recomputed."""

from __future__ import annotations

from sqlalchemy import Connection

from api.schemas import (
    AutoshipCountsPublic,
    CategoryCountPublic,
    MemberMailingPublic,
    MemberPersonalPublic,
    MemberProfilePublic,
    MemberValuePublic,
    PurchaseCountsPublic,
    SegmentPublic,
)
from catalog.period import Quarter
from recsys.errors import UnknownMemberError
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db
from recsys.storage import segments as segments_db


def member_mailing(
    connection: Connection, member_key: int, horizon_days: int
) -> tuple[MemberValuePublic | None, MemberMailingPublic | None]:
    """The member's value and planned edition, from their contact in the latest campaign."""
    plan = contacts_db.member_plan(connection, member_key)
    if plan is None:
        return None, None
    planned = plan.arm in ("mailed", "holdout")
    mailing = MemberMailingPublic(
        campaign=plan.campaign, quarter=plan.quarter, in_home_date=plan.in_home_date, arm=plan.arm,
        edition_kind=plan.edition_kind if planned else None, edition=plan.edition_code if planned else None,
        key_code=plan.key_code if plan.arm == "mailed" else None, reason=plan.reason,
        expected_profit=plan.expected_profit, planned_by_profit=plan.expected_profit is not None,
    )  # fmt: skip
    value = None
    if plan.p_alive is not None and plan.expected_purchases is not None and plan.expected_value is not None:
        value = MemberValuePublic(
            p_alive=plan.p_alive, expected_purchases=plan.expected_purchases, expected_value=plan.expected_value,
            horizon_days=horizon_days, as_of=Quarter.parse(plan.quarter).start if plan.quarter else None,
            campaign=plan.campaign,
        )  # fmt: skip
    return value, mailing


def member_profile(
    connection: Connection, member_id: str, *, personal: bool, top: int, horizon_days: int = 365
) -> MemberProfilePublic:
    """The profile; ``personal`` adds name and address (admin callers only); ``horizon_days``: the
    value horizon the plans are made with (``mailing.value_horizon_days``)."""
    member = members_db.find_member(connection, member_id)
    if member is None:
        raise UnknownMemberError(f"unknown member {member_id!r}: check the member id")
    segment = segments_db.latest_segment(connection, member.key)
    summary = purchases_db.purchase_summary(connection, member.key)
    value, mailing = member_mailing(connection, member.key, horizon_days)
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
            autoship=AutoshipCountsPublic(
                lines=summary.autoship_lines, units_shipped=summary.autoship_units,
                units_returned=summary.autoship_units_returned, spent=float(summary.autoship_spent),
            ) if summary.autoship_lines else None,
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
        value=value,
        mailing=mailing,
    )
