"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright for
Python — never a browser download) against a real uvicorn server on 127.0.0.1, over a small
demo club made by ``bookclub quarter`` (segments, plans, PDFs and member editions) plus a
candidate model.

A missing browser is a skip on a developer's machine and a failure when ``CI`` or
``BOOKCLUB_REQUIRE_BROWSER=1`` is set. Full-page screenshots of every page go to
``BOOKCLUB_SCREENSHOTS_DIR`` (default: a pytest temporary folder, printed).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from recsys.settings import Settings
from recsys.storage.apikeys import create_key
from recsys.storage.db import engine_from_settings
from tests.conftest import SHARED_DATA
from training.registry import ModelRegistry

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("BOOKCLUB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
]
VENV_BIN = Path(sys.executable).parent


def _browser_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("BOOKCLUB_REQUIRE_BROWSER") == "1"


def _missing(reason: str) -> None:
    if _browser_required():
        pytest.fail(f"{reason} (CI or BOOKCLUB_REQUIRE_BROWSER=1: a missing browser is a failure)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


@dataclass
class Club:
    url: str
    data_dir: Path
    keys: dict[str, str]
    candidate: str
    quarter: str
    shots: Path


@pytest.fixture(scope="module")
def club_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Club]:
    if not (SHARED_DATA / "clc").exists():
        pytest.skip(f"the CLC is not at {SHARED_DATA / 'clc'}: the demo club needs it")
    root = tmp_path_factory.mktemp("console-browser")
    data_dir = root / "var"
    env = {
        **os.environ, "BOOKCLUB_DATA_DIR": str(data_dir), "BOOKCLUB_SHARED_DATA_DIR": str(SHARED_DATA),
        "BOOKCLUB_API__MODEL_POLL_SECONDS": "0.2",
    }
    env.pop("BOOKCLUB_DATABASE_URL", None)
    bookclub = [sys.executable, "-m", "bookclub_cli.main"]
    quarter_run = subprocess.run(
        [*bookclub, "quarter", "--members", "300", "--titles", "200", "--years", "2", "--editions", "3", "--no-serve",
         "--mail-everyone"],  # 300 members: the plan by profit mails nobody, and the pages need editions
        env=env, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    printed = re.search(r"http://127\.0\.0\.1:\d+/ui/members/(\S+)\s+key: (bk_\S+)", quarter_run.stdout)
    assert printed is not None, quarter_run.stdout  # ./run.sh demo prints the console's address and a key
    subprocess.run([*bookclub, "train", "--promote", "never"], env=env, check=True, capture_output=True)
    settings = Settings(data_dir=data_dir, shared_data_dir=SHARED_DATA)
    registry = ModelRegistry(settings.models_dir)
    candidate = next(i.version for i in registry.list() if i.status == "candidate")
    engine = engine_from_settings(settings)
    with engine.begin() as connection:
        keys = {s: create_key(connection, s, f"{s} 测试员")[0] for s in ("read", "editions")}
    keys["admin"] = printed.group(2)  # the key `bookclub quarter` printed: an admin one
    engine.dispose()
    quarter = next(p.name for p in (data_dir / "catalogs").iterdir())
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, cwd=Path(__file__).resolve().parents[2],
    )
    shots = Path(os.environ.get("BOOKCLUB_SCREENSHOTS_DIR") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/ui/login", server)
        yield Club(f"http://127.0.0.1:{port}", data_dir, keys, candidate, quarter, shots)
    finally:
        server.terminate()
        server.wait(timeout=30)
        print(f"\nconsole screenshots: {shots}")


@dataclass
class Watch:
    """Every request a page made and every console error it logged."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _context(browser: Any, club: Club, watch: Watch, *, javascript: bool = True) -> Any:
    context = browser.new_context(
        base_url=club.url, java_script_enabled=javascript, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )

    def on_page(page: Any) -> None:
        page.on("request", lambda request: watch.requests.append(request.url))
        page.on("console", lambda message: watch.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        page.on("response", lambda r: watch.errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/rollback") else None)

    context.on("page", on_page)
    return context


def _login(page: Any, key: str) -> None:
    page.goto("/ui/login")
    page.fill("#key", key)
    page.click("#login-button")
    page.wait_for_url(re.compile(r".*/ui/$"))


def _only_local(watch: Watch, club: Club) -> None:
    outside = [u for u in watch.requests if not u.startswith(club.url + "/") and not u.startswith("data:")]
    assert outside == [], outside
    assert watch.errors == [], watch.errors


def _api_models(club: Club) -> dict[str, Any]:
    request = urllib.request.Request(f"{club.url}/v1/models", headers={"Authorization": f"Bearer {club.keys['read']}"})
    with urllib.request.urlopen(request) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body



def _wait_for_images(page: Any) -> None:
    """Every image of the page loaded. Polled from here: ``wait_for_function`` evaluates its
    predicate with eval inside the page, which the console's CSP (no 'unsafe-eval') refuses."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the proof's page images did not load within 20 s")

def test_read_role_searches_a_member_reads_chinese_reasons_and_a_filter_swap_comes_back_with_back(
    browser: Any, club_server: Club
) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["read"])
    assert page.text_content("#role") == "read"
    page.goto("/ui/members")
    page.fill("#member-q", "M00001")
    page.press("#member-q", "Enter")  # htmx swaps the results in
    page.wait_for_selector("#member-results a")
    assert "/ui/members?q=M00001" in page.url
    page.click("#member-results a >> nth=0")
    page.wait_for_selector("#recs-table")
    member_url = page.url
    reasons = page.locator(".reason-zh").all_text_contents()
    assert reasons and all(re.search(r"[\u4e00-\u9fff]", r) for r in reasons)
    assert page.get_attribute("#recs-table", "data-include-purchased") == "false"
    page.evaluate("window.__still_here = 'yes'")  # survives a swap, not a page load
    with page.expect_response(lambda r: "include_purchased=true" in r.url):
        page.check("#f-include-purchased")
    page.wait_for_selector('#recs-table[data-include-purchased="true"]')
    assert "include_purchased=true" in page.url
    assert page.evaluate("window.__still_here") == "yes"
    page.go_back()
    page.wait_for_selector('#recs-table[data-include-purchased="false"]')
    assert page.url == member_url
    assert not page.is_checked("#f-include-purchased")
    _only_local(watch, club_server)
    context.close()


