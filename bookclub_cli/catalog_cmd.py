"""``bookclub segment`` and ``bookclub catalogs plan|render``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, load_settings, open_engine, progress
from recsys.errors import BookclubError

catalogs_app = typer.Typer(help="Quarterly catalogs: plans and PDFs per segment and member.", no_args_is_help=True)

QUARTER = typer.Option(..., "--quarter", help="the quarter, e.g. 2026Q4")
SEGMENT = typer.Option(None, "--segment", help="only this segment (repeat for more)")


def _load_model(models_dir: Path):  # type: ignore[no-untyped-def]
    from training.registry import ModelRegistry

    return ModelRegistry(models_dir).load()


@cli_errors
def segment(quarter: str = QUARTER) -> None:
    """Value tiers (RFM) and reading-preference segments for the quarter, stored."""
    from catalog.segments import segment_quarter

    settings = load_settings()
    engine = open_engine(settings)
    model = _load_model(settings.models_dir)
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
    model = _load_model(settings.models_dir)
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
    all_members: bool = typer.Option(False, "--all-members", help="an edition for every member"),
    out: Path | None = typer.Option(None, "--out", help="folder for the PDFs [settings: data_dir/catalogs/QUARTER]"),
    force: bool = typer.Option(False, "--force", help="re-render segment catalogs whose plan did not change"),
) -> None:
    """Render segment catalogs (and member editions) from the stored plans."""
    from catalog.planning import stored_plans
    from catalog.production import render_member_editions, render_segment_catalogs, renderer_for
    from recsys import segment_queries as q

    if members and all_members:
        raise BookclubError("give --members or --all-members, not both")
    settings = load_settings()
    engine = open_engine(settings)
    with engine.connect() as connection:
        plans = [p for p in stored_plans(connection, quarter) if not segments or p.segment in segments]
        if not plans:
            raise BookclubError(f"no catalog plans for {quarter}: run `bookclub catalogs plan --quarter {quarter}`")
        member_ids: list[str] = []
        if members:
            member_ids = [m.strip() for m in members.split(",") if m.strip()]
        elif all_members:
            for p in plans:
                member_ids += q.members_of_segment(connection, quarter, p.segment)
        renderer = renderer_for(settings)
        with progress() as bars:
            task = bars.add_task("segment catalogs", total=len(plans))
            paths = render_segment_catalogs(
                connection, settings, quarter, plans, renderer=renderer, force=force, out_dir=out,
                on_done=lambda n: bars.advance(task, n),
            )
            editions: dict[str, Path] = {}
            if member_ids:
                model = _load_model(settings.models_dir)
                task = bars.add_task("member editions", total=len(member_ids))
                editions = render_member_editions(
                    connection, model, settings, quarter, plans, member_ids, renderer=renderer,
                    out_dir=out, on_done=lambda n: bars.advance(task, n),
                )
    for segment_no, path in sorted(paths.items()):
        console.print(f"segment {segment_no}: {path}")
    if editions:
        first = next(iter(editions.values()))
        console.print(f"{len(editions):,} member editions in {first.parent}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("segment")(segment)
    app.add_typer(catalogs_app, name="catalogs")
