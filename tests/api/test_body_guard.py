"""Request bodies: the key is checked before a byte of the body is received; bodies are bounded.

The app is driven as an ASGI callable with a ``receive`` that counts the body chunks it
hands out, so "not read" is measured, not inferred from timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from recsys.settings import Settings
from recsys.storage.db import make_engine
from tests.api.conftest import bearer

CHUNK = b"x" * 65_536
HUGE_CHUNKS = 1_600  # 100 MiB on offer


@dataclass
class Answer:
    status: int = 0
    body: bytes = b""
    chunks_pulled: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def _post(
    app: FastAPI,
    path: str,
    headers: dict[str, str],
    *,
    chunks: Iterator[bytes],
    total: int,
    content_length: int | None,
) -> Answer:
    """POST ``total`` chunks to ``app`` (declared by Content-Length, or chunked when None)."""
    answer = Answer()
    sent_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    sent_headers.append((b"content-type", b"application/json"))
    if content_length is None:
        sent_headers.append((b"transfer-encoding", b"chunked"))
    else:
        sent_headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": sent_headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        if answer.chunks_pulled < total:
            answer.chunks_pulled += 1
            return {"type": "http.request", "body": next(chunks), "more_body": answer.chunks_pulled < total}
        await anyio.sleep(3600)  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    return answer


def _huge(app: FastAPI, headers: dict[str, str], *, declared: bool) -> Answer:
    size = len(CHUNK) * HUGE_CHUNKS
    return _post(
        app,
        "/v1/purchases",
        headers,
        chunks=iter(lambda: CHUNK, None),
        total=HUGE_CHUNKS,
        content_length=size if declared else None,
    )


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_no_key_is_401_before_a_byte_of_the_body_is_received(app: FastAPI, declared: bool) -> None:
    r = _huge(app, {}, declared=declared)
    assert r.status == 401, r.body[:300]
    assert r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert r.chunks_pulled == 0


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_wrong_or_read_key_is_refused_before_the_body(
    app: FastAPI, keys: dict[str, str], declared: bool
) -> None:
    invalid = _huge(app, bearer("bk_0badc0de_secret"), declared=declared)
    assert invalid.status == 401 and invalid.chunks_pulled == 0
    read = _huge(app, {"X-API-Key": keys["read"]}, declared=declared)
    assert read.status == 403 and read.chunks_pulled == 0
    assert "admin" in read.json()["message"]


def test_admin_key_with_a_declared_oversized_body_is_413_unread(app: FastAPI, keys: dict[str, str]) -> None:
    r = _huge(app, bearer(keys["admin"]), declared=True)
    assert r.status == 413 and r.chunks_pulled == 0
    assert r.json()["error"] == "too_large" and "max_body_bytes" in r.json()["message"]


def test_admin_key_with_an_oversized_chunked_body_stops_at_the_limit(
    app: FastAPI, keys: dict[str, str], api_settings: Settings
) -> None:
    r = _huge(app, bearer(keys["admin"]), declared=False)
    assert r.status == 413 and r.json()["error"] == "too_large"
    limit_chunks = api_settings.api.max_body_bytes // len(CHUNK)
    assert limit_chunks < r.chunks_pulled <= limit_chunks + 1  # read up to the limit, not beyond


def _batch(lines: int) -> bytes:
    return json.dumps(
        {
            "lines": [
                {
                    "line_id": f"G-{i:06d}-1",
                    "member_id": "M01",
                    "title_id": "T01",
                    "purchased_at": "2026-01-20T10:00:00",
                    "quantity": 1,
                }
                for i in range(lines)
            ]
        }
    ).encode()


@pytest.fixture
def small_limit_client(
    api_settings: Settings, club_engine: Engine, keys: dict[str, str]
) -> Iterator[TestClient]:
    api = api_settings.api.model_copy(update={"max_body_bytes": 4096})
    app = create_app(api_settings.model_copy(update={"api": api}), engine=club_engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(bearer(keys["admin"]))
        yield client


def test_the_limit_is_configurable_and_bodies_under_it_work(small_limit_client: TestClient) -> None:
    small, big = _batch(20), _batch(60)
    assert len(small) < 4096 < len(big)
    ok = small_limit_client.post("/v1/purchases", content=small, headers={"Content-Type": "application/json"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["inserted"] == 20
    refused = small_limit_client.post("/v1/purchases", content=big, headers={"Content-Type": "application/json"})
    assert refused.status_code == 413 and refused.json()["error"] == "too_large"

    def stream() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    chunked = small_limit_client.post(
        "/v1/purchases", content=stream(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413 and chunked.json()["error"] == "too_large"


def test_database_down_during_the_key_check_is_503_json(api_settings: Settings) -> None:
    down = make_engine("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    try:
        r = _post(
            create_app(api_settings, engine=down),
            "/v1/purchases",
            bearer("bk_0badc0de_secret"),
            chunks=iter([_batch(1)]),
            total=1,
            content_length=len(_batch(1)),
        )
        assert r.status == 503 and r.chunks_pulled == 0
        assert r.json()["error"] == "database_unavailable" and b"nobody" not in r.body
    finally:
        down.dispose()
