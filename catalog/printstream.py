"""The print stream for the mail house: ``bookclub catalogs print --quarter Q --out DIR``.

What the campaign decided to mail as a member's own edition is printed in two parts per
segment: the segment's catalog body, printed once as one file the press runs for every
member of the segment, and the members' personal pages (letter, picks, order form
pre-filled with the member number and the mailing's key code) as a stream of large files in
postal presort order — by postcode, then address. Every file is PDF/X-4 (WeasyPrint's
``pdf_variant``) with the CMYK output intent of ``catalog.print_output_profile``, 3 mm of
bleed and a trim box, fonts embedded and subset::

    DIR/summary.json                      the job: counts per segment and file, pages, sheets
    DIR/segment-<n>/body.pdf              the segment's catalog body (once)
    DIR/segment-<n>/personal-0001.pdf     personal pages of the first members in presort order
    DIR/segment-<n>/personal-0001.csv     its manifest: sequence,member_id,key_code,file,pages,…

A manifest row says where a member's pages are: ``file`` (relative to the manifest) and
``pages`` as ``FIRST-LAST`` in that file (1-based). ``sequence`` runs on across a segment's
files in presort order. Every file is written atomically (``recsys.files``); a print file
is streamed to disk batch by batch (:mod:`catalog.printfile`). What each member's pages show
(main selection and picks) is recorded for their mailed contact (``contact_titles``, which
rotation reads next quarter) once a print file is complete and before its manifest is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from catalog.context import catalog_view
from catalog.member_edition import (
    EditionBatch,
    edition_batch,
    edition_key_codes,
    mailed_edition_members,
    shown_recorder,
)
from catalog.member_pages import render_member_pages, stamp_sheet
from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.planning import stored_plans
from catalog.printfile import PlacedMember, PrintFileWriter
from catalog.render import Renderer, print_profile, render_catalog_pdf
from catalog.segments import stored_profiles
from recsys.errors import BookclubError
from recsys.files import atomic_write_bytes, atomic_write_text, atomic_writer, sha256_hex
from recsys.serving import ServableModel
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from recsys.storage import titles as titles_db
from recsys.storage.members import MemberRecord
from recsys.storage.shown_titles import ShownTitle
from recsys.storage.titles import TitleRecord

MANIFEST_COLUMNS = ("sequence", "member_id", "key_code", "file", "pages", "postcode", "segment", "sheets")

Progress = Callable[[int], None]


def _no_progress(_n: int) -> None:
    return None


def presort_key(member: MemberRecord) -> tuple[bool, str, str, str]:
    """Postal presort order: by postcode (blanks ignored, members without one last), then
    address (runs of blanks as one), then member number to break ties."""
    postcode = "".join((member.postcode or "").split()).upper()
    address = " ".join((member.address or "").split())
    return (not postcode, postcode, address, member.member_id)


def presorted(members: Sequence[MemberRecord]) -> list[MemberRecord]:
    return sorted(members, key=presort_key)


@dataclass(frozen=True)
class PrintFile:
    file: str  # relative to the job folder
    manifest: str
    members: int
    pages: int
    sheets: int
    first_sequence: int
    last_sequence: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class SegmentJob:
    segment: int
    name: str
    key_code: str
    members: int
    body: str
    body_pages: int
    body_sheets: int  # per copy; the press runs one copy per member
    body_sha256: str
    personal_pages: int
    personal_sheets: int
    files: list[PrintFile] = field(default_factory=list)

    @property
    def sheets(self) -> int:
        return self.members * self.body_sheets + self.personal_sheets


@dataclass(frozen=True)
class PrintJob:
    quarter: str
    folder: Path
    segments: list[SegmentJob]
    duplex: bool
    output_profile: str
    not_personal: int  # mailed the plain segment catalog: not in this stream

    @property
    def members(self) -> int:
        return sum(s.members for s in self.segments)

    @property
    def files(self) -> int:
        return sum(len(s.files) for s in self.segments)

    @property
    def personal_pages(self) -> int:
        return sum(s.personal_pages for s in self.segments)

    @property
    def sheets(self) -> int:
        return sum(s.sheets for s in self.segments)

    def summary(self) -> dict[str, object]:
        return {
            "quarter": self.quarter,
            "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "format": "PDF/X-4",
            "output_profile": self.output_profile,
            "duplex": self.duplex,
            "members": self.members,
            "files": self.files,
            "personal_pages": self.personal_pages,
            "sheets": self.sheets,
            "mailed_segment_catalog_only": self.not_personal,
            "segments": [
                {**asdict(s), "sheets": s.sheets, "files": [asdict(f) for f in s.files]} for s in self.segments
            ],
        }


def sheets_for(pages: int, duplex: bool) -> int:
    return math.ceil(pages / 2) if duplex else pages


def print_renderer(settings: Settings) -> Renderer:
    return Renderer.create(
        [settings.data_dir / "covers"], print_profile(Path(settings.catalog.print_output_profile))
    )


def write_print_stream(
    connection: Connection,
    model: ServableModel,
    settings: Settings,
    quarter: str,
    out_dir: Path,
    *,
    members_per_file: int | None = None,
    segments: Collection[int] | None = None,
    member_ids: Collection[str] | None = None,
    renderer: Renderer | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Progress = _no_progress,
) -> PrintJob:
    """The quarter's print stream in ``out_dir`` (module docstring); the job it wrote.

    The members are those the quarter's campaign mails their own edition (holdout and
    suppressed members, and members mailed the plain segment catalog, are not in it); each
    needs their mailed contact's key code. ``segments`` and ``member_ids`` narrow the stream
    (a reprint); a member asked for who is not mailed an edition is an error."""
    cfg = settings.catalog
    per_file = members_per_file or cfg.print_members_per_file
    if per_file < 1:
        raise BookclubError("members per print file must be at least 1")
    plans = {p.segment: p for p in stored_plans(connection, quarter)}
    everyone = mailed_edition_members(connection, settings, quarter)
    mailed = everyone
    if member_ids is not None:
        wanted = set(member_ids)
        if unknown := sorted(wanted - set(everyone)):
            raise BookclubError(
                f"{len(unknown)} member(s) are not mailed their own edition in {quarter}, e.g. {unknown[0]}"
            )
        mailed = [m for m in everyone if m in wanted]
    labels = segments_db.member_segment_labels(connection, quarter)
    by_segment: dict[int, list[str]] = defaultdict(list)
    for member_id in mailed:
        segment = labels.get(member_id)
        if segment is None:
            raise BookclubError(f"member {member_id} is mailed an edition but has no segment in {quarter}")
        if segments is None or segment in segments:
            by_segment[segment].append(member_id)
    if missing := sorted(set(by_segment) - set(plans)):
        raise BookclubError(f"no catalog plan for segment {missing[0]} of {quarter}: run `bookclub catalogs plan`")
    if on_start is not None:
        on_start(sum(len(m) for m in by_segment.values()))
    renderer = renderer or print_renderer(settings)
    titles = {t.title_id: t for t in titles_db.titles_for_quarter(connection, _quarter_end(quarter))}
    profiles = {p.segment: p for p in stored_profiles(connection, quarter)}
    not_personal = _mailed_count(connection, quarter) - len(everyone)
    jobs = []
    for segment in sorted(by_segment):
        jobs.append(
            _segment_stream(
                connection, model, settings, quarter, plans[segment], titles, profiles.get(segment),
                by_segment[segment], out_dir, per_file, renderer, on_done,
            )
        )
    job = PrintJob(quarter, out_dir, jobs, cfg.print_duplex, cfg.print_output_profile, not_personal)
    atomic_write_text(out_dir / "summary.json", json.dumps(job.summary(), ensure_ascii=False, indent=2) + "\n")
    return job


def _quarter_end(quarter: str) -> dt.date:
    return Quarter.parse(quarter).end


def _mailed_count(connection: Connection, quarter: str) -> int:
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    return 0 if campaign is None else len(contacts_db.mailed_files(connection, campaign.id))


def _segment_stream(
    connection: Connection,
    model: ServableModel,
    settings: Settings,
    quarter: str,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    profile: object,
    member_ids: list[str],
    out_dir: Path,
    per_file: int,
    renderer: Renderer,
    on_done: Progress,
) -> SegmentJob:
    cfg = settings.catalog
    folder = out_dir / f"segment-{plan.segment}"
    view = catalog_view(
        plan, titles, profile, club_name=cfg.club_name, order_address=cfg.order_address,  # type: ignore[arg-type]
        font=cfg.segment_font, covers_dir=settings.data_dir / "covers",
    )
    body, body_pages = render_catalog_pdf(view, cfg, renderer)
    atomic_write_bytes(folder / "body.pdf", body)
    rows = members_db.members_by_id(connection, member_ids)
    members = presorted([rows[m] for m in member_ids])
    key_codes = edition_key_codes(connection, quarter, plan.segment, [m.member_id for m in members])
    files: list[PrintFile] = []
    sequence = 0
    for number, start in enumerate(range(0, len(members), per_file), start=1):
        chunk = members[start : start + per_file]
        printed = _print_file(
            connection, model, settings, quarter, plan, titles, chunk, key_codes, folder, number, sequence,
            renderer, on_done,
        )
        files.append(printed)
        sequence = printed.last_sequence
    codes = sorted(set(key_codes.values()))
    return SegmentJob(
        plan.segment, plan.segment_name, ",".join(codes), len(members), f"segment-{plan.segment}/body.pdf",
        body_pages, sheets_for(body_pages, cfg.print_duplex), sha256_hex(body),
        sum(f.pages for f in files), sum(f.sheets for f in files), files,
    )


def _print_file(
    connection: Connection,
    model: ServableModel,
    settings: Settings,
    quarter: str,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    members: Sequence[MemberRecord],
    key_codes: Mapping[str, str],
    folder: Path,
    number: int,
    sequence: int,
    renderer: Renderer,
    on_done: Progress,
) -> PrintFile:
    cfg = settings.catalog
    name = f"personal-{number:04d}.pdf"
    path = folder / name
    placed: list[tuple[MemberRecord, PlacedMember]] = []
    shown: list[ShownTitle] = []  # what the file's pages show, for the members' contacts
    contact_ids: list[int] = []
    title = f"{cfg.club_name} · {quarter} · {plan.segment_name} · {name}"
    with atomic_writer(path) as handle:
        writer = PrintFileWriter(handle, duplex=cfg.print_duplex, title=title)
        for start in range(0, len(members), cfg.members_per_batch):
            batch = members[start : start + cfg.members_per_batch]
            ids = [m.member_id for m in batch]
            # the same personal pages as the member's edition: main selection, reply deadline, picks
            laid = edition_batch(connection, model, settings, quarter, plan, titles, batch)
            shown += laid.shown
            contact_ids += laid.contact_ids
            sheet = stamp_sheet(plan, titles, cfg, renderer, settings.data_dir / "covers")
            pages = render_member_pages(laid.views, cfg, renderer, sheet)
            ranges = [(m, *pages.ranges[m]) for m in ids]
            for member, where in zip(batch, writer.add_batch(pages.pdf, ranges), strict=True):
                placed.append((member, where))
            on_done(len(batch))
        page_count = writer.close()
    # what the printed pages show, recorded for the members' contacts (rotation next quarter reads
    # it) in one transaction once the file is complete and before its manifest: a manifest means
    # the rows are in
    if (record := shown_recorder(connection, EditionBatch([], shown, contact_ids))) is not None:
        record()
    data_size, digest = _size_and_digest(path)
    manifest = io.StringIO()
    out = csv.writer(manifest, lineterminator="\n")
    out.writerow(MANIFEST_COLUMNS)
    for offset, (member, where) in enumerate(placed, start=1):
        out.writerow([
            sequence + offset, member.member_id, key_codes[member.member_id], name, f"{where.first}-{where.last}",
            member.postcode or "", plan.segment, sheets_for(where.pages, cfg.print_duplex),
        ])
    manifest_name = f"personal-{number:04d}.csv"
    atomic_write_text(folder / manifest_name, manifest.getvalue())
    return PrintFile(
        f"{folder.name}/{name}", f"{folder.name}/{manifest_name}", len(placed), page_count,
        sheets_for(page_count, cfg.print_duplex), sequence + 1, sequence + len(placed), data_size, digest,
    )


def _size_and_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
