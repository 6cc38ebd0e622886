"""/healthz, /readyz, /metrics, a database outage, and what the access log may carry."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.metrics import drain
from api.model_holder import ModelHolder
from recsys.settings import Settings
from recsys.storage.db import make_engine
from tests.api.conftest import bearer
from training.registry import ModelRegistry


def test_healthz_and_readyz(client: TestClient, versions: list[str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready" and r.json()["model_version"] == versions[0]


def test_not_ready_without_a_model(settings: Settings, club_engine: Engine) -> None:
    with TestClient(create_app(settings, engine=club_engine)) as client:  # empty models dir
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["status"] == "not_ready" and "no model" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_no_model_is_503_on_model_routes(
    settings: Settings, club_engine: Engine, keys: dict[str, str]
) -> None:
    with TestClient(create_app(settings, engine=club_engine)) as client:
        r = client.get("/v1/members/M01/recommendations", headers=bearer(keys["read"]))
        assert r.status_code == 503
        assert r.json()["error"] == "model_unavailable" and "bookclub train" in r.json()["message"]
        # authentication comes first: no key is a 401 even without a model
        assert client.get("/v1/members/M01/recommendations").status_code == 401
        # the profile needs no model
        assert client.get("/v1/members/M01", headers=bearer(keys["read"])).status_code == 200


def test_database_outage_is_503_json_never_a_trace(api_settings: Settings, tmp_path: Path) -> None:
    down = make_engine("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    demo = api_settings.model_copy(update={"api": api_settings.api.model_copy(update={"open_demo": True})})
    with TestClient(create_app(demo, engine=down), raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] == "unavailable"
        for path, headers in [
            ("/v1/members/M01/recommendations", {}),  # open demo: the route's own query fails
            ("/v1/members/M01", bearer("bk_0badc0de_secret")),  # key lookup fails
            ("/v1/titles/T01/similar", {}),
        ]:
            r = client.get(path, headers=headers)
            assert r.status_code == 503, (path, r.text)
            assert r.json() == {
                "error": "database_unavailable",
                "message": "the database is not answering; try again shortly",
                "errors": [],
            }
            assert r.headers["Retry-After"] == "5"
            assert "Traceback" not in r.text and "nobody" not in r.text
    down.dispose()


def test_metrics_by_route_template(client: TestClient, versions: list[str]) -> None:
    client.get("/v1/members/M01/recommendations")
    client.get("/v1/members/M05/recommendations")
    client.get("/v1/members/NOPE/recommendations")
    text = client.get("/metrics").text
    assert 'route="/v1/members/{member_id}/recommendations"' in text
    assert 'status="404"' in text
    assert "M01" not in text and "NOPE" not in text
    assert "bookclub_http_request_duration_seconds_bucket" in text
    assert f'bookclub_model_active{{version="{versions[0]}"}} 1.0' in text
    assert 'bookclub_recommendations_total{kind="cold_start"}' in text
    assert 'bookclub_recommendations_total{kind="personalized"}' in text


def test_access_log_has_route_and_status_only(
    client: TestClient, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bookclub.api.access"):
        client.get(
            "/v1/members/M01/recommendations",
            params={"limit": 3, "api_key": keys["admin"]},
            headers=bearer(keys["read"]),
        )
        client.get("/v1/members/M01", headers={"Authorization": "", "X-API-Key": keys["admin"]})
        drain()  # the lines are written by the worker's background thread; now, here
    lines = [r.getMessage() for r in caplog.records if r.name == "bookclub.api.access"]
    assert lines[0].startswith("GET /v1/members/{member_id}/recommendations 200 ")
    assert lines[1].startswith("GET /v1/members/{member_id} 200 ")
    everything = caplog.text
    for secret in (keys["admin"], keys["read"], "M01", "张三", "limit="):
        assert secret not in everything


def test_readyz_shows_no_database_host_or_port_without_an_admin_key(
    client: TestClient, keys: dict[str, str]
) -> None:
    down = make_engine("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    client.app.state.engine = down  # type: ignore[attr-defined]  # keys are still checked on the club's
    try:
        for headers in ({"Authorization": ""}, bearer(keys["read"]), bearer("bk_0badc0de_secret")):
            r = client.get("/readyz", headers=headers)
            assert r.status_code == 503 and r.json()["database"] == "unavailable"
            assert r.json()["detail"] == "database unreachable"
            for secret in ("127.0.0.1", "port", "nobody", "postgresql", ":1"):
                assert secret not in r.text, (headers, r.text)
        admin = client.get("/readyz", headers=bearer(keys["admin"])).json()
        assert "127.0.0.1" in admin["detail"] and "nobody@" not in admin["detail"]  # the reason, no URL
    finally:
        down.dispose()


def _damage_and_point_at(registry: ModelRegistry, version: str, *, flip: bool = False) -> None:
    """A model damaged after it was activated (or activated by an older bookclub, unverified):
    truncated, or one byte changed inside the array (same size: only its checksum tells)."""
    path = registry.versions_dir / version / "member_factors.npy"
    data = bytearray(path.read_bytes())
    if flip:
        data[-3] ^= 0xFF
    path.write_bytes(bytes(data) if flip else bytes(data[:100]))
    tmp = registry.models_dir / "ACTIVE.test"
    tmp.write_text(version + "\n")
    tmp.replace(registry.active_pointer)


@pytest.mark.parametrize("flip", [False, True], ids=["truncated", "changed byte"])
def test_readyz_names_the_active_model_that_failed_to_load(
    client: TestClient, registry: ModelRegistry, versions: list[str], flip: bool
) -> None:
    holder: ModelHolder = client.app.state.holder  # type: ignore[attr-defined]
    _damage_and_point_at(registry, versions[1], flip=flip)
    assert holder.refresh() is False  # the load fails: the worker keeps the model it has
    r = client.get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "not_ready" and body["model_version"] == versions[0]
    assert body["active_version"] == versions[1]
    assert f"the active model {versions[1]} failed to load" in body["detail"]
    assert "member_factors.npy" in body["detail"] and f"still serving {versions[0]}" in body["detail"]
    assert str(registry.models_dir) not in r.text
    rec = client.get("/v1/members/M01/recommendations")
    assert rec.status_code == 200 and rec.headers["X-Model-Version"] == versions[0]


def test_a_restart_on_a_damaged_active_model_says_which_and_why(
    api_settings: Settings, club_engine: Engine, registry: ModelRegistry, keys: dict[str, str], versions: list[str]
) -> None:
    _damage_and_point_at(registry, versions[1])
    with TestClient(create_app(api_settings, engine=club_engine)) as client:
        r = client.get("/v1/members/M01/recommendations", headers=bearer(keys["read"]))
        assert r.status_code == 503 and r.json()["error"] == "model_unavailable"
        message = r.json()["message"]
        assert f"the active model {versions[1]} failed to load" in message, message
        assert "member_factors.npy" in message and "bookclub models rollback" in message
        assert str(registry.models_dir) not in r.text
        ready = client.get("/readyz").json()
        assert ready["status"] == "not_ready" and versions[1] in ready["detail"]
