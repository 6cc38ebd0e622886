"""The staff console is a face too: its member page shows the API's titles, in the API's
order, in the world of ``test_faces_agree`` (a title added after training, a purchase after
training, a favourite gone out of stock, a cold member with a declared category), on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.storage.apikeys import create_key
from tests.faces.test_faces_agree import LIMIT, World, _api, world  # noqa: F401 - the shared world fixture

BASE = "http://testserver"


def _console(world: World, member_id: str, query: str) -> tuple[int, list[str]]:  # noqa: F811
    with world.engine.begin() as connection:
        key, _info = create_key(connection, "read", "faces")
    with TestClient(create_app(world.settings, engine=world.engine), base_url=BASE) as client:
        login = client.post("/ui/login", data={"key": key}, headers={"Origin": BASE}, follow_redirects=False)
        assert login.status_code == 303
        page = client.get(f"/ui/members/{member_id}?{query}", follow_redirects=False)
    if page.status_code != 200:
        return page.status_code, []
    table = page.text[page.text.index('id="recs-table"') :]
    return 200, re.findall(r'<tr data-title-id="([^"]+)"', table)


@pytest.mark.slow
def test_the_console_shows_the_apis_titles(world: World) -> None:  # noqa: F811
    for member_id in (world.member, world.cold):
        for params, query in [
            ({"limit": LIMIT}, f"f=1&in_stock_only=true&limit={LIMIT}"),
            ({"limit": 4, "in_stock_only": "false"}, "f=1&limit=4"),
            ({"limit": 5, "include_purchased": "true"}, "f=1&in_stock_only=true&include_purchased=true&limit=5"),
        ]:
            status, body = _api(world, member_id, params)
            assert status == 200, body
            assert _console(world, member_id, query) == (200, [t["title_id"] for t in json.loads(body)["data"]])
    _status, shown = _console(world, world.member, f"limit={LIMIT}")
    assert world.gone not in shown
    assert _console(world, "NO-SUCH-MEMBER", "")[0] == 404
