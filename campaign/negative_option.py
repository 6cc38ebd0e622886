"""The negative option: the main selection sent, and billed, to a member who neither ordered nor declined it.

A club may run it (``CampaignSettings.negative_option``, off by default). Each mailed member's
edition features a main selection with a reply deadline printed on the order form:
``reply_days`` after the contact's in-home date. After the deadline, a member who

- was mailed the campaign's edition (held-out members get nothing: no edition, no auto-ship),
- has a main selection recorded for that edition,
- had the edition in home at least ``negative_option_notice_days`` before the deadline (the
  deadline is the in-home date + ``reply_days``, so this holds for everyone exactly when
  ``reply_days`` ≥ the notice days — the settings refuse the negative option otherwise; the
  ``notice_too_short`` reason stays for settings built without validation),
- did not decline it (``selection_replies``) and did not order it,

is sent the title, one unit at its price: an **auto-ship** order line. :func:`decide_autoships`
is the pure decision — every member gets a reason, counted per reason (:data:`REASONS`);
:func:`run_autoship` reads the facts, decides and writes the lines (idempotent: a member is
shipped at most once per campaign); :func:`decline` records a member's "no". The CLI
(``bookclub campaigns decline|autoship``) calls these two.

Days and time zones. The deadline, the in-home date and the shipping day (``as_of``) are
calendar days of the club, in its time zone (``CampaignSettings.timezone``, an IANA name;
UTC unless set): the date printed on the order form is a local date, and "replies on that day
still count" means until midnight there. A reply's ``replied_at`` and an order line's
``purchased_at`` are stored as naive UTC timestamps (like every stored timestamp); each is
turned into the club's day (``CampaignSettings.club_date``) before it is compared with the
deadline — comparing the UTC date instead would count a decline phoned in on the evening of
the deadline day in a zone behind UTC as late, and one made after local midnight in a zone
ahead of UTC as in time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from recsys.errors import BookclubError, UnknownMemberError
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import members as members_db
from recsys.storage import selections as selections_db
from recsys.storage.selections import AutoshipOrder, MailedSelection

__all__ = [
    "REASONS",
    "AutoshipDecision",
    "AutoshipRun",
    "DeclineResult",
    "NegativeOptionError",
    "decide_autoships",
    "decline",
    "run_autoship",
]

SHIP = "ship"
REASONS: tuple[str, ...] = (
    SHIP,
    "negative_option_off",  # the club does not run it
    "already_shipped",  # an earlier run sent it
    "no_main_selection",  # the edition recorded none
    "deadline_not_passed",  # this member's reply deadline is on or after the as-of date
    "notice_too_short",  # in home fewer than the notice days before the deadline
    "declined",  # declined by the deadline
    "declined_late",  # declined after the deadline, before the shipment: honoured
    "ordered",  # ordered the title between the in-home date and the deadline
    "ordered_late",  # ordered it after the deadline, before the shipment
    "owned",  # had ordered it before the edition came
    "member_closed",  # the membership is closed
    "out_of_stock",
    "no_price",
)
"""Every reason a mailed member gets, in the order they are checked (the first that applies)."""


class NegativeOptionError(BookclubError):
    """The negative option cannot run (off, or before the reply deadline)."""


@dataclass(frozen=True)
class AutoshipDecision:
    """What the negative option does with each mailed member of a campaign, as of a date."""

    as_of: dt.date
    reasons: dict[int, str]  # member key → a reason of REASONS
    orders: list[AutoshipOrder]  # the members to ship now

    def counts(self) -> dict[str, int]:
        """Members per reason, every reason listed (zeros included), in :data:`REASONS` order."""
        counted = Counter(self.reasons.values())
        return {reason: counted.get(reason, 0) for reason in REASONS}


def deadline(in_home: dt.date, settings: CampaignSettings) -> dt.date:
    """The reply deadline printed on the order form of an edition in home on ``in_home`` (replies
    on that day still count, until midnight in the club's time zone)."""
    return in_home + dt.timedelta(days=settings.reply_days)


def decide_autoships(
    mailed: Sequence[MailedSelection],
    *,
    declined_on: Mapping[int, dt.date],
    ordered_on: Mapping[int, Sequence[dt.date]],
    shipped: set[int] | frozenset[int],
    as_of: dt.date,
    settings: CampaignSettings,
) -> AutoshipDecision:
    """Who is sent the main selection on ``as_of`` and why not the others (pure).

    ``declined_on``: member key → the day the member declined; ``ordered_on``: member key → the
    days they ordered their main selection (before ``as_of``) — the club's days, like the deadline
    and ``as_of`` (module doc); ``shipped``: members an earlier
    run shipped. With the setting off nobody ships (every member ``negative_option_off``)."""
    reasons: dict[int, str] = {}
    orders: list[AutoshipOrder] = []
    for member in mailed:
        reason = _reason(member, declined_on.get(member.member_key), ordered_on.get(member.member_key, ()),
                         member.member_key in shipped, as_of, settings)
        reasons[member.member_key] = reason
        if reason == SHIP:
            assert member.title_key is not None and member.price is not None
            orders.append(AutoshipOrder(member.member_key, member.title_key, member.price, as_of))
    return AutoshipDecision(as_of=as_of, reasons=reasons, orders=orders)


def _reason(
    member: MailedSelection, declined: dt.date | None, ordered: Sequence[dt.date], shipped: bool,
    as_of: dt.date, settings: CampaignSettings,
) -> str:
    if not settings.negative_option:
        return "negative_option_off"
    if shipped:
        return "already_shipped"
    if member.title_key is None:
        return "no_main_selection"
    due = deadline(member.in_home, settings)
    if as_of <= due:
        return "deadline_not_passed"
    if (due - member.in_home).days < settings.negative_option_notice_days:
        return "notice_too_short"
    if declined is not None:
        return "declined" if declined <= due else "declined_late"
    if any(member.in_home <= day <= due for day in ordered):
        return "ordered"
    if any(day > due for day in ordered):
        return "ordered_late"
    if ordered:
        return "owned"
    if member.member_status == "closed":
        return "member_closed"
    if not member.in_stock:
        return "out_of_stock"
    if member.price is None or member.price <= 0:
        return "no_price"
    return SHIP


@dataclass(frozen=True)
class AutoshipRun:
    """One run of the negative option over a campaign."""

    campaign: campaigns_db.CampaignRecord
    decision: AutoshipDecision
    written: int  # lines written by this run (0 on a dry run)
    dry_run: bool

    @property
    def revenue(self) -> float:
        return float(sum(o.unit_price for o in self.decision.orders))

    def summary(self) -> str:
        counts = self.decision.counts()
        verb = "would ship" if self.dry_run else "shipped"
        parts = ", ".join(f"{reason} {n:,}" for reason, n in counts.items() if n and reason != SHIP)
        return (
            f"negative option {self.campaign.name} as of {self.decision.as_of}: {verb} "
            f"{len(self.decision.orders):,} main selection(s) ({self.revenue:,.2f} billed)"
            + ("" if self.dry_run else f", {self.written:,} line(s) written")
            + f" of {len(self.decision.reasons):,} mailed member(s)"
            + (f"; not shipped: {parts}" if parts else "")
        )


def run_autoship(
    connection: Connection,
    ref: str | int,
    settings: CampaignSettings,
    *,
    as_of: dt.date,
    dry_run: bool = False,
) -> AutoshipRun:
    """Ship the campaign's main selections due as of ``as_of`` (its name or id; a day of the club's
    calendar, module doc), in the caller's transaction; :class:`NegativeOptionError` when the setting
    is off or no reply deadline has passed."""
    campaign = campaigns_db.find_campaign(connection, ref)
    if not settings.negative_option:
        raise NegativeOptionError(
            "the negative option is off (set BOOKCLUB_CAMPAIGN__NEGATIVE_OPTION=true to send unanswered main "
            "selections): nothing shipped"
        )
    mailed = selections_db.mailed_selections(connection, campaign.id, campaign.in_home_date)
    first_due = min((deadline(m.in_home, settings) for m in mailed), default=deadline(campaign.in_home_date, settings))
    if as_of <= first_due:
        raise NegativeOptionError(
            f"campaign {campaign.name}'s reply deadline is {first_due}: nothing ships before "
            f"{first_due + dt.timedelta(days=1)} (as of {as_of})"
        )
    replies = selections_db.replies(connection, campaign.id)
    # stored UTC timestamps → the club's days, the deadline's calendar (module doc)
    orders = selections_db.main_title_order_times(
        connection, campaign.id, settings.club_day_start(as_of + dt.timedelta(days=1))
    )
    decision = decide_autoships(
        mailed,
        declined_on={k: settings.club_date(r.replied_at) for k, r in replies.items()},
        ordered_on={k: [settings.club_date(at) for at in times] for k, times in orders.items()},
        shipped=selections_db.shipped_member_keys(connection, campaign.id),
        as_of=as_of,
        settings=settings,
    )
    written = 0 if dry_run else selections_db.write_autoships(connection, campaign.id, decision.orders)
    return AutoshipRun(campaign=campaign, decision=decision, written=written, dry_run=dry_run)


@dataclass(frozen=True)
class DeclineResult:
    campaign: campaigns_db.CampaignRecord
    member_id: str
    recorded: bool  # False: the member had declined before (the first reply is kept)
    replied_at: dt.datetime
    after_deadline: bool

    def summary(self) -> str:
        if not self.recorded:
            return f"member {self.member_id} had already declined campaign {self.campaign.name}'s main selection"
        late = " (after the reply deadline: still honoured if nothing was shipped yet)" if self.after_deadline else ""
        return f"member {self.member_id} declined campaign {self.campaign.name}'s main selection{late}"


def decline(
    connection: Connection,
    ref: str | int,
    member_id: str,
    settings: CampaignSettings,
    *,
    source: str,
    at: dt.datetime,
) -> DeclineResult:
    """Record that ``member_id`` declined the main selection of campaign ``ref`` (in the caller's transaction).

    ``at`` is when the reply came: naive UTC (as stored), or aware in any zone (converted to UTC).
    Whether it came after the deadline is asked on the club's calendar (module doc)."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    campaign = campaigns_db.find_campaign(connection, ref)
    member = members_db.find_member(connection, member_id)
    if member is None:
        raise UnknownMemberError(f"no member {member_id!r}")
    if not source.strip():
        raise BookclubError("--source is empty: say where the reply came from (phone, web, card, ...)")
    mailed = selections_db.mailed_selections(connection, campaign.id, campaign.in_home_date, member_key=member.key)
    if not mailed:
        raise BookclubError(f"member {member_id} was not mailed campaign {campaign.name}'s edition: nothing to decline")
    recorded = selections_db.record_decline(
        connection, campaign.id, member.key, replied_at=at, source=source.strip()
    )
    return DeclineResult(
        campaign=campaign, member_id=member_id, recorded=recorded, replied_at=at,
        after_deadline=settings.club_date(at) > deadline(mailed[0].in_home, settings),
    )
