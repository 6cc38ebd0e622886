"""``bookclub segment`` and ``bookclub catalogs plan|render``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, err_console, load_settings, open_engine, progress
from recsys.errors import BookclubError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from catalog.plan import CatalogPlan
    from recsys.model.trained import TrainedModel
    from recsys.settings import Settings

catalogs_app = typer.Typer(help="Quarterly catalogs: plans and PDFs per segment and member.", no_args_is_help=True)

QUARTER = typer.Option(..., "--quarter", help="the quarter, e.g. 2026Q4")
SEGMENT = typer.Option(None, "--segment", help="only this segment (repeat for more)")


def _load_model(settings: Settings, engine: Engine) -> TrainedModel:
    """The active model, taught every title of the club (the one serving path)."""
    from training.registry import ModelRegistry

    with engine.connect() as connection:
        return ModelRegistry(settings.models_dir).load_prepared(connection)


@cli_errors
def segment(quarter: str = QUARTER) -> None:
    """Value tiers (RFM) and reading-preference segments for the quarter, stored."""
    from catalog.segments import segment_quarter

    settings = load_settings()
    engine = open_engine(settings)
    model = _load_model(settings, engine)
    with progress() as bars:
        task = bars.add_task(f"segmenting {quarter}", total=None)
        with engine.begin() as connection:
            result = segment_quarter(connection, model, settings.segments, quarter)
        bars.update(task, total=1, completed=1)
    tiers = ", ".join(f"{t} {result.tier_counts.get(t, 0):,}" for t in ("core", "regular", "occasional", "lapsed"))
    console.print(f"{result.members:,} members, model {result.model_version}: {tiers}")
    p = result.pareto
    console.print(
        f"80/20 check: the top 20% of buyers ({p.buyers:,} bought in the window) bring "
        f"{p.top_share_of_buyers:.1%} of revenue; the top 20% of all members {p.top_share_of_members:.1%}"
    )
    if result.compared:
        console.print(
            f"stable segments: {result.moved:,} of {result.compared:,} members moved since "
            f"{result.previous_quarter} ({result.moved / result.compared:.1%})"
        )
    else:
        console.print(f"no segments stored for {result.previous_quarter}: labels start afresh")
    table = Table("segment", "name", "members", "core/regular/occasional/lapsed", "avg spend", "top categories")
    for prof in result.profiles:
        mix = "/".join(str(prof.tier_mix.get(t, 0)) for t in ("core", "regular", "occasional", "lapsed"))
        cats = ", ".join(f"{c.code} {c.name} {c.share:.0%}" for c in prof.top_categories[:3])
        table.add_row(str(prof.segment), prof.name, f"{prof.size:,}", mix, f"¥{prof.average_spend:,.0f}", cats)
    console.print(table)


@catalogs_app.command("plan")
@cli_errors
def plan(quarter: str = QUARTER, segments: list[int] | None = SEGMENT) -> None:
    """Choose each segment's titles and sections for the quarter, and store the plans."""
    from catalog.planning import plan_quarter

    settings = load_settings()
    engine = open_engine(settings)
    model = _load_model(settings, engine)
    with engine.begin() as connection:
        plans = plan_quarter(connection, model, settings, quarter, segments or None)
    for p in plans:
        new = sum(e.is_new for s in p.sections for e in s.entries)
        console.print(
            f"segment {p.segment} {p.segment_name}: {len(p.title_ids)} titles ({new} new) in "
            f"{len(p.sections)} sections — " + ", ".join(f"{s.code} {len(s.entries)}" for s in p.sections)
        )
        for title_id, reason in p.dropped:
            console.print(f"   left out {title_id}: {reason}")


@catalogs_app.command("render")
@cli_errors
def render(
    quarter: str = QUARTER,
    segments: list[int] | None = SEGMENT,
    members: str | None = typer.Option(None, "--members", help="member ids, comma-separated"),
    all_members: bool = typer.Option(
        False, "--all-members", help="an edition for every member, fanned out over Dask distributed"
    ),
    out: Path | None = typer.Option(None, "--out", help="folder for the PDFs [settings: data_dir/catalogs/QUARTER]"),
    force: bool = typer.Option(False, "--force", help="re-render segment catalogs whose plan did not change"),
    scheduler: str | None = typer.Option(
        None, "--scheduler",
        help="with --all-members: a Dask scheduler address (tcp://host:8786); needs PostgreSQL and "
        "data_dir on shared storage [settings: catalog.dask_scheduler; empty = a local cluster]",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1,
        help="with --all-members and no scheduler: local worker processes [settings: catalog.dask_workers, "
        "0 = one per core]",
    ),
) -> None:
    """Render segment catalogs (and member editions) from the stored plans."""
    from catalog.fanout import placement_free
    from catalog.planning import stored_plans
    from catalog.production import render_member_editions, render_segment_catalogs, renderer_for

    if members and all_members:
        raise BookclubError("give --members or --all-members, not both")
    if (scheduler or workers) and not all_members:
        raise BookclubError("--scheduler and --workers go with --all-members")
    if scheduler and workers:
        raise BookclubError("--workers sizes a local cluster; a scheduler brings its own workers")
    settings = load_settings()
    engine = open_engine(settings)
    with engine.connect() as connection:
        plans = [p for p in stored_plans(connection, quarter) if not segments or p.segment in segments]
    if not plans:
        raise BookclubError(f"no catalog plans for {quarter}: run `bookclub catalogs plan --quarter {quarter}`")
    if all_members:
        _render_all(settings, engine, quarter, plans, out, force, scheduler, workers)
        return
    # where the editions render is not part of a catalog's design
    design = placement_free(settings)
    member_ids = [m.strip() for m in members.split(",") if m.strip()] if members else []
    with engine.connect() as connection:
        renderer = renderer_for(design)
        with progress() as bars:
            task = bars.add_task("segment catalogs", total=len(plans))
            paths = render_segment_catalogs(
                connection, design, quarter, plans, renderer=renderer, force=force, out_dir=out,
                on_done=lambda n: bars.advance(task, n),
            )
            editions: dict[str, Path] = {}
            if member_ids:
                model = _load_model(settings, engine)
                task = bars.add_task("member editions", total=len(member_ids))
                editions = render_member_editions(
                    connection, model, design, quarter, plans, member_ids, renderer=renderer,
                    out_dir=out, on_done=lambda n: bars.advance(task, n),
                )
    for segment_no, path in sorted(paths.items()):
        console.print(f"segment {segment_no}: {path}")
    if editions:
        first = next(iter(editions.values()))
        console.print(f"{len(editions):,} member editions in {first.parent}")


