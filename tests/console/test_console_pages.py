"""The console's comparison, campaign, jobs, reach, proof-filter and health pages through the
app (no browser): the numbers on each page against the API, a direct query or the function the
CLI calls."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import Engine, insert, text

from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import jobs as jobs_db
from recsys.storage.schema import MemberSegment
from tests.api import club
from tests.console.conftest import Staff
from tests.console.test_console import _cells, _marks, settled
from training.registry import ModelRegistry

# ---- models: compare two versions ---------------------------------------------------------------


def _store_evaluation(registry: ModelRegistry, version: str, served: str, cutoff: str, values: dict[str, Any]) -> None:
    """Put an evaluation into a version's meta.json as training stores it (report.to_json())."""
    path = registry.versions_dir / version / "meta.json"
    meta = json.loads(path.read_text())
    meta["metrics"] = {name: v["mean"] for name, v in values.items()}
    meta["evaluation"] = {
        "cutoff": cutoff, "k": 20, "served": served,
        "results": {served: {name: v["mean"] for name, v in values.items()}},
        "intervals": {served: {name: v["interval"] for name, v in values.items() if "interval" in v}},
        "differences": {served: {"against": "popularity", **{n: v["paired"] for n, v in values.items() if "paired" in v}}},
    }
    path.write_text(json.dumps(meta))


def test_compare_shows_each_versions_stored_metrics_intervals_and_difference(
    staff: Staff, registry: ModelRegistry, versions: list[str]
) -> None:
    old, new = versions
    _store_evaluation(registry, old, "als", "2026-01-20", {
        "ndcg@20": {"mean": 0.25, "interval": [0.2, 0.3], "paired": {"mean": 0.05, "low": 0.01, "high": 0.09}},
        "recall@20": {"mean": 0.5, "interval": [0.45, 0.55]},
        "coverage@20": {"mean": 0.75},
    })  # fmt: skip
    _store_evaluation(registry, new, "als", "2026-01-27", {
        "ndcg@20": {"mean": 0.375, "interval": [0.35, 0.4], "paired": {"mean": 0.125, "low": 0.0625, "high": 0.25}},
        "recall@20": {"mean": 0.5625, "interval": [0.5, 0.625]},
        "coverage@20": {"mean": 0.5},
    })  # fmt: skip
    page = staff.get("read", f"/ui/models/compare?a={old}&b={new}").text
    differences = {m.group(1): m.group(2) for m in re.finditer(r'data-difference="([^"]+)">([^<]+)<', page)}
    assert differences == {"ndcg@20": "+0.1250", "recall@20": "+0.0625", "coverage@20": "-0.2500"}
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr data-metric="([^"]+)">(.*?)</tr>', page, re.S)}
    assert "apart" in rows["ndcg@20"] or "不重叠" in rows["ndcg@20"]  # [0.2, 0.3] and [0.35, 0.4]
    assert "不重叠" not in rows["recall@20"] and "重叠" in rows["recall@20"]  # [0.45, 0.55] and [0.5, 0.625]
    assert "+0.0500" in rows["ndcg@20"] and "+0.1250 <span" in rows["ndcg@20"] and "popularity" in rows["ndcg@20"]
    marks = _marks(page)
    assert marks == {k: v for k, v in _cells(page).items() if k in marks}
    assert marks == {"A · ndcg@20": "0.25", "B · ndcg@20": "0.375", "A · recall@20": "0.5", "B · recall@20": "0.5625"}
    lows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r'data-label="([^"]+)" data-value="[^"]*" data-low="([^"]+)" data-high="([^"]+)"', page)}
    assert lows["B · ndcg@20"] == ("0.35", "0.4")
    assert 'id="compare-cutoffs"' in page  # evaluated on different cutoffs: said so


def _segment(connection: Any, member_key: int, tier: str, segment: int = 1) -> None:
    connection.execute(
        insert(MemberSegment).values(
            quarter=club.QUARTER, member_key=member_key, tier=tier, segment=segment, frequency=1, monetary=1.0
        )
    )


def _api_recs(staff: Staff, key: str, member_id: str) -> list[str]:
    body = staff.client.get(
        f"/v1/members/{member_id}/recommendations?limit=20", headers={"Authorization": f"Bearer {key}"}
    ).json()
    return [item["title_id"] for item in body["data"]]


