"""The API's request and response bodies: one family per resource, lists as ``{data, count}``.

(Past 400 lines: every public schema of the API in one place, with the OpenAPI examples the documentation shows.)
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from recsys.storage.schema import CHANNELS

Channel = Literal["mail", "phone", "sms", "email", "web", "shop"]
assert set(Channel.__args__) == set(CHANNELS)  # type: ignore[attr-defined]


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Stored timestamps are naive UTC: say so (``…Z``), as the schema's ``date-time`` requires."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcDateTime = Annotated[dt.datetime, AfterValidator(_as_utc)]


class ErrorDetail(BaseModel):
    location: str = Field(description="'path', 'query', 'header' or 'body'")
    field: str = Field(description="the parameter or body field at fault")
    index: int | None = Field(None, description="for a batch: the 0-based line the error is on")
    reason: str


class ErrorPublic(BaseModel):
    error: str = Field(description="a stable machine-readable code")
    message: str = Field(description="what was wrong and what to do")
    errors: list[ErrorDetail] = Field(default_factory=list)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "not_found",
                    "message": "unknown member 'M404': check the member id",
                    "errors": [],
                }
            ]
        }
    )


# --- titles -------------------------------------------------------------------------------


class TitlePublic(BaseModel):
    title_id: str
    title: str
    author: str | None
    price: float | None
    categories: list[str] = Field(description="category codes, the primary one first")
    in_stock: bool


class RecommendationPublic(TitlePublic):
    score: float
    reason: str = Field(description="readable: why this title")
    reason_kind: Literal["history", "new_in_category", "category_popular", "popular"] | str
    because: list[str] = Field(description="title ids (history) or category codes behind the reason")


class RecommendationsPublic(BaseModel):
    member_id: str
    model_version: str
    cold_start: bool = Field(
        description="true when the member has no purchase yet: titles from declared categories, "
        "then popular ones"
    )
    data: list[RecommendationPublic]
    count: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "M000123",
                    "model_version": "20260101T000000-als",
                    "cold_start": False,
                    "data": [
                        {
                            "title_id": "T004711",
                            "title": "活着",
                            "author": "余华",
                            "price": 28.0,
                            "categories": ["I247", "I2"],
                            "in_stock": True,
                            "score": 0.83,
                            "reason": "because you bought 许三观卖血记",
                            "reason_kind": "history",
                            "because": ["T000815"],
                        }
                    ],
                    "count": 1,
                }
            ]
        }
    )


class ScoredTitlePublic(TitlePublic):
    score: float


class SimilarTitlesPublic(BaseModel):
    title_id: str
    model_version: str
    data: list[ScoredTitlePublic]
    count: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title_id": "T004711",
                    "model_version": "20260101T000000Z",
                    "count": 1,
                    "data": [
                        {
                            "title_id": "T000815",
                            "title": "许三观卖血记",
                            "author": "余华",
                            "price": 26.0,
                            "categories": ["I247"],
                            "in_stock": True,
                            "score": 0.91,
                        }
                    ],
                }
            ]
        }
    )


class PopularTitlesPublic(BaseModel):
    category: str
    category_name: str
    model_version: str
    data: list[ScoredTitlePublic]
    count: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "category": "I247",
                    "category_name": "当代小说",
                    "model_version": "20260101T000000Z",
                    "count": 1,
                    "data": [
                        {
                            "title_id": "T004711",
                            "title": "活着",
                            "author": "余华",
                            "price": 28.0,
                            "categories": ["I247"],
                            "in_stock": True,
                            "score": 1.0,
                        }
                    ],
                }
            ]
        }
    )


# --- members ------------------------------------------------------------------------------


class SegmentPublic(BaseModel):
    quarter: str
    segment: int
    name: str | None


class CategoryCountPublic(BaseModel):
    code: str
    name: str
    units: int


class AutoshipCountsPublic(BaseModel):
    """The negative option's part of the counts: titles sent unasked, and billed unless returned."""

    lines: int = Field(description="auto-ship lines and the lines returning them")
    units_shipped: int
    units_returned: int
    spent: float = Field(description="billed for auto-ships, net of their returns")


class PurchaseCountsPublic(BaseModel):
    """Every order line of the member; ``autoship`` is the part of them the negative option sent."""

    lines: int
    orders: int
    units_bought: int
    units_returned: int
    spent: float
    first_purchase_at: UtcDateTime | None = Field(description="UTC, with its offset")
    last_purchase_at: UtcDateTime | None = Field(description="UTC, with its offset")
    autoship: AutoshipCountsPublic | None = Field(
        None, description="the negative option's shipments among the counts above (null: none ever)"
    )


