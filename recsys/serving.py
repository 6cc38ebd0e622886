"""The one serving path: a member's recommendations, whoever asks.

The API route, ``bookclub recommend``, catalog planning and member editions (in
process and on Dask workers) all call the functions here, so a member gets the
same titles from every face (``tests/faces/`` says so):

- :func:`prepare_model` — the model learns every title it may be asked about
  (titles added after training get cold-start vectors from their categories).
- :func:`recommend_for_member` — pure: the member's :class:`MemberSnapshot`
  (order lines, which of them came after training, declared categories), the
  stock (a :class:`Shelf`) and a :class:`RecommendationQuery` → titles with reasons.
  Titles bought are left out (unless asked), lines newer than the model's
  ``trained_until`` are folded into the member's vector, a title returned in
  full leaves the history, out-of-stock titles are dropped (unless asked), and
  titles the member was shown lately rotate out (:func:`rotate`) when asked.
- :func:`recommend` — the same from the database: one query for the member.
- :func:`recommendations_json` — the body of ``GET /v1/members/{id}/recommendations``
  (and of ``bookclub recommend --json``), written from each title's cached JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _string  # what json.dumps writes for a str
from typing import Protocol

from sqlalchemy import Connection

from recsys.errors import UnknownCategoryError, UnknownMemberError
from recsys.model.index import TitleMask
from recsys.storage import categories as categories_db
from recsys.storage import members as members_db
from recsys.storage import titles as titles_db
from recsys.storage.members import MemberSnapshot, SnapshotLine
from recsys.storage.titles import TitleRecord

_MAX_ROUNDS = 4


class Reasoned(Protocol):
    """A recommendation as the model gives it (``recsys.model.parts.Recommendation``)."""

    @property
    def title_id(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def reason(self) -> str: ...
    @property
    def reason_kind(self) -> str: ...
    @property
    def because(self) -> tuple[str, ...]: ...
    @property
    def reason_zh(self) -> str: ...


class ServableModel(Protocol):
    """What serving needs of a model (``recsys.model.trained.TrainedModel``)."""

    @property
    def version(self) -> str: ...
    @property
    def trained_until(self) -> dt.datetime: ...

    def recommend(
        self,
        member_id: str,
        *,
        limit: int = 20,
        recent: Sequence[tuple[str, float]] = (),
        exclude_title_ids: Collection[str] = (),
        only_title_ids: Collection[str] | None = None,
        category: str | None = None,
        declared_categories: Sequence[str] = (),
    ) -> Sequence[Reasoned]: ...

    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None: ...


class TitleLearner(Protocol):
    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None: ...


@dataclass(frozen=True)
class RecommendationQuery:
    """What is asked: the API's query parameters, plus a restriction to some titles."""

    limit: int = 20
    category: str | None = None
    include_purchased: bool = False
    in_stock_only: bool = True
    only_title_ids: Collection[str] | None = None  # e.g. this quarter's catalog (a TitleMask is fastest)
    # titles shown to the member in their last editions: kept out unless nothing close replaces
    # them (:func:`rotate`); a member edition asks, the API's recommendations do not
    rotate_out: Collection[str] = ()
    rotation_tolerance: float = 0.9  # settings.mailing.rotation_tolerance


def scores_close(alternative: float, score: float, tolerance: float) -> bool:
    """Whether ``alternative`` scores at least ``tolerance`` of ``score``: ``alternative ≥ score −
    (1 − tolerance)·|score|`` (``tolerance × score`` for a positive score; a negative score is
    read the same way, ``(1 − tolerance)·|score|`` below it). Tolerance 1: only as good or
    better; 0: anything at least zero below a positive score."""
    return alternative >= score - (1.0 - tolerance) * abs(score)


