"""Request bodies: the API key is checked before the first byte is received, and size is bounded.

FastAPI receives and parses a route's body *before* it resolves the route's
dependencies, so the key dependency alone lets anyone without a key make a
worker receive and parse any amount of JSON. :class:`BodyGuard` is a pure ASGI
middleware that wraps ``receive``; a route that reads its body calls it, by then
routed (``scope["route"]``), and on that first call, before pulling a byte from
the server:

1. the route's API-key dependencies (those of :mod:`api.auth`: ``require_read``,
   ``require_admin``, ...) are run: a missing, invalid or under-scoped key is
   answered 401/403 and the body is never received;
2. a declared ``Content-Length`` above ``api.max_body_bytes`` is answered 413;
3. the body is counted as it arrives (``Transfer-Encoding: chunked`` too) and
   the request is answered 413 as soon as it passes the limit.

A refusal is raised as :class:`Refused` (an ``HTTPException``, which FastAPI lets
through its body reading), carrying the response the app's own exception handler
made for the underlying error, so the JSON is the API's usual ``{error, message,
errors}``. Routes without a body are untouched: their key dependency runs as usual.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUTH_MODULE = "api.auth"


class Refused(HTTPException):
    """A request refused while its body was about to be received; ``response`` is the answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def refused_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return exc.response


def _auth_dependants(dependant: Dependant) -> Iterator[Dependant]:
    """The key-checking dependencies of a route (functions of :mod:`api.auth`), depth first."""
    for sub in dependant.dependencies:
        call = sub.call
        if inspect.isfunction(call) and call.__module__ == AUTH_MODULE:
            yield sub
        else:
            yield from _auth_dependants(sub)


async def _run_auth(dependant: Dependant, request: Request) -> None:
    """Call a key dependency as FastAPI would: the request, and its security schemes (which
    take only the request). One with other parameters is left to FastAPI."""
    kwargs: dict[str, Any] = {}
    if (own := _request_param(dependant)) is not None:
        kwargs[own] = request
    for sub in dependant.dependencies:
        param = _request_param(sub)
        if sub.dependencies or param is None or sub.call is None or sub.name is None:
            return
        value = sub.call(**{param: request})
        kwargs[sub.name] = await value if inspect.isawaitable(value) else value
    assert dependant.call is not None
    result = dependant.call(**kwargs)
    if inspect.isawaitable(result):
        await result


def _request_param(dependant: Dependant) -> str | None:
    """The parameter that takes the request (typed ``Request`` or ``HTTPConnection``)."""
    return dependant.request_param_name or getattr(dependant, "http_connection_param_name", None)


def _handler_for(app: Any, exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
    handlers: dict[Any, Any] = getattr(app, "exception_handlers", {})
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]  # type: ignore[no-any-return]
    return None


class BodyGuard:
    """See the module docstring. ``max_bytes``: the largest body accepted."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        announces_body = (declared or 0) > 0 or "transfer-encoding" in headers
        checked = not announces_body
        received = 0

        async def guarded_receive() -> Message:
            nonlocal checked, received
            if not checked:
                checked = True
                await self._before_body(scope, declared)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    await self._refuse(scope, self._too_large())
            return message

        await self.app(scope, guarded_receive, send)

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413,
            f"the request body is larger than {self.max_bytes:,} bytes (api.max_body_bytes): "
            "send less per request",
        )

    async def _before_body(self, scope: Scope, declared: int | None) -> None:
        route = scope.get("route")
        dependant = getattr(route, "dependant", None)
        if isinstance(dependant, Dependant):
            overrides: dict[Any, Any] = getattr(scope.get("app"), "dependency_overrides", {}) or {}
            request = Request(scope)  # no receive: nothing here can read the body
            for auth in _auth_dependants(dependant):
                if auth.call in overrides:
                    continue  # replaced (tests): the route's own resolution decides
                try:
                    await _run_auth(auth, request)
                except Exception as exc:
                    await self._refuse(scope, exc)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, self._too_large())

    async def _refuse(self, scope: Scope, exc: Exception) -> None:
        """Raise :class:`Refused` with the app's own answer to ``exc``."""
        handler = _handler_for(scope.get("app"), exc)
        if handler is None:
            raise exc
        raise Refused(await handler(Request(scope), exc))


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None
