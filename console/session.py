"""The console's session: a signed cookie holding a key's prefix and scope, never the key.

Staff log in with their own labelled API key; the server checks it once
(:func:`recsys.storage.apikeys.verify_key`) and sets ``bk_console``: the key's
prefix, scope and label, and the time of login, signed with HMAC-SHA256 under
the console secret (``settings.console.secret``, or one generated once and kept
in ``DATA_DIR/console_secret``). Every request re-reads the key's row by its
prefix, so a revoked key (or a changed scope) ends the session at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import ConfigurationError
from recsys.files import fsync_dir
from recsys.settings import Settings

COOKIE = "bk_console"
COOKIE_PATH = "/ui"

# role → rank: a page or action names the least role it needs
ROLES: dict[str, int] = {"read": 0, "editions": 1, "admin": 2}
PERSONAL_ROLES = frozenset({"editions", "admin"})  # may see names and addresses


@dataclass(frozen=True)
class StaffSession:
    prefix: str
    scope: str
    label: str | None
    issued_at: float

    def can(self, role: str) -> bool:
        return ROLES.get(self.scope, -1) >= ROLES[role]

    @property
    def sees_personal(self) -> bool:
        return self.scope in PERSONAL_ROLES

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    @property
    def who(self) -> str:
        return f"{self.label} ({self.prefix})" if self.label else self.prefix


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def console_secret(settings: Settings) -> bytes:
    """The configured secret, or the one kept under DATA_DIR (created on first use, 0600;
    a worker that loses the race reads the winner's)."""
    if settings.console.secret:
        return settings.console.secret.encode()
    path = Path(settings.data_dir) / "console_secret"
    with contextlib.suppress(FileNotFoundError):
        return _checked_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".console_secret.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # per call: threads race too
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())  # complete on disk before it has its name
        with contextlib.suppress(FileExistsError):  # another worker wrote it first: theirs wins
            os.link(tmp, path)
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return _checked_secret(path)


def _checked_secret(path: Path) -> bytes:
    """The stored secret; one too short to sign with (an empty file left by a crash, a hand
    edit) is refused rather than used: sessions signed with it could be forged."""
    found = path.read_text(encoding="ascii").strip()
    if len(found) < 32:
        raise ConfigurationError(
            f"DATA_DIR/{path.name} holds no usable console secret ({len(found)} characters): delete it "
            "(a new one is made on the next request) or set BOOKCLUB_CONSOLE__SECRET"
        )
    return found.encode()


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def sign_session(secret: bytes, session: StaffSession) -> str:
    body = json.dumps(
        {"p": session.prefix, "s": session.scope, "l": session.label, "t": int(session.issued_at)},
        separators=(",", ":"), ensure_ascii=False,
    )
    payload = _b64(body.encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_session(secret: bytes, value: str | None, max_age: float, now: float | None = None) -> StaffSession | None:
    """The session in a cookie value, None if absent, forged, malformed or older than ``max_age``."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        raw = json.loads(_unb64(payload))
        session = StaffSession(str(raw["p"]), str(raw["s"]), raw.get("l"), float(raw["t"]))
    except (ValueError, KeyError, TypeError):
        return None
    moment = time.time() if now is None else now
    if not -60 <= moment - session.issued_at <= max_age or session.scope not in ROLES:  # a minute of clock skew
        return None
    return session