@catalogs_app.command("print")
@cli_errors
def print_stream(
    quarter: str = QUARTER,
    out: Path = typer.Option(..., "--out", help="folder for the print stream (created)"),
    members_per_file: int | None = typer.Option(
        None, "--members-per-file", min=1, help="members per print file [settings: catalog.print_members_per_file]"
    ),
    segments: list[int] | None = SEGMENT,
    members: str | None = typer.Option(None, "--members", help="only these member ids, comma-separated (a reprint)"),
) -> None:
    """The print stream for the mail house: per segment the catalog body once, and the mailed
    members' personal pages as PDF/X-4 files in postal presort order, each with a manifest
    CSV; a job summary (summary.json)."""
    from catalog.printstream import write_print_stream

    settings = load_settings()
    engine = open_engine(settings)
    model = _load_model(settings, engine)
    with progress() as bars:
        task = bars.add_task("print stream", total=None)
        with engine.connect() as connection:
            job = write_print_stream(
                connection, model, settings, quarter, out,
                members_per_file=members_per_file, segments=segments or None,
                member_ids=[m.strip() for m in members.split(",") if m.strip()] if members else None,
                on_start=lambda n: bars.update(task, total=n),
                on_done=lambda n: bars.advance(task, n),
            )
    table = Table("segment", "name", "key code", "members", "body pages", "files", "personal pages", "sheets")
    for s in job.segments:
        table.add_row(
            str(s.segment), s.name, s.key_code, f"{s.members:,}", str(s.body_pages), str(len(s.files)),
            f"{s.personal_pages:,}", f"{s.sheets:,}",
        )
    console.print(table)
    for s in job.segments:
        for f in s.files:
            console.print(
                f"  {f.file}: members {f.first_sequence:,}–{f.last_sequence:,} ({f.members:,}), "
                f"{f.pages:,} pages, {f.sheets:,} sheets, {f.bytes / 1e6:.1f} MB — manifest {f.manifest}"
            )
    console.print(
        f"{job.members:,} members in {job.files} print file(s), {job.personal_pages:,} personal pages, "
        f"{job.sheets:,} sheets (bodies included); PDF/X-4; summary {out / 'summary.json'}"
    )
    if job.not_personal:
        console.print(f"{job.not_personal:,} mailed member(s) get the plain segment catalog: not in this stream")


def _render_all(
    settings: Settings,
    engine: Engine,
    quarter: str,
    plans: list[CatalogPlan],
    out: Path | None,
    force: bool,
    scheduler: str | None,
    workers: int | None,
) -> None:
    """Every member of the plans' segments: one Dask task per batch (catalog.fanout)."""
    from catalog.fanout import render_all_editions

    where = scheduler or settings.catalog.dask_scheduler
    with progress() as bars:
        catalogs = bars.add_task("segment catalogs", total=len(plans))
        editions = bars.add_task("member editions", total=None, start=False)

        def started(n_members: int, n_batches: int) -> None:
            bars.update(editions, total=n_members, description=f"member editions ({n_batches:,} batches)")
            bars.start_task(editions)

        result = render_all_editions(
            engine, settings, quarter, plans, scheduler=scheduler, workers=workers, out_dir=out,
            force=force, on_catalog=lambda n: bars.advance(catalogs, n), on_start=started,
            on_done=lambda n: bars.advance(editions, n),
        )
    place = f"scheduler {where}" if where else "a local cluster"
    console.print(
        f"{len(result.editions):,} member editions in {result.seconds:.0f} s "
        f"({result.rate:.2f}/s) on {place} of {result.workers} workers, {result.batches:,} batches"
        + (f", {result.retried} retried" if result.retried else "")
    )
    if result.editions:
        console.print(f"editions in {next(iter(result.editions.values())).parent}")
    if result.failures:
        for failure in result.failures[:20]:
            ids = ", ".join(failure.member_ids)
            err_console.print(
                f"batch {failure.batch.index} (segment {failure.batch.segment}) failed after "
                f"{failure.attempts} attempts: {failure.reason}\n   members: {ids}",
                highlight=False, soft_wrap=True,
            )
        if len(result.failures) > 20:
            err_console.print(f"… and {len(result.failures) - 20} more failed batches")
        raise BookclubError(
            f"{len(result.failed_members):,} member editions in {len(result.failures)} batches were not "
            "rendered (listed above); re-run them with --members"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("segment")(segment)
    app.add_typer(catalogs_app, name="catalogs")
