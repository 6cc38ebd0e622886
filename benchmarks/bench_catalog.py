"""Catalog rendering benchmark: segment catalogs and personalized member editions.

Runs on the configured database (``BOOKCLUB_DATA_DIR``), which must hold a trained model
and a segmented, planned quarter (``bookclub quarter`` or ``bookclub segment`` +
``bookclub catalogs plan``). Pinned to one core. Prints, measured in the same run:

* a segment catalog: our pipeline (plan → context → HTML → PDF, project-only fetcher,
  shared font configuration) against WeasyPrint rendering the same final HTML directly
  (``HTML(string=...).write_pdf()``): seconds, pages/s, the overhead ratio (target ≤ 1.10),
  peak Python memory (tracemalloc) and the process's peak RSS;
* member editions: personal pages laid out ``members_per_batch`` to a document, written once,
  merged with the shared body as incremental updates. CPU per member with the stamp sheet
  (:mod:`catalog.stamps`: the form's frame and the title cards laid out once) against the same
  batches laid out whole, in the same run (target ≥ 15/s/core); bytes per member in a print
  file; the projected time for 1.5 million members; and, for reference, the same merge with
  ``pypdf.PdfWriter.append``.

    python benchmarks/bench_catalog.py --quarter 2026Q4 [--members 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
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
from catalog.member_edition import member_picks, member_views
from catalog.member_pages import merge_editions, render_member_pages, stamp_sheet
from catalog.pdfmerge import BodyTemplate
from catalog.planning import stored_plans
from catalog.printfile import PrintFileWriter
from catalog.production import renderer_for, titles_by_id
from catalog.render import BASE_URL, catalog_html, freeze_long_lived
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
    code = f"{quarter}-S{plan.segment}-C"
    # the stamp sheet: laid out once per segment and renderer (timed apart)
    t = time.process_time()
    sheet = stamp_sheet(plan, titles, cfg, renderer)
    sheet_s = time.process_time() - t
    # warm-up batch (fonts, images), both ways
    warm = [member_views([rows[m] for m in member_ids[:2]], {}, plan, titles, cfg, quarter)]
    render_member_pages(warm[0], cfg, renderer)
    render_member_pages(warm[0], cfg, renderer, sheet)
    freeze_long_lived()  # as a fan-out worker does once its model, titles and sheets are built

    phases = {"picks": 0.0, "layout+write": 0.0, "merge": 0.0}
    whole_cpu = stamped_cpu = 0.0
    whole_bytes = stamped_bytes = 0
    batches = []
    start_all = time.perf_counter()
    for start in range(0, len(member_ids), size):
        batch = member_ids[start : start + size]
        t = time.perf_counter()
        with engine.connect() as connection:  # the member snapshots are read per batch, as in production
            picks = member_picks(connection, model, plan, titles, batch, cfg.picks_per_member)
        views = member_views([rows[m] for m in batch], picks, plan, titles, cfg, quarter,
                             key_codes=dict.fromkeys(batch, code))
        phases["picks"] += time.perf_counter() - t
        # reference in the same run: the same batch laid out whole (every part per member)
        t = time.process_time()
        whole = render_member_pages(views, cfg, renderer)
        whole_cpu += time.process_time() - t
        whole_bytes += len(whole.pdf)
        t, c = time.perf_counter(), time.process_time()
        pages = render_member_pages(views, cfg, renderer, sheet)
        phases["layout+write"] += time.perf_counter() - t
        stamped_cpu += time.process_time() - c
        stamped_bytes += len(pages.pdf)
        t = time.perf_counter()
        merge_editions(pages, body, out)
        phases["merge"] += time.perf_counter() - t
        batches.append(pages)
    total = time.perf_counter() - start_all - whole_cpu  # wall time of the stamped path (approx.)
    n = len(member_ids)
    rate = n / total
    print(f"member editions: {n} members of segment {plan.segment}, "
          f"{size} per document, font {cfg.member_font}, body {body.page_count} pages; "
          f"stamp sheet {sheet_s:.2f} s CPU once per segment and worker")
    print(f"  personal pages, CPU per member: laid out whole {whole_cpu / n * 1000:.1f} ms "
          f"({n / whole_cpu:.1f}/s/core), stamped {stamped_cpu / n * 1000:.1f} ms "
          f"({n / stamped_cpu:.1f}/s/core): {whole_cpu / stamped_cpu:.2f}× (target ≥ 15/s/core)")
    print(f"  batch PDF bytes per member: whole {whole_bytes / n / 1024:.1f} KB, stamped "
          f"{stamped_bytes / n / 1024:.1f} KB")
    print(f"  whole editions (wall, machine shared): {rate:.2f}/s ({total / n * 1000:.0f} ms each; "
          + ", ".join(f"{k} {v / n * 1000:.0f} ms" for k, v in phases.items()) + ")")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    machine_cores = os.cpu_count() or 1
    per_core = n / (stamped_cpu + (phases["picks"] + phases["merge"]))
    hours = MEMBERS_AT_SCALE / per_core / 3600
    print(f"  1.5M members: {hours:.0f} core-hours → {hours / machine_cores:.1f} h on this "
          f"{machine_cores}-core machine, {hours / machine_cores / 10:.1f} h on ten (pinned to {cores} "
          "for the measurement)")
    # many members per document: the first batch again, one member per document
    first = member_ids[:size]
    with engine.connect() as connection:
        picks = member_picks(connection, model, plan, titles, first, cfg.picks_per_member)
    views = member_views([rows[m] for m in first], picks, plan, titles, cfg, quarter,
                         key_codes=dict.fromkeys(first, code))
    c = time.process_time()
    render_member_pages(views, cfg, renderer, sheet)
    together = time.process_time() - c
    c = time.process_time()
    for view in views:
        render_member_pages([view], cfg, renderer, sheet)
    alone = time.process_time() - c
    print(f"  {len(views)} members in one document {together / len(views) * 1000:.1f} ms CPU each, one "
          f"document each {alone / len(views) * 1000:.1f} ms ({alone / together:.2f}×)")
    # the print stream: the same stamped batches joined into one PDF/X file's worth of pages
    stream = BytesIO()
    writer = PrintFileWriter(stream)
    for pages in batches:
        writer.add_batch(pages.pdf, [(m, *r) for m, r in pages.ranges.items()])
    writer.close()
    print(f"  print stream (plain PDF here, PDF/X in `catalogs print`): {len(stream.getvalue()) / n / 1024:.1f} "
          f"KB per member in one file of {n} (target ≤ 60 KB)")
    # reference: the same merge with pypdf's append (copies the body for every member)
    pages = batches[0]
    personal = PdfReader(BytesIO(pages.pdf))
    body_reader = PdfReader(body_pdf)
    t = time.perf_counter()
    for first, stop in pages.ranges.values():
        writer_ = PdfWriter()
        writer_.append(personal, pages=(first, stop))
        writer_.append(body_reader)
        writer_.write(BytesIO())
    naive = (time.perf_counter() - t) / len(pages.ranges)
    ours = phases["merge"] / n
    print(f"  merge: incremental update {ours * 1000:.1f} ms/edition vs pypdf append "
          f"{naive * 1000:.0f} ms/edition ({naive / max(ours, 1e-9):.0f}× faster)")
    engine.dispose()
    shutil.rmtree(out, ignore_errors=True)  # the editions written (~1 MB each)


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
