"""GET /v1/titles/{id}/similar and /v1/categories/{code}/popular."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from recsys.storage.schema import Category


def test_similar_titles(client: TestClient) -> None:
    r = client.get("/v1/titles/T01/similar", params={"limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title_id"] == "T01" and body["model_version"] == r.headers["X-Model-Version"]
    assert body["count"] == 3
    assert "T01" not in {t["title_id"] for t in body["data"]}
    assert all({"title", "author", "price", "categories", "score"} <= set(t) for t in body["data"])


def test_similar_of_unknown_title_is_404(client: TestClient) -> None:
    r = client.get("/v1/titles/NOPE/similar")
    assert r.status_code == 404 and "unknown title 'NOPE'" in r.json()["message"]


def test_popular_in_category(client: TestClient) -> None:
    r = client.get("/v1/categories/K2/popular", params={"limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["category"] == "K2" and body["category_name"] == "中国史"
    assert body["count"] == 2
    assert all(t["categories"][0] == "K2" for t in body["data"])
    scores = [t["score"] for t in body["data"]]
    assert scores == sorted(scores, reverse=True)


def test_popular_in_parent_category_covers_children(client: TestClient) -> None:
    body = client.get("/v1/categories/I/popular", params={"limit": 50}).json()
    assert {t["title_id"] for t in body["data"]} >= {"T01", "T06"}


def test_unknown_category_is_404(client: TestClient) -> None:
    r = client.get("/v1/categories/ZZZ/popular")
    assert r.status_code == 404 and "ZZZ" in r.json()["message"]


def test_category_added_after_training_has_no_titles_yet(client: TestClient, club_engine: Engine) -> None:
    with club_engine.begin() as connection:
        connection.execute(insert(Category).values(code="TP3", name="计算技术", parent_code="TP", level=2))
    body = client.get("/v1/categories/TP3/popular").json()
    assert body["category_name"] == "计算技术" and body["data"] == []
    r = client.get("/v1/members/M01/recommendations", params={"category": "TP3"})
    assert r.status_code == 200 and r.json()["data"] == []
