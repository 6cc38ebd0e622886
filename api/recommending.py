"""What the read routes do: member purchases from the DB + the model → public records.

Purchases are read per request (indexed by member), so a line posted to any
worker shows in the next answer of every worker: bought titles are filtered
out, and lines newer than the model's ``trained_until`` are folded into the
member's vector by ``TrainedModel.recommend(recent=…)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from api.errors import InvalidInputError
from api.model_holder import RecommendationLike, ServingModel
from api.schemas import RecommendationPublic, ScoredTitlePublic, TitlePublic
from recsys import member_queries as q
from recsys.errors import UnknownCategoryError, UnknownMemberError, UnknownTitleError

_MAX_ROUNDS = 4


@dataclass(frozen=True)
class MemberHistory:
    bought: frozenset[str]  # net quantity > 0
    recent: tuple[tuple[str, float], ...]  # bought after trained_until, net > 0


def member_history(lines: Sequence[q.PurchasedLine], trained_until: object) -> MemberHistory:
    net: dict[str, int] = defaultdict(int)
    recent: dict[str, int] = defaultdict(int)
    for line in lines:
        net[line.title_id] += line.quantity
        if line.purchased_at > trained_until:  # type: ignore[operator]
            recent[line.title_id] += line.quantity
    return MemberHistory(
        frozenset(t for t, n in net.items() if n > 0),
        tuple((t, float(n)) for t, n in recent.items() if n > 0),
    )


def _title(record: q.TitleRecord) -> TitlePublic:
    return TitlePublic(
        title_id=record.title_id,
        title=record.title,
        author=record.author,
        price=float(record.price) if record.price is not None else None,
        categories=list(record.categories),
        in_stock=record.in_stock,
    )


def _check_category(connection: Connection, category: str | None) -> None:
    if category is not None and q.category_name(connection, category) is None:
        raise InvalidInputError(
            f"unknown category {category!r}: use a code of the category tree (e.g. I247)",
            [
                {
                    "location": "query",
                    "field": "category",
                    "index": None,
                    "reason": f"unknown category code {category!r}",
                }
            ],
        )


def recommend_for_member(
    engine: Engine,
    model: ServingModel,
    member_id: str,
    *,
    limit: int,
    category: str | None,
    include_purchased: bool,
    in_stock_only: bool,
) -> tuple[bool, list[RecommendationPublic]]:
    """(cold_start, recommendations) for a member; UnknownMemberError if the club has none such.

    Blocking (database and numpy): the route runs it in one threadpool call.
    """
    with engine.connect() as connection:
        found = q.member_with_purchases(connection, member_id)
        if found is None:
            raise UnknownMemberError(f"unknown member {member_id!r}: check the member id")
        key, lines = found
        _check_category(connection, category)
        history = member_history(lines, model.trained_until)
        declared = q.declared_categories(connection, key)
        exclude: set[str] = set() if include_purchased else set(history.bought)
        # a few more than asked, to make up for titles found out of stock
        fetch = limit + (max(3, limit // 8) if in_stock_only else 0)
        picked: list[tuple[RecommendationLike, q.TitleRecord]] = []
        for _round in range(_MAX_ROUNDS):
            try:
                recs = model.recommend(
                    member_id,
                    limit=fetch,
                    recent=history.recent,
                    exclude_title_ids=exclude,
                    category=category,
                    declared_categories=declared,
                )
            except UnknownCategoryError:  # in the club's tree, added after training: no titles
                recs = []
            details = q.title_details(connection, [r.title_id for r in recs])
            picked = [
                (r, details[r.title_id])
                for r in recs
                if r.title_id in details and (details[r.title_id].in_stock or not in_stock_only)
            ]
            if len(picked) >= limit or len(recs) < fetch:
                break
            fetch *= 3
    cold_start = not history.bought  # no purchase kept: the model can only go by categories
    return cold_start, [
        RecommendationPublic(
            **_title(record).model_dump(),
            score=float(rec.score),
            reason=rec.reason,
            reason_kind=rec.reason_kind,
            because=list(rec.because),
        )
        for rec, record in picked[:limit]
    ]


def _scored(connection: Connection, scored: Sequence[tuple[str, float]]) -> list[ScoredTitlePublic]:
    details = q.title_details(connection, [t for t, _ in scored])
    return [
        ScoredTitlePublic(**_title(details[t]).model_dump(), score=float(s))
        for t, s in scored
        if t in details
    ]


def similar_titles(
    connection: Connection, model: ServingModel, title_id: str, limit: int
) -> list[ScoredTitlePublic]:
    if not q.title_exists(connection, title_id):
        raise UnknownTitleError(f"unknown title {title_id!r}: check the title id")
    return _scored(connection, model.similar_titles(title_id, limit=limit))


def popular_in_category(
    connection: Connection, model: ServingModel, code: str, limit: int
) -> tuple[str, list[ScoredTitlePublic]]:
    name = q.category_name(connection, code)
    if name is None:
        raise UnknownCategoryError(f"unknown category {code!r}: use a code of the category tree")
    try:
        popular = model.popular_in_category(code, limit=limit)
    except UnknownCategoryError:  # in the club's tree but added after training: no sales yet
        popular = []
    return name, _scored(connection, popular)


def feed_new_titles(engine: Engine, model: ServingModel) -> None:
    """Give ``model`` cold-start vectors for titles added to the DB after it was trained.

    Every title with a category is offered; ``add_titles`` keeps only those it does not know.
    """
    with engine.connect() as connection:
        titles = q.all_title_categories(connection)
    model.add_titles([(t, codes) for t, codes in titles if codes])
