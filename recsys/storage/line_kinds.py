"""The kinds of order line: the member's own orders and the negative option's auto-ships.

``purchases.kind`` is ``order`` (the member ordered it: imported, posted through the API) or
``autoship`` (the campaign's main selection sent unasked under the negative option, written by
:mod:`recsys.storage.selections`). A return of an auto-shipped title is an ordinary order line
with a negative quantity, whatever its kind: the member's negative line of the title dated at or
after an auto-ship of it, with no order of their own of the title in between (a member who was
sent a title, kept it, then ordered another copy and sent that back returned their own order).

:func:`active_order_line` is the one SQL test for "the member's own buying": neither an
auto-ship nor the return of one. Every read that describes what members choose to buy uses it
— the campaign report's outcomes and matchback (:mod:`recsys.storage.matches`), the member-value
model's lines (:func:`recsys.storage.purchase_log.read_line_amounts` with ``own_orders``), the
RFM of the segmentation (:func:`recsys.storage.purchases.rfm_aggregates`) and the category
units behind members' affinity to their edition (:func:`recsys.storage.mailing.category_units`,
:func:`recsys.storage.purchases.primary_category_units`).

The auto-ship lines are few beside the members' own orders and sit in partial indexes
(migration 0012): ``ix_purchases_autoship`` on ``(member_key, title_key, purchased_at) WHERE
kind = 'autoship'``, which the return test probes for each negative line (instead of walking the
member's every line), and on PostgreSQL ``ix_purchases_autoship_line_id`` for a campaign's lines
(:mod:`recsys.storage.selections`). The planners use a partial index only when the query
carries its predicate as written, so the kind is compared with a literal (:func:`is_autoship`),
never with a bound parameter.
"""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    String,
    and_,
    exists,
    literal,
    literal_column,
    or_,
    select,
)

from recsys.storage.schema import Purchase, table_of

__all__ = ["AUTOSHIP", "ORDER", "active_order_line", "active_order_sql", "is_autoship"]

ORDER = "order"
AUTOSHIP = "autoship"

_AUTOSHIP_LITERAL = literal_column(f"'{AUTOSHIP}'", String)  # a constant: no bound parameter (module doc)


def is_autoship(purchases: FromClause) -> ColumnElement[bool]:
    """SQL, true for an auto-ship line of ``purchases`` (the table or an alias of it); the
    predicate of the partial index, as written there."""
    return purchases.c.kind == _AUTOSHIP_LITERAL


def active_order_line(purchases: FromClause, *, per_line: bool = False) -> ColumnElement[bool]:
    """SQL, true for a member's own order line: neither an auto-ship nor the return (a negative line of
    the same member and title, at or after it, with no own order of the title in between) of one. ``purchases`` is the table or an alias of it.

    One test, written two ways for the planners (the same lines either way; a test holds them
    together). By default ``kind <> 'autoship' AND NOT EXISTS (an auto-ship this negative line
    returns)``, which PostgreSQL turns into an anti-join: the auto-ship lines hashed once, right
    for a statement over a whole window (RFM, category units, matchback, the report). With
    ``per_line`` it is ``NOT (kind = 'autoship' OR (quantity < 0 AND EXISTS …))``: the look-up
    runs only for a negative line, one probe of ``ix_purchases_autoship`` each, right for the bulk
    reads in id ranges, where an anti-join would hash every auto-ship line again for each range
    (PostgreSQL costs a subquery under an OR as if it ran for every line, so it chooses this only
    where it is the sole way: pass ``per_line`` only to such reads, and switch JIT off for them)."""
    shipped = table_of(Purchase).alias("autoship_line")
    own = table_of(Purchase).alias("own_line")
    ordered_since = exists(select(literal(1)).select_from(own).where(  # their own order of it after the auto-ship
        own.c.member_key == shipped.c.member_key,
        own.c.title_key == shipped.c.title_key,
        own.c.quantity > 0,
        ~is_autoship(own),
        own.c.purchased_at > shipped.c.purchased_at,
        own.c.purchased_at <= purchases.c.purchased_at,
    ).correlate_except(own))  # the line tested two levels up, too  # fmt: skip
    returned = [
        is_autoship(shipped),
        shipped.c.member_key == purchases.c.member_key,
        shipped.c.title_key == purchases.c.title_key,
        shipped.c.quantity > 0,
        shipped.c.purchased_at <= purchases.c.purchased_at,
        ~ordered_since,
    ]
    if per_line:
        returns_an_autoship = and_(purchases.c.quantity < 0, exists(select(literal(1)).select_from(shipped).where(*returned)))
        return ~or_(is_autoship(purchases), returns_an_autoship)
    returns_an_autoship = exists(
        select(literal(1)).select_from(shipped).where(*returned, purchases.c.quantity < 0)
    )
    return and_(~is_autoship(purchases), ~returns_an_autoship)


def active_order_sql(connection: Connection) -> str:
    """:func:`active_order_line` (``per_line``) of the ``purchases`` table as SQL text for
    ``connection``'s dialect (no parameters), for the driver-level bulk reads in id ranges that
    write their SQL by hand."""
    purchases = table_of(Purchase)
    # compiled inside a query on ``purchases`` so that the EXISTS correlates with it (on its own
    # it would select from a second, unrelated ``purchases``); the outer WHERE is the first one
    query = select(literal(1)).select_from(purchases).where(active_order_line(purchases, per_line=True))
    text = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    head, where, condition = text.partition("\nWHERE ")
    if not where or not head.rstrip().endswith("FROM purchases"):
        raise AssertionError(f"unexpected SQL for the active order test: {text}")
    return f"({condition})"
