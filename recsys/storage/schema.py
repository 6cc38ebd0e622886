"""The data model: one schema for SQLite and PostgreSQL (SQLAlchemy 2.0 typed ORM).

Members and titles carry the club's own string ids (``member_id``, ``title_id``)
and an integer surrogate key (``id``) that purchases reference as
``member_key`` / ``title_key``: 20 million order lines stay small and the
training extract reads integers straight into numpy.

(Past 400 lines because every table lives in one metadata, with one naming convention, so that Alembic compares the whole schema at once.)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CHANNELS: tuple[str, ...] = ("mail", "phone", "sms", "email", "web", "shop")
MEMBER_STATUSES: tuple[str, ...] = ("active", "lapsed", "closed")
EDITION_KINDS: tuple[str, ...] = ("catalog", "postcard", "email", "web")
CONTACT_ARMS: tuple[str, ...] = ("mailed", "holdout", "suppressed", "web", "not_mailed")
ORDER_KINDS: tuple[str, ...] = ("order", "autoship")  # a member's own order; the main selection sent unasked (negative option)
SHOWN_ROLES: tuple[str, ...] = ("main", "pick")
SELECTION_REPLIES: tuple[str, ...] = ("declined",)
MATCH_KINDS: tuple[str, ...] = ("direct", "inferred", "unattributed")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite's INTEGER PRIMARY KEY is the rowid; BIGINT would not be. PostgreSQL gets BIGINT.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Category(Base):
    """A node of the club's category tree (the CLC by default)."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("categories.code"), index=True
    )
    level: Mapped[int] = mapped_column(SmallInteger)


class CategoryMapping(Base):
    """An outside label (a shop's genre, a publisher's subject) mapped onto a category."""

    __tablename__ = "category_mappings"

    scheme: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(255), primary_key=True)
    category_code: Mapped[str] = mapped_column(String(64), ForeignKey("categories.code"))


class Title(Base):
    __tablename__ = "titles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    publisher: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    published_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    in_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    blurb: Mapped[str | None] = mapped_column(Text)
    cover: Mapped[str | None] = mapped_column(Text)


class TitleCategory(Base):
    """A title's category codes; exactly one per title is primary."""

    __tablename__ = "title_categories"

    title_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("titles.id", ondelete="CASCADE"), primary_key=True
    )
    category_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("categories.code"), primary_key=True, index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("status", MEMBER_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    joined_on: Mapped[dt.date | None] = mapped_column(Date)
    channel: Mapped[str | None] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(Text)
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(8), default="active")


class Purchase(Base):
    """An order line. Returns and cancellations have a negative quantity."""

    __tablename__ = "purchases"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint("quantity <> 0", name="quantity_nonzero"),
        Index("ix_purchases_purchased_at", "purchased_at"),
        Index("ix_purchases_member_key_purchased_at", "member_key", "purchased_at"),
        Index("ix_purchases_title_key", "title_key"),
        # the auto-ship lines only (migration 0012): the return test of line_kinds.active_order_line;
        # PostgreSQL also has ix_purchases_autoship_line_id, (line_id COLLATE "C") on the same rows,
        # for a campaign's lines by line id prefix (selections)
        Index(
            "ix_purchases_autoship", "member_key", "title_key", "purchased_at",
            sqlite_where=text("kind = 'autoship'"), postgresql_where=text("kind = 'autoship'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    line_id: Mapped[str] = mapped_column(String(96), unique=True)
    order_id: Mapped[str | None] = mapped_column(String(64))
    member_key: Mapped[int] = mapped_column(Integer, ForeignKey("members.id"))
    title_key: Mapped[int] = mapped_column(Integer, ForeignKey("titles.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    purchased_at: Mapped[dt.datetime] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(8))
    # the key code on the order form (a campaign treatment's), for direct matchback
    key_code: Mapped[str | None] = mapped_column(String(32), index=True)
    # ``order`` (the member's own) or ``autoship`` (the main selection sent under the negative option);
    # checked in code, not by a constraint (adding one rewrites 20M rows on SQLite)
    kind: Mapped[str] = mapped_column(String(8), default="order", server_default="order")


class MemberCategory(Base):
    """Categories a member declared as favourites (used for cold start)."""

    __tablename__ = "member_categories"

    member_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    category_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("categories.code"), primary_key=True
    )


class ImportRun(Base):
    """One import, for the record: what file, what it counted."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    read: Mapped[int] = mapped_column(BigInteger)
    inserted: Mapped[int] = mapped_column(BigInteger)
    already_present: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)


class MemberSegment(Base):
    """A member's value tier and reading-preference segment in one quarter."""

    __tablename__ = "member_segments"
    __table_args__ = (Index("ix_member_segments_quarter_segment", "quarter", "segment"),)

    quarter: Mapped[str] = mapped_column(String(8), primary_key=True)
    member_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    tier: Mapped[str] = mapped_column(String(16))
    segment: Mapped[int] = mapped_column(SmallInteger)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer, default=0)
    monetary: Mapped[float] = mapped_column(Float, default=0.0)


class Segment(Base):
    """A quarter's reading-preference segment and its readable profile (JSON text)."""

    __tablename__ = "segments"

    quarter: Mapped[str] = mapped_column(String(8), primary_key=True)
    segment: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    profile_json: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))


