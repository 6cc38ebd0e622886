"""The recommendation route's fast path (api/fastpath.py) answers exactly as the route does.

Every request is sent twice through the same app: once as served (the fast path answers
what it reads as plainly valid) and once with the fast path told to decline everything
(the FastAPI route answers). Status, body and headers must match; a counter on the fast
path's call into the shared work says which of the two answered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from api import fastpath, metrics
from api.app import create_app
from api.model_holder import ModelHolder
from api.routes.members import RECOMMENDATIONS_ROUTE
from recsys.settings import Settings
from recsys.storage.apikeys import create_key, revoke_key
from tests.api.conftest import bearer

Request = tuple[str, list[tuple[str, str]], dict[str, str]]


class Served:
    """A client on one app, able to send a request past the fast path too."""

    def __init__(self, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client = client
        self.fast = 0
        work = fastpath.answer_recommendations

        async def counted(*args: Any) -> tuple[str, bytes]:
            self.fast += 1
            return await work(*args)

        monkeypatch.setattr(fastpath, "answer_recommendations", counted)
        self.monkeypatch = monkeypatch

    def send(self, path: str, params: list[tuple[str, str]], headers: dict[str, str]) -> Any:
        return self.client.get(path, params=params, headers=headers)

    def by_route(self, path: str, params: list[tuple[str, str]], headers: dict[str, str]) -> Any:
        with self.monkeypatch.context() as patch:
            patch.setattr(fastpath, "member_of", lambda _path: None)
            return self.send(path, params, headers)

    def both(self, request: Request) -> tuple[Any, Any, bool]:
        """(answer as served, the route's answer, whether the fast path answered the first)."""
        before = self.fast
        served = self.send(*request)
        answered_fast = self.fast > before
        routed = self.by_route(*request)
        assert self.fast == before + answered_fast  # the route's answer did not go through it
        return served, routed, answered_fast


def same(served: Any, routed: Any) -> None:
    assert served.status_code == routed.status_code, (served.text, routed.text)
    assert served.content == routed.content
    for header in ("content-type", "content-length", "x-model-version", "retry-after", "www-authenticate"):
        assert served.headers.get(header) == routed.headers.get(header), header


@pytest.fixture
def served(app: FastAPI, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    with TestClient(app, raise_server_exceptions=False) as client:
        both = Served(client, monkeypatch)
        # the first request with a key goes to the route, which verifies it and caches it
        assert client.get("/v1/members/M01/recommendations", headers=bearer(keys["read"])).status_code == 200
        assert both.fast == 0
        yield both


def test_plainly_valid_requests_are_answered_by_the_fast_path_as_by_the_route(
    served: Served, keys: dict[str, str]
) -> None:
    auth = bearer(keys["read"])
    for member, params in [
        ("M01", []),
        ("M01", [("limit", "3")]),
        ("M02", [("limit", "20"), ("in_stock_only", "false")]),
        ("M02", [("limit", "20"), ("include_purchased", "true"), ("in_stock_only", "0")]),
        ("M02", [("include_purchased", "YES"), ("in_stock_only", "Off")]),
        ("M04", [("category", "I2"), ("limit", "200")]),  # the largest limit allowed
        ("M06", [("category", "I247")]),
        ("M05", []),  # cold start from declared categories
        ("M01", [("limit", "2"), ("api_key", keys["admin"]), ("unknown", "x")]),  # ignored, as by FastAPI
        ("NOPE", []),  # unknown member: the API's 404
        ("M01", [("category", "NOSUCH")]),  # unknown category: the 404 naming the field
        ("张三", [("category", "文学")]),  # percent-encoded text, then 404s
    ]:
        served_answer, routed, fast = served.both((f"/v1/members/{member}/recommendations", params, auth))
        assert fast, (member, params)
        same(served_answer, routed)
    x_api_key = {"Authorization": "Basic Zm9vOmJhcg==", "X-API-Key": keys["read"]}  # not a bearer: the header
    served_answer, routed, fast = served.both(("/v1/members/M01/recommendations", [], x_api_key))
    assert fast and served_answer.status_code == 200
    same(served_answer, routed)


def test_every_boolean_word_reads_as_the_route_reads_it(served: Served, keys: dict[str, str]) -> None:
    # M02 gets the out-of-stock T05 only with in_stock_only false: a word read the wrong way shows
    answers = {}
    for word in [*fastpath.BOOLEANS, "TRUE", "False", "oN", "OFF", "Yes", "nO", "T", "F"]:
        params = [("limit", "20"), ("in_stock_only", word)]
        served_answer, routed, fast = served.both(("/v1/members/M02/recommendations", params, bearer(keys["read"])))
        assert fast, word
        same(served_answer, routed)
        answers[word] = "T05" in {t["title_id"] for t in served_answer.json()["data"]}
    assert {word for word, with_t05 in answers.items() if with_t05} == {
        "0", "off", "f", "false", "n", "no", "False", "OFF", "nO", "F"
    }


@pytest.mark.parametrize(
    ("member", "params"),
    [
        ("M01", [("limit", "0")]),
        ("M01", [("limit", "01")]),
        ("M01", [("limit", "+3")]),
        ("M01", [("limit", " 3")]),
        ("M01", [("limit", "201")]),  # above api.max_limit
        ("M01", [("limit", "1001")]),
        ("M01", [("limit", "ten")]),
        ("M01", [("limit", "")]),
        ("M01", [("limit", "٣")]),  # a digit, not an ASCII one
        ("M01", [("limit", "3"), ("limit", "4")]),
        ("M01", [("category", "")]),
        ("M01", [("category", "I" * 65)]),
        ("M01", [("category", "I2\x00")]),
        ("M01", [("in_stock_only", "maybe")]),
        ("M01", [("include_purchased", "")]),
        ("M" * 65, []),
        ("M01%00", []),
    ],
)
def test_anything_else_is_left_to_the_route(
    served: Served, keys: dict[str, str], member: str, params: list[tuple[str, str]]
) -> None:
    served_answer, routed, fast = served.both((f"/v1/members/{member}/recommendations", params, bearer(keys["read"])))
    assert not fast
    same(served_answer, routed)


QUERY_NAMES = st.sampled_from(["limit", "category", "include_purchased", "in_stock_only", "other"])
QUERY_VALUES = st.one_of(
    st.sampled_from(["1", "5", "20", "200", "201", "0", "07", "-1", "1e1", "true", "False", "on", "N", "I2", "K2", ""]),
    st.text(max_size=6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4), member=st.sampled_from(["M02", "M04"]))
def test_any_query_string_gets_the_routes_answer(
    served: Served, keys: dict[str, str], params: list[tuple[str, str]], member: str
) -> None:
    served_answer, routed, _fast = served.both((f"/v1/members/{member}/recommendations", params, bearer(keys["read"])))
    same(served_answer, routed)


def test_keys_the_worker_has_not_verified_go_to_the_route(
    api_settings: Settings, club_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with club_engine.begin() as connection:
        key, info = create_key(connection, "read", "fast path")
    app = create_app(api_settings, engine=club_engine)
    path = "/v1/members/M01/recommendations"
    with TestClient(app, raise_server_exceptions=False) as client:
        served = Served(client, monkeypatch)
        for headers in ({}, bearer("bk_0badc0de_secret"), {"Authorization": "Bearer"}, {"X-API-Key": " "}):
            served_answer, routed, fast = served.both((path, [], headers))
            assert served_answer.status_code == 401 and not fast
            same(served_answer, routed)
        assert served.send(path, [], bearer(key)).status_code == 200 and served.fast == 0  # verified here
        assert served.send(path, [], bearer(key)).status_code == 200 and served.fast == 1  # cached
        assert served.send(path, [], {"X-API-Key": f" {key} "}).status_code == 200 and served.fast == 2
        with club_engine.begin() as connection:
            revoke_key(connection, info.prefix)
        app.state.keys.forget()  # as when api.key_cache_seconds have passed
        r = served.send(path, [], bearer(key))
        assert r.status_code == 401 and served.fast == 2
        # a failed check is cached too, and still not answered by the fast path
        assert served.send(path, [], bearer(key)).status_code == 401 and served.fast == 2


def test_open_demo_without_a_key_takes_the_fast_path(
    api_settings: Settings, club_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = api_settings.model_copy(update={"api": api_settings.api.model_copy(update={"open_demo": True})})
    with TestClient(create_app(demo, engine=club_engine)) as client:
        served = Served(client, monkeypatch)
        served_answer, routed, fast = served.both(("/v1/members/M01/recommendations", [("limit", "4")], {}))
        assert fast and served_answer.status_code == 200
        same(served_answer, routed)
        # a key that is presented is checked even in open demo mode (by the route)
        served_answer, routed, fast = served.both(("/v1/members/M01/recommendations", [], bearer("bk_0badc0de_x")))
        assert served_answer.status_code == 401 and not fast


def test_no_model_is_the_same_503(
    settings: Settings, club_engine: Engine, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(settings, engine=club_engine)) as client:  # empty models dir
        served = Served(client, monkeypatch)
        client.get("/v1/members/M01", headers=bearer(keys["read"]))  # the key verified and cached
        served_answer, routed, fast = served.both(("/v1/members/M01/recommendations", [], bearer(keys["read"])))
        assert fast and served_answer.status_code == 503
        same(served_answer, routed)


def test_an_unexpected_error_is_the_apps_500(
    served: Served, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_self: ModelHolder) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ModelHolder, "serving", broken)
    with caplog.at_level(logging.ERROR, logger="bookclub.api.errors"):
        served_answer, routed, fast = served.both(("/v1/members/M01/recommendations", [], bearer(keys["read"])))
    assert fast and served_answer.status_code == 500
    assert served_answer.json()["error"] == "internal_error"
    same(served_answer, routed)
    assert sum("ZeroDivisionError" in r.getMessage() for r in caplog.records) == 2  # logged both times


def test_fast_answers_are_counted_and_logged_by_route_template(
    served: Served, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    def count(text: str, status: str) -> float:
        for line in text.splitlines():
            labels = (f'route="{RECOMMENDATIONS_ROUTE}"', f'status="{status}"')
            if line.startswith("bookclub_http_requests_total{") and all(x in line for x in labels):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = served.client.get("/metrics").text
    with caplog.at_level(logging.INFO, logger="bookclub.api.access"):
        for member in ("M01", "M02", "NOPE"):
            served.send(f"/v1/members/{member}/recommendations", [("limit", "2")], bearer(keys["read"]))
        metrics.drain()
    after = served.client.get("/metrics").text
    assert served.fast == 3
    assert count(after, "200") - count(before, "200") == 2
    assert count(after, "404") - count(before, "404") == 1
    lines = [r.getMessage() for r in caplog.records if RECOMMENDATIONS_ROUTE in r.getMessage()]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        f"GET {RECOMMENDATIONS_ROUTE} 200",
        f"GET {RECOMMENDATIONS_ROUTE} 200",
        f"GET {RECOMMENDATIONS_ROUTE} 404",
    ]
    assert "M01" not in caplog.text and "limit" not in caplog.text and keys["read"] not in caplog.text


def test_the_route_label_is_the_routes_template(
    served: Served, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    request: Request = ("/v1/members/M01/recommendations", [], bearer(keys["read"]))
    with caplog.at_level(logging.INFO, logger="bookclub.api.access"):
        metrics.drain()
        caplog.clear()
        served.both(request)  # the fast path's answer, then the route's
        metrics.drain()
    lines = [r.getMessage().rsplit(" ", 1)[0] for r in caplog.records if r.name == "bookclub.api.access"]
    assert lines == [f"GET {RECOMMENDATIONS_ROUTE} 200"] * 2


def test_the_query_cache_reads_each_string_as_read_query_does() -> None:
    cache = fastpath.QueryCache(20, 200, size=4)
    strings = [b"", b"limit=20", b"limit=0", b"limit=201", b"limit=3&category=I2", b"in_stock_only=nope",
               b"limit=20", b"limit=5&limit=6", b"include_purchased=YES", b"", b"limit=20"]  # fmt: skip
    for raw in strings:
        expected = fastpath.read_query(raw, 20, 200)
        assert cache.read(raw) == expected, raw
        assert cache.read(raw) == expected, raw  # remembered (or read again after a reset)
        assert len(cache._read) <= 4
