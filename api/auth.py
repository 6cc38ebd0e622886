"""API keys on requests: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Read routes take any key (or none, when the server runs in open demo mode);
routes that show personal data (a member edition: name and address) need an
``editions`` or ``admin`` key, in open demo mode too; admin routes always need
an admin key. A worker remembers a
verified key for ``key_cache_seconds`` (by its hash, never the key), so a
revocation takes effect within that delay without a database read per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from recsys.storage.apikeys import PERSONAL_SCOPES, ApiKeyInfo, hash_key, verify_key

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="bk_<prefix>_<secret>",
    description="an API key as a bearer token",
)
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")

log = logging.getLogger("bookclub.api.auth")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's prefix and scope, or the anonymous reader of open demo mode."""

    scope: str  # 'read' | 'editions' | 'admin'
    prefix: str | None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    @property
    def sees_personal_data(self) -> bool:
        """Members' names and addresses, and the editions that print them: editions and admin."""
        return self.scope in PERSONAL_SCOPES


class KeyVerifier:
    """Checks keys against the database, caching answers for ``ttl`` seconds per worker.

    A key still in use is checked again ahead of time: the first request that finds its
    answer past half its ``ttl`` starts one background check (:meth:`_refresh`) and is
    answered from the cache meanwhile. A busy key so never expires on the request path —
    before, every ``ttl`` all the requests in flight with it missed together, each checked it
    against the database and went through the full route — and a revocation still takes
    effect within ``ttl``: an answer is never trusted longer than that after its check.
    """

    def __init__(self, engine: Engine, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, ApiKeyInfo | None]] = {}
        self._refreshing: set[str] = set()  # key hashes being checked again in the background
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, ApiKeyInfo | None]:
        digest = hash_key(key)
        hit = self._cache.get(digest)
        if hit is None:
            return False, None
        left = hit[0] - self.clock()
        if left <= 0:
            return False, None
        if left < self.ttl / 2 and digest not in self._refreshing:
            self._refresh(key, digest)
        return True, hit[1]

    def _refresh(self, key: str, digest: str) -> None:
        """:meth:`verify` in a thread of its own, once per key at a time."""
        with self._lock:
            if digest in self._refreshing:
                return
            self._refreshing.add(digest)

        def check() -> None:
            try:
                self.verify(key)
            except Exception:  # the cached answer expires as it would have: the route checks then
                log.warning("checking an API key again failed", exc_info=True)
            finally:
                with self._lock:
                    self._refreshing.discard(digest)

        threading.Thread(target=check, name="key-refresh", daemon=True).start()

    def verify(self, key: str) -> ApiKeyInfo | None:
        """Look the key up in the database (blocking) and remember the answer."""
        with self.engine.connect() as connection:
            info = verify_key(connection, key)
        if self.ttl > 0:
            with self._lock:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                self._cache[hash_key(key)] = (self.clock() + self.ttl, info)
        return info

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def _presented_key(credentials: HTTPAuthorizationCredentials | None, header_key: str | None) -> str | None:
    if credentials is not None and credentials.credentials:
        return credentials.credentials.strip()
    if header_key:
        return header_key.strip()
    return None


async def _principal(request: Request, key: str | None) -> Principal | None:
    if key is None:
        return None
    verifier: KeyVerifier = request.app.state.keys
    found, info = verifier.cached(key)
    if not found:
        info = await run_in_threadpool(verifier.verify, key)
    if info is None:
        raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
    return Principal(info.scope, info.prefix)


async def require_read(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    header_key: Annotated[str | None, Depends(header_scheme)],
) -> Principal:
    principal = await _principal(request, _presented_key(credentials, header_key))
    if principal is not None:
        return principal
    if request.app.state.settings.api.open_demo:
        return Principal("read", None)
    raise HTTPException(
        401,
        "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        headers=_CHALLENGE,
    )


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    header_key: Annotated[str | None, Depends(header_scheme)],
) -> Principal:
    principal = await _principal(request, _presented_key(credentials, header_key))
    if principal is None:
        raise HTTPException(401, "an admin API key is required", headers=_CHALLENGE)
    if not principal.is_admin:
        raise HTTPException(
            403, f"this route needs an admin key; the key presented has {principal.scope} scope"
        )
    return principal


async def require_editions(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    header_key: Annotated[str | None, Depends(header_scheme)],
) -> Principal:
    """A key allowed personal data (editions or admin), even in open demo mode."""
    principal = await _principal(request, _presented_key(credentials, header_key))
    if principal is None:
        raise HTTPException(
            401,
            "this route shows personal data and needs an API key of scope editions or admin",
            headers=_CHALLENGE,
        )
    if not principal.sees_personal_data:
        raise HTTPException(
            403,
            f"this route shows personal data (name, address): it needs an editions or admin key; "
            f"the key presented has {principal.scope} scope",
        )
    return principal


ReadKeyDep = Annotated[Principal, Depends(require_read)]
EditionsKeyDep = Annotated[Principal, Depends(require_editions)]
AdminKeyDep = Annotated[Principal, Depends(require_admin)]
