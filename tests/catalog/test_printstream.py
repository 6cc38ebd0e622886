"""The print stream, checked as a printer would at small size: page sizes and boxes, output
intent, fonts embedded and subset, presort order, manifests that reconcile with the pages."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, StreamObject

from catalog.printfile import PrintFileWriter
from catalog.printstream import MANIFEST_COLUMNS, PrintJob, presort_key, write_print_stream
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs

A4 = (595.28, 841.89)
BLEED = 3 / 25.4 * 72  # 3 mm in points


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} (poppler-utils) is needed: ./run.sh installs it")
    return path


@dataclass
class Stream:
    job: PrintJob
    folder: Path
    members: list[str]


@pytest.fixture(scope="module")
def stream(club: Club, tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """Five members of each of two segments, three members to a file (two files a segment)."""
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
    chosen: list[str] = []
    for segment in sorted(set(labels.values()))[:2]:
        chosen += sorted(m for m, s in labels.items() if s == segment)[:5]
    folder = tmp_path_factory.mktemp("print")
    with club.engine.connect() as connection:
        job = write_print_stream(
            connection, club.model, club.settings, QUARTER, folder, members_per_file=3, member_ids=chosen
        )
    return Stream(job, folder, chosen)


def _manifest_rows(stream: Stream) -> list[tuple[Path, dict[str, str]]]:
    rows = []
    for manifest in sorted(stream.folder.glob("segment-*/personal-*.csv")):
        with manifest.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
            rows += [(manifest, row) for row in reader]
    return rows


def _pdfs(stream: Stream) -> list[Path]:
    return sorted(stream.folder.glob("segment-*/*.pdf"))


def test_every_member_once_in_presort_order_across_files(club: Club, stream: Stream) -> None:
    rows = _manifest_rows(stream)
    assert sorted(r["member_id"] for _m, r in rows) == sorted(stream.members)
    with club.engine.connect() as connection:
        records = members_db.members_by_id(connection, stream.members)
    for segment in {r["segment"] for _m, r in rows}:
        mine = [r for _m, r in rows if r["segment"] == segment]
        mine.sort(key=lambda r: int(r["sequence"]))
        assert [int(r["sequence"]) for r in mine] == list(range(1, len(mine) + 1))
        keys = [presort_key(records[r["member_id"]]) for r in mine]
        assert keys == sorted(keys)  # postcode, then address
        assert [r["postcode"] for r in mine] == [records[r["member_id"]].postcode or "" for r in mine]
    assert stream.job.files == 4 and all(len(s.files) == 2 for s in stream.job.segments)


def test_manifests_reconcile_with_the_pages(club: Club, stream: Stream) -> None:
    pdftotext = _tool("pdftotext")
    with club.engine.connect() as connection:
        records = members_db.members_by_id(connection, stream.members)
    by_file: dict[Path, list[dict[str, str]]] = {}
    for manifest, row in _manifest_rows(stream):
        by_file.setdefault(manifest.parent / row["file"], []).append(row)
    for pdf, rows in by_file.items():
        assert pdf.is_file(), f"{pdf} named by a manifest is not there"
        pages = len(PdfReader(pdf).pages)
        covered: list[int] = []
        for row in rows:
            first, last = (int(x) for x in row["pages"].split("-"))
            assert first <= last and (last - first + 1) % 2 == 0  # duplex: whole sheets
            assert int(row["sheets"]) == (last - first + 1) // 2
            covered += range(first, last + 1)
            text = subprocess.run(
                [pdftotext, "-f", str(first), "-l", str(first), str(pdf), "-"],
                capture_output=True, text=True, check=True,
            ).stdout
            member = records[row["member_id"]]
            assert member.name in text and member.member_id in text, (pdf.name, row)
            assert row["key_code"] and row["key_code"] in text  # the order form carries the key code
            assert row["key_code"] == f"{QUARTER}-S{row['segment']}-C"
        assert covered == list(range(1, pages + 1))  # every page belongs to exactly one member


def test_what_the_printed_pages_show_is_recorded_for_each_members_contact(club: Club, stream: Stream) -> None:
    """The print stream is what a production quarter mails: its main selection and picks go to
    ``contact_titles`` (what rotation reads next quarter), as the member editions' do — the
    titles of the member's edition, main first, and the main selection on the printed page."""
    from catalog.member_edition import edition_selections
    from catalog.production import titles_by_id
    from recsys.storage import campaigns as campaigns_db
    from recsys.storage import shown_titles as shown_db

    pdftotext = _tool("pdftotext")
    with club.engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        shown = shown_db.shown_titles(connection, campaign.id, stream.members)
        titles = titles_by_id(connection, QUARTER)
        labels = segments_db.member_segment_labels(connection, QUARTER)
        assert set(shown) == set(stream.members)
        placed = {r["member_id"]: (m.parent / r["file"], r["pages"]) for m, r in _manifest_rows(stream)}
        for member_id in stream.members:
            plan = next(p for p in club.plans if p.segment == labels[member_id])
            selection = edition_selections(
                connection, club.model, plan, titles, [member_id], club.settings.catalog.picks_per_member,
                club.settings.mailing, campaign_id=campaign.id,
            )[member_id]
            assert [r.title_id for r in shown[member_id]] == selection.title_ids
            assert [r.role for r in shown[member_id]][:2] == ["main", "pick"]
            path, pages = placed[member_id]
            first = pages.split("-")[0]
            run = [pdftotext, "-f", first, "-l", first, str(path), "-"]
            text = subprocess.run(run, capture_output=True, text=True, check=True).stdout
            assert selection.main is not None and titles[selection.main[0]].title.split()[0] in text


