"""Every error as a JSON body ``{error, message, errors}``; never a stack trace.

Domain errors (``recsys.errors``) map to their HTTP status here, in one place;
a database that does not answer is a 503 with a message to retry.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.model_holder import ModelUnavailableError
from api.schemas import ErrorPublic
from recsys.errors import (
    BookclubError,
    DatabaseNotReadyError,
    DiskFullError,
    FontUnavailableError,
    ImportRejectedError,
    LockTimeoutError,
    ModelNotFoundError,
    UnknownCategoryError,
    UnknownMemberError,
    UnknownTitleError,
)
from recsys.storage.apikeys import UnknownApiKeyError
from training.artifact import ModelCorruptError, ModelFormatError
from training.registry import RegistryUnreadableError

log = logging.getLogger("bookclub.api.errors")


class InvalidInputError(ImportRejectedError):
    """Input that passed the schema but not the domain (a batch's bad lines, an unknown code).

    ``errors`` lists every fault as ``{location, field, index, reason}``; nothing was written.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


_STATUS: tuple[tuple[type[BookclubError], int, str], ...] = (
    (UnknownMemberError, 404, "not_found"),
    (UnknownTitleError, 404, "not_found"),
    (UnknownCategoryError, 404, "not_found"),
    (ModelCorruptError, 409, "model_damaged"),
    (ModelFormatError, 409, "model_format"),
    (ModelNotFoundError, 404, "not_found"),
    (RegistryUnreadableError, 503, "model_registry_unreadable"),
    (UnknownApiKeyError, 404, "not_found"),
    (ImportRejectedError, 422, "validation_error"),
    (DatabaseNotReadyError, 503, "database_unavailable"),
    (FontUnavailableError, 503, "font_unavailable"),
    (LockTimeoutError, 503, "busy"),
    (DiskFullError, 507, "insufficient_storage"),
    (ModelUnavailableError, 503, "model_unavailable"),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
    507: "insufficient_storage",
}

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no API key, or an invalid one"},
    404: {"model": ErrorPublic, "description": "unknown member, title, category or model"},
    422: {"model": ErrorPublic, "description": "a bad parameter or body field, named in `errors`"},
    503: {"model": ErrorPublic, "description": "database or model unavailable; retry"},
}
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    400: {"model": ErrorPublic, "description": "the body is not JSON text (e.g. not UTF-8)"},
    403: {"model": ErrorPublic, "description": "the key has read scope; an admin key is needed"},
    413: {"model": ErrorPublic, "description": "the body is over `api.max_body_bytes`"},
}

DB_DOWN_MESSAGE = "the database is not answering; try again shortly"


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/]+/)*([^\s'\"/]*)")


def scrub(text: str) -> str:
    """``text`` without URLs (they carry hosts and users) or server paths (kept: the file name)."""
    return _PATH.sub(r"\1", _URL.sub("<url>", text))


def error_body(error: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": error, "message": message, "errors": errors or []}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _detail(err: dict[str, Any]) -> dict[str, Any]:
    """A pydantic error as {location, field, index, reason}; batch lines give their index."""
    loc = list(err.get("loc", ()))
    location = str(loc[0]) if loc else "body"
    rest = loc[1:]
    index: int | None = None
    if location == "body" and len(rest) >= 2 and rest[0] == "lines" and isinstance(rest[1], int):
        index, rest = rest[1], rest[2:]
    field = ".".join(str(p) for p in rest if not isinstance(p, int)) or location
    return {"location": location, "field": field, "index": index, "reason": str(err.get("msg", ""))}


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [_detail(e) for e in exc.errors()]
    # one entry per (location, field, index): union types report each alternative
    unique = list({(d["location"], d["field"], d["index"]): d for d in details}.values())
    fields = ", ".join(dict.fromkeys(d["field"] for d in unique))
    return _json(422, error_body("validation_error", f"invalid request: check {fields}", unique))


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """An HTTP exception as the API's JSON error (also for the body guard, outside the routes)."""
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return _json(exc.status_code, error_body(code, message), dict(exc.headers or {}))


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return http_error_response(exc)


def _model_unavailable(request: Request, exc: ModelUnavailableError) -> str:
    """Say which active model failed to load and why, rather than only "no model loaded"."""
    holder = getattr(request.app.state, "holder", None)
    failure = getattr(holder, "last_error", None)
    if not failure:
        return str(exc)
    active = holder.registry.active_version() if holder is not None else None
    return (
        f"no model is loaded: the active model {active} failed to load ({scrub(failure)}); "
        "activate a working version (`bookclub models activate VERSION` or `bookclub models rollback`)"
    )


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BookclubError)
    if isinstance(exc, InvalidInputError):
        return _json(422, error_body("validation_error", str(exc), exc.errors))
    if isinstance(exc, ModelCorruptError):
        field = {"location": "path", "field": "version", "index": None, "reason": f"{exc.file}: {exc.reason}"}
        return _json(409, error_body("model_damaged", scrub(str(exc)), [field]))
    if isinstance(exc, ModelUnavailableError):
        message = _model_unavailable(request, exc)
        return _json(503, error_body("model_unavailable", message), {"Retry-After": "5"})
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            headers = {"Retry-After": "5"} if status in (503, 507) else None
            # a full disk's message names the server's folders: the client gets the file's name
            message = exc.public_message if isinstance(exc, DiskFullError) else str(exc)
            return _json(status, error_body(code, message, getattr(exc, "errors", None)), headers)
    return _json(400, error_body("bad_request", str(exc)))


async def _database(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database error: %s", type(exc).__name__)
    return _json(503, error_body("database_unavailable", DB_DOWN_MESSAGE), {"Retry-After": "5"})


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return _json(500, error_body("internal_error", "the server failed on this request; it is logged"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(BookclubError, _domain)
    for exc_type in (OperationalError, DisconnectionError, PoolTimeoutError):
        app.add_exception_handler(exc_type, _database)
    app.add_exception_handler(DBAPIError, _db_api)
    app.add_exception_handler(Exception, _unexpected)


async def _db_api(request: Request, exc: Exception) -> JSONResponse:
    """Connection-level DBAPI errors are an outage; others are bugs (500)."""
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return await _database(request, exc)
    return await _unexpected(request, exc)
