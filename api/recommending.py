"""What the read routes do, on the one serving path (:mod:`recsys.serving`).

Purchases are read per request (indexed by member), so a line posted to any
worker shows in the next answer of every worker. Title records and stock come
from the worker's :class:`TitleShelf` (read with the model; prices, stock and new
titles re-read every ``SHELF_TTL_SECONDS``, whole records every
``SHELF_FULL_SECONDS``), not from a query per request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from api.compute import ComputePool
from api.metrics import record_recommendation
from api.model_holder import ModelHolder, ServingModel
from api.schemas import ScoredTitlePublic, TitlePublic
from recsys import serving
from recsys.errors import UnknownCategoryError, UnknownMemberError, UnknownTitleError
from recsys.serving import RecommendationQuery, Shelf
from recsys.storage import categories as categories_db
from recsys.storage import members as members_db
from recsys.storage import titles as titles_db
from recsys.storage.members import MemberSnapshot
from recsys.storage.titles import TitleRecord

SHELF_TTL_SECONDS = 60.0  # how stale a worker's stock, prices and list of titles may get
SHELF_FULL_SECONDS = 900.0  # how stale the rest of a title's record may get (name, author, codes)
SHELF_PAGE = 500  # titles read at a time: prices and stock (~1 ms of Python a page)
SHELF_RECORDS_PAGE = 100  # titles read at a time: whole records (~1.5 ms a page)
SHELF_DUTY = 0.1  # the share of time a re-read may hold the GIL: it pauses 9x what a page took
log = logging.getLogger("bookclub.api.titles")
_Page = TypeVar("_Page", dict[str, TitleRecord], list[tuple[str, float | None, bool]])
_T = TypeVar("_T")


class UnknownCategoryFilterError(UnknownCategoryError):
    """``category=`` names no category: a 404 (like ``/v1/categories/{code}``) naming the field."""

    def __init__(self, code: str | None) -> None:
        super().__init__(f"unknown category {code!r}: use a code of the category tree (e.g. I247)")
        self.errors = [
            {"location": "query", "field": "category", "index": None, "reason": f"unknown category code {code!r}"}
        ]


def recommendations_json(
    engine: Engine,
    model: ServingModel,
    member_id: str,
    query: RecommendationQuery,
    *,
    shelf: TitleShelf | None = None,
) -> tuple[bool, bytes]:
    """(cold_start, the ``RecommendationsPublic`` JSON body) for a member.

    Blocking (database and numpy): the route runs it in one threadpool call.
    UnknownMemberError for an unknown member, UnknownCategoryError for an unknown category
    (both 404: a schema-valid request naming something the club does not have).
    """
    state = shelf.current() if shelf is not None else None
    try:
        result = _on_connection(
            engine, lambda connection: serving.recommend(connection, model, member_id, query, shelf=state)
        )
    except UnknownCategoryError as exc:
        raise UnknownCategoryFilterError(query.category) from exc
    return result.cold_start, serving.recommendations_json(result, model.version, state)


def read_snapshot(engine: Engine, model: ServingModel, member_id: str) -> MemberSnapshot:
    """The first half of :func:`recommendations_json`: the member's snapshot (a reader thread's
    job, :meth:`ComputePool.read`). UnknownMemberError for an unknown member, as
    :func:`recsys.serving.recommend` raises it."""
    snapshot = _on_connection(
        engine, lambda connection: members_db.member_snapshot(connection, member_id, model.trained_until)
    )
    if snapshot is None:
        raise UnknownMemberError(f"unknown member {member_id!r}: check the member id")
    return snapshot


def recommendations_from_snapshot(
    engine: Engine,
    model: ServingModel,
    member_id: str,
    snapshot: MemberSnapshot,
    query: RecommendationQuery,
    state: Shelf,
) -> tuple[bool, bytes]:
    """The second half of :func:`recommendations_json`, for a query whose category (if any) the
    shelf knows: what :func:`recsys.serving.recommend` does after reading the snapshot (titles
    the shelf does not hold are read on this thread's connection). The same body
    (tests/api/test_read_ahead.py)."""

    def title_details(ids: list[str]) -> dict[str, TitleRecord]:
        return _on_connection(engine, lambda connection: titles_db.title_details(connection, ids))

    try:
        result = serving.recommend_for_member(
            model, member_id, snapshot, query, shelf=state, title_details=title_details
        )
    except UnknownCategoryError as exc:
        raise UnknownCategoryFilterError(query.category) from exc
    return result.cold_start, serving.recommendations_json(result, model.version, state)


def _on_connection(engine: Engine, read: Callable[[Connection], _T]) -> _T:
    """``read(connection)`` on this thread's connection; a kept connection the database dropped
    (a restart) is replaced and the read tried once more on the new one, as the pool's pre-ping
    would have done."""
    for retry in (False, True):
        try:
            with _connection(engine) as connection:
                return read(connection)
        except DBAPIError as exc:
            if retry or not exc.connection_invalidated or not _holds_connections():
                raise
    raise AssertionError("unreachable")  # the second try returned or raised


_kept = threading.local()  # a compute thread's connections, by engine (hold_connections)


def hold_connections() -> None:
    """Let this thread keep one connection per engine from request to request (a compute
    thread's ``on_start``; :func:`release_connections` at its exit).

    A connection checked out of the pool per request cost a pool checkout and a reset (a
    ``ROLLBACK``) each time, and on PostgreSQL the pre-ping's ``SELECT 1`` too: two round
    trips besides the request's own query. A kept connection runs in autocommit: each of a
    request's reads (one query, as a rule) sees what is committed when it runs, as
    before, and holds no transaction open between requests (SQLite's WAL is not pinned).
    """
    _kept.connections = {}


def release_connections() -> None:
    """Close the connections this thread kept (back to their pools)."""
    kept: dict[Engine, Connection] = getattr(_kept, "connections", None) or {}
    _kept.connections = None
    for connection in kept.values():
        with contextlib.suppress(Exception):  # a dead connection is dropped by the pool
            connection.close()


def _holds_connections() -> bool:
    return getattr(_kept, "connections", None) is not None


@contextlib.contextmanager
def _connection(engine: Engine) -> Iterator[Connection]:
    """This thread's kept connection to ``engine`` (opened if need be), else one from the pool
    for the time of the block."""
    kept: dict[Engine, Connection] | None = getattr(_kept, "connections", None)
    if kept is None:
        with engine.connect() as connection:
            yield connection
        return
    found = kept.get(engine)
    if found is None or found.closed or found.invalidated:
        if found is not None:
            with contextlib.suppress(Exception):
                found.close()
        found = kept[engine] = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    yield found


async def answer_recommendations(
    holder: ModelHolder, engine: Engine, compute: ComputePool, member_id: str, query: RecommendationQuery
) -> tuple[str, bytes]:
    """(model version, body) of ``GET /v1/members/{member_id}/recommendations``: one model (and
    its title cache) for the whole request, the work in a compute thread, the kind counted.
    What the route and its fast path (:mod:`api.fastpath`) both run."""
    model, prepared = holder.serving()
    shelf = prepared if isinstance(prepared, TitleShelf) else None
    state = shelf.current() if shelf is not None else None
    work: Callable[[], tuple[bool, bytes]]
    if compute.readers is not None and state is not None and (
        query.category is None or query.category in state.categories
    ):
        # read ahead: the snapshot in a reader thread, so the compute thread does not wait for
        # the database (api/compute.py); a category the shelf does not know yet takes the one
        # job below, which looks it up in the database
        snapshot = await compute.read(partial(read_snapshot, engine, model, member_id))
        work = partial(recommendations_from_snapshot, engine, model, member_id, snapshot, query, state)
    else:
        work = partial(recommendations_json, engine, model, member_id, query, shelf=shelf)
    # the body is serialised in the worker thread from cached title JSON (RecommendationsPublic,
    # checked in tests/api/test_recommendations_json.py), not validated again by FastAPI
    cold_start, body = await compute.run(work)
    record_recommendation(cold_start)
    return model.version, body


def _title(record: TitleRecord) -> TitlePublic:
    return TitlePublic(
        title_id=record.title_id,
        title=record.title,
        author=record.author,
        price=record.price,
        categories=list(record.categories),
        in_stock=record.in_stock,
    )


def _scored(connection: Connection, scored: Sequence[tuple[str, float]]) -> list[ScoredTitlePublic]:
    details = titles_db.title_details(connection, [t for t, _ in scored])
    return [
        ScoredTitlePublic(**_title(details[t]).model_dump(), score=float(s))
        for t, s in scored
        if t in details
    ]


def similar_titles(
    connection: Connection, model: ServingModel, title_id: str, limit: int
) -> list[ScoredTitlePublic]:
    if not titles_db.title_exists(connection, title_id):
        raise UnknownTitleError(f"unknown title {title_id!r}: check the title id")
    return _scored(connection, model.similar_titles(title_id, limit=limit))


def popular_in_category(
    connection: Connection, model: ServingModel, code: str, limit: int
) -> tuple[str, list[ScoredTitlePublic]]:
    name = categories_db.category_name(connection, code)
    if name is None:
        raise UnknownCategoryError(f"unknown category {code!r}: use a code of the category tree")
    try:
        popular = model.popular_in_category(code, limit=limit)
    except UnknownCategoryError:  # in the club's tree but added after training: no sales yet
        popular = []
    return name, _scored(connection, popular)


class TitleShelf:
    """A worker's :class:`~recsys.serving.Shelf` for one model: read whole when the model is
    loaded, then kept fresh in the background (a request never waits for a re-read).

    Every ``ttl`` seconds only what changes without a retrain is read: each title's price and
    stock, and which titles exist (:func:`~recsys.storage.titles.title_stock`); records are
    rebuilt only for titles that changed, new titles are read whole, and when nothing changed
    the shelf (with its cached JSON) stays as it is. Every ``full_every`` seconds the records
    are read whole again (names, authors, categories).

    Both reads go page by page, a millisecond or so of work a page, pausing nine times as long
    after each: the re-read holds the GIL while it builds Python objects, and a request thread
    that releases the GIL (numpy, SQL) waits up to the switch interval (5 ms) to get it back
    from a busy re-read, several times per request. Read in one go, 50,000 titles stalled the
    worker's requests for ~0.5 s (whole records) once a minute; in pages of 2,000 without
    enough pause, prices and stock still cost ~100 ms of stalled answers.
    """

    def __init__(
        self,
        engine: Engine,
        model: ServingModel,
        ttl: float = SHELF_TTL_SECONDS,
        full_every: float = SHELF_FULL_SECONDS,
    ) -> None:
        self.engine, self.model, self.ttl, self.full_every = engine, model, ttl, full_every
        self._lock = threading.Lock()
        self._reading = False
        with engine.connect() as connection:  # in one go: nothing is served from it yet
            self._state = serving.read_shelf(connection, model, time.monotonic())
        gc.freeze()  # ~50,000 long-lived records: kept out of full collections (see api.app)
        self._full_at = self._state.read_at

    def _paged(
        self, read: Callable[..., _Page], key: Callable[[_Page], str], size: int
    ) -> Iterator[_Page]:
        """``read(connection, after=…, limit=size)`` page by page, pausing in between."""
        after: str | None = None
        with self.engine.connect() as connection:
            while True:
                started = time.perf_counter()
                page = read(connection, after=after, limit=size)
                yield page  # the caller's work on the page counts in the time it took
                if len(page) < size:
                    return
                after = key(page)
                took = time.perf_counter() - started
                time.sleep(took * (1 - SHELF_DUTY) / SHELF_DUTY)  # the GIL free for the requests

    def _read(self) -> Shelf:
        """Every title's record again, page by page."""
        now = time.monotonic()
        details: dict[str, TitleRecord] = {}
        for page in self._paged(titles_db.all_title_details, _last_record, SHELF_RECORDS_PAGE):
            details.update(page)
        with self.engine.connect() as connection:
            categories = categories_db.category_codes(connection)
        shelf = serving.make_shelf(self.model, details, categories, now)
        gc.freeze()  # ~50,000 long-lived records: kept out of full collections (see api.app)
        return shelf

    def _refresh(self, old: Shelf) -> Shelf:
        """``old`` with the prices, stock and titles the database holds now."""
        now = time.monotonic()
        details = old.details
        changed: dict[str, TitleRecord] = {}
        added: list[str] = []
        present: set[str] = set()
        for page in self._paged(titles_db.title_stock, _last_stock, SHELF_PAGE):
            for title_id, price, in_stock in page:
                present.add(title_id)
                record = details.get(title_id)
                if record is None:
                    added.append(title_id)
                elif record.price != price or record.in_stock != in_stock:
                    changed[title_id] = dataclasses.replace(record, price=price, in_stock=in_stock)
        removed = len(details) + len(added) != len(present)
        if not (changed or added or removed):
            return dataclasses.replace(old, read_at=now)  # the same records and cached JSON
        with self.engine.connect() as connection:
            fresh = titles_db.title_details(connection, added) if added else {}
            categories = categories_db.category_codes(connection)
        merged = {t: r for t, r in details.items() if t in present} if removed else dict(details)
        merged.update(changed)
        merged.update(fresh)
        shelf = serving.make_shelf(self.model, merged, categories, now)
        cached = dict(old.fragments)  # one copy (requests add to it meanwhile)
        shelf.fragments.update((t, f) for t, f in cached.items() if merged.get(t) is details.get(t))
        return shelf

    def current(self) -> Shelf:
        state = self._state
        if time.monotonic() - state.read_at > self.ttl:
            with self._lock:
                start, self._reading = not self._reading, True
            if start:
                threading.Thread(target=self._reread, name="title-shelf", daemon=True).start()
        return state

    def _reread(self) -> None:
        try:
            if time.monotonic() - self._full_at > self.full_every:
                self._state = self._read()
                self._full_at = self._state.read_at
            else:
                self._state = self._refresh(self._state)
        except Exception:  # keep the old data; try again after the next ttl
            log.exception("re-reading title data failed")
            self._state = dataclasses.replace(self._state, read_at=time.monotonic())
        finally:
            with self._lock:
                self._reading = False


def _last_record(page: dict[str, TitleRecord]) -> str:
    return next(reversed(page))  # the page's last title id, in the database's order


def _last_stock(page: list[tuple[str, float | None, bool]]) -> str:
    return page[-1][0]


def feed_new_titles(engine: Engine, model: ServingModel) -> TitleShelf:
    """:func:`recsys.serving.prepare_model_from_db` for a freshly loaded model, and the
    worker's title cache for it (the holder keeps it beside the model)."""
    with engine.connect() as connection:
        serving.prepare_model_from_db(connection, model)
    return TitleShelf(engine, model)