class CatalogPlanRecord(Base):
    """A stored catalog plan (JSON text), reproducible from model version, quarter, settings."""

    __tablename__ = "catalog_plans"
    __table_args__ = (UniqueConstraint("quarter", "segment", name="quarter_segment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    quarter: Mapped[str] = mapped_column(String(8))
    segment: Mapped[int] = mapped_column(SmallInteger)
    model_version: Mapped[str] = mapped_column(String(64))
    settings_hash: Mapped[str] = mapped_column(String(64))
    plan_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ApiKey(Base):
    """An API key, stored as a hash; the key itself is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(8))
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Campaign(Base):
    """A mailing: a quarter's catalogs (named after the quarter) or an imported test (``hillstrom``).

    ``seed`` keys the holdout hash of (member id, campaign); the shares are what the
    assignment used (the universal holdout persists across campaigns).
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    quarter: Mapped[str | None] = mapped_column(String(8))
    in_home_date: Mapped[dt.date] = mapped_column(Date)
    response_days: Mapped[int] = mapped_column(Integer)
    late_days: Mapped[int] = mapped_column(Integer, default=0)
    holdout_share: Mapped[float] = mapped_column(Float)
    universal_holdout_share: Mapped[float] = mapped_column(Float, default=0.0)
    seed: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class CampaignEdition(Base):
    """What a campaign sends to one segment in one kind, with its costs per piece and lineage."""

    __tablename__ = "campaign_editions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "code", name="campaign_code"),
        CheckConstraint(_in("kind", EDITION_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    segment: Mapped[int | None] = mapped_column(SmallInteger)
    in_home_date: Mapped[dt.date] = mapped_column(Date)
    print_cost: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=0)
    paper_cost: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=0)
    postage_cost: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=0)
    other_cost: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=0)
    model_version: Mapped[str | None] = mapped_column(String(64))
    plan_id: Mapped[int | None] = mapped_column(Integer)  # catalog_plans.id when written (plans are replaced)
    plan_hash: Mapped[str | None] = mapped_column(String(64))  # the plan's settings_hash
    file: Mapped[str | None] = mapped_column(Text)  # the shared print file, under the catalogs folder


class CampaignTreatment(Base):
    """An arm of a campaign: an edition and the key code printed on its order form.

    A holdout arm of its own (Hillstrom's ``No E-Mail``) has no edition and no key code;
    treated arms name it as ``control_id``. Without a ``control_id`` a treatment is
    compared with its own holdout contacts. ``share`` is the arm's intended share of
    the members randomised (for the sample-ratio check), when the arms come from outside.
    """

    __tablename__ = "campaign_treatments"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="campaign_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"))
    edition_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("campaign_editions.id"))
    name: Mapped[str] = mapped_column(String(128))
    key_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    control_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("campaign_treatments.id"))
    share: Mapped[float | None] = mapped_column(Float)