class MemberPersonalPublic(BaseModel):
    """Personal data: only for editions and admin keys."""

    name: str
    address: str | None
    postcode: str | None
    city: str | None
    birth_year: int | None
    joined_on: dt.date | None
    channel: str | None


class MemberValuePublic(BaseModel):
    """The member's lifetime value when their latest campaign was planned (BG/NBD + Gamma-Gamma)."""

    p_alive: float = Field(description="probability that the member is still buying")
    expected_purchases: float = Field(description="expected purchases over the horizon")
    expected_value: float = Field(description="expected spend over the horizon")
    horizon_days: int = Field(description="the horizon (settings: mailing.value_horizon_days)")
    as_of: dt.date | None = Field(description="valued at the first day of the campaign's quarter")
    campaign: str


class MemberMailingPublic(BaseModel):
    """What the member's latest campaign planned for them, and why (from the stored contact)."""

    campaign: str
    quarter: str | None
    in_home_date: dt.date | None
    arm: Literal["mailed", "holdout", "suppressed", "not_mailed"] = Field(
        description="mailed; held out at random; suppressed (suppression list, closed, no address, a tier "
        "not mailed); not mailed (a contact rule, the budget, no expected profit)"
    )
    edition_kind: str | None = Field(
        description="catalog, postcard or email: mailed, or for a held-out member the edition they would have had"
    )
    edition: str | None = Field(description="the edition's code, when a piece was planned")
    key_code: str | None = Field(description="the key code on the piece, when mailed")
    reason: str | None = Field(description="why not mailed (a reason code), or the holdout's draw")
    expected_profit: float | None = Field(
        description="expected incremental margin less the piece's cost (the planned edition's; for a member not "
        "mailed the best edition the rules allowed); null when the campaign was not planned by expected profit"
    )
    planned_by_profit: bool


class MemberProfilePublic(BaseModel):
    member_id: str
    status: str
    value_tier: str | None = Field(description="from the latest quarter's segmentation, if any")
    segment: SegmentPublic | None
    top_categories: list[CategoryCountPublic]
    declared_categories: list[str]
    purchases: PurchaseCountsPublic
    personal: MemberPersonalPublic | None = Field(
        None, description="name and address: present for editions and admin keys only"
    )
    value: MemberValuePublic | None = Field(
        None, description="lifetime value stored with the member's latest campaign, when it was planned by "
        "expected profit"
    )
    mailing: MemberMailingPublic | None = Field(
        None, description="the member's contact in their latest campaign: edition planned and why"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "M000123",
                    "status": "active",
                    "value_tier": "core",
                    "segment": {"quarter": "2026Q1", "segment": 2, "name": "当代小说读者"},
                    "top_categories": [{"code": "I247", "name": "当代小说", "units": 7}],
                    "declared_categories": ["I247"],
                    "purchases": {
                        "lines": 12,
                        "orders": 9,
                        "units_bought": 13,
                        "units_returned": 1,
                        "spent": 412.5,
                        "first_purchase_at": "2023-04-02T10:11:00Z",
                        "last_purchase_at": "2026-03-01T19:40:00Z",
                    },
                    "personal": None,
                    "value": {
                        "p_alive": 0.93, "expected_purchases": 3.1, "expected_value": 96.4, "horizon_days": 365,
                        "as_of": "2026-10-01", "campaign": "2026Q4",
                    },
                    "mailing": {
                        "campaign": "2026Q4", "quarter": "2026Q4", "in_home_date": "2026-10-01", "arm": "mailed",
                        "edition_kind": "catalog", "edition": "S2-catalog", "key_code": "2026Q4-S2-C",
                        "reason": None, "expected_profit": 1.84, "planned_by_profit": True,
                    },
                }
            ]
        }
    )


# --- purchases ----------------------------------------------------------------------------


# What the purchases row parser accepts, stated in the schema. The parser checks it (not
# pydantic), so that a bad batch gets every fault of every line at once; the schema says the
# same thing so that the OpenAPI document is the truth (tests/api/test_openapi_schema.py).
_NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # something besides spaces, no NUL
_NO_NUL = r"^[^\x00]*$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
MAX_QUANTITY = 1_000_000
PRICE_BOUND = 9_999_999_999.995  # numeric(12, 2): the first price that rounds past it
_CHANNEL = r"^\s*(" + "|".join("".join(f"[{c}{c.upper()}]" for c in name) for name in CHANNELS) + r")?\s*$"