def test_admin_activates_and_rolls_back_a_model_with_a_reason_and_the_api_agrees(
    browser: Any, club_server: Club
) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["admin"])
    before = _api_models(club_server)["active_version"]
    page.goto("/ui/models")
    page.select_option("#activate-version", club_server.candidate)
    page.fill("#activate-reason", "浏览器测试：候选模型上线")
    page.click("#activate-button")
    page.wait_for_selector(f'tr[data-version="{club_server.candidate}"][data-status="active"]')
    assert _api_models(club_server)["active_version"] == club_server.candidate
    page.fill("#rollback-reason", "回滚：测试结束")
    page.click("#rollback-button")
    page.wait_for_selector(f'tr[data-version="{before}"][data-status="active"]')
    assert _api_models(club_server)["active_version"] == before
    page.goto("/ui/audit")
    audit = page.text_content("#audit") or ""
    assert "浏览器测试：候选模型上线" in audit and "回滚：测试结束" in audit and "console 2" in audit
    _only_local(watch, club_server)
    context.close()


class _EvilPage(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (
            f'<html><body><form id="f" method="post" action="{self.target}">'
            '<input name="reason" value="forged"></form>'
            "<script>document.getElementById('f').submit()</script></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def test_a_forged_cross_origin_post_is_refused_and_changes_nothing(browser: Any, club_server: Club) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["admin"])
    before = _api_models(club_server)["active_version"]
    _EvilPage.target = f"{club_server.url}/ui/models/rollback"
    evil = http.server.HTTPServer(("127.0.0.1", 0), _EvilPage)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with page.expect_response(lambda r: r.url.endswith("/ui/models/rollback")) as answer:
            page.goto(f"http://127.0.0.1:{evil.server_port}/")
        assert answer.value.status == 403
        page.wait_for_selector("#error-message")
    finally:
        evil.shutdown()
    assert _api_models(club_server)["active_version"] == before
    context.close()


def test_editions_role_steps_through_proofs_with_page_images(browser: Any, club_server: Club) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["editions"])
    page.goto(f"/ui/catalogs/{club_server.quarter}/proofs")
    first = page.text_content("#proof-member")
    assert page.text_content("#proof-position") == "1 / 3"
    _wait_for_images(page)
    page.click("#proof-next")
    page.wait_for_selector("#proof-position:has-text('2 / 3')")
    assert page.text_content("#proof-member") != first
    assert page.locator("#proof-picks tr").count() > 0
    page.fill("input[name=note]", "地址窗口对齐")
    page.click("button[name=ok][value='1']")
    page.wait_for_selector("#proof-marks li")
    assert "地址窗口对齐" in (page.text_content("#proof-marks") or "")
    page.click("#proof-member")  # the member 360 shows this quarter's edition too
    page.wait_for_selector("#edition-pages img")
    _wait_for_images(page)
    assert page.locator("#edition-pages img").count() == 2
    _only_local(watch, club_server)
    context.close()


def test_compare_two_versions_shows_stored_metrics_and_the_overlap_computed_in_the_background(
    browser: Any, club_server: Club
) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["read"])
    active = _api_models(club_server)["active_version"]
    page.goto("/ui/models")
    page.click("#compare-link")
    page.wait_for_selector("#compare-form")
    page.select_option("#compare-a", active)
    page.select_option("#compare-b", club_server.candidate)
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#overlap-overall", timeout=120_000)  # htmx polls it in once computed
    assert f"b={club_server.candidate}" in page.url
    marks = page.eval_on_selector_all(
        "#compare-overlap svg .mark", "els => els.map(e => [e.dataset.label, e.dataset.value])"
    )
    cells = page.eval_on_selector_all(
        "#compare-overlap .chart-table td[data-label]", "els => els.map(e => [e.dataset.label, e.textContent.trim()])"
    )
    assert marks and marks == cells
    assert page.locator("#metric-differences tr[data-metric]").count() >= 5
    assert page.locator("#changed-most tr[data-member]").count() >= 1
    page.screenshot(path=str(club_server.shots / "compare.png"), full_page=True)
    _only_local(watch, club_server)
    context.close()


