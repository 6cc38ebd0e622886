"""Fonts: the configured faces are embedded and really draw every character of a member's
name and address (glyph outlines, not extracted text); a missing font or character is a
one-line error naming the font and the package, before anything is written."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from typer.testing import CliRunner

from bookclub_cli.main import app
from catalog.fetcher import STATIC_DIR
from catalog.fonts import FontUse, find_face, font_codepoints, require_fonts
from catalog.member_edition import member_picks, member_views
from catalog.member_pages import render_member_pages
from catalog.production import render_member_editions, render_segment_catalogs, renderer_for, titles_by_id
from catalog.render import Renderer
from recsys.errors import FontUnavailableError
from recsys.settings import Settings
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs

MEMBER_FONT = "WenQuanYi Zen Hei"
SEGMENT_FONT = "Noto Serif CJK SC"


def _with_catalog(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"catalog": settings.catalog.model_copy(update=changes)})


@pytest.fixture(scope="module")
def edition(club: Club, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, members_db.MemberRecord]:
    out = tmp_path_factory.mktemp("font-editions")
    with club.engine.connect() as connection:
        member_id = segments_db.best_members(connection, QUARTER, 1)[0][0]
        paths = render_member_editions(
            connection, club.model, club.settings, QUARTER, club.plans, [member_id], out_dir=out
        )
        member = members_db.members_by_id(connection, [member_id])[member_id]
    return paths[member_id], member


def _pdffonts(path: Path) -> list[dict[str, str]]:
    if shutil.which("pdffonts") is None:
        pytest.skip("pdffonts (poppler-utils) not installed")
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        # name, type (may hold spaces), encoding, emb, sub, uni, object id
        match = re.match(r"^(\S+)\s+(.+?)\s+(\S+)\s+(yes|no)\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+$", line)
        assert match, line
        rows.append({"name": match[1], "emb": match[4], "uni": match[6]})
    return rows


def test_only_the_configured_fonts_are_embedded(edition: tuple[Path, Any]) -> None:
    path, _member = edition
    rows = _pdffonts(path)
    assert rows and all(r["emb"] == "yes" and r["uni"] == "yes" for r in rows), rows
    families = {r["name"].split("+", 1)[-1] for r in rows}
    allowed = {"WenQuanYi-Zen-Hei-Medium", "WenQuanYi-Zen-Hei-Bold", "Noto-Serif-CJK-SC", "Noto-Serif-CJK-SC-Bold"}
    chosen = _stylesheet_faces()  # faces the stylesheet asks for by name (a monospace key code)
    assert all(f in allowed or f.split("-Bold")[0] in chosen for f in families), families  # no fallback
    assert any(f.startswith("WenQuanYi") for f in families) and any(f.startswith("Noto") for f in families)


def _stylesheet_faces() -> set[str]:
    """The faces fontconfig gives for the generic families catalog.css names itself."""
    css = (STATIC_DIR / "catalog.css").read_text(encoding="utf-8")
    faces = set()
    for declared in re.findall(r"font-family:\s*([^;}]+)", css):
        for family in (f.strip().strip("'\"") for f in declared.split(",")):
            if family in ("serif", "sans-serif", "monospace"):
                out = subprocess.run(["fc-match", "-f", "%{family[0]}", family], capture_output=True, text=True)
                faces.add(out.stdout.strip().replace(" ", "-"))
    return faces


def _to_unicode(font: Any) -> dict[str, set[int]]:
    """Character → the glyph ids (CIDs, Identity-mapped) a Type0 font draws it with."""
    data = font["/ToUnicode"].get_object().get_data().decode("latin-1")
    out: dict[str, set[int]] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", data, re.S):
        for cid, uni in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            text = bytes.fromhex(uni).decode("utf-16-be")
            out.setdefault(text, set()).add(int(cid, 16))
    for block in re.findall(r"beginbfrange(.*?)endbfrange", data, re.S):
        for first, last, uni in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            start = int(uni, 16)
            for offset in range(int(last, 16) - int(first, 16) + 1):
                out.setdefault(chr(start + offset), set()).add(int(first, 16) + offset)
    return out


def test_name_and_address_are_drawn_by_the_member_font(edition: tuple[Path, members_db.MemberRecord]) -> None:
    """Every character of the member's name and address maps to a real glyph (an outline, not
    .notdef) of the embedded WenQuanYi subset — what a reader sees, not what pdftotext reads."""
    path, member = edition
    wanted = {c for c in member.name + (member.address or "") if not c.isspace()}
    assert re.search(r"[\u4e00-\u9fff]", "".join(wanted)), "the demo member should have a Chinese name"
    drawn: set[str] = set()
    for page in PdfReader(path).pages[:2]:  # the letter and the picks
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            if "WenQuanYi" not in str(font["/BaseFont"]):
                continue
            descendant = font["/DescendantFonts"][0].get_object()
            assert str(descendant.get("/CIDToGIDMap", "/Identity")) == "/Identity"
            program = descendant["/FontDescriptor"].get_object()["/FontFile2"].get_object().get_data()
            tt = TTFont(io.BytesIO(program))
            order = tt.getGlyphOrder()
            glyf = tt["glyf"]
            for char, cids in _to_unicode(font).items():
                for cid in cids:
                    assert cid != 0, f"{char!r} is drawn as .notdef"
                    glyph = glyf[order[cid]]
                    if char in wanted:
                        assert glyph.numberOfContours != 0, f"{char!r} has an empty glyph"
                        drawn.add(char)
    assert wanted <= drawn, sorted(wanted - drawn)


def _lacking(family: str) -> str:
    face = find_face(family)
    assert face is not None, f"{family} should be installed for these tests"
    have = font_codepoints(face)
    for char in ("\ue000", "\u0e01", "\u05d0", "\U0001f600", "\u1f00"):
        if ord(char) not in have:
            return char
    pytest.skip(f"{family} covers every candidate character")


def test_check_passes_for_installed_fonts_and_fails_for_a_missing_character() -> None:
    require_fonts([FontUse(SEGMENT_FONT, "catalog.segment_font")], "书友会 Book Club ¥12.00 · 《三体》")
    with pytest.raises(FontUnavailableError) as failure:
        require_fonts([FontUse(SEGMENT_FONT, "catalog.segment_font")], "书名\ue000末尾")
    message = str(failure.value)
    assert "U+E000" in message and SEGMENT_FONT in message and "fonts-noto-cjk" in message
    assert "\n" not in message


def test_a_font_that_is_not_installed_is_named_with_its_package(club: Club, tmp_path: Path) -> None:
    settings = _with_catalog(club.settings, segment_font="Noto Serif CJK XX")
    with club.engine.connect() as connection, pytest.raises(FontUnavailableError) as failure:
        render_segment_catalogs(connection, settings, QUARTER, club.plans[:1], out_dir=tmp_path)
    message = str(failure.value)
    assert "'Noto Serif CJK XX' (catalog.segment_font) is not installed" in message
    assert "fonts-noto-cjk" in message and "\n" not in message
    assert not list(tmp_path.glob("*.pdf"))  # nothing written, not a page of boxes
    settings = _with_catalog(club.settings, member_font="WenQuanYi Zen Hei Missing")
    with club.engine.connect() as connection, pytest.raises(FontUnavailableError, match=r"catalog\.member_font"):
        member_id = segments_db.best_members(connection, QUARTER, 1)[0][0]
        render_member_editions(connection, club.model, settings, QUARTER, club.plans, [member_id], out_dir=tmp_path)
    assert not (tmp_path / "members").exists() or not list((tmp_path / "members").glob("*.pdf"))


def test_a_character_the_member_font_lacks_names_the_member(club: Club) -> None:
    char = _lacking(MEMBER_FONT)
    plan = club.plans[0]
    with club.engine.connect() as connection:
        member_id = segments_db.members_of_segment(connection, QUARTER, plan.segment)[0]
        member = members_db.members_by_id(connection, [member_id])[member_id]
        titles = titles_by_id(connection, QUARTER)
        picks = member_picks(connection, club.model, plan, titles, [member_id], 2)
    odd = dataclasses.replace(member, address=f"上海市{char}路 1 号")
    views = member_views([odd], picks, plan, titles, club.settings.catalog, QUARTER)
    with pytest.raises(FontUnavailableError) as failure:
        render_member_pages(views, club.settings.catalog, renderer_for(club.settings))
    message = str(failure.value)
    assert f"U+{ord(char):04X}" in message and MEMBER_FONT in message and member_id in message
    assert "fonts-noto-cjk or fonts-wqy-zenhei" in message


def test_cli_says_which_font_is_missing_and_exits_1(club: Club, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(club.settings.data_dir))
    monkeypatch.setenv("BOOKCLUB_CATALOG__SEGMENT_FONT", "No Such Serif")
    result = CliRunner().invoke(
        app, ["catalogs", "render", "--quarter", QUARTER, "--segment", "0", "--out", str(tmp_path), "--force"]
    )
    assert result.exit_code == 1, result.output
    assert "No Such Serif" in result.output and "not installed" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.pdf"))


def test_a_box_drawn_in_any_font_is_an_error_not_a_pdf(tmp_path: Path) -> None:
    """The last guard, after layout: whatever font fontconfig or the stylesheet chose, a
    character drawn as .notdef fails the render before anything is written."""
    renderer = Renderer.create()
    html = (
        "<html><body style=\"font-family: 'WenQuanYi Zen Hei'\"><p>张三</p>"
        "<p style='font-family: monospace'>KEY \U0010fffd</p></body></html>"
    )
    with pytest.raises(FontUnavailableError, match="U\\+10FFFD"):
        renderer.write(renderer.layout(html), tmp_path / "boxes.pdf")
    assert list(tmp_path.iterdir()) == []
    renderer.write(renderer.layout(html.replace("\U0010fffd", "42")), tmp_path / "fine.pdf")