def rotate(
    ranked: Sequence[tuple[str, float]], shown: Collection[str], tolerance: float, limit: int, *, complete: bool
) -> list[int] | None:
    """Which of ``ranked`` — (title_id, score), best first — make the first ``limit`` once the
    titles in ``shown`` rotate out where something close replaces them: their positions.

    The rule, walking the ranking best first: a title not in ``shown`` is taken; a title in
    ``shown`` with score σ is dropped when the best title *not* in ``shown`` that ranks below
    it and is not already replacing an earlier dropped title scores close to it
    (:func:`scores_close`: at least ``tolerance`` of σ) — that title then replaces it (taken
    when the walk reaches it); otherwise the shown title keeps its place. So a shown title
    comes back only when nothing else the query allows (the same candidates: the segment
    catalog, the category, in stock, not bought) scores at least ``tolerance`` of its score,
    and each title that rotates out is replaced by a different one. Once the titles taken and
    the replacements promised fill the list, the shown titles left stay out: each promised
    replacement scores close to a dropped title ranked above them, so close to them too
    (:func:`scores_close` is monotone in the score).

    ``complete``: ``ranked`` holds every candidate. When it does not and the rule needs a title
    below its end, None (ask the model for more)."""
    if not shown:
        return list(range(min(limit, len(ranked))))
    fresh = [i for i, (title_id, _score) in enumerate(ranked) if title_id not in shown]
    out: list[int] = []
    pending = 0  # fresh titles below the walk's position already replacing a dropped one
    passed = 0  # fresh titles at or above the walk's position
    for i, (_title_id, score) in enumerate(ranked):
        if len(out) == limit:
            break
        if passed < len(fresh) and fresh[passed] == i:
            passed += 1
            pending = max(0, pending - 1)
            out.append(i)
            continue
        if len(out) + pending >= limit:
            continue  # the list is full with its replacements, each close to this title too
        k = passed + pending
        if k >= len(fresh):
            if not complete:
                return None
            out.append(i)  # nothing left to replace it: it comes back
        elif scores_close(ranked[fresh[k]][1], score, tolerance):
            pending += 1  # dropped: ranked[fresh[k]] takes its place
        else:
            out.append(i)
    if len(out) < limit and not complete:
        return None
    return out


@dataclass(frozen=True)
class MemberHistory:
    bought: frozenset[str]  # net quantity > 0
    recent: tuple[tuple[str, float], ...]  # bought after trained_until, net ≠ 0; -inf: fully returned


def member_history(lines: Iterable[SnapshotLine]) -> MemberHistory:
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


@dataclass(frozen=True)
class Shelf:
    """Every title's record and stock, read at one moment (a worker keeps one for a while)."""

    details: Mapping[str, TitleRecord]
    categories: frozenset[str]  # every category code of the club's tree
    out_of_stock: Collection[str]  # a TitleMask when the model builds one
    read_at: float = 0.0  # time.monotonic() of the read
    fragments: dict[str, bytes] = field(default_factory=dict)  # title JSON, by id

    def details_of(self, title_ids: Sequence[str]) -> dict[str, TitleRecord]:
        found = self.details
        return {t: found[t] for t in title_ids if t in found}

    def without(self, bought: Collection[str]) -> Collection[str]:
        """The titles out of stock plus ``bought``, as the model takes them fastest."""
        if not bought:
            return self.out_of_stock
        if isinstance(self.out_of_stock, TitleMask):
            return self.out_of_stock.plus(bought)
        return set(self.out_of_stock) | set(bought)

    def title_json(self, record: TitleRecord) -> bytes:
        """:func:`title_json`, kept for the titles this shelf has answered with."""
        if self.details.get(record.title_id) is not record:  # not read with this shelf
            return title_json(record)
        found = self.fragments.get(record.title_id)
        if found is None:
            found = self.fragments[record.title_id] = title_json(record)
        return found


def make_shelf(
    model: object, details: Mapping[str, TitleRecord], categories: Collection[str], read_at: float = 0.0
) -> Shelf:
    """A :class:`Shelf` over ``details``; its out-of-stock set as the model's mask if it has one."""
    gone = [t for t, record in details.items() if not record.in_stock]
    make_mask: Callable[[Collection[str]], Collection[str]] | None = getattr(model, "title_mask", None)
    out: Collection[str] = make_mask(gone) if make_mask is not None else frozenset(gone)
    return Shelf(details, frozenset(categories), out, read_at)


def read_shelf(connection: Connection, model: object, read_at: float = 0.0) -> Shelf:
    """Every title's record and the category codes, from the database."""
    return make_shelf(
        model, titles_db.all_title_details(connection), categories_db.category_codes(connection), read_at
    )


def prepare_model(model: TitleLearner, titles: Iterable[tuple[str, Sequence[str]]]) -> None:
    """Teach ``model`` every title it may be asked about: those it did not see in training get
    cold-start vectors from their categories (``add_titles`` keeps the titles it knows)."""
    model.add_titles([(t, list(codes)) for t, codes in titles])


def prepare_model_from_db(connection: Connection, model: TitleLearner) -> None:
    """:func:`prepare_model` with every title of the club."""
    prepare_model(model, titles_db.all_title_categories(connection))


@dataclass(frozen=True)
class MemberRecommendations:
    member_id: str
    cold_start: bool  # no purchase kept: the model can only go by categories
    items: list[tuple[Reasoned, TitleRecord]]