def test_the_campaign_page_shows_the_sample_ratio_check_first_and_effects_with_intervals(
    browser: Any, club_server: Club
) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["read"])
    page.goto("/ui/campaigns")
    page.wait_for_selector("#campaigns td[data-arm=mailed]:not(:has-text('…'))")
    # the quarter's mailing decision (campaign.mailing_plan): one campaign so far, nothing earlier to learn from
    page.wait_for_selector("#decision-not-possible, #mail-depth", timeout=120_000)
    page.screenshot(path=str(club_server.shots / "campaigns.png"), full_page=True)
    page.click("#campaigns a >> nth=0")
    page.wait_for_selector("#sample-ratio", timeout=120_000)
    top = page.eval_on_selector_all("main section.card", "els => els.map(e => e.id)")
    assert top[0] == "sample-ratio" and "effects" in top
    for outcome in ("response", "revenue", "margin", "net_profit"):
        box = f'[data-outcome="{outcome}"]'
        marks = page.eval_on_selector_all(f"{box} svg .mark", "els => els.map(e => [e.dataset.label, e.dataset.value])")
        cells = page.eval_on_selector_all(f"{box} td[data-label]", "els => els.map(e => [e.dataset.label, e.textContent.trim()])")
        assert marks and marks == cells, outcome
    page.screenshot(path=str(club_server.shots / "campaign.png"), full_page=True)
    _only_local(watch, club_server)
    context.close()


def test_an_admin_starts_a_training_job_and_sees_it_finish(browser: Any, club_server: Club) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["admin"])
    before = {m["version"] for m in _api_models(club_server)["data"]}
    page.goto("/ui/jobs")
    page.uncheck("#train-evaluate")
    page.select_option("#train-promote", "never")
    page.fill("#train-reason", "浏览器测试：训练任务")
    page.click("#train-start")
    page.wait_for_selector('tr[data-kind="train"][data-status="running"], tr[data-kind="train"][data-status="queued"]')
    page.screenshot(path=str(club_server.shots / "jobs-running.png"), full_page=True)
    page.wait_for_selector('tr[data-kind="train"][data-status="done"]', timeout=240_000)  # htmx polls the list
    version = page.text_content('tr[data-kind="train"][data-status="done"] .job-result[data-key="version"]') or ""
    new = {m["version"] for m in _api_models(club_server)["data"]} - before
    assert new and version.endswith(next(iter(new)))
    page.screenshot(path=str(club_server.shots / "jobs.png"), full_page=True)
    page.goto("/ui/audit")
    assert "浏览器测试：训练任务" in (page.text_content("#audit") or "")
    _only_local(watch, club_server)
    context.close()