def test_compare_overlap_coverage_and_changed_members_equal_the_api_answering_with_each_version(
    staff: Staff, staff_keys: dict[str, str], registry: ModelRegistry, versions: list[str], club_engine: Engine
) -> None:
    old, new = versions
    with club_engine.begin() as connection:  # M01 core/1 is there already
        _segment(connection, 2, "core")
        _segment(connection, 3, "regular")
        _segment(connection, 4, "regular", segment=2)
        _segment(connection, 5, "lapsed", segment=2)  # M05: cold start, declared categories
    members = {"M01": "1 · core", "M02": "1 · core", "M03": "1 · regular", "M04": "2 · regular", "M05": "2 · lapsed"}
    page = settled(staff, f"/ui/models/compare?a={old}&b={new}")  # 20 per cell: every member here
    assert 'id="compare-pending"' not in page
    assert 'id="compare-no-evaluation-A"' in page and 'id="compare-no-evaluation-B"' in page  # trained without one
    assert 'id="compare-cutoffs"' not in page
    recs_old = {m: _api_recs(staff, staff_keys["read"], m) for m in members}
    registry.activate(new)
    staff.client.app.state.holder.refresh()  # type: ignore[attr-defined]
    recs_new = {m: _api_recs(staff, staff_keys["read"], m) for m in members}

    def overlap(m: str) -> float:
        a, b = recs_old[m], recs_new[m]
        return len(set(a) & set(b)) / max(len(a), len(b)) if a or b else 1.0

    cells: dict[str, list[float]] = {}
    for m, cell in members.items():
        cells.setdefault(cell, []).append(overlap(m))
    shown = {k: float(v) for k, v in _cells(page).items()}
    assert shown == pytest.approx({cell: sum(v) / len(v) for cell, v in cells.items()}, abs=1e-4)
    assert _marks(page) == _cells(page)
    overall = float(re.search(r'id="overlap-overall">([\d.]+)%', page).group(1))  # type: ignore[union-attr]
    assert overall == pytest.approx(100 * sum(overlap(m) for m in members) / len(members), abs=0.05)
    in_stock = sum(1 for t in club.TITLES if t[4]) + 1  # T99 too
    coverage = {m.group(1): float(m.group(2)) for m in re.finditer(r'data-coverage="(a|b)">([\d.]+)<', page)}
    assert coverage["a"] == pytest.approx(len({t for r in recs_old.values() for t in r}) / in_stock, abs=1e-4)
    assert coverage["b"] == pytest.approx(len({t for r in recs_new.values() for t in r}) / in_stock, abs=1e-4)
    changed = {m.group(1): int(m.group(2)) for m in re.finditer(r'<tr data-member="([^"]+)" data-changed="(\d+)">', page)}
    expected = {m: len(set(recs_old[m][:5]) - set(recs_new[m][:5])) for m in members}
    assert changed == {m: n for m, n in expected.items() if n > 0}


def test_compare_refuses_an_unknown_version(staff: Staff, versions: list[str]) -> None:
    assert staff.get("read", f"/ui/models/compare?a={versions[0]}&b=nope").status_code == 404


# ---- campaigns -------------------------------------------------------------------------------------


def _campaign(club_engine: Engine, holdout_share: float) -> int:
    """M01–M04 mailed, M05–M06 held out, in home at the club's first purchase day."""
    with club_engine.begin() as connection:
        campaign = campaigns_db.create_campaign(
            connection, name="2026Q1 季刊", quarter="2026Q1", in_home_date=club.T0.date(), response_days=60,
            late_days=0, holdout_share=holdout_share, universal_holdout_share=0.0, seed=1,
        )
        edition = campaigns_db.add_edition(
            connection, campaign.id, code="S1-catalog", name="当代小说", kind="catalog", segment=1,
            in_home_date=club.T0.date(), costs=(1.0, 0.5, 0.8, 0.2), model_version="v1",
        )
        treatment = campaigns_db.add_treatment(connection, campaign.id, name="S1 当代小说", edition_id=edition.id, key_code="K26Q1A")
        contacts_db.write_contacts(
            connection,
            [
                (campaign.id, key, treatment.id, edition.id, "mailed" if key <= 4 else "holdout", None, 1, "core",
                 holdout_share, club.T0.date(), 2.5 if key <= 4 else 0, "v1", None, None, dt.datetime(2026, 1, 2))
                for key in range(1, 7)
            ],
        )  # fmt: skip
        return campaign.id


def _section(page: str, outcome: str) -> str:
    start = page.index(f'data-outcome="{outcome}"')
    end = page.index("</table>", start)
    return page[start:end]


def test_campaign_page_shows_the_same_report_as_the_api_with_the_sample_ratio_check_first(
    staff: Staff, staff_keys: dict[str, str], club_engine: Engine
) -> None:
    campaign_id = _campaign(club_engine, holdout_share=1 / 3)
    listing = settled(staff, "/ui/campaigns")
    row = re.search(rf'<tr data-campaign="{campaign_id}">(.*?)</tr>', listing, re.S).group(1)  # type: ignore[union-attr]
    assert 'data-arm="mailed">4<' in row and 'data-arm="holdout">2<' in row
    page = settled(staff, f"/ui/campaigns/{campaign_id}")
    api = staff.client.get(f"/v1/campaigns/{campaign_id}/report", headers={"Authorization": f"Bearer {staff_keys['read']}"}).json()
    assert page.index('id="sample-ratio"') < page.index('id="contacts-per-edition"') < page.index('id="effects"')
    assert 'id="srm-ok"' in page and 'id="srm-mismatch"' not in page and not api["sample_ratio"]["mismatch"]
    arm = api["arms"][0]
    assert f'data-mailed="{arm["arm"]}">{arm["members"]["mailed"]}<' in page
    assert f'data-holdout="{arm["arm"]}">{arm["members"]["holdout"]}<' in page
    for outcome, scale in (("response", 100.0), ("revenue", 1.0), ("margin", 1.0)):
        section = _section(page, outcome)
        marks = {m.group(1): (float(m.group(2)), float(m.group(3)), float(m.group(4))) for m in re.finditer(
            r'data-label="([^"]+)" data-value="([^"]+)" data-low="([^"]+)" data-high="([^"]+)"', section)}
        cells = {k: float(v) for k, v in _cells(section).items()}
        assert {k: v[0] for k, v in marks.items()} == pytest.approx(cells, abs=1e-4)
        name = html.unescape(arm["arm"])
        assert marks[name] == pytest.approx(  # to the cent, or the hundredth of a point
            (arm[outcome]["incremental"] * scale, arm[outcome]["low"] * scale, arm[outcome]["high"] * scale), abs=0.005
        )
    net = arm["net_profit_per_piece"]
    found = re.search(r'data-value="([^"]+)" data-low="([^"]+)" data-high="([^"]+)"', _section(page, "net_profit"))
    assert found is not None and tuple(map(float, found.groups())) == pytest.approx((net["estimate"], net["low"], net["high"]), abs=0.005)