def test_print_files_are_pdf_x4_with_output_intent_and_boxes(stream: Stream) -> None:
    for path in _pdfs(stream):
        reader = PdfReader(path)
        root = reader.trailer["/Root"]
        assert isinstance(root, DictionaryObject)
        intents = root["/OutputIntents"]
        intent = intents[0].get_object()  # type: ignore[index]
        assert intent["/S"] == "/GTS_PDFX"
        profile = intent["/DestOutputProfile"].get_object()
        assert isinstance(profile, StreamObject) and profile["/N"] == 4  # a CMYK press
        xmp = root["/Metadata"].get_object().get_data().decode()  # type: ignore[union-attr]
        assert "<pdfxid:GTS_PDFXVersion>PDF/X-4</pdfxid:GTS_PDFXVersion>" in xmp
        assert reader.trailer["/Info"]["/Trapped"] == "/False"  # type: ignore[index]
        assert "/ID" in reader.trailer
        assert reader.pdf_header == "%PDF-1.6"
        for page in reader.pages:
            media, bleed, trim = (
                [float(v) for v in page[key]]  # type: ignore[union-attr]
                for key in ("/MediaBox", "/BleedBox", "/TrimBox")
            )
            assert trim[2] - trim[0] == pytest.approx(A4[0], abs=0.1)
            assert trim[3] - trim[1] == pytest.approx(A4[1], abs=0.1)
            for outer, inner in ((media, bleed), (bleed, trim)):
                assert outer[0] <= inner[0] and outer[1] <= inner[1]
                assert outer[2] >= inner[2] and outer[3] >= inner[3]
            assert trim[0] - bleed[0] == pytest.approx(BLEED, abs=0.1)
            resources = page["/Resources"]
            spaces = resources.get("/ColorSpace", {})  # type: ignore[union-attr]
            if page.get_contents() is not None:  # RGB in the design is sRGB, not device RGB
                default = spaces["/DefaultRGB"]  # type: ignore[index]
                assert default[0] == "/ICCBased" and default[1].get_object()["/N"] == 3


def test_fonts_embedded_and_subset(stream: Stream) -> None:
    pdffonts = _tool("pdffonts")
    for path in _pdfs(stream):
        out = subprocess.run([pdffonts, str(path)], capture_output=True, text=True, check=True).stdout
        fonts = out.splitlines()[2:]
        assert fonts, f"{path.name} has no fonts"
        for line in fonts:
            emb, sub = line.split()[-5:-3]  # name, type, encoding, emb, sub, uni, object, generation
            assert (emb, sub) == ("yes", "yes"), line
        names = [line.split()[0] for line in fonts]
        assert len(set(names)) == len(names), f"{path.name}: two subsets share a name: {names}"


def test_one_output_profile_per_file(stream: Stream) -> None:
    for path in _pdfs(stream):
        reader = PdfReader(path)
        icc = [
            obj for i in _object_numbers(reader)
            if isinstance(obj := reader.get_object(i), StreamObject) and obj.get("/N") == 4
        ]
        assert len(icc) == 1  # the output profile every batch carries, written once


def test_at_most_60_kb_per_member(club: Club, stream: Stream, tmp_path: Path) -> None:
    """Eight members in one file: what a member adds, the file's output profile aside (written
    once per file of thousands at full size)."""
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
        segment = min(labels.values())
        chosen = sorted(m for m, s in labels.items() if s == segment)[:8]
        job = write_print_stream(
            connection, club.model, club.settings, QUARTER, tmp_path, members_per_file=8, member_ids=chosen
        )
    (printed,) = job.segments[0].files
    path = tmp_path / printed.file
    reader = PdfReader(path)
    icc = sum(
        len(obj._data) for i in _object_numbers(reader)
        if isinstance(obj := reader.get_object(i), StreamObject) and obj.get("/N") == 4
    )
    per_member = (path.stat().st_size - icc) / printed.members
    assert per_member <= 60_000, f"{per_member:,.0f} bytes per member"


def _object_numbers(reader: PdfReader) -> list[int]:
    return sorted(n for section in reader.xref.values() for n in section)


def test_summary_counts_segments_files_pages_and_sheets(stream: Stream) -> None:
    summary = json.loads((stream.folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["format"] == "PDF/X-4" and summary["members"] == len(stream.members)
    rows = _manifest_rows(stream)
    for segment in summary["segments"]:
        body = PdfReader(stream.folder / segment["body"])
        assert segment["body_pages"] == len(body.pages)
        assert segment["members"] == sum(1 for _m, r in rows if int(r["segment"]) == segment["segment"])
        pages = 0
        for printed in segment["files"]:
            reader = PdfReader(stream.folder / printed["file"])
            assert printed["pages"] == len(reader.pages) and printed["sheets"] == printed["pages"] // 2
            assert printed["bytes"] == (stream.folder / printed["file"]).stat().st_size
            pages += printed["pages"]
        assert segment["personal_pages"] == pages
        assert segment["sheets"] == segment["members"] * segment["body_sheets"] + pages // 2
    assert summary["sheets"] == sum(s["sheets"] for s in summary["segments"])


def test_a_member_with_an_odd_page_count_gets_a_blank_page(tmp_path: Path) -> None:
    source = PdfWriter()
    for _ in range(3):
        source.add_blank_page(width=A4[0], height=A4[1])
    data = BytesIO()
    source.write(data)
    out = BytesIO()
    writer = PrintFileWriter(out, duplex=True)
    placed = writer.add_batch(data.getvalue(), [("A", 0, 1), ("B", 1, 3)])
    assert writer.close() == 4
    assert [(p.member_id, p.first, p.last, p.blank_added) for p in placed] == [("A", 1, 2, True), ("B", 3, 4, False)]
    assert len(PdfReader(BytesIO(out.getvalue())).pages) == 4
