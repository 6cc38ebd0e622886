"""API keys: header forms, scopes, revocation, open demo mode."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.auth import KeyVerifier
from recsys.settings import Settings
from recsys.storage.apikeys import create_key, list_keys, revoke_key, verify_key
from tests.api.conftest import bearer

READ_ROUTES = [
    "/v1/members/M01/recommendations",
    "/v1/members/M01",
    "/v1/titles/T01/similar",
    "/v1/categories/I/popular",
    "/v1/models",
]


def test_read_routes_need_a_key(client: TestClient) -> None:
    for route in READ_ROUTES:
        r = client.get(route, headers={"Authorization": ""})
        assert r.status_code == 401, route
        assert r.json()["error"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_x_api_key_header_works_too(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get(READ_ROUTES[0], headers={"Authorization": "", "X-API-Key": keys["read"]})
    assert r.status_code == 200


def test_wrong_or_malformed_keys_are_401(client: TestClient, keys: dict[str, str]) -> None:
    tampered = keys["read"][:-2] + ("AA" if not keys["read"].endswith("AA") else "BB")
    for key in (tampered, "nonsense", "bk_00000000_x"):
        assert client.get(READ_ROUTES[0], headers=bearer(key)).status_code == 401


def test_admin_routes_need_admin_scope(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post("/v1/models/v2/activate")
    assert r.status_code == 403 and "admin" in r.json()["message"]
    r = client.post("/v1/models/v2/activate", headers={"Authorization": ""})
    assert r.status_code == 401


def test_open_demo_allows_reads_without_key_but_not_admin(
    api_settings: Settings, club_engine: Engine
) -> None:
    settings = api_settings.model_copy(
        update={"api": api_settings.api.model_copy(update={"open_demo": True})}
    )
    with TestClient(create_app(settings, engine=club_engine)) as client:
        assert client.get(READ_ROUTES[0]).status_code == 200
        profile = client.get("/v1/members/M01").json()
        assert profile["personal"] is None  # anonymous reads are read scope
        assert client.post("/v1/models/v2/activate").status_code == 401
        assert client.get(READ_ROUTES[0], headers=bearer("bk_00000000_x")).status_code == 401


def test_revoked_key_is_refused_after_the_cache(api_settings: Settings, club_engine: Engine) -> None:
    settings = api_settings.model_copy(
        update={"api": api_settings.api.model_copy(update={"key_cache_seconds": 0})}
    )
    with club_engine.begin() as connection:
        key, info = create_key(connection, "read", "to revoke")
    with TestClient(create_app(settings, engine=club_engine)) as client:
        assert client.get(READ_ROUTES[0], headers=bearer(key)).status_code == 200
        with club_engine.begin() as connection:
            revoke_key(connection, info.prefix)
        assert client.get(READ_ROUTES[0], headers=bearer(key)).status_code == 401


def test_keys_are_stored_hashed(engine: Engine) -> None:
    with engine.begin() as connection:
        key, info = create_key(connection, "admin", "ops")
        assert verify_key(connection, key) == info
        stored = connection.exec_driver_sql("SELECT prefix, key_hash FROM api_keys").all()
    assert len(stored) == 1
    prefix, key_hash = stored[0]
    secret = key.removeprefix(f"bk_{prefix}_")  # base64url: may hold "_" itself, even first
    assert key.startswith(f"bk_{prefix}_") and key_hash != key and len(secret) >= 40 and secret not in key_hash
    with engine.begin() as connection:
        assert [k.prefix for k in list_keys(connection)] == [prefix]
        revoke_key(connection, prefix)
        assert verify_key(connection, key) is None


def test_cli_apikeys_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bookclub_cli.main import app

    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    runner = CliRunner()
    created = runner.invoke(app, ["apikeys", "create", "--scope", "read", "--label", "shop"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    prefix = key.split("_")[1]
    listed = runner.invoke(app, ["apikeys", "list"])
    assert prefix in listed.stdout and key not in listed.stdout and "shop" in listed.stdout
    assert runner.invoke(app, ["apikeys", "revoke", prefix]).exit_code == 0
    assert runner.invoke(app, ["apikeys", "revoke", "ffffffff"]).exit_code == 1
    assert runner.invoke(app, ["apikeys", "create", "--scope", "root"]).exit_code == 1


def test_editions_scope_reads_and_sees_personal_data_but_is_not_admin(
    client: TestClient, club_engine: Engine, keys: dict[str, str]
) -> None:
    with club_engine.begin() as connection:
        editions, info = create_key(connection, "editions", "mail house")
    assert info.scope == "editions" and info.sees_personal_data
    for route in READ_ROUTES:
        assert client.get(route, headers=bearer(editions)).status_code == 200, route
    assert client.get("/v1/members/M01", headers=bearer(editions)).json()["personal"]["name"]
    assert client.get("/v1/members/M01", headers=bearer(keys["read"])).json()["personal"] is None
    refused = client.post("/v1/models/v2/activate", headers=bearer(editions))
    assert refused.status_code == 403 and "editions scope" in refused.json()["message"]
    # a member's edition carries the name and address: a read key is refused, whatever the member
    assert client.get("/v1/members/M01/catalog.pdf", headers=bearer(keys["read"])).status_code == 403


def test_an_editions_key_is_stored_and_verified_on_both_databases(engine: Engine) -> None:
    with engine.begin() as connection:
        key, _info = create_key(connection, "editions", "printer")
    with engine.connect() as connection:
        found = verify_key(connection, key)
    assert found is not None and found.scope == "editions" and not found.is_admin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _settled(verifier: KeyVerifier, timeout: float = 10.0) -> None:
    """Wait for the verifier's background checks to end."""
    deadline = time.monotonic() + timeout
    while verifier._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not verifier._refreshing