PAGES = [
    ("overview", "/ui/"),
    ("members", "/ui/members?q=M0000"),
    ("member", None),
    ("titles", "/ui/titles"),
    ("title", None),
    ("segments", "/ui/segments"),
    ("segment-members", None),
    ("catalogs", "/ui/catalogs?quarter={quarter}"),
    ("proofs", "/ui/catalogs/{quarter}/proofs"),
    ("models", "/ui/models"),
    ("compare", "/ui/models/compare"),
    ("campaigns", "/ui/campaigns"),
    ("campaign", None),
    ("proofs-sample", "/ui/catalogs/{quarter}/proofs?sample=1"),
    ("jobs", "/ui/jobs"),
    ("data", "/ui/data"),
    ("audit", "/ui/audit"),
    ("overview-en", "/ui/?lang=en"),
    ("member-en", None),
    ("compare-en", "/ui/models/compare?lang=en"),
]


def _resolve(page: Any, name: str, path: str | None, quarter: str) -> str:
    if path is not None:
        return path.format(quarter=quarter)
    if name.startswith("member"):
        page.goto("/ui/members?q=M0000")
        href = page.get_attribute("#member-results a >> nth=0", "href")
        return f"{href}?lang=en" if name.endswith("-en") else f"{href}?lang=zh"
    if name == "title":
        page.goto("/ui/titles")
        return str(page.get_attribute("#title-results a >> nth=0", "href"))
    if name == "campaign":
        page.goto("/ui/campaigns")
        return str(page.get_attribute("#campaigns a >> nth=0", "href"))
    page.goto("/ui/segments")
    return str(page.get_attribute(".segment-profile h2 a >> nth=0", "href"))


def test_every_page_loads_with_no_console_error_nothing_outside_and_a_screenshot(
    browser: Any, club_server: Club
) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch)
    page = context.new_page()
    _login(page, club_server.keys["admin"])
    for name, path in PAGES:
        url = _resolve(page, name, path, club_server.quarter)
        response = page.goto(url)
        assert response is not None and response.status == 200, (name, url)
        if name.startswith("overview"):  # computed in the background, polled in by htmx
            page.wait_for_selector("#counters")
        if name == "catalogs":
            page.wait_for_selector("table.preflight", timeout=120_000)
        if name == "title":
            page.wait_for_selector("#reach-estimate", timeout=120_000)
        if name.startswith("compare"):
            page.wait_for_selector("#overlap-overall", timeout=120_000)
        if name == "campaign":
            page.wait_for_selector("#sample-ratio", timeout=120_000)
        if name == "campaigns":
            page.wait_for_selector("#decision-not-possible, #mail-depth", timeout=120_000)
        if name == "proofs-sample":
            page.wait_for_selector("#proof-position", timeout=120_000)  # segments and tiers polled in
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(club_server.shots / f"{name}.png"), full_page=True)
    _only_local(watch, club_server)
    context.close()


def test_read_pages_work_with_javascript_off(browser: Any, club_server: Club) -> None:
    watch = Watch()
    context = _context(browser, club_server, watch, javascript=False)
    page = context.new_page()
    _login(page, club_server.keys["editions"])  # the login form posts without script
    page.goto("/ui/members")
    page.fill("#member-q", "M00001")
    page.click("#member-search")
    page.wait_for_url(re.compile(r".*q=M00001.*"))
    page.click("#member-results a >> nth=0")
    page.wait_for_selector("#recs-table")
    page.check("#f-include-purchased")
    page.click("#filters button[type=submit]")  # a plain GET form: a full page
    page.wait_for_selector('#recs-table[data-include-purchased="true"]')
    assert "include_purchased=true" in page.url
    for path in ("/ui/", "/ui/titles", "/ui/segments", f"/ui/catalogs?quarter={club_server.quarter}", "/ui/models", "/ui/data"):
        response = page.goto(path)
        assert response is not None and response.status == 200
        assert page.locator("main h1").count() == 1
    page.goto("/ui/?lang=en")
    page.screenshot(path=str(club_server.shots / "overview-no-js.png"), full_page=True)
    _only_local(watch, club_server)
    context.close()
