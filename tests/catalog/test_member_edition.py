"""Personalized editions: the member's pages first, then the segment catalog."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from catalog.member_edition import member_qr, qr_data_url
from catalog.production import render_member_editions
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db
from recsys.storage import segments as segments_db
from recsys.storage import titles as titles_db
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs (a few seconds each)


@pytest.fixture(scope="module")
def editions(club: Club, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    out = tmp_path_factory.mktemp("editions")
    with club.engine.connect() as connection:
        chosen = [m for m, _ in segments_db.best_members(connection, QUARTER, 2)][:5]
        paths = render_member_editions(
            connection, club.model, club.settings, QUARTER, club.plans, chosen, out_dir=out
        )
    return paths, out


def test_first_page_has_the_members_name_and_number(club: Club, editions: tuple[dict[str, Path], Path]) -> None:
    paths, _ = editions
    with club.engine.connect() as connection:
        members = members_db.members_by_id(connection, list(paths))
    assert len(paths) == 5
    for member_id, path in paths.items():
        first = PdfReader(path).pages[0].extract_text()
        assert member_id in first
        assert members[member_id].name.replace(" ", "") in first.replace(" ", "")


def test_edition_is_personal_pages_then_the_segment_catalog(club: Club, editions: tuple[dict[str, Path], Path]) -> None:
    paths, out = editions
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
    for member_id, path in paths.items():
        reader = PdfReader(path)
        body = PdfReader(out / f"segment-{labels[member_id]}.pdf")
        assert len(reader.pages) == 2 + len(body.pages)
        assert "Picked for you" in (reader.pages[1].extract_text() or "")
        assert reader.pages[2].extract_text() == body.pages[0].extract_text()
        # poppler reads the merged file without complaint
        run = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True)
        if run.returncode == 127:
            pytest.skip("pdftotext not installed")
        assert run.returncode == 0 and "Error" not in run.stderr, run.stderr


def test_picks_come_from_the_catalog_and_skip_what_the_member_bought(
    club: Club, editions: tuple[dict[str, Path], Path]
) -> None:
    from catalog.member_edition import member_picks

    paths, _ = editions
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
        bought = purchases_db.bought_titles(connection, list(paths))
        titles = {t.title_id: t for t in titles_db.titles_for_quarter(connection, __import__("datetime").date(2027, 1, 1))}
        plans = {p.segment: p for p in club.plans}
        picked = {
            m: member_picks(connection, club.model, plans[labels[m]], titles, [m], 4)[m] for m in paths
        }
    for member_id in paths:
        plan = plans[labels[member_id]]
        picks = picked[member_id]
        assert picks and len(picks) <= 4
        assert {t for t, _ in picks} <= set(plan.title_ids)
        assert not {t for t, _ in picks} & bought.get(member_id, set())
        assert all(reason for _, reason in picks)


def test_qr_payload_is_the_member_number() -> None:
    code = member_qr("M0000042")
    assert code.mode == "alphanumeric" and not code.is_micro  # the member number, nothing else
    assert code.matrix == member_qr("M0000042").matrix
    assert code.matrix != member_qr("M0000043").matrix
    url = qr_data_url("M0000042")
    assert url.startswith("data:image/svg+xml") and url == qr_data_url("M0000042")


def test_each_member_block_carries_its_own_qr(club: Club) -> None:
    from catalog.member_edition import member_views
    from catalog.member_pages import member_pages_html

    with club.engine.connect() as connection:
        members = members_db.members_by_id(connection, ["M0000001", "M0000002"])
        titles = {t.title_id: t for t in titles_db.titles_for_quarter(connection, __import__("datetime").date(2027, 1, 1))}
    views = member_views(list(members.values()), {}, club.plans[0], titles, club.settings.catalog, QUARTER)
    html = member_pages_html(views, club.settings.catalog)
    for member_id in members:
        block = html.split(f'id="m-{member_id}"', 1)[1].split('<section class="member"', 1)[0]
        assert qr_data_url(member_id) in block
