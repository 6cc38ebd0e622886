"""A title added after training, with no sales, reaches the members who buy its category."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_new_title_reaches_readers_of_its_category_with_a_category_reason(client: TestClient) -> None:
    # M01 bought four I247 titles; T99 (I247, 余华) was added after the model was trained
    body = client.get("/v1/members/M01/recommendations", params={"limit": 5}).json()
    by_id = {t["title_id"]: t for t in body["data"]}
    assert "T99" in by_id
    new = by_id["T99"]
    assert new["reason_kind"] == "new_in_category"
    assert new["because"] == ["I247"] and "I247" in new["reason"] and "当代小说" in new["reason"]


def test_new_title_not_pushed_to_readers_of_other_categories(client: TestClient) -> None:
    # M04 reads computing and history only
    body = client.get("/v1/members/M04/recommendations", params={"limit": 3}).json()
    assert "T99" not in {t["title_id"] for t in body["data"]}