def test_a_sample_ratio_mismatch_is_the_first_thing_the_campaign_page_says(staff: Staff, club_engine: Engine) -> None:
    campaign_id = _campaign(club_engine, holdout_share=0.01)  # 2 of 6 held out where 1 % was meant
    page = settled(staff, f"/ui/campaigns/{campaign_id}")
    assert 'id="srm-mismatch"' in page and 'data-mismatch="true"' in page
    assert page.index('id="srm-mismatch"') < page.index('id="effects"')


def test_an_unknown_campaign_is_a_404(staff: Staff) -> None:
    assert staff.get("read", "/ui/campaigns/999").status_code == 404


def test_new_pages_keep_the_csp_and_have_no_inline_script(staff: Staff, versions: list[str], club_engine: Engine) -> None:
    campaign_id = _campaign(club_engine, holdout_share=1 / 3)
    for path in ("/ui/models/compare", "/ui/campaigns", f"/ui/campaigns/{campaign_id}", "/ui/jobs"):
        response = staff.get("read", path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text) and not re.search(r"\sstyle\s*=", response.text)


# ---- jobs ------------------------------------------------------------------------------------------


def _wait_for_job(staff: Staff, job_id: int, seconds: float = 240.0) -> str:
    """The jobs page once job ``job_id`` has finished (its own process writes the row)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = staff.get("read", "/ui/jobs").text
        status = re.search(rf'data-job="{job_id}" data-kind="[^"]+" data-status="(\w+)"', page)
        assert status is not None, page
        if status.group(1) not in ("queued", "running"):
            return page
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {seconds} s")


def _row(page: str, job_id: int) -> str:
    found = re.search(rf'<tr id="job-{job_id}".*?</tr>', page, re.S)
    assert found is not None
    return found.group(0)


def test_an_admin_starts_a_training_job_that_runs_in_its_own_process_and_the_registry_has_its_model(
    staff: Staff, registry: ModelRegistry, versions: list[str], staff_keys: dict[str, str], club_engine: Engine
) -> None:
    before = {i.version for i in registry.list()}
    active = registry.active_version()
    response = staff.post("admin", "/ui/jobs", {"kind": "train", "promote": "never", "reason": "新数据到了"})
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/jobs#job-")
    job_id = int(response.headers["location"].rsplit("-", 1)[1])
    page = _wait_for_job(staff, job_id)
    row = _row(page, job_id)
    assert 'data-status="done"' in row, row
    with club_engine.connect() as connection:
        job = jobs_db.job(connection, job_id)
        audit = connection.execute(text("SELECT action, target, reason, actor_label FROM audit_log")).all()
    assert job is not None and job.status == "done" and job.pid is not None and job.pid != os.getpid()
    assert job.params == {"evaluate": False, "promote": "never"} and job.actor_label == "admin staff"
    new = {i.version for i in registry.list()} - before
    assert job.result is not None and new == {job.result["version"]}  # the model the job trained
    assert job.result["status"] == "candidate" and registry.active_version() == active  # --promote never
    assert f'data-key="version">版本: {job.result["version"]}<' in row
    assert [tuple(a) for a in audit] == [("job.start", f"train #{job_id}", "新数据到了", "admin staff")]
    api = staff.client.get("/v1/models", headers={"Authorization": f"Bearer {staff_keys['read']}"}).json()
    assert job.result["version"] in {m["version"] for m in api["data"]}


def test_only_admins_start_jobs_with_a_reason_from_this_site_and_nothing_is_recorded_otherwise(
    staff: Staff, club_engine: Engine
) -> None:
    form = {"kind": "train", "promote": "never", "reason": "x"}
    assert staff.post("read", "/ui/jobs", form).status_code == 403
    assert staff.post("editions", "/ui/jobs", form).status_code == 403
    assert staff.post("admin", "/ui/jobs", form, headers={"Origin": "https://evil.example"}).status_code == 403
    refused = staff.post("admin", "/ui/jobs", {**form, "reason": " "})
    assert refused.status_code == 303 and "error=reason" in refused.headers["location"]
    bad = staff.post("admin", "/ui/jobs", {"kind": "render_editions", "quarter": "2026Q9", "reason": "x"})
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
    assert 'id="train-start"' not in staff.get("read", "/ui/jobs").text
    with club_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
        assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 0


def test_a_second_job_of_a_kind_waits_for_the_first_and_a_dead_one_is_shown_lost(
    staff: Staff, club_engine: Engine
) -> None:
    # a process that looks like a job's (its command line names the runner), alive, then killed
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "console.job_runner"])
    try:
        with club_engine.begin() as connection:
            running = jobs_db.create_job(connection, kind="train", params={}, actor_prefix="x", actor_label=None)
            jobs_db.start_job(connection, running.id, host=socket.gethostname(), pid=runner.pid)
        refused = staff.post("admin", "/ui/jobs", {"kind": "train", "promote": "never", "reason": "again"})
        assert refused.status_code == 303 and f"%23{running.id}" in refused.headers["location"]
        page = staff.get("read", "/ui/jobs").text
        assert 'data-status="running"' in _row(page, running.id) and 'hx-trigger="every 2s"' in page
    finally:
        runner.kill()
        runner.wait()
    page = staff.get("read", "/ui/jobs").text
    assert 'data-status="lost"' in _row(page, running.id) and "hx-trigger" not in page
    with club_engine.connect() as connection:  # a pid now taken by some other program is no job either
        connection.execute(text("UPDATE jobs SET pid = :pid WHERE id = :id"), {"pid": os.getpid(), "id": running.id})
        connection.commit()
    assert 'data-status="lost"' in _row(staff.get("read", "/ui/jobs").text, running.id)


def test_a_render_job_without_plans_fails_with_the_clis_message(staff: Staff, club_engine: Engine) -> None:
    response = staff.post("admin", "/ui/jobs", {"kind": "render_editions", "quarter": "2026Q1", "reason": "print run"})
    job_id = int(response.headers["location"].rsplit("-", 1)[1])
    row = _row(_wait_for_job(staff, job_id), job_id)
    assert 'data-status="failed"' in row and "no catalog plans for 2026Q1" in row


# ---- catalogs: preflight picks and pages, proof filters -----------------------------------------


def _pdf(path: Path, pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=300, height=400)
    buffer = io.BytesIO()
    writer.write(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _quarter_with_editions(settings: Settings, club_engine: Engine) -> None:
    """Segments 1 (M01 core, M02 regular, M03 regular) and 2 (M04 core) of club.QUARTER, a plan of
    T01–T08 each, segment catalogs of 1 page, editions of M01 (3 pages), M02 (5) and M04 (3)."""
    from catalog.paths import catalog_path, edition_path, sidecar_bytes
    from catalog.plan import CatalogPlan, PlanEntry, PlanSection
    from recsys.storage import plans as plans_db

    with club_engine.begin() as connection:
        _segment(connection, 2, "regular")
        _segment(connection, 3, "regular")
        _segment(connection, 4, "core", segment=2)
        for segment in (1, 2):
            entries = [PlanEntry(f"T0{n}", 1.0 - n / 10, False) for n in range(1, 9)]
            plan = CatalogPlan(club.QUARTER, segment, f"细分{segment}", "v1", "abc", [PlanSection("I", "文学", 8, entries)])
            plans_db.store_plan(connection, club.QUARTER, segment, "v1", "abc", plan.to_json())
    for segment in (1, 2):
        body = _pdf(catalog_path(settings, club.QUARTER, segment), 1)
        catalog_path(settings, club.QUARTER, segment).with_suffix(".json").write_bytes(
            sidecar_bytes(body, pages=1, segment=segment)
        )
    for member_id, pages in (("M01", 3), ("M02", 5), ("M04", 3)):
        _pdf(edition_path(settings, club.QUARTER, member_id), pages)


def test_preflight_counts_short_picks_with_the_editions_function_and_editions_over_their_page_budget(
    staff: Staff, api_settings: Settings, club_engine: Engine
) -> None:
    _quarter_with_editions(api_settings, club_engine)
    page = settled(staff, f"/ui/catalogs?quarter={club.QUARTER}")
    counts = {
        (m.group(1), m.group(2)): int(m.group(3))
        for m in re.finditer(r'data-flag="([a-z_]+)" data-in="(\d)">(?:<span class="tag warn">)?(\d+)', page)
    }
    # in stock, in the plan and not bought: M01 T07 T08; M02 T01 T02 T03 T04 T06; M03 T08; M04 six —
    # an edition needs the main selection and six picks: M04's six fall one short
    assert counts[("few_picks", "1")] == 3 and counts[("few_picks", "2")] == 1
    assert counts[("over_page_budget", "1")] == 1 and counts[("over_page_budget", "2")] == 0  # M02: 5 − 1 > 2
    assert page.count("页数：已统计 2 份个人版") == 1 and page.count("页数：已统计 1 份个人版") == 1


def _position(page: str) -> str:
    found = re.search(r'id="proof-position">([^<]+)<', page)
    return found.group(1) if found else "none"


def _proof_members(staff: Staff, query: str) -> list[str]:
    """Every member the proof viewer steps through for ``query``, by following "next"."""
    path = f"/ui/catalogs/{club.QUARTER}/proofs?{query}"
    seen: list[str] = []
    while True:
        page = staff.get("editions", path).text
        found = re.search(r'id="proof-member">([^<]+)<', page)
        if found is None:
            return seen
        seen.append(found.group(1))
        after = re.search(r'id="proof-next" href="([^"]+)"', page)
        if after is None:
            return seen
        path = html.unescape(after.group(1))


def test_the_proof_viewer_filters_by_segment_tier_preflight_flag_and_a_seeded_sample_per_segment(
    staff: Staff, api_settings: Settings, club_engine: Engine
) -> None:
    _quarter_with_editions(api_settings, club_engine)
    first = staff.get("editions", f"/ui/catalogs/{club.QUARTER}/proofs?tier=core").text
    assert 'id="proofs-pending"' in first and 'hx-trigger="every 2s"' in first and 'id="no-proofs"' not in first
    settled(staff, f"/ui/catalogs?quarter={club.QUARTER}", "editions")  # the preflight, for the flag filter
    assert _proof_members(staff, "") == ["M01", "M02", "M04"]
    assert _proof_members(staff, "segment=1") == ["M01", "M02"]
    assert _proof_members(staff, "tier=core") == ["M01", "M04"]
    assert _proof_members(staff, "segment=1&tier=regular") == ["M02"]
    assert _proof_members(staff, "flag=over_page_budget") == ["M02"]
    assert _proof_members(staff, "flag=few_picks") == ["M01", "M02", "M04"]  # M03 has no edition; M04: 6 of 7
    sampled = _proof_members(staff, "sample=1&seed=5")
    assert len(sampled) == 2 and sampled[-1] == "M04" and sampled[0] in ("M01", "M02")  # one per segment
    assert _proof_members(staff, "sample=1&seed=5") == sampled  # the same seed, the same sample
    seeds = {_proof_members(staff, f"sample=1&seed={s}")[0] for s in range(12)}
    assert seeds == {"M01", "M02"}  # other seeds, other members
    page = staff.get("editions", f"/ui/catalogs/{club.QUARTER}/proofs?sample=1&seed=5").text
    assert 'id="another-sample"' in page and "seed=6" in page
    assert _position(staff.get("editions", f"/ui/catalogs/{club.QUARTER}/proofs?flag=nope").text) == "none"
    marked = staff.post("editions", f"/ui/catalogs/{club.QUARTER}/proofs/M02/mark", {"ok": "1", "note": "", "filters": "tier=regular&segment=1&evil=1"})
    assert marked.status_code == 303 and marked.headers["location"].endswith("proofs?member=M02&tier=regular&segment=1")


def _proof_picks(page: str) -> tuple[list[str], list[str]]:
    """The titles the proof viewer lists for the member in order, and those marked the main selection."""
    table = re.search(r'<table id="proof-picks">(.*?)</table>', page, re.S)
    assert table is not None
    rows = re.findall(r'<tr( class="main")? data-title="([^"]+)">', table.group(1))
    return [t for _main, t in rows], [t for main, t in rows if main]


def test_the_proof_viewer_shows_what_the_edition_shows_recorded_or_computed_by_edition_selections(
    staff: Staff, api_settings: Settings, club_engine: Engine
) -> None:
    from catalog.member_edition import edition_selections
    from catalog.paths import edition_file
    from catalog.plan import CatalogPlan
    from recsys.storage import plans as plans_db
    from recsys.storage import titles as titles_db
    from recsys.storage.shown_titles import ShownTitle, replace_shown_titles

    _quarter_with_editions(api_settings, club_engine)
    model = staff.client.app.state.holder.model  # type: ignore[attr-defined]
    segments = {"M01": 1, "M02": 1, "M04": 2}

    def expected(campaign_id: int | None) -> dict[str, list[str]]:
        with club_engine.connect() as connection:
            plans = {
                p.segment: p for p in
                (CatalogPlan.from_json(r["plan_json"]) for r in plans_db.plans_of_quarter(connection, club.QUARTER))
            }
            out = {}
            for m, segment in segments.items():
                titles = titles_db.title_details(connection, plans[segment].title_ids)
                found = edition_selections(
                    connection, model, plans[segment], titles, [m], api_settings.catalog.picks_per_member,
                    api_settings.mailing, campaign_id=campaign_id,
                )[m]
                assert found.main is not None and found.title_ids[0] == found.main[0]
                out[m] = found.title_ids
        return out

    def shown(member_id: str) -> tuple[list[str], list[str], str]:
        page = staff.get("editions", f"/ui/catalogs/{club.QUARTER}/proofs?member={member_id}").text
        source = re.search(r'id="proof-picks-source">([^<]+)<', page)
        return (*_proof_picks(page), source.group(1) if source else "")

    # no campaign for the quarter, nothing recorded: what the renderer's function lays out now
    computed = expected(None)
    assert len(computed["M04"]) == api_settings.catalog.picks_per_member  # the main selection and five picks
    for m, titles in computed.items():
        listed, mains, source = shown(m)
        assert listed == titles and mains == titles[:1], m
        assert "重新计算" in source
    page = staff.get("editions", f"/ui/catalogs/{club.QUARTER}/proofs?member=M04").text
    assert re.search(r'<tr class="main" data-title="[^"]+"><td><strong>本季推荐</strong>', page)

    # the quarter's campaign: M04's edition mailed and its rows recorded (here in another order than
    # the model's now, as after later purchases); M01 and M02 mailed, nothing recorded yet
    with club_engine.begin() as connection:
        campaign = campaigns_db.create_campaign(
            connection, name=club.QUARTER, quarter=club.QUARTER, in_home_date=club.T0.date(), response_days=60,
            late_days=0, holdout_share=0.0, universal_holdout_share=0.0, seed=1,
        )
        edition = campaigns_db.add_edition(
            connection, campaign.id, code="catalog", name="季刊", kind="catalog", segment=None,
            in_home_date=club.T0.date(), costs=(1.0, 0.5, 0.8, 0.2), model_version="v1",
        )
        treatment = campaigns_db.add_treatment(connection, campaign.id, name="季刊", edition_id=edition.id, key_code="K26Q1B")
        contacts_db.write_contacts(
            connection,
            [
                (campaign.id, key, treatment.id, edition.id, "mailed", None, segments[m], "core", 0.0, club.T0.date(), 2.5, "v1",
                 None, edition_file(club.QUARTER, m),
                 dt.datetime(2026, 1, 2))
                for key, m in ((1, "M01"), (2, "M02"), (4, "M04"))
            ],
        )  # fmt: skip
        contact = connection.execute(
            text("SELECT id FROM campaign_contacts WHERE campaign_id = :c AND member_key = 4"), {"c": campaign.id}
        ).scalar_one()
        recorded = [computed["M04"][-1], *computed["M04"][:2]]
        replace_shown_titles(connection, [contact], [
            ShownTitle(contact, campaign.id, 4, t, "main" if i == 0 else "pick", i) for i, t in enumerate(recorded)
        ])  # fmt: skip
    listed, mains, source = shown("M04")
    assert listed == recorded and mains == recorded[:1] and "渲染时记录" in source
    now = expected(campaign.id)
    for m in ("M01", "M02"):
        listed, mains, source = shown(m)
        assert listed == now[m] and mains == now[m][:1] and "重新计算" in source, m


def test_page_counts_equal_pypdfs(tmp_path: Path) -> None:
    from weasyprint import HTML

    from console.pdfpages import _fast_count, page_count

    files = []
    for pages in (1, 4):
        plain = tmp_path / f"plain-{pages}.pdf"
        _pdf(plain, pages)
        files.append(plain)
        printed = tmp_path / f"printed-{pages}.pdf"
        HTML(string="".join(f'<p style="break-after: page">第 {n} 页</p>' for n in range(pages))).write_pdf(printed)
        files.append(printed)
    merged = PdfWriter()
    for path in files:
        merged.append(str(path))
    buffer = io.BytesIO()
    merged.write(buffer)
    (tmp_path / "merged.pdf").write_bytes(buffer.getvalue())
    files.append(tmp_path / "merged.pdf")
    for path in files:
        assert page_count(path) == _fast_count(path.read_bytes()) == len(PdfReader(path).pages), path.name
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nnot a pdf")
    with pytest.raises(Exception):  # noqa: B017 - pypdf's own error: the fallback is pypdf
        page_count(tmp_path / "broken.pdf")


# ---- titles: in how many members' top 20 ----------------------------------------------------------


def test_a_titles_reach_is_counted_on_the_apis_answers_and_labelled_as_a_sample(
    staff: Staff, staff_keys: dict[str, str]
) -> None:
    first = staff.get("read", "/ui/titles/T07").text
    assert 'id="reach-pending"' in first and 'hx-trigger="every 2s"' in first
    recs = {m[0]: _api_recs(staff, staff_keys["read"], m[0]) for m in club.MEMBERS}  # 6 ≤ the sample size: all
    for title_id in ("T07", "T99", "T05"):
        page = settled(staff, f"/ui/titles/{title_id}")
        hits = sum(title_id in r for r in recs.values())
        sample = re.search(r'id="reach-sample" data-hits="(\d+)" data-sampled="(\d+)"', page)
        assert sample is not None and (int(sample.group(1)), int(sample.group(2))) == (hits, len(club.MEMBERS))
        assert f'data-estimate="{hits}"' in page  # the whole club was the sample
        assert "全部计算，不是样本" in page and "数据时间" in page and "95% 区间" not in page  # the whole club: a count
    assert 'data-hits="0"' in settled(staff, "/ui/titles/T05")  # out of stock: in nobody's list


# ---- overview: unmapped outside labels, service health ---------------------------------------------


def test_unmapped_outside_labels_from_an_imports_rejects_are_an_alert_until_they_are_mapped(
    staff: Staff, api_settings: Settings, club_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bookclub_cli.main import app

    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(api_settings.data_dir))
    monkeypatch.setenv("BOOKCLUB_DATABASE_URL", club_engine.url.render_as_string(hide_password=False))
    titles = tmp_path / "shop-titles.csv"
    titles.write_text(
        "title_id,title,categories\n"
        "T40,侦探一,shop:推理\nT41,侦探二,shop:推理;I247\nT42,科幻,shop:科幻\nT43,小说,I247\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["import", "titles", str(titles), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    page = settled(staff, "/ui/")
    assert re.search(r'data-alert="alert_unmapped_labels">2<', page)  # shop:推理 and shop:科幻
    assert "shop:推理 (2)" in page and "shop:科幻 (1)" in page and "bookclub import category-mappings" in page
    mappings = tmp_path / "mappings.csv"
    mappings.write_text("scheme,label,category_code\nshop,推理,I247\n", encoding="utf-8")
    assert runner.invoke(app, ["import", "category-mappings", str(mappings)]).exit_code == 0
    staff.client.app.state.console_aggregates.ttl = 0  # type: ignore[attr-defined]  # recompute now
    page = settled(staff, "/ui/")
    assert re.search(r'data-alert="alert_unmapped_labels">1<', page) and "shop:推理" not in page


def test_service_health_equals_the_prometheus_registry_the_api_exposes(staff: Staff, staff_keys: dict[str, str]) -> None:
    from prometheus_client import REGISTRY

    from api.metrics import drain

    for member_id in ("M01", "M05", "NOPE"):
        staff.client.get(f"/v1/members/{member_id}/recommendations", headers={"Authorization": f"Bearer {staff_keys['read']}"})
    drain()  # the API writes its counters off the request path, every 0.2 s: now, for the comparison
    page = staff.get("read", "/ui/").text
    route = "/v1/members/{member_id}/recommendations"
    expected = sum(  # every status: other tests in the same process answered this route too (401, 422, …)
        s.value for f in REGISTRY.collect() if f.name == "bookclub_http_requests" for s in f.samples
        if s.name.endswith("_total") and s.labels.get("route") == route and s.labels.get("method") == "GET"
    )
    shown = re.search(rf'data-requests="{re.escape(html.escape(route))}">([\d,]+)<', page)
    assert shown is not None and int(shown.group(1).replace(",", "")) == expected >= 3
    cold = REGISTRY.get_sample_value("bookclub_recommendations_total", {"kind": "cold_start"}) or 0
    warm = REGISTRY.get_sample_value("bookclub_recommendations_total", {"kind": "personalized"}) or 0
    found = re.search(r'id="health-cold">([\d.]+)%', page)
    # shown to one decimal as Python rounds it (31.25 is 31.2: a tolerance of ±0.05 fails there)
    assert found is not None and found.group(1) == f"{100 * cold / (cold + warm):.1f}"
    errors = re.search(r'id="health-errors" data-errors="(\d+)"', page)
    total_5xx = sum(
        s.value for f in REGISTRY.collect() if f.name == "bookclub_http_requests" for s in f.samples
        if s.name.endswith("_total") and s.labels["status"].startswith("5")
    )
    assert errors is not None and int(errors.group(1)) == total_5xx


def test_a_titles_reach_on_a_sample_is_extrapolated_with_an_interval(staff: Staff, staff_keys: dict[str, str]) -> None:
    from training.compare import simple_sample

    app = staff.client.app
    settings = app.state.settings  # type: ignore[attr-defined]
    app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
        update={"console": settings.console.model_copy(update={"reach_members": 3})}
    )
    sample = simple_sample([m[0] for m in club.MEMBERS], 3, settings.console.sample_seed)
    page = settled(staff, "/ui/titles/T07")
    hits = sum("T07" in _api_recs(staff, staff_keys["read"], m) for m in sample)
    found = re.search(r'id="reach-sample" data-hits="(\d+)" data-sampled="(\d+)"', page)
    assert found is not None and (int(found.group(1)), int(found.group(2))) == (hits, 3)
    assert f'data-estimate="{round(hits / 3 * len(club.MEMBERS))}"' in page
    assert "按样本推算" in page and "95% 区间（Wilson）" in page


def test_the_new_pages_issue_a_bounded_number_of_statements_and_count_no_purchases_or_members(
    staff: Staff, api_settings: Settings, club_engine: Engine, versions: list[str]
) -> None:
    from tests.console.test_console import counting

    campaign_id = _campaign(club_engine, holdout_share=1 / 3)
    _quarter_with_editions(api_settings, club_engine)
    paths = [
        f"/ui/models/compare?a={versions[0]}&b={versions[1]}", "/ui/campaigns", f"/ui/campaigns/{campaign_id}", "/ui/jobs",
        "/ui/titles/T01", "/ui/", f"/ui/catalogs?quarter={club.QUARTER}",
        f"/ui/catalogs/{club.QUARTER}/proofs?tier=core", f"/ui/catalogs/{club.QUARTER}/proofs?flag=few_picks",
        f"/ui/catalogs/{club.QUARTER}/proofs?sample=1",
    ]  # fmt: skip
    for path in paths:
        settled(staff, path, "admin")  # background aggregates computed once, before counting
        with counting(club_engine) as statements:
            assert staff.get("admin", path).status_code == 200, path
        assert len(statements) <= 16, (path, statements)
        for sql in statements:
            flat = " ".join(sql.split()).lower()
            assert not re.search(r"count\(\*\) from (purchases|members)\b", flat), flat


def test_aggregates_keep_a_value_for_its_own_ttl_and_say_why_a_computation_failed(club_engine: Engine) -> None:
    from console.cache import Aggregates

    cache = Aggregates(club_engine, ttl=0.0)  # everything stale at once, unless a value says otherwise
    runs: list[str] = []

    def compute(_connection: Any) -> int:
        runs.append("x")
        return len(runs)

    assert cache.get("slow", compute, ttl=3600) is None
    cache.join()
    first = cache.get("slow", compute, ttl=3600)
    cache.join()
    assert first is not None and first.value == 1 and runs == ["x"]  # kept: its own ttl has not run out
    cache.get("fast", compute)
    cache.join()
    cache.get("fast", compute)
    cache.join()
    assert len(runs) == 3  # the default ttl (0) recomputes on every view

    def broken(_connection: Any) -> int:
        raise ValueError("no such quarter")

    assert cache.get("broken", broken) is None
    cache.join()
    assert cache.failure("broken") == "ValueError: no such quarter"
    assert cache.get("broken", broken) is None and not cache._running  # not retried on every poll


def test_a_finished_render_job_shows_its_editions(staff: Staff, club_engine: Engine) -> None:
    """What console.job_runner records after catalog.fanout.render_all_editions (a render needs a
    campaign's contacts; the browser test's club runs a training job end to end)."""
    with club_engine.begin() as connection:
        job = jobs_db.create_job(connection, kind="render_editions", params={"quarter": "2026Q1"}, actor_prefix="p", actor_label="王芳")
        jobs_db.start_job(connection, job.id, host="elsewhere", pid=1)
        jobs_db.record_progress(connection, job.id, step="member editions (4 batches)", done=20, total=20)
        jobs_db.finish_job(connection, job.id, result={
            "quarter": "2026Q1", "editions": 20, "seconds": 61.6, "per_second": 0.32, "workers": 2, "batches": 4,
            "retried": 0, "failed_members": 0,
        })  # fmt: skip
    row = _row(staff.get("read", "/ui/jobs").text, job.id)
    assert 'data-status="done"' in row and 'data-key="editions">个人版: 20<' in row and "季度: 2026Q1" in row


def test_the_campaigns_page_shows_the_quarters_mailing_decision_and_its_mail_depth_curve(tmp_path: Path) -> None:
    """``plan_mailing`` — what ``bookclub campaigns plan`` prints — on the campaign package's club
    with a randomized earlier campaign; and the reason when nothing can be learned yet."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from campaign.mailing_plan import plan_mailing
    from recsys.settings import CampaignSettings
    from recsys.storage.apikeys import create_key
    from recsys.storage.db import make_engine, upgrade
    from tests.campaign.test_mailing_plan import NOW, build
    from tests.console.conftest import login

    engine = make_engine(f"sqlite:///{tmp_path / 'club.db'}")
    upgrade(engine)
    settings = Settings(data_dir=tmp_path / "var", campaign=CampaignSettings(holdout_share=0.2, universal_holdout_share=0.0))
    build(engine, settings)
    with engine.begin() as connection:
        key = create_key(connection, "read", "市场部")[0]
    with TestClient(create_app(settings, engine=engine), base_url="http://testserver") as client:
        staff = Staff(client, {"read": login(client, key)})
        first = staff.get("read", f"/ui/campaigns?quarter={NOW}&budget=1500").text
        assert 'id="decision-pending"' in first and 'hx-trigger="every 2s"' in first
        page = settled(staff, f"/ui/campaigns?quarter={NOW}&budget=1500")
        earlier = settled(staff, "/ui/campaigns?quarter=2026Q3")  # nothing before it to learn from
        # in the running app: its one-BLAS-thread limit moves plan_mailing's figures by ~1 %
        with engine.connect() as connection:
            expected = plan_mailing(connection, settings, NOW, dt.date(2026, 10, 1), budget=1_500.0).to_json()
    engine.dispose()
    depth = re.search(r'id="mail-depth" data-break-even="(\d+)" data-chosen="(\d+)"', page)
    curve = expected["mail_depth"]
    assert depth is not None and (int(depth.group(1)), int(depth.group(2))) == (curve["break_even_depth"], curve["chosen_depth"])
    section = page[page.index('id="mail-depth"') :]
    marks, cells = _marks(section), _cells(section)
    assert marks and marks == cells
    assert {int(k): float(v) for k, v in cells.items()} == pytest.approx(
        {int(r["pieces"]): round(r["cumulative_profit"], 2) for r in curve["table"]}
    )
    assert f'data-mailed-kind="catalog">catalog {expected["mailed"]["catalog"]:,}<' in page
    planned = re.search(r'<tr data-row="planned"><td>[^<]*</td><td class="num">([\d,]+)<', page)
    assert planned is not None and int(planned.group(1).replace(",", "")) == round(expected["planned"]["pieces"])
    assert 'id="decision-not-possible"' in earlier and "no earlier campaign" in earlier


# ---- a damaged registry or model: the page says what is wrong, in HTML -----------------------------


def test_an_unreadable_registry_is_an_error_page_naming_the_file_not_a_json_body(
    staff: Staff, registry: ModelRegistry
) -> None:
    registry.state_file.write_text("{not json", encoding="utf-8")
    response = staff.get("read", "/ui/models?lang=en")
    assert response.status_code == 503 and response.headers["content-type"].startswith("text/html")
    assert "registry.json" in response.text and "cannot be read" in response.text
    assert "模型登记无法读取" in staff.get("read", "/ui/models?lang=zh").text
    assert str(registry.models_dir) not in response.text  # the file's name, never the server's folders

