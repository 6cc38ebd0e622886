"""Catalog rendering benchmark: segment catalogs and personalized member editions.

Runs on the configured database (``BOOKCLUB_DATA_DIR``), which must hold a trained model
and a segmented, planned quarter (``bookclub quarter`` or ``bookclub segment`` +
``bookclub catalogs plan``). Pinned to one core. Prints, measured in the same run:

* a segment catalog: our pipeline (plan → context → HTML → PDF, project-only fetcher,
  shared font configuration) against WeasyPrint rendering the same final HTML directly
  (``HTML(string=...).write_pdf()``): seconds, pages/s, the overhead ratio (target ≤ 1.10),
  peak Python memory (tracemalloc) and the process's peak RSS;
* member editions: personal pages laid out ``members_per_batch`` to a document, written once,
  merged with the shared body as incremental updates — editions per second on one core
  (target ≥ 3) and the projected time for 1.5 million members; and, for reference, the same
  merge with ``pypdf.PdfWriter.append``.

    python benchmarks/bench_catalog.py --quarter 2026Q4 [--members 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

from catalog.context import catalog_view
from catalog.member_edition import member_picks, member_views, merge_editions, render_member_pages
from catalog.pdfmerge import BodyTemplate
from catalog.planning import stored_plans
from catalog.production import renderer_for, titles_by_id
from catalog.render import BASE_URL, catalog_html
from catalog.segments import stored_profiles
from recsys.settings import Settings
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from recsys.storage.db import engine_from_settings
from training.registry import ModelRegistry

MEMBERS_AT_SCALE = 1_500_000


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_segment_catalog(settings: Settings, quarter: str, repeats: int) -> Path:
    engine = engine_from_settings(settings)
    with engine.connect() as connection:
        plans = stored_plans(connection, quarter)
        if not plans:
            raise SystemExit(f"no plans for {quarter}: run `bookclub catalogs plan --quarter {quarter}`")
        titles = titles_by_id(connection, quarter)
        profiles = {p.segment: p for p in stored_profiles(connection, quarter)}
    plan = max(plans, key=lambda p: len(p.title_ids))
    cfg = settings.catalog
    renderer = renderer_for(settings)
    out = Path(tempfile.mkdtemp(prefix="bench-catalog-"))

    def ours() -> int:
        view = catalog_view(plan, titles, profiles.get(plan.segment), club_name=cfg.club_name,
                            order_address=cfg.order_address, font=cfg.segment_font,
                            covers_dir=settings.data_dir / "covers")
        document = renderer.layout(catalog_html(view, cfg))
        renderer.write(document, out / "ours.pdf")
        return len(document.pages)

    view = catalog_view(plan, titles, profiles.get(plan.segment), club_name=cfg.club_name,
                        order_address=cfg.order_address, font=cfg.segment_font)
    html = catalog_html(view, cfg)

    def reference() -> int:
        HTML(string=html, base_url=BASE_URL).write_pdf(out / "reference.pdf")
        return len(PdfReader(out / "reference.pdf").pages)

    ours()  # warm-up: fonts, stylesheet, images
    reference()
    t_ours, t_ref, pages = [], [], 0
    for _ in range(repeats):  # alternate, so machine load hits both alike
        t, pages = timed(ours)
        t_ours.append(t)
        t, _ = timed(reference)
        t_ref.append(t)
    ours_s, ref_s = statistics.median(t_ours), statistics.median(t_ref)
    start = time.perf_counter()
    catalog_html(catalog_view(plan, titles, profiles.get(plan.segment), club_name=cfg.club_name,
                              order_address=cfg.order_address, font=cfg.segment_font), cfg)
    prepare_s = time.perf_counter() - start
    tracemalloc.start()
    ours()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"segment catalog: segment {plan.segment} ({plan.segment_name}), "
          f"{len(plan.title_ids)} titles, {pages} pages, {cfg.page_size}, font {cfg.segment_font}")
    print(f"  ours      {ours_s:6.2f} s  {pages / ours_s:5.2f} pages/s   (median of {repeats})")
    print(f"  weasyprint{ref_s:6.2f} s  {pages / ref_s:5.2f} pages/s   same HTML, HTML().write_pdf()")
    print(f"  overhead  {ours_s / ref_s:6.3f}× median, {min(t_ours) / min(t_ref):.3f}× best-of "
          f"(target ≤ 1.10); context + HTML {prepare_s * 1000:.0f} ms of it")
    print(f"  peak Python memory {peak / 2**20:.0f} MiB; process peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    engine.dispose()
    return out / "ours.pdf"


def bench_member_editions(settings: Settings, quarter: str, members: int, body_pdf: Path) -> None:
    engine = engine_from_settings(settings)
    cfg = settings.catalog
    with engine.connect() as connection:
        model = ModelRegistry(settings.models_dir).load_prepared(connection)
        plans = {p.segment: p for p in stored_plans(connection, quarter)}
        titles = titles_by_id(connection, quarter)
        labels = segments_db.member_segment_labels(connection, quarter)
    plan = max(plans.values(), key=lambda p: len(p.title_ids))
    member_ids = sorted(m for m, s in labels.items() if s == plan.segment)[:members]
    body = BodyTemplate(body_pdf.read_bytes())
    renderer = renderer_for(settings)
    out = Path(tempfile.mkdtemp(prefix="bench-editions-"))
    size = cfg.members_per_batch
    with engine.connect() as connection:
        rows = members_db.members_by_id(connection, member_ids)
    # warm-up batch (fonts, images)
    warm = member_ids[:2]
    render_member_pages(member_views([rows[m] for m in warm], {}, plan, titles, cfg, quarter), cfg, renderer)

    phases = {"picks": 0.0, "layout+write": 0.0, "merge": 0.0}
    batches = []
    start_all = time.perf_counter()
    for start in range(0, len(member_ids), size):
        batch = member_ids[start : start + size]
        t = time.perf_counter()
        with engine.connect() as connection:  # the member snapshots are read per batch, as in production
            picks = member_picks(connection, model, plan, titles, batch, cfg.picks_per_member)
        views = member_views([rows[m] for m in batch], picks, plan, titles, cfg, quarter)
        phases["picks"] += time.perf_counter() - t
        t = time.perf_counter()
        pages = render_member_pages(views, cfg, renderer)
        phases["layout+write"] += time.perf_counter() - t
        t = time.perf_counter()
        merge_editions(pages, body, out)
        phases["merge"] += time.perf_counter() - t
        batches.append(pages)
    total = time.perf_counter() - start_all
    rate = len(member_ids) / total
    print(f"member editions: {len(member_ids)} members of segment {plan.segment}, "
          f"{size} per document, font {cfg.member_font}, body {body.page_count} pages")
    print(f"  {rate:.2f} editions/s on one core ({total / len(member_ids) * 1000:.0f} ms each; "
          + ", ".join(f"{k} {v / len(member_ids) * 1000:.0f} ms" for k, v in phases.items()) + ")")
    print(f"  target ≥ 3/s/core: {'met' if rate >= 3 else 'NOT met'}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    machine_cores = os.cpu_count() or 1
    hours = MEMBERS_AT_SCALE / rate / 3600
    print(f"  1.5M members: {hours:.0f} core-hours → {hours / machine_cores:.0f} h on this "
          f"{machine_cores}-core machine (pinned to {cores} for the measurement)")
    # reference: the same merge with pypdf's append (copies the body for every member)
    pages = batches[0]
    personal = PdfReader(BytesIO(pages.pdf))
    body_reader = PdfReader(body_pdf)
    t = time.perf_counter()
    for first, stop in pages.ranges.values():
        writer = PdfWriter()
        writer.append(personal, pages=(first, stop))
        writer.append(body_reader)
        writer.write(BytesIO())
    naive = (time.perf_counter() - t) / len(pages.ranges)
    ours = phases["merge"] / len(member_ids)
    print(f"  merge: incremental update {ours * 1000:.1f} ms/edition vs pypdf append "
          f"{naive * 1000:.0f} ms/edition ({naive / max(ours, 1e-9):.0f}× faster)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarter", required=True)
    parser.add_argument("--members", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pin_one_core()
    settings = Settings()
    body = bench_segment_catalog(settings, args.quarter, args.repeats)
    bench_member_editions(settings, args.quarter, args.members, body)


if __name__ == "__main__":
    main()
