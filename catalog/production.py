"""Catalog production against the database: segment catalogs and member editions on disk.

Files live under ``settings.catalogs_dir / quarter``: ``segment-<n>.pdf`` (and a
``.json`` sidecar with the digest of the plan it was rendered from, so an
unchanged plan is not rendered twice) and ``members/<member_id>.pdf`` (and its
``.json``). Every file is written atomically and its sidecar after it, recording
its size and SHA-256: a file is reused or served only when both match
(:mod:`catalog.paths`). Writers of one PDF take its lock (``.locks/``), so a
segment catalog or an on-demand member edition is rendered once at a time, by
one thread of one process; the others wait and use the finished file.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from catalog.context import catalog_view
from catalog.fetcher import STATIC_DIR
from catalog.member_edition import edition_batch, shown_recorder
from catalog.member_pages import merge_editions, render_member_pages, stamp_sheet
from catalog.paths import (
    CompletePdf,
    complete_edition,
    complete_pdf,
    edition_path,
    lock_path,
    quarter_dir,
    read_sidecar,
    sidecar_bytes,
    sidecar_path,
)
from catalog.pdfmerge import BodyTemplate
from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.render import TEMPLATES_DIR, WEB, Renderer, render_catalog_pdf
from catalog.segments import SegmentProfile, stored_profiles
from recsys.errors import BookclubError, UnknownMemberError
from recsys.files import atomic_write_many, file_lock, remove_stale_temps
from recsys.serving import ServableModel
from recsys.settings import Settings
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from recsys.storage import titles as titles_db
from recsys.storage.titles import TitleRecord

Progress = Callable[[int], None]


def _no_progress(_n: int) -> None:
    return None


def renderer_for(settings: Settings) -> Renderer:
    """Segment catalogs and member editions (the web edition): tagged PDF/UA."""
    return Renderer.create([settings.data_dir / "covers"], WEB)


def _design_digest() -> str:
    """Templates, stylesheets and the code that fills them: a change re-renders every catalog."""
    digest = hashlib.sha256()
    code = [Path(__file__).with_name(n) for n in ("context.py", "render.py", "fetcher.py")]
    for folder in (TEMPLATES_DIR, STATIC_DIR):
        code += sorted(p for p in folder.rglob("*") if p.is_file())
    for path in code:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


# Settings that say where to run, not what to print: they never change a catalog.
PLACEMENT_FIELDS = frozenset({"dask_scheduler", "dask_workers"})


def _digest(plan: CatalogPlan, settings: Settings) -> str:
    design = settings.catalog.model_dump_json(exclude=set(PLACEMENT_FIELDS))
    text = plan.to_json() + design + _design_digest()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def titles_by_id(connection: Connection, quarter: str) -> dict[str, TitleRecord]:
    return {t.title_id: t for t in titles_db.titles_for_quarter(connection, Quarter.parse(quarter).end)}


def render_segment_catalogs(
    connection: Connection,
    settings: Settings,
    quarter: str,
    plans: Sequence[CatalogPlan],
    *,
    renderer: Renderer | None = None,
    force: bool = False,
    out_dir: Path | None = None,
    on_done: Progress = _no_progress,
    titles: Mapping[str, TitleRecord] | None = None,
    profiles: Sequence[SegmentProfile] | None = None,
) -> dict[int, Path]:
    """One PDF per plan; a plan rendered before with the same settings is reused.
    ``titles`` (the quarter's, by id) and ``profiles``: when the caller has read them."""
    renderer = renderer or renderer_for(settings)
    out_dir = out_dir or quarter_dir(settings, quarter)
    titles = titles if titles is not None else titles_by_id(connection, quarter)
    by_segment = {p.segment: p for p in (profiles if profiles is not None else stored_profiles(connection, quarter))}
    paths: dict[int, Path] = {}
    for plan in plans:
        path = out_dir / f"segment-{plan.segment}.pdf"
        digest = _digest(plan, settings)
        with file_lock(lock_path(path)):
            remove_stale_temps(out_dir, path.name)
            remove_stale_temps(out_dir, sidecar_path(path).name)
            meta = read_sidecar(path)
            fresh = meta is not None and meta.get("digest") == digest and complete_pdf(path) is not None
            if force or not fresh:
                view = catalog_view(
                    plan, titles, by_segment.get(plan.segment), club_name=settings.catalog.club_name,
                    order_address=settings.catalog.order_address, font=settings.catalog.segment_font,
                    covers_dir=settings.data_dir / "covers",
                )
                pdf, pages = render_catalog_pdf(view, settings.catalog, renderer)
                sidecar = sidecar_bytes(pdf, digest=digest, pages=pages, segment=plan.segment)
                atomic_write_many([(path, pdf), (sidecar_path(path), sidecar)])  # the sidecar last
        paths[plan.segment] = path
        on_done(1)
    return paths


@dataclass(frozen=True)
class Batch:
    """One task: members of one segment, laid out in one document."""

    index: int
    segment: int
    member_ids: tuple[str, ...]


def make_batches(
    labels: Mapping[str, int], member_ids: Sequence[str], size: int
) -> list[Batch]:
    """``member_ids`` grouped by segment (``labels``), in order, cut into ``size``-sized batches."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    if unknown := [m for m in member_ids if m not in labels]:
        raise UnknownMemberError(
            f"{len(unknown)} member(s) have no segment this quarter, e.g. {unknown[0]!r} "
            "(run `bookclub segment`)"
        )
    groups: dict[int, list[str]] = defaultdict(list)
    for member_id in member_ids:
        groups[labels[member_id]].append(member_id)
    batches: list[Batch] = []
    for segment, members in sorted(groups.items()):
        for start in range(0, len(members), size):
            batches.append(Batch(len(batches), segment, tuple(members[start : start + size])))
    return batches


def render_member_editions(
    connection: Connection,
    model: ServableModel,
    settings: Settings,
    quarter: str,
    plans: Sequence[CatalogPlan],
    member_ids: Sequence[str],
    *,
    renderer: Renderer | None = None,
    out_dir: Path | None = None,
    on_done: Progress = _no_progress,
    titles: Mapping[str, TitleRecord] | None = None,
    bodies: Mapping[int, Path] | None = None,
    web: bool = False,
) -> dict[str, Path]:
    """Each member's pages (batched per segment) merged with their segment's catalog.
    A mailed edition needs the member's mailed contact (``web``: the on-demand web edition
    does not; see :func:`catalog.member_edition.edition_key_codes`)."""
    renderer = renderer or renderer_for(settings)
    by_segment = {p.segment: p for p in plans}
    labels = segments_db.member_segment_labels(connection, quarter)
    batches = make_batches(labels, member_ids, settings.catalog.members_per_batch)
    segments = sorted({b.segment for b in batches})
    if missing := [s for s in segments if s not in by_segment]:
        raise BookclubError(f"no catalog plan for segment {missing[0]} of {quarter}: run `bookclub catalogs plan`")
    out_dir = out_dir or quarter_dir(settings, quarter)
    titles = titles if titles is not None else titles_by_id(connection, quarter)
    if bodies is None or any(s not in bodies for s in segments):  # the segment catalogs they carry
        bodies = render_segment_catalogs(
            connection, settings, quarter, [by_segment[s] for s in segments],
            renderer=renderer, out_dir=out_dir, titles=titles,
        )
    templates = {s: _body(bodies[s]) for s in segments}
    paths: dict[str, Path] = {}
    for batch in batches:
        written, _pages = render_member_batch(
            connection, model, settings, quarter, by_segment[batch.segment], titles,
            templates[batch.segment], renderer, batch.member_ids, out_dir, web=web,
        )
        paths.update(written)
        on_done(len(batch.member_ids))
    return paths


def render_member_batch(
    connection: Connection,
    model: ServableModel,
    settings: Settings,
    quarter: str,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    body: BodyTemplate,
    renderer: Renderer,
    member_ids: Sequence[str],
    out_dir: Path,
    *,
    web: bool = False,
) -> tuple[dict[str, Path], int]:
    """One batch of a segment's members laid out in one document, split and merged with the
    segment's catalog: their edition paths and the personal pages rendered. What each edition
    shows is recorded for the member's mailed contact (``contact_titles``), committed with the
    editions (:func:`catalog.member_pages.merge_editions`)."""
    rows = members_db.members_by_id(connection, member_ids)
    if missing := [m for m in member_ids if m not in rows]:
        raise UnknownMemberError(f"no such member(s): {', '.join(missing)}")
    data = edition_batch(
        connection, model, settings, quarter, plan, titles, [rows[m] for m in member_ids], web=web
    )
    sheet = stamp_sheet(
        plan, titles, settings.catalog, renderer, settings.data_dir / "covers", members=len(member_ids)
    )
    pages = render_member_pages(data.views, settings.catalog, renderer, sheet)
    paths = merge_editions(
        pages, body, out_dir / "members", segment=plan.segment, record=shown_recorder(connection, data)
    )
    return paths, sum(stop - first for first, stop in pages.ranges.values())


def segment_pdf_bytes(path: Path) -> bytes:
    """A segment catalog just rendered or checked, read whole under its lock (never while a
    concurrent re-render is renaming it and its sidecar in) and checked against its sidecar."""
    with file_lock(lock_path(path)):
        pdf = complete_pdf(path)
    if pdf is None:
        raise BookclubError(f"the segment catalog {path.name} is incomplete: render it again with --force")
    return pdf.data


def _body(path: Path) -> BodyTemplate:
    return BodyTemplate(segment_pdf_bytes(path))


def member_edition(
    connect: Callable[[], AbstractContextManager[Connection]],
    model: ServableModel,
    settings: Settings,
    quarter: str,
    plans: Callable[[Connection], Sequence[CatalogPlan]],
    member_id: str,
    *,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
    wait_seconds: float | None = None,
) -> CompletePdf:
    """The member's edition, complete: from disk when it is there and current, otherwise
    rendered now — by one thread of one process at a time (a lock file per member); the
    others wait for it (up to ``wait_seconds``, LockTimeoutError beyond) and get the file it
    wrote. ``guard()`` is entered only around an actual render (a rate limit, a slot), and a
    database connection (``connect()``) is opened only then: waiting holds none."""
    path = edition_path(settings, quarter, member_id)
    found = complete_edition(path)
    if found is not None:
        return found
    with file_lock(lock_path(path), timeout=wait_seconds):
        found = complete_edition(path)  # another thread or process may have written it meanwhile
        if found is not None:
            return found
        with guard(), connect() as connection:
            render_member_editions(connection, model, settings, quarter, plans(connection), [member_id], web=True)
        found = complete_edition(path)
    if found is None:  # written and checked above; only a concurrent re-render can get here
        raise BookclubError(f"the edition of member {member_id} changed while it was read: try again")
    return found
