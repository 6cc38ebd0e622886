"""A return posted after training counts at once: the title may be recommended again."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import bearer


def ids(client: TestClient, member_id: str) -> set[str]:
    body = client.get(f"/v1/members/{member_id}/recommendations", params={"limit": 20}).json()
    return {t["title_id"] for t in body["data"]}


def test_return_after_training_makes_the_title_recommendable_again(
    client: TestClient, keys: dict[str, str]
) -> None:
    assert "T02" not in ids(client, "M01")  # bought before the model was trained
    ret = {"line_id": "RET-1", "member_id": "M01", "title_id": "T02",
           "purchased_at": "2026-11-20T10:00:00", "quantity": -1, "unit_price": 26.0,
           "channel": "mail", "order_id": "RET"}
    r = client.post("/v1/purchases", json={"lines": [ret]}, headers=bearer(keys["admin"]))
    assert r.status_code == 200, r.text
    assert "T02" in ids(client, "M01")
