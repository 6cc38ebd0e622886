"""API keys: created once and shown once, stored as a SHA-256 hash behind a short lookup prefix.

A key reads ``bk_<prefix>_<secret>``: ``prefix`` (8 hex characters) is stored in
clear and finds the row; ``secret`` (32 random bytes, URL-safe) never is. The
stored ``key_hash`` is the SHA-256 of the whole key, compared in constant time.
Scopes: ``read`` (recommendations, profiles without personal data), ``editions``
(read, plus personal data: member editions and the name and address in a profile) and
``admin`` (everything, personal data included).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from recsys.errors import BookclubError
from recsys.storage.schema import ApiKey

SCOPES: tuple[str, ...] = ("read", "editions", "admin")
# the scopes allowed members' names, addresses and the editions that print them
PERSONAL_SCOPES: frozenset[str] = frozenset({"editions", "admin"})
KEY_PREFIX = "bk"
_PREFIX_HEX = 8


class UnknownApiKeyError(BookclubError):
    pass


@dataclass(frozen=True)
class ApiKeyInfo:
    """What the server knows about a key, never the key itself."""

    prefix: str
    scope: str
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    @property
    def sees_personal_data(self) -> bool:
        return self.scope in PERSONAL_SCOPES


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def split_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != _PREFIX_HEX or not parts[2]:
        return None
    return parts[1]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def create_key(
    connection: Connection, scope: str, label: str | None = None
) -> tuple[str, ApiKeyInfo]:
    """Store a new key of ``scope``; return the key (to show once) and its record."""
    if scope not in SCOPES:
        raise BookclubError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    existing = set(connection.scalars(select(ApiKey.prefix)))
    prefix = secrets.token_hex(_PREFIX_HEX // 2)
    while prefix in existing:
        prefix = secrets.token_hex(_PREFIX_HEX // 2)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    created_at = _now()
    connection.execute(
        insert(ApiKey).values(
            prefix=prefix, key_hash=hash_key(key), scope=scope, label=label, created_at=created_at
        )
    )
    return key, ApiKeyInfo(prefix, scope, label, created_at, None)


def list_keys(connection: Connection) -> list[ApiKeyInfo]:
    rows = connection.execute(
        select(
            ApiKey.prefix, ApiKey.scope, ApiKey.label, ApiKey.created_at, ApiKey.revoked_at
        ).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [ApiKeyInfo(*row) for row in rows]


def revoke_key(connection: Connection, prefix: str) -> ApiKeyInfo:
    """Revoke the key with ``prefix`` (idempotent); UnknownApiKeyError if there is none."""
    row = connection.execute(
        select(
            ApiKey.prefix, ApiKey.scope, ApiKey.label, ApiKey.created_at, ApiKey.revoked_at
        ).where(ApiKey.prefix == prefix)
    ).one_or_none()
    if row is None:
        raise UnknownApiKeyError(f"no API key with prefix {prefix!r}: see `bookclub apikeys list`")
    info = ApiKeyInfo(*row)
    if info.revoked_at is not None:
        return info
    revoked_at = _now()
    connection.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(revoked_at=revoked_at))
    return ApiKeyInfo(info.prefix, info.scope, info.label, info.created_at, revoked_at)


def verify_key(connection: Connection, key: str) -> ApiKeyInfo | None:
    """The record of a valid, unrevoked ``key``; None for anything else."""
    prefix = split_key(key)
    if prefix is None:
        return None
    row = connection.execute(
        select(
            ApiKey.key_hash,
            ApiKey.prefix,
            ApiKey.scope,
            ApiKey.label,
            ApiKey.created_at,
            ApiKey.revoked_at,
        ).where(ApiKey.prefix == prefix)
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    return ApiKeyInfo(row.prefix, row.scope, row.label, row.created_at, row.revoked_at)


def key_by_prefix(connection: Connection, prefix: str) -> ApiKeyInfo | None:
    """The record of the key with ``prefix`` (revoked or not), None if there is none: what a
    signed console session, which holds the prefix and never the key, is re-checked against."""
    row = connection.execute(
        select(
            ApiKey.prefix, ApiKey.scope, ApiKey.label, ApiKey.created_at, ApiKey.revoked_at
        ).where(ApiKey.prefix == prefix)
    ).one_or_none()
    return None if row is None else ApiKeyInfo(*row)