class CampaignContact(Base):
    """One member × treatment × arm: mailed, held out on purpose, suppressed (with a reason),
    or a web edition fetched on demand; with the planned in-home date, the cost and the
    lineage (model version → plan → print file) that produced it."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_key", "treatment_id", "arm", name="member_arm"),
        CheckConstraint(_in("arm", CONTACT_ARMS), name="arm"),
        Index("ix_campaign_contacts_member_key_campaign_id", "member_key", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_key: Mapped[int] = mapped_column(Integer, ForeignKey("members.id"))
    treatment_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign_treatments.id"))
    edition_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("campaign_editions.id"))
    arm: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[int | None] = mapped_column(SmallInteger)
    tier: Mapped[str | None] = mapped_column(String(16))
    holdout_share: Mapped[float | None] = mapped_column(Float)  # P(held out) the member had
    in_home_date: Mapped[dt.date | None] = mapped_column(Date)
    cost: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=0)
    model_version: Mapped[str | None] = mapped_column(String(64))
    plan_id: Mapped[int | None] = mapped_column(Integer)
    file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # the mailing decision's expected incremental margin minus the piece's cost for this contact's
    # edition (None when the contact was not planned by expected profit)
    expected_profit: Mapped[float | None] = mapped_column(Float)
    # the member's value when the plan was made (BG/NBD + Gamma-Gamma at the quarter's start over
    # mailing.value_horizon_days): P(alive), expected purchases and value; None when not planned
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    expected_value: Mapped[float | None] = mapped_column(Float)


class ContactTitle(Base):
    """A title shown to a member in a contact's edition: the main selection (``main``, one per
    contact) or a pick, in page order. Rotation reads what a member saw in their last editions;
    the negative option ships the ``main`` title. Derived, written with the edition: no foreign
    keys (a quarter writes ~20M rows at full size)."""

    __tablename__ = "contact_titles"
    __table_args__ = (
        CheckConstraint(_in("role", SHOWN_ROLES), name="role"),
        UniqueConstraint("contact_id", "title_key", name="contact_title"),
        Index("ix_contact_titles_member_key_campaign_id", "member_key", "campaign_id"),
        Index("ix_contact_titles_campaign_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(BigIntKey)
    campaign_id: Mapped[int] = mapped_column(Integer)
    member_key: Mapped[int] = mapped_column(Integer)
    title_key: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(SmallInteger)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # as printed; the negative option bills it


class SelectionReply(Base):
    """A member's answer to a campaign's main selection before its reply deadline (``declined``:
    do not send it); an order of the title is read from the order lines, not stored here."""

    __tablename__ = "selection_replies"
    __table_args__ = (
        CheckConstraint(_in("reply", SELECTION_REPLIES), name="reply"),
        UniqueConstraint("campaign_id", "member_key", name="campaign_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_key: Mapped[int] = mapped_column(Integer, ForeignKey("members.id", ondelete="CASCADE"))
    reply: Mapped[str] = mapped_column(String(8))
    replied_at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(Text)  # phone, web, card, ...


class CampaignMatch(Base):
    """An order line of a campaign's window, classified: ``direct`` (its key code),
    ``inferred`` (the member was contacted and ordered within the response window after
    the in-home date; one row per candidate contact) or ``unattributed`` (no contact).
    The three credit rules are stored side by side.

    A derived table, written only by matchback from stored order lines and contacts: no
    foreign keys (their per-row checks cost five times the insert itself on PostgreSQL);
    it is emptied with the campaign tables (``club.clear_club_data``)."""

    __tablename__ = "campaign_matches"
    __table_args__ = (
        CheckConstraint(_in("match", MATCH_KINDS), name="match"),
        Index("ix_campaign_matches_campaign_id_purchase_id", "campaign_id", "purchase_id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    purchase_id: Mapped[int] = mapped_column(BigIntKey)
    contact_id: Mapped[int | None] = mapped_column(BigIntKey)
    treatment_id: Mapped[int | None] = mapped_column(Integer)
    match: Mapped[str] = mapped_column(String(12))
    days_after: Mapped[int | None] = mapped_column(Integer)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_last: Mapped[float] = mapped_column(Float, default=0.0)
    credit_fractional: Mapped[float] = mapped_column(Float, default=0.0)
    credit_all: Mapped[float] = mapped_column(Float, default=0.0)


SUPPRESSION_REASONS: tuple[str, ...] = ("deceased", "moved", "do_not_mail", "do_not_email", "bad_address")
SUPPRESSION_SCOPES: tuple[str, ...] = ("post", "email", "all")


class Suppression(Base):
    """A member not to be sent pieces of ``scope`` (post, email, all) while ``starts_on ≤ day <
    ends_on`` (no end: for good), with the reason and where it came from (a returned piece,
    a member's request, a registry); lifted by setting ``ends_on``, never deleted."""

    __tablename__ = "suppressions"
    __table_args__ = (
        CheckConstraint(_in("reason", SUPPRESSION_REASONS), name="reason"),
        CheckConstraint(_in("scope", SUPPRESSION_SCOPES), name="scope"),
        UniqueConstraint("member_key", "reason", "starts_on", name="member_reason_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_key: Mapped[int] = mapped_column(Integer, ForeignKey("members.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(Text)
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a mapped class, typed as a ``Table`` for Core statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class AuditEntry(Base):
    """A staff action taken in the console (who, what, when, why): models activated or rolled
    back, proofs marked, print runs approved. Written in the same transaction as the action
    where the action is in the database; read back by the console's audit and catalog pages."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_target", "action", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    actor_prefix: Mapped[str] = mapped_column(String(16))  # the API key's prefix, never the key
    actor_label: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON: what the action changed


JOB_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed")


class Job(Base):
    """A long job started from the staff console (train a model, render every member's edition):
    who started it and when, its progress while it runs — written by the job's own process —
    and its result or error. The start is in the audit log too."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        Index("ix_jobs_kind_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text)  # JSON: what was asked
    status: Mapped[str] = mapped_column(String(8))
    actor_prefix: Mapped[str] = mapped_column(String(16))  # the API key's prefix, never the key
    actor_label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    host: Mapped[str | None] = mapped_column(String(255))  # where the job's process runs
    pid: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[str | None] = mapped_column(Text)  # what it is doing now
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[str | None] = mapped_column(Text)  # JSON: what it produced
    error: Mapped[str | None] = mapped_column(Text)
