"""A NUL in any console parameter or form field is a 422 page, on SQLite and PostgreSQL alike
(issue 9, finding 7: PostgreSQL answered 500 where the value reached a query, the file routes
500 on both — ``open()`` refuses an embedded NUL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.api.conftest import with_club
from tests.console.conftest import Staff


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


N = "%00"
GETS = [
    f"/ui/members?q=M{N}1",
    f"/ui/members?after=M{N}1",
    f"/ui/members/M{N}1",
    f"/ui/members/M01?category=I{N}2",
    f"/ui/members/M01?rank=a{N}",
    f"/ui/members/M01?before=a{N}",
    f"/ui/titles?q=T{N}1",
    f"/ui/titles?after=T{N}1",
    f"/ui/titles/T{N}1",
    f"/ui/segments/2026Q1/0?after=M{N}1",
    f"/ui/catalogs/2026Q1/proofs?member=M{N}1",
    f"/ui/catalogs/2026Q1/proofs/M{N}1.pdf",
    f"/ui/catalogs/2026Q1/proofs/M{N}1/page/1.png",
    f"/ui/static/app{N}.css",
    f"/ui/data/rejects/x{N}.csv",
    f"/ui/models?metric=ndcg{N}",
    f"/ui/login?next=/ui/{N}",
]
POSTS = [
    ("/ui/login", {"key": "bk_\x00x", "next": "/ui/"}),
    ("/ui/models/activate", {"version": "v\x001", "reason": "why"}),
    ("/ui/models/rollback", {"reason": "because\x00"}),
    (f"/ui/catalogs/2026Q1/proofs/M{N}1/mark", {"ok": "1", "note": "fine"}),
    ("/ui/catalogs/2026Q1/proofs/M01/mark", {"ok": "1", "note": "fi\x00ne"}),
]


@pytest.mark.parametrize("url", GETS)
def test_a_nul_in_a_console_parameter_is_422(staff: Staff, url: str) -> None:
    r = staff.get("admin", url)
    assert r.status_code == 422, (url, r.status_code)
    assert "NUL" in r.text


@pytest.mark.parametrize(("url", "form"), POSTS, ids=[p[0] + "|" + "|".join(p[1]) for p in POSTS])
def test_a_nul_in_a_console_form_is_422(staff: Staff, url: str, form: dict[str, str]) -> None:
    r = staff.post("admin", url, form)
    assert r.status_code == 422, (url, r.status_code)