def test_a_key_in_use_is_checked_again_in_the_background_before_it_expires(club_engine: Engine) -> None:
    with club_engine.begin() as connection:
        key, info = create_key(connection, "read", "busy")
    clock = Clock()
    verifier = KeyVerifier(club_engine, 10.0, clock)
    assert verifier.cached(key) == (False, None)
    assert verifier.verify(key) == info
    clock.now = 4.0  # more than half the ttl left: no check
    assert verifier.cached(key) == (True, info) and not verifier._refreshing
    clock.now = 6.0  # less than half left: answered from the cache, checked again meanwhile
    assert verifier.cached(key) == (True, info)
    _settled(verifier)
    clock.now = 12.0  # past the first answer's ttl: the second one holds (checked at 6)
    assert verifier.cached(key) == (True, info)


def test_a_revocation_is_caught_by_the_background_check(club_engine: Engine) -> None:
    with club_engine.begin() as connection:
        key, info = create_key(connection, "read", "revoked while busy")
    clock = Clock()
    verifier = KeyVerifier(club_engine, 10.0, clock)
    verifier.verify(key)
    with club_engine.begin() as connection:
        revoke_key(connection, info.prefix)
    clock.now = 6.0
    assert verifier.cached(key) == (True, info)  # still trusted: within the ttl of its check
    _settled(verifier)
    assert verifier.cached(key) == (True, None)  # the check's answer: refused from now on


def test_a_failed_background_check_lets_the_answer_expire_as_before(
    club_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with club_engine.begin() as connection:
        key, info = create_key(connection, "read", "database away")
    clock = Clock()
    verifier = KeyVerifier(club_engine, 10.0, clock)
    verifier.verify(key)

    def away(*_args: object) -> None:
        raise OSError("database away")

    monkeypatch.setattr("api.auth.verify_key", away)
    clock.now = 6.0
    assert verifier.cached(key) == (True, info)
    _settled(verifier)
    clock.now = 10.5
    assert verifier.cached(key) == (False, None)  # the request path checks it (the route) again
    monkeypatch.undo()
    assert verifier.verify(key) == info