def recommend_for_member(
    model: ServableModel,
    member_id: str,
    snapshot: MemberSnapshot,
    query: RecommendationQuery,
    *,
    shelf: Shelf,
    title_details: Callable[[list[str]], Mapping[str, TitleRecord]] | None = None,
) -> MemberRecommendations:
    """The member's titles, best first, each with its reason and record.

    ``shelf`` gives title records and stock; ``title_details`` fetches the records of
    titles the shelf does not hold (added since it was read). A category that is in the
    club's tree but unknown to the model yields no titles; one outside the tree is an
    :class:`UnknownCategoryError`.
    """
    if query.category is not None and query.category not in shelf.categories:
        raise UnknownCategoryError(f"unknown category {query.category!r}: use a code of the category tree")
    history = member_history(snapshot.lines)
    exclude: Collection[str] = () if query.include_purchased else history.bought
    if query.in_stock_only:  # out-of-stock titles never come back
        exclude = shelf.without(exclude)
    shown = query.rotate_out
    fetch = query.limit + len(shown) + 1 if shown else query.limit
    picked: list[tuple[Reasoned, TitleRecord]] = []
    for last_round in range(_MAX_ROUNDS):
        try:
            recs = model.recommend(
                member_id,
                limit=fetch,
                recent=history.recent,
                exclude_title_ids=exclude,
                only_title_ids=query.only_title_ids,
                category=query.category,
                declared_categories=snapshot.declared,
            )
        except UnknownCategoryError:  # in the club's tree, added after training: no titles
            recs = []
        ids = [r.title_id for r in recs]
        details = shelf.details_of(ids)
        if len(details) < len(ids) and title_details is not None:
            details.update(title_details([t for t in ids if t not in details]))
        picked = [
            (r, details[r.title_id])
            for r in recs
            if r.title_id in details and (details[r.title_id].in_stock or not query.in_stock_only)
        ]
        complete = len(recs) < fetch or last_round == _MAX_ROUNDS - 1
        if shown:
            kept = rotate(
                [(r.title_id, r.score) for r, _record in picked], shown, query.rotation_tolerance,
                query.limit, complete=complete,
            )
            if kept is None:  # the rule needs titles ranked below what was fetched
                fetch *= 3
                continue
            picked = [picked[i] for i in kept]
        if len(picked) >= query.limit or complete:
            break
        fetch *= 3  # titles the shelf did not know, out of stock since it was read, or rotated out
    return MemberRecommendations(member_id, not history.bought, picked[: query.limit])


def recommend(
    connection: Connection,
    model: ServableModel,
    member_id: str,
    query: RecommendationQuery,
    *,
    shelf: Shelf | None = None,
) -> MemberRecommendations:
    """:func:`recommend_for_member` for a member read from the database (one query; the
    shelf is read too when none is given). :class:`UnknownMemberError` for an unknown id."""
    snapshot = members_db.member_snapshot(connection, member_id, model.trained_until)
    if snapshot is None:
        raise UnknownMemberError(f"unknown member {member_id!r}: check the member id")
    if shelf is None:
        shelf = read_shelf(connection, model)
    code = query.category
    if code is not None and code not in shelf.categories and categories_db.category_name(connection, code):
        shelf = dataclasses.replace(shelf, categories=shelf.categories | {code})  # added since the read
    return recommend_for_member(
        model, member_id, snapshot, query, shelf=shelf,
        title_details=lambda ids: titles_db.title_details(connection, ids),
    )


def title_json(record: TitleRecord) -> bytes:
    """A title's ``TitlePublic`` JSON without its closing brace (fields follow)."""
    return _dumps(
        {
            "title_id": record.title_id,
            "title": record.title,
            "author": record.author,
            "price": record.price,
            "categories": list(record.categories),
            "in_stock": record.in_stock,
        }
    )[:-1]


def recommendations_json(result: MemberRecommendations, model_version: str, shelf: Shelf | None) -> bytes:
    """The ``RecommendationsPublic`` body, from each title's cached JSON (checked against the
    pydantic schema in tests) instead of building 20 models per request; the other fields
    written with json's own string and number writers, exactly as ``json.dumps`` writes them,
    without a ``json.dumps`` call (an encoder object) per field."""
    items = [
        (shelf.title_json(record) if shelf is not None else title_json(record))
        + (
            f',"score":{_number(rec.score)},"reason":{_string(rec.reason)}'
            f',"reason_kind":{_string(rec.reason_kind)}'
            f',"because":[{",".join(map(_string, rec.because))}]}}'
        ).encode()
        for rec, record in result.items
    ]
    head = (
        f'{{"member_id":{_string(result.member_id)},"model_version":{_string(model_version)}'
        f',"cold_start":{"true" if result.cold_start else "false"},"data":['
    ).encode()
    return head + b",".join(items) + f'],"count":{len(items)}}}'.encode()


def _number(value: float) -> str:
    """A score as ``json.dumps`` writes it (``float.__repr__``; NaN and infinities its way)."""
    value = float(value)
    return float.__repr__(value) if math.isfinite(value) else _dumps(value).decode()


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