def _text(max_length: int, pattern: str = _NOT_BLANK) -> dict[str, Any]:
    # not blank: at least one character, said as minLength too — schemathesis' coverage phase
    # took "" (no minLength) for a valid line_id although the pattern refuses it (a CI run's 422)
    schema: dict[str, Any] = {"maxLength": max_length, "pattern": pattern}
    return {"minLength": 1, **schema} if pattern == _NOT_BLANK else schema


Quantity = (
    Annotated[
        int,
        Field(json_schema_extra={"minimum": -MAX_QUANTITY, "maximum": MAX_QUANTITY, "not": {"const": 0}}),
    ]
    | Annotated[str, Field(json_schema_extra={"pattern": r"^\s*[+-]?0*[1-9][0-9]{0,5}\s*$"})]
)
Price = (
    Annotated[float, Field(json_schema_extra={"minimum": 0, "exclusiveMaximum": PRICE_BOUND})]
    | Annotated[str, Field(json_schema_extra={"pattern": r"^([0-9]{1,10}(\.[0-9]{1,2})?)?$"})]
    | None
)


class PurchaseLineCreate(BaseModel):
    """One order line, with the columns of the purchases CSV (same checks, same defaults)."""

    model_config = ConfigDict(extra="forbid")

    line_id: str = Field(
        description="unique per order line; resending it is harmless", json_schema_extra=_text(96)
    )
    member_id: str = Field(description="a member of the club", json_schema_extra=_text(64))
    title_id: str = Field(description="a title of the club", json_schema_extra=_text(64))
    purchased_at: str = Field(
        description="ISO date or timestamp; aware times are stored as UTC. Not before "
        "imports.earliest_date (1900-01-01) nor later than now plus imports.future_tolerance_hours "
        "(24 h): such a line is a 422 naming it",
        json_schema_extra={"pattern": _TIMESTAMP},
    )
    quantity: Quantity = Field(description="non-zero; negative for a return")
    unit_price: Price = Field(None, description="default: the title's list price")
    channel: str | None = Field(
        None,
        description="one of " + ", ".join(CHANNELS) + " (any case); default web",
        json_schema_extra={"anyOf": [{"pattern": _CHANNEL, "type": "string"}, {"type": "null"}]},
    )
    order_id: str | None = Field(
        None, description="default: line_id up to its last '-'", json_schema_extra=_text(64, _NO_NUL)
    )
    key_code: str | None = Field(
        None, max_length=32, description="the key code on the order form (a campaign's); unknown codes are rejected"
    )


class PurchaseBatchCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lines": [
                        {
                            "line_id": "W-2026-000001-1",
                            "member_id": "M000123",
                            "title_id": "T004711",
                            "purchased_at": "2026-11-20T10:15:00",
                            "quantity": 1,
                            "unit_price": 28.0,
                            "channel": "web",
                            "order_id": "W-2026-000001",
                        }
                    ]
                }
            ]
        },
    )

    lines: list[PurchaseLineCreate] = Field(min_length=1)


class PurchaseBatchPublic(BaseModel):
    received: int
    inserted: int
    already_present: int
    already_present_line_ids: list[str]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "received": 2,
                    "inserted": 1,
                    "already_present": 1,
                    "already_present_line_ids": ["W-2026-000001-1"],
                }
            ]
        }
    )


# --- models and health --------------------------------------------------------------------


class ModelPublic(BaseModel):
    version: str
    created_at: str | None
    trained_until: str | None = Field(None, description="newest purchase the model was trained on")
    status: str
    metrics: dict[str, Any]
    reason: str | None
    active: bool


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
    active_version: str | None
    serving_version: str | None = Field(description="the version this worker serves right now")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "version": "20260101T000000Z",
                            "created_at": "2026-01-01T00:00:00",
                            "trained_until": "2025-12-31T23:59:59",
                            "status": "active",
                            "metrics": {"ndcg@20": 0.12},
                            "reason": "first model",
                            "active": True,
                        }
                    ],
                    "count": 1,
                    "active_version": "20260101T000000Z",
                    "serving_version": "20260101T000000Z",
                }
            ]
        }
    )


class ModelActivatedPublic(BaseModel):
    active_version: str
    serving_version: str | None


class HealthPublic(BaseModel):
    status: Literal["ok"]


class ReadinessPublic(BaseModel):
    status: Literal["ready", "not_ready"]
    database: str
    model_version: str | None = Field(description="the version this worker serves")
    active_version: str | None = Field(
        None, description="the registry's active version (differs while a new one loads or failed to)"
    )
    detail: str | None = Field(
        None, description="why not ready; the database driver's message only for an admin key"
    )
