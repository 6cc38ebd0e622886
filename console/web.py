"""What every console page shares: the security headers, the session check, the same-origin
check on posts, the language, the templates and the per-request connection.

Every route of the console uses :class:`ConsoleRoute`, which

- sets a strict Content-Security-Policy (scripts and styles from ``/ui/static`` only, no
  inline script, no ``eval``), ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``,
  ``X-Content-Type-Options: nosniff``, ``Vary: HX-Request, Cookie`` and ``Cache-Control:
  no-store`` on every page (member pages hold personal data; no page is cached);
- turns the console's refusals into pages: no session → the login page (htmx requests get
  ``HX-Redirect``), a role too low → 403, a cross-site post → 403, an unknown member or
  title → 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Connection, Engine

from console.charts import fmt_value
from console.i18n import LANG_COOKIE, LANGS, translator
from console.session import COOKIE, COOKIE_PATH, ROLES, StaffSession, console_secret, read_session
from recsys.errors import ModelNotFoundError, UnknownMemberError, UnknownTitleError
from recsys.settings import Settings
from recsys.storage.apikeys import key_by_prefix
from recsys.text import has_unstorable
from training.artifact import ModelCorruptError
from training.registry import RegistryUnreadableError

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(moment: object) -> str:
    """A stored time to the second (UTC, as stored)."""
    strftime = getattr(moment, "strftime", None)
    return strftime("%Y-%m-%d %H:%M:%S") if strftime is not None else str(moment or "")


templates.filters["when"] = _when
templates.globals["chartnum"] = fmt_value  # numbers beside a chart, as its data-value
templates.filters["epoch"] = lambda seconds: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(seconds)))


class LoginRequired(Exception):
    pass


class Denied(Exception):
    """The session's role may not do this."""


class CrossSite(Exception):
    """A state-changing request that did not come from the console's own pages."""


class NotFound(Exception):
    pass


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else "zh"


def is_fragment(request: Request) -> bool:
    """An htmx swap (not a history restore, which needs the whole page)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _error_page(request: Request, status: int, key: str, detail: str | None = None) -> HTMLResponse:
    t = translator(lang_of(request))
    body = templates.get_template("error.html").render(
        t=t, message=t(key), detail=detail, status=status, lang=lang_of(request)
    )
    return HTMLResponse(body, status_code=status)


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/ui/login?" + urlencode({"next": target})
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def secure(response: Response, request: Request) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "HX-Request, Cookie"
    asked = request.query_params.get("lang")
    if asked in LANGS:
        response.set_cookie(LANG_COOKIE, asked, path=COOKIE_PATH, samesite="lax", max_age=365 * 86400)
    return response


async def _holds_unstorable_text(request: Request) -> bool:
    """A NUL (or a lone surrogate) in a path or query parameter or a form field: refused
    before any page runs, so that no query or file name ever sees it (PostgreSQL cannot
    store it; ``open()`` refuses it)."""
    values = [*request.path_params.values(), *request.query_params.keys(), *request.query_params.values()]
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        values.extend(v for vs in parse_qs((await request.body()).decode("utf-8", errors="replace")).values() for v in vs)
    return any(isinstance(v, str) and has_unstorable(v) for v in values)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                if await _holds_unstorable_text(request):
                    return secure(_error_page(request, 422, "bad_text"), request)
                response = await original(request)
            except LoginRequired:
                response = _login_redirect(request)
            except Denied:
                response = _error_page(request, 403, "forbidden")
            except CrossSite:
                response = _error_page(request, 403, "cross_site")
            except (NotFound, UnknownMemberError, UnknownTitleError, ModelNotFoundError):
                response = _error_page(request, 404, "not_found")
            except ModelCorruptError as exc:  # names the version and the broken file, never a path
                response = _error_page(request, 409, "model_damaged", str(exc))
            except RegistryUnreadableError as exc:  # names registry.json and what to do
                response = _error_page(request, 503, "registry_unreadable", str(exc))
            return secure(response, request)

        return handler


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_connection(request: Request) -> Iterator[Connection]:
    with engine_of(request).connect() as connection:
        yield connection


def session_of(request: Request, connection: Connection) -> StaffSession | None:
    """The signed session in the cookie, if its key is still valid with the same scope."""
    settings = settings_of(request)
    secret = getattr(request.app.state, "console_secret", None)
    if secret is None:
        secret = request.app.state.console_secret = console_secret(settings)
    session = read_session(secret, request.cookies.get(COOKIE), settings.console.session_hours * 3600)
    if session is None:
        return None
    info = key_by_prefix(connection, session.prefix)  # revocation re-checked on every request
    if info is None or info.revoked_at is not None or info.scope != session.scope:
        return None
    return session


def require(request: Request, connection: Connection, role: str = "read") -> StaffSession:
    session = session_of(request, connection)
    if session is None:
        raise LoginRequired()
    if not session.can(role):
        raise Denied()
    return session


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request from another site: ``Sec-Fetch-Site`` must be
    same-origin (when the browser sends it) and ``Origin`` must be this server's."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CrossSite()
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    if origin is None or host is None or origin != f"{request.url.scheme}://{host}":
        raise CrossSite()


async def form_of(request: Request) -> dict[str, str]:
    """A url-encoded form body (one value per field), without a multipart parser."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def page(
    request: Request,
    template: str,
    session: StaffSession | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = lang_of(request)
    t = translator(lang)
    params = dict(request.query_params)
    params["lang"] = "en" if lang == "zh" else "zh"
    other_lang = request.url.path + "?" + urlencode(params)
    started = getattr(request.state, "console_started", None)
    body = templates.get_template(template).render(
        t=t, lang=lang, session=session, path=request.url.path, other_lang=other_lang,
        fragment=is_fragment(request), urlq=quote, roles=ROLES, rendered_at=time.strftime("%Y-%m-%d %H:%M:%S"),
        started=started, **context,
    )
    return HTMLResponse(body, status_code=status)
