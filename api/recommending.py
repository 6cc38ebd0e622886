"""What the read routes do: member purchases from the DB + the model → public records.

Purchases are read per request (indexed by member), so a line posted to any
worker shows in the next answer of every worker: bought titles are filtered
out, and lines newer than the model's ``trained_until`` are folded into the
member's vector by ``TrainedModel.recommend(recent=…)``. Title display data
and stock come from the worker's :class:`TitleShelf` (read with the model,
re-read every ``SHELF_TTL_SECONDS``), not from a query per request.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from api.errors import InvalidInputError
from api.model_holder import RecommendationLike, ServingModel
from api.schemas import ScoredTitlePublic, TitlePublic
from recsys import member_queries as q
from recsys.errors import UnknownCategoryError, UnknownMemberError, UnknownTitleError
from recsys.serving_index import TitleMask

_MAX_ROUNDS = 4
SHELF_TTL_SECONDS = 60.0  # how stale a worker's stock and prices may get
log = logging.getLogger("bookclub.api.titles")


@dataclass(frozen=True)
class MemberHistory:
    bought: frozenset[str]  # net quantity > 0
    recent: tuple[tuple[str, float], ...]  # bought after trained_until, net > 0


def member_history(lines: Sequence[q.SnapshotLine]) -> MemberHistory:
    net: dict[str, int] = defaultdict(int)
    recent: dict[str, int] = defaultdict(int)
    for line in lines:
        net[line.title_id] += line.quantity
        if line.recent:
            recent[line.title_id] += line.quantity
    folded: list[tuple[str, float]] = []
    for title_id, n in recent.items():
        if n < 0 and net[title_id] <= 0:
            folded.append((title_id, -math.inf))  # every copy returned: out of the history
        elif n != 0:
            folded.append((title_id, float(n)))
    return MemberHistory(frozenset(t for t, n in net.items() if n > 0), tuple(folded))


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
    shelf: TitleShelf | None = None,
) -> tuple[bool, list[tuple[RecommendationLike, q.TitleRecord]]]:
    """(cold_start, recommendations with their titles) for a member; UnknownMemberError if the
    club has none such.

    Blocking (database and numpy): the route runs it in one threadpool call. One query
    per request (the member's lines and declared categories); title data comes from
    ``shelf`` when the worker has one, else from the database.
    """
    stock = shelf.current() if shelf is not None else None
    with engine.connect() as connection:
        found = q.member_snapshot(connection, member_id, model.trained_until)
        if found is None:
            raise UnknownMemberError(f"unknown member {member_id!r}: check the member id")
        if stock is None or (category is not None and category not in stock.categories):
            _check_category(connection, category)
        history = member_history(found.lines)
        exclude: Collection[str] = () if include_purchased else history.bought
        fetch = limit
        if stock is not None and in_stock_only:  # out-of-stock titles never come back
            exclude = stock.without(exclude)
        elif in_stock_only:  # a few more than asked, to make up for titles out of stock
            fetch += max(3, limit // 8)
        picked: list[tuple[RecommendationLike, q.TitleRecord]] = []
        for _round in range(_MAX_ROUNDS):
            try:
                recs = model.recommend(
                    member_id,
                    limit=fetch,
                    recent=history.recent,
                    exclude_title_ids=exclude,
                    category=category,
                    declared_categories=found.declared,
                )
            except UnknownCategoryError:  # in the club's tree, added after training: no titles
                recs = []
            ids = [r.title_id for r in recs]
            details = stock.details_of(ids) if stock is not None else {}
            if len(details) < len(ids):  # titles the shelf does not hold (yet)
                details.update(q.title_details(connection, [t for t in ids if t not in details]))
            picked = [
                (r, details[r.title_id])
                for r in recs
                if r.title_id in details and (details[r.title_id].in_stock or not in_stock_only)
            ]
            if len(picked) >= limit or len(recs) < fetch:
                break
            fetch *= 3
    cold_start = not history.bought  # no purchase kept: the model can only go by categories
    return cold_start, picked[:limit]


def recommendations_json(
    engine: Engine,
    model: ServingModel,
    member_id: str,
    *,
    limit: int,
    category: str | None,
    include_purchased: bool,
    in_stock_only: bool,
    shelf: TitleShelf | None = None,
) -> tuple[bool, bytes]:
    """(cold_start, the ``RecommendationsPublic`` JSON body): :func:`recommend_for_member`,
    serialised from each title's cached JSON instead of building 20 pydantic models."""
    cold_start, picked = recommend_for_member(
        engine,
        model,
        member_id,
        limit=limit,
        category=category,
        include_purchased=include_purchased,
        in_stock_only=in_stock_only,
        shelf=shelf,
    )
    stock = shelf.current() if shelf is not None else None
    items = b",".join(
        b"".join(
            (
                stock.title_json(record) if stock is not None else title_json(record),
                b',"score":',
                _dumps(float(rec.score)),
                b',"reason":',
                _dumps(rec.reason),
                b',"reason_kind":',
                _dumps(rec.reason_kind),
                b',"because":',
                _dumps(list(rec.because)),
                b"}",
            )
        )
        for rec, record in picked
    )
    head = (
        b'{"member_id":' + _dumps(member_id) + b',"model_version":' + _dumps(model.version)
        + b',"cold_start":' + (b"true" if cold_start else b"false")
    )
    return cold_start, head + b',"data":[' + items + b'],"count":' + str(len(picked)).encode() + b"}"


def title_json(record: q.TitleRecord) -> bytes:
    """A title's ``TitlePublic`` JSON without its closing brace (fields follow)."""
    return _title(record).model_dump_json().encode()[:-1]


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


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


@dataclass(frozen=True)
class ShelfState:
    """Every title's display data and stock, read at one moment."""

    details: dict[str, q.TitleRecord]
    categories: frozenset[str]
    out_of_stock: Collection[str]  # a TitleMask when the model builds one
    read_at: float  # time.monotonic()
    fragments: dict[str, bytes] = dataclasses.field(default_factory=dict)  # title_json, by id

    def title_json(self, record: q.TitleRecord) -> bytes:
        """:func:`title_json`, kept for the titles this worker has answered with."""
        if self.details.get(record.title_id) is not record:  # not read with this state
            return title_json(record)
        found = self.fragments.get(record.title_id)
        if found is None:
            found = self.fragments[record.title_id] = title_json(record)
        return found

    def details_of(self, title_ids: Sequence[str]) -> dict[str, q.TitleRecord]:
        found = self.details
        return {t: found[t] for t in title_ids if t in found}

    def without(self, bought: Collection[str]) -> Collection[str]:
        """The titles out of stock plus ``bought``, as the model takes them fastest."""
        if not bought:
            return self.out_of_stock
        if isinstance(self.out_of_stock, TitleMask):
            return self.out_of_stock.plus(bought)
        return set(self.out_of_stock) | set(bought)


class TitleShelf:
    """A worker's cache of title data for one model: built when the model is loaded, then
    re-read in the background every ``ttl`` seconds (stock and prices change without a
    retrain; a request never waits for the re-read)."""

    def __init__(self, engine: Engine, model: ServingModel, ttl: float = SHELF_TTL_SECONDS) -> None:
        self.engine, self.model, self.ttl = engine, model, ttl
        self._lock = threading.Lock()
        self._reading = False
        self._state = self._read()

    def _read(self) -> ShelfState:
        with self.engine.connect() as connection:
            details = q.all_title_details(connection)
            codes = q.category_codes(connection)
        gone = [t for t, record in details.items() if not record.in_stock]
        make_mask = getattr(self.model, "title_mask", None)
        out: Collection[str] = make_mask(gone) if make_mask is not None else frozenset(gone)
        return ShelfState(details, frozenset(codes), out, time.monotonic())

    def current(self) -> ShelfState:
        state = self._state
        if time.monotonic() - state.read_at > self.ttl:
            with self._lock:
                start, self._reading = not self._reading, True
            if start:
                threading.Thread(target=self._reread, name="title-shelf", daemon=True).start()
        return state

    def _reread(self) -> None:
        try:
            self._state = self._read()
        except Exception:  # keep the old data; try again after the next ttl
            log.exception("re-reading title data failed")
            self._state = dataclasses.replace(self._state, read_at=time.monotonic())
        finally:
            with self._lock:
                self._reading = False


def feed_new_titles(engine: Engine, model: ServingModel) -> TitleShelf:
    """Give ``model`` cold-start vectors for titles added to the DB after it was trained,
    and return the worker's title cache for it (the holder keeps it beside the model).

    Every title with a category is offered; ``add_titles`` keeps only those it does not know.
    """
    with engine.connect() as connection:
        titles = q.all_title_categories(connection)
    model.add_titles([(t, codes) for t, codes in titles if codes])
    return TitleShelf(engine, model)
