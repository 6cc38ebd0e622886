"""The member's main selection (本季推荐), its reply deadline on the order form, rotation across
quarters, and what an edition showed recorded in contact_titles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
from collections import Counter
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject
from sqlalchemy import Connection, insert, select

from catalog.member_edition import edition_batch, edition_selections
from catalog.member_pages import render_member_pages, stamp_selection, stamp_sheet
from catalog.plan import CatalogPlan
from catalog.production import render_member_editions, renderer_for, titles_by_id
from catalog.stamps import stamp_views
from recsys.serving import RecommendationQuery, recommend
from recsys.settings import MailingSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db
from recsys.storage import segments as segments_db
from recsys.storage import shown_titles as shown_db
from recsys.storage.schema import CampaignContact, Member
from recsys.storage.shown_titles import ShownTitle
from tests.catalog.conftest import QUARTER, Club, assert_looks_alike, page_images, selection_views

pytestmark = pytest.mark.slow  # renders PDFs


def _text(path: Path, page: int) -> str:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext (poppler-utils) is needed: ./run.sh installs it")
    run = ["pdftotext", "-f", str(page), "-l", str(page), str(path), "-"]
    return subprocess.run(run, capture_output=True, text=True, check=True).stdout


def _plan_of(club: Club, connection: Connection, member_id: str) -> CatalogPlan:
    segment = segments_db.member_segment_labels(connection, QUARTER)[member_id]
    return next(p for p in club.plans if p.segment == segment)


def test_the_main_selection_is_each_members_own_and_in_the_segment_catalog(club: Club) -> None:
    mailing = club.settings.mailing
    picks = club.settings.catalog.picks_per_member
    with club.engine.connect() as connection:
        titles = titles_by_id(connection, QUARTER)
        for plan in club.plans:
            ids = segments_db.members_of_segment(connection, QUARTER, plan.segment)[:30]
            chosen = edition_selections(connection, club.model, plan, titles, ids, picks, mailing, campaign_id=None)
            bought = purchases_db.bought_titles(connection, ids)
            # other tests share this club and may have rendered editions already: what they showed
            # rotates out on both paths alike
            shown = shown_db.recent_shown_titles(connection, ids, mailing.rotation_editions)
            mains = {m: s.main[0] for m, s in chosen.items() if s.main is not None}
            assert set(mains) == set(ids)
            # not one title for the segment: members of one segment with other tastes get other titles
            assert len(set(mains.values())) >= 3, (plan.segment, mains)
            for member_id, selection in chosen.items():
                assert set(selection.title_ids) <= set(plan.title_ids)
                assert len(selection.picks) <= picks and selection.main not in selection.picks
                assert not set(selection.title_ids) & bought.get(member_id, set())
                # the model's choices on the one serving path, as the API answers them: the first
                # is the main selection (titles shown in their last editions rotate out the same way)
                query = RecommendationQuery(
                    limit=picks + 1, only_title_ids=set(plan.title_ids),
                    rotate_out=shown.get(member_id, frozenset()), rotation_tolerance=mailing.rotation_tolerance,
                )
                served = recommend(connection, club.model, member_id, query)
                assert [r.title_id for r, _ in served.items] == selection.title_ids


def _contact_rows(
    connection: Connection, name: str, in_home: dt.date, member_id: str, title_ids: list[str]
) -> None:
    """An earlier campaign ``name`` whose edition showed ``member_id`` ``title_ids`` (main first)."""
    campaign = campaigns_db.create_campaign(
        connection, name=name, quarter=None, in_home_date=in_home, response_days=90, late_days=0,
        holdout_share=0.05, universal_holdout_share=0.0, seed=1,
    )
    treatment = campaigns_db.add_treatment(connection, campaign.id, name="catalog", edition_id=None, key_code=None)
    key = connection.execute(select(Member.id).where(Member.member_id == member_id)).scalar_one()
    connection.execute(insert(CampaignContact).values(
        campaign_id=campaign.id, member_key=key, treatment_id=treatment.id, arm="mailed", in_home_date=in_home,
        cost=Decimal("0"), created_at=dt.datetime(2026, 1, 1),
    ))
    contact = shown_db.edition_contacts(connection, campaign.id, [member_id])[member_id]
    rows = [
        ShownTitle(contact.contact_id, campaign.id, key, t, "main" if i == 0 else "pick", i)
        for i, t in enumerate(title_ids)
    ]
    shown_db.replace_shown_titles(connection, [contact.contact_id], rows)


def test_rotation_keeps_last_editions_titles_out_unless_nothing_scores_close(club: Club) -> None:
    picks = club.settings.catalog.picks_per_member
    with club.engine.connect() as connection:  # rolled back at the end: the club is shared
        titles = titles_by_id(connection, QUARTER)
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        found = None
        for member_id in sorted(segments_db.member_segment_labels(connection, QUARTER)):
            plan = _plan_of(club, connection, member_id)
            ranking = recommend(
                connection, club.model, member_id, RecommendationQuery(limit=50, only_title_ids=set(plan.title_ids))
            )
            scores = [(r.title_id, r.score) for r, _ in ranking.items]
            if len(scores) > picks + 3 and scores[0][1] > 0 and 0.2 < scores[1][1] / scores[0][1] < 0.95:
                found = member_id, plan, scores
                break
        assert found is not None
        member_id, plan, scores = found
        share = scores[1][1] / scores[0][1]  # the runner-up's share of the top title's score

        def selection(tolerance: float, editions: int = 2) -> list[str]:
            mailing = MailingSettings(rotation_editions=editions, rotation_tolerance=tolerance)
            got = edition_selections(
                connection, club.model, plan, titles, [member_id], picks, mailing, campaign_id=campaign.id
            )[member_id]
            return got.title_ids

        before = selection(0.9)
        assert before == [t for t, _ in scores[: picks + 1]]  # nothing shown yet: the ranking
        top = scores[0][0]
        # the top title was last quarter's main selection (in-home before this campaign's)
        _contact_rows(connection, "earlier-1", campaign.in_home_date - dt.timedelta(days=91), member_id, [top])
        # an alternative scores at least the tolerance's share of it: the top title rotates out
        rotated = selection(share - 0.01)
        assert top not in rotated and rotated == [t for t, _ in scores[1 : picks + 2]]
        # nothing scores that close: it comes back as the main selection
        assert selection(min(1.0, share + 0.01)) == before
        # two newer editions showed other titles: with a window of 2 the top title is out of it
        for n, days in ((2, 60), (3, 30)):
            _contact_rows(
                connection, f"earlier-{n}", campaign.in_home_date - dt.timedelta(days=days), member_id,
                [scores[-n][0]],
            )
        assert selection(share - 0.01, editions=2)[0] == top
        assert top not in selection(share - 0.01, editions=3)
        connection.rollback()


def test_the_edition_prints_the_main_selection_and_deadline_and_records_what_it_showed(
    club: Club, tmp_path: Path
) -> None:
    with club.engine.connect() as connection:
        plan = club.plans[0]
        ids = segments_db.members_of_segment(connection, QUARTER, plan.segment)[:3]
        paths = render_member_editions(
            connection, club.model, club.settings, QUARTER, club.plans, ids, out_dir=tmp_path
        )
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        contacts = shown_db.edition_contacts(connection, campaign.id, ids)
        shown = shown_db.shown_titles(connection, campaign.id, ids)
        titles = titles_by_id(connection, QUARTER)
        chosen = edition_selections(
            connection, club.model, plan, titles, ids, club.settings.catalog.picks_per_member,
            club.settings.mailing, campaign_id=campaign.id,
        )
    assert set(paths) == set(ids)
    for member_id in ids:
        selection = chosen[member_id]
        assert selection.main is not None
        main = titles[selection.main[0]]
        deadline = contacts[member_id].in_home_date + dt.timedelta(days=club.settings.campaign.reply_days)
        form = "".join(_text(paths[member_id], 1).split())
        feature = "".join(_text(paths[member_id], 2).split())
        # the order form carries the selection and the reply deadline
        assert "本季推荐" in form and main.title_id in form and deadline.isoformat() in form
        # the picks page features it, with the deadline in words
        assert "本季推荐" in feature and "".join(main.title.split()) in feature
        assert f"{deadline.year}年{deadline.month}月{deadline.day}日" in feature
        # recorded for the member's mailed contact: the main first, then the picks in page order
        rows = shown[member_id]
        assert [(r.title_id, r.role, r.position) for r in rows] == [
            (t, "main" if i == 0 else "pick", i) for i, t in enumerate(selection.title_ids)
        ]
        assert {r.contact_id for r in rows} == {contacts[member_id].contact_id}
        assert {r.campaign_id for r in rows} == {campaign.id}
        # with the price each title's card printed (the negative option bills the main's)
        assert [r.price for r in rows] == [Decimal(f"{titles[r.title_id].price:.2f}") for r in rows]


def test_an_on_demand_web_edition_records_nothing(club: Club) -> None:
    """The web edition (the API's catalog.pdf) may be laid out after the mailed piece, from later
    purchases: it must not replace what the piece the member holds showed (the negative option
    ships that main selection)."""
    with club.engine.connect() as connection:
        plan = club.plans[0]
        ids = segments_db.members_of_segment(connection, QUARTER, plan.segment)[5:8]
        rows = members_db.members_by_id(connection, ids)
        titles = titles_by_id(connection, QUARTER)
        members = [rows[m] for m in ids]
        mailed = edition_batch(connection, club.model, club.settings, QUARTER, plan, titles, members)
        web = edition_batch(connection, club.model, club.settings, QUARTER, plan, titles, members, web=True)
    assert mailed.contact_ids and mailed.shown  # a mailed edition records its rows
    assert web.contact_ids == [] and web.shown == []
    assert [v.member_id for v in web.views] == ids  # and still lays the pages out


def test_a_render_again_replaces_the_rows_and_a_failed_record_leaves_no_usable_edition(
    club: Club, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.paths import complete_edition
    from recsys.storage import shown_titles

    with club.engine.connect() as connection:
        member_id = segments_db.members_of_segment(connection, QUARTER, club.plans[1].segment)[0]
        render_member_editions(connection, club.model, club.settings, QUARTER, club.plans, [member_id], out_dir=tmp_path)
        render_member_editions(connection, club.model, club.settings, QUARTER, club.plans, [member_id], out_dir=tmp_path)
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        rows = shown_db.shown_titles(connection, campaign.id, [member_id])[member_id]
    assert len(rows) == club.settings.catalog.picks_per_member + 1  # replaced, not doubled
    path = tmp_path / "members" / f"{member_id}.pdf"
    assert complete_edition(path) is not None

    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(shown_titles, "replace_shown_titles", broken)
    with club.engine.connect() as connection, pytest.raises(RuntimeError, match="went away"):
        render_member_editions(connection, club.model, club.settings, QUARTER, club.plans, [member_id], out_dir=tmp_path)
    # the PDF was written, the rows were not: the edition is not usable (no sidecar), the old rows stay
    assert path.exists() and complete_edition(path) is None
    with club.engine.connect() as connection:
        assert shown_db.shown_titles(connection, campaign.id, [member_id])[member_id] == rows


def test_stamped_selection_and_deadline_look_like_the_form_laid_out_whole(club: Club, tmp_path: Path) -> None:
    plan, titles, views = selection_views(club)
    assert all(v.main is not None and v.reply_by is not None for v in views)
    renderer = renderer_for(club.settings)
    sheet = stamp_sheet(plan, titles, club.settings.catalog, renderer)
    assert sheet is not None
    stamped_views = stamp_selection(stamp_views(views, sheet), views, sheet)
    for view in views:
        form = stamped_views.forms[view.member_id]
        assert form is not None and view.main is not None
        assert view.reply_by_iso in {text for _css, _field, text in form.fields}
        # the selection's line (number, title, price) is the title's stamp, drawn at its first cell
        assert stamped_views.wanted[f"R-{view.member_id}-sel"] == f"sel-{view.main.title_id}"
        assert view.main.title not in {text for _css, _field, text in form.fields}
        assert stamped_views.wanted[f"K-{view.member_id}-main"] == f"head-{view.main.title_id}"
    # a selection too long for its cell: that member's form is laid out whole
    main = views[1].main
    assert main is not None
    odd = [dataclasses.replace(views[1], main=dataclasses.replace(main, title="很长的书名" * 12))]
    fallback = stamp_selection(stamp_views(odd, sheet), odd, sheet)
    assert fallback.forms[views[1].member_id] is None
    assert f"F-{views[1].member_id}" not in fallback.wanted and f"Q-{views[1].member_id}" not in fallback.qr_codes
    assert not [a for a in fallback.wanted if a.startswith(f"R-{views[1].member_id}-")]  # nor its line stamps
    whole = render_member_pages(views, club.settings.catalog, renderer)
    stamped = render_member_pages(views, club.settings.catalog, renderer, sheet)
    assert stamped.ranges == whole.ranges
    assert all(stop - first == 2 for first, stop in whole.ranges.values())  # the form still fits page 1
    before, after = page_images(whole.pdf, tmp_path, "whole", 100), page_images(stamped.pdf, tmp_path, "stamped", 100)
    assert len(before) == len(after) == 6
    assert_looks_alike(before, after)


def test_dask_workers_record_what_their_editions_show(club: Club, tmp_path: Path) -> None:
    from catalog.fanout import dask_client, render_all_editions

    with club.engine.connect() as connection:
        chosen = [m for p in club.plans for m in segments_db.members_of_segment(connection, QUARTER, p.segment)[3:5]]
    with dask_client(workers=2) as client:
        result = render_all_editions(club.engine, club.settings, QUARTER, club.plans, chosen, out_dir=tmp_path, client=client)
    assert not result.failures and set(result.editions) == set(chosen)
    with club.engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        shown = shown_db.shown_titles(connection, campaign.id, chosen)
        titles = titles_by_id(connection, QUARTER)
        labels = segments_db.member_segment_labels(connection, QUARTER)
        for member_id in chosen:
            plan = next(p for p in club.plans if p.segment == labels[member_id])
            selection = edition_selections(
                connection, club.model, plan, titles, [member_id], club.settings.catalog.picks_per_member,
                club.settings.mailing, campaign_id=campaign.id,
            )[member_id]
            assert [r.title_id for r in shown[member_id]] == selection.title_ids
            assert shown[member_id][0].role == "main"
            assert selection.main is not None and titles[selection.main[0]].title_id in _text(result.editions[member_id], 1)


def _structure_types(pdf: bytes) -> Counter[str]:
    """How many structure elements of each type a tagged PDF's tree holds."""
    reader = PdfReader(BytesIO(pdf))
    found: Counter[str] = Counter()
    todo = list(reader.trailer["/Root"]["/StructTreeRoot"]["/K"])  # type: ignore[index]
    while todo:
        element = todo.pop().get_object()
        if isinstance(element, DictionaryObject) and element.get("/Type") == "/StructElem":
            found[str(element["/S"])] += 1
            todo.extend(kid for kid in element.get("/K", []) if isinstance(kid, IndirectObject))
    return found


def test_what_every_member_reads_is_stamped_and_tagged_as_headings_and_paragraphs(club: Club, tmp_path: Path) -> None:
    plan, titles, views = selection_views(club)
    ids = [v.member_id for v in views]
    renderer = renderer_for(club.settings)  # tagged (PDF/UA)
    sheet = stamp_sheet(plan, titles, club.settings.catalog, renderer)
    assert sheet is not None
    kinds = {"letter-open", "closing", "picks-title", "picks-intro", "sel-title", "sel-why"}
    assert set(sheet.blocks) == kinds
    stamped_views = stamp_selection(stamp_views(views, sheet), views, sheet)
    assert all(set(stamped_views.blocks[m]) == kinds for m in ids)
    # a member whose segment's name is not the sheet's reads their own text, laid out
    other = dataclasses.replace(views[0], segment_name="别的书目")
    assert not sheet.has_blocks(other) and not stamp_views([other], sheet).blocks
    whole = render_member_pages(views, club.settings.catalog, renderer)
    stamped = render_member_pages(views, club.settings.catalog, renderer, sheet)
    # each block keeps its role: a heading (the picks, the selection) and paragraphs
    laid_out, drawn = _structure_types(whole.pdf), _structure_types(stamped.pdf)
    assert drawn["/H2"] >= 2 * len(ids) and drawn["/P"] >= 4 * len(ids)
    assert drawn["/Part"] == 0  # every placeholder became its stamp's element
    assert laid_out["/H2"] - drawn["/H2"] == len(ids)  # the form's title: a stamp of the frame (a Div)
    path = tmp_path / "stamped.pdf"
    path.write_bytes(stamped.pdf)
    letter, picks = _text(path, 1), _text(path, 2)
    assert views[0].letter[0][:12] in letter and "会员服务部" in letter
    assert "为您精选 · Picked for you" in picks and "本季推荐 · This quarter's selection" in picks
    assert f"从本季「{plan.segment_name}」书目中" in picks
    assert_looks_alike(page_images(whole.pdf, tmp_path, "whole", 100), page_images(stamped.pdf, tmp_path, "stamped", 100))
