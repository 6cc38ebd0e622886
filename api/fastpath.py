"""``GET /v1/members/{member_id}/recommendations`` without FastAPI's per-request machinery.

The hot route's work is about a millisecond; FastAPI's dependency solving (a dozen
dependency nodes and a pydantic validation per parameter), routing, four middlewares
and the anyio thread handoff cost about half as much again. :class:`RecommendationsFastPath`
is the outermost of the app's own middlewares (inside only Starlette's
``ServerErrorMiddleware`` and FastAPI's telemetry and body-limit middlewares). It answers a
request itself when everything about it is plainly valid, and hands anything else,
unchanged, to the app, whose route (``api.routes.members.read_recommendations``) answers it
as before:

- the method is GET, the path is ``/v1/members/{member_id}/recommendations`` with a member
  id of 1-64 characters and no NUL (the route's own constraints), and no ``root_path``;
- the query has each of ``limit``, ``category``, ``include_purchased``, ``in_stock_only`` at
  most once, ``limit`` a plain number from 1 to ``api.max_limit``, ``category`` 1-64
  characters and no NUL, the two flags one of pydantic's boolean words; other parameters
  are ignored, as FastAPI ignores them;
- the key is found the way ``api.auth.require_read`` finds it (a ``Bearer`` credential,
  else ``X-API-Key``) and this worker's key cache holds it as valid (the first request with
  a key, or the first after ``api.key_cache_seconds``, goes to the route, which checks it
  against the database), or there is no key and the server runs in open demo mode.

The work is the route's own (:func:`api.recommending.answer_recommendations`); its errors
become the app's own answers (``api.errors``' handlers); the request is counted and logged
like any other (:func:`api.metrics.record_request`, route template, no query). The
behaviour is the route's: ``tests/api/test_fastpath.py`` sends the same requests through
both and compares status, headers and body.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import KeyVerifier
from api.metrics import record_request
from api.recommending import answer_recommendations
from api.routes.members import RECOMMENDATIONS_ROUTE
from recsys.serving import RecommendationQuery

PREFIX = "/v1/members/"
SUFFIX = "/recommendations"
MAX_TEXT = 64  # the route's max_length for member_id and category
# pydantic's words for a boolean (lower-cased); anything else goes to the route (a 422 there)
BOOLEANS = {
    "1": True, "on": True, "t": True, "true": True, "y": True, "yes": True,
    "0": False, "off": False, "f": False, "false": False, "n": False, "no": False,
}
PARAMS = frozenset({"limit", "category", "include_purchased", "in_stock_only"})
QUERY_CACHE_SIZE = 1024  # distinct query strings a worker remembers the reading of

Handler = Callable[[Request, Exception], Awaitable[Response]]


def member_of(path: str) -> str | None:
    """The member id of a recommendations path the route would accept, else None."""
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    member = path[len(PREFIX) : len(path) - len(SUFFIX)]
    if not member or len(member) > MAX_TEXT or "/" in member or "\x00" in member:
        return None
    return member


class QueryCache:
    """:func:`read_query` remembered by query string: clients send the same few (``limit=20``)
    over and over, and parsing one costs about as much as the rest of the fast path's checks.
    At most ``size`` strings (then it starts again); a RecommendationQuery is immutable."""

    def __init__(self, default_limit: int, max_limit: int, size: int = QUERY_CACHE_SIZE) -> None:
        self.default_limit, self.max_limit, self.size = default_limit, max_limit, size
        self._read: dict[bytes, RecommendationQuery | None] = {}

    def read(self, raw: bytes) -> RecommendationQuery | None:
        try:
            return self._read[raw]
        except KeyError:
            pass
        query = read_query(raw, self.default_limit, self.max_limit)
        if len(self._read) >= self.size:
            self._read = {}
        self._read[raw] = query
        return query


def read_query(raw: bytes, default_limit: int, max_limit: int) -> RecommendationQuery | None:
    """The query the route would build from this query string, when every parameter it reads
    is plainly valid; else None (the route then answers, with its 422 where one is due)."""
    limit, category, include_purchased, in_stock_only = default_limit, None, False, True
    if not raw:
        return RecommendationQuery(limit=limit)
    seen: set[str] = set()
    # as Starlette reads a query string
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name not in PARAMS:
            continue
        if name in seen:
            return None
        seen.add(name)
        if name == "limit":
            if not (value.isascii() and value.isdigit()) or value[0] == "0" or len(value) > 4:
                return None
            limit = int(value)
            if limit > max_limit:
                return None
        elif name == "category":
            if not value or len(value) > MAX_TEXT or "\x00" in value:
                return None
            category = value
        else:
            flag = BOOLEANS.get(value.lower())
            if flag is None:
                return None
            if name == "include_purchased":
                include_purchased = flag
            else:
                in_stock_only = flag
    return RecommendationQuery(
        limit=limit, category=category, include_purchased=include_purchased, in_stock_only=in_stock_only
    )


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key ``api.auth`` would take from these headers: a ``Bearer`` credential (the first
    Authorization header, as Starlette reads it), else the first X-API-Key, stripped."""
    authorization = api_key = None
    for name, value in headers:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            return credentials.strip()
    if api_key:
        return api_key.strip()
    return None


def _handler(app: Any, exc: Exception) -> Handler | None:
    """The app's handler for ``exc`` as Starlette's ExceptionMiddleware finds it (by the
    exception's MRO); None for the catch-all, which ServerErrorMiddleware applies."""
    handlers: dict[Any, Any] = getattr(app, "exception_handlers", {})
    for kind in type(exc).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]  # type: ignore[no-any-return]
    return None


class RecommendationsFastPath:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._queries: QueryCache | None = None  # for the app's settings, at the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        member = member_of(scope["path"])
        if member is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        app = scope["app"]
        state = app.state
        api = state.settings.api
        queries = self._queries
        if queries is None:  # the app's settings are known from the first request on
            queries = self._queries = QueryCache(api.default_limit, api.max_limit)
        query = queries.read(scope["query_string"])
        if query is None or not self._allowed(presented_key(scope["headers"]), state.keys, api.open_demo):
            await self.app(scope, receive, send)
            return
        status = 500  # unless answered: an error no handler takes goes on to ServerErrorMiddleware
        try:
            try:
                version, body = await answer_recommendations(
                    state.holder, state.engine, state.compute, member, query
                )
            except Exception as exc:
                handler = _handler(app, exc)
                if handler is None:
                    raise
                response = await handler(Request(scope), exc)
                status = response.status_code
                await response(scope, receive, send)
                return
            status = 200
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"x-model-version", version.encode("latin-1")),
                        (b"content-length", str(len(body)).encode()),
                        (b"content-type", b"application/json"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            record_request("GET", RECOMMENDATIONS_ROUTE, status, time.perf_counter() - start)

    @staticmethod
    def _allowed(key: str | None, keys: KeyVerifier, open_demo: bool) -> bool:
        """A read key this worker has verified and still trusts, or no key in open demo mode."""
        if key is None:
            return open_demo
        found, info = keys.cached(key)
        return found and info is not None
