"""Template context → HTML (Jinja2) → PDF (WeasyPrint).

Pagination lives in the stylesheet (``static/catalog.css``): page size,
margins, running heads, named pages, the table of contents' page numbers.
The only generated CSS is the part settings choose: size, bleed and fonts.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import pydyf
import weasyprint
from weasyprint import CSS, HTML
from weasyprint.css import ColorProfile
from weasyprint.document import Document
from weasyprint.text.fonts import FontConfiguration

from catalog.context import CatalogView
from catalog.fetcher import STATIC_DIR, AssetFetcher
from catalog.fonts import FontUse, html_text, require_drawn, require_fonts, stylesheet_text
from recsys.errors import ConfigurationError
from recsys.files import atomic_write_bytes
from recsys.settings import CatalogSettings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
BASE_URL = STATIC_DIR.as_uri() + "/"

_environment: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _environment
    if _environment is None:
        _environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _environment


_FONT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")


# A5: one title per row, a smaller cover. The A4 rules stay in static/catalog.css.
A5_CSS = """
@page { margin: 14mm 10mm 13mm 10mm; }
html { font-size: 8pt; }
.pair { display: block; }
.entry { display: block; }
.cover .club { padding: 14mm 12mm 0; }
.cover .band { margin-top: 10mm; padding: 9mm 12mm 8mm; }
.cover .segment-name { font-size: 24pt; }
.cover .segment-line { font-size: 8.5pt; }
.cover .mosaic { margin: 8mm 12mm 0; }
.cover .mosaic img { width: 20mm; height: 28mm; margin: 0 4mm 4mm 0; }
.cover .count { margin: 3mm 12mm 0; font-size: 9pt; }
.cover-sections { margin: 2mm 12mm 0; font-size: 7.5pt; }
.cover-sections li { padding: 0.3mm 0; }
.picks .entry { height: 36mm; padding-left: 30mm; }
.picks .entry .jacket { width: 26mm; height: 36.4mm; }
/* the letter and the order form do not fit one A5 page: the form gets a page of its own, whole
   (split, its lines ran over onto the next page) */
.member-form { break-before: page; }
.member-form .order-form { break-inside: avoid; }
"""


def font_stack(cjk_font: str, latin_font: str = "") -> str:
    """A Latin face first (when set), then the CJK face, which has Latin glyphs of its own.

    The names go into a stylesheet unescaped, so only plain font names are accepted.
    """
    faces = [f for f in (latin_font, cjk_font) if f]
    for face in faces:
        if not _FONT_NAME.match(face):
            raise ConfigurationError(f"not a font family name: {face!r} (letters, digits, spaces)")
    generic = "sans-serif" if "sans" in cjk_font.lower() or "hei" in cjk_font.lower() else "serif"
    return ", ".join(f'"{f}"' for f in faces) + f", {generic}"


def page_css(settings: CatalogSettings, cjk_font: str) -> str:
    """The stylesheet settings choose: page size, bleed and crop marks, fonts."""
    rules = [f"@page {{ size: {settings.page_size}; }}"]
    if settings.bleed:
        rules.append("@page { bleed: 3mm; marks: crop cross; }")
    if settings.page_size == "A5":
        rules.append(A5_CSS)
    # Margin boxes (running heads, page numbers) take their font from @page, not from <html>.
    fonts = font_stack(cjk_font, settings.latin_font)
    rules.append(f"html {{ font-family: {fonts}; }} @page {{ font-family: {fonts}; }}")
    return "\n".join(rules)


def check_fonts(
    html: str,
    settings: CatalogSettings,
    font_setting: str,
    locate: Callable[[str], str | None] | None = None,
) -> None:
    """The fonts ``html`` is set in (``settings.latin_font``, then the face named by the
    ``font_setting`` field) are installed and have every character of its text and of the
    stylesheet's running heads; else FontUnavailableError naming the font and its package."""
    fonts = [
        FontUse(settings.latin_font, "catalog.latin_font"),
        FontUse(getattr(settings, font_setting), f"catalog.{font_setting}"),
    ]
    require_fonts(fonts, html_text(html) + "\n" + _stylesheet_strings(), locate)


def _stylesheet_strings() -> str:
    return stylesheet_text((STATIC_DIR / "catalog.css").read_text(encoding="utf-8"))


def render_html(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def per_row(settings: CatalogSettings) -> int:
    """Title entries side by side: two on A4, one on A5."""
    return 1 if settings.page_size == "A5" else 2


def catalog_html(view: CatalogView, settings: CatalogSettings) -> str:
    return render_html(
        "catalog.html", c=view, page_css=page_css(settings, settings.segment_font),
        per_row=per_row(settings),
    )


# What a print file adds to the stylesheet: 3 mm of bleed and no printer's marks (the press
# adds its own); the cover's colour band runs into the bleed so that a cut a little off the
# trim line leaves no white edge; blank pages (none are expected) carry no running heads.
PRINT_CSS = """
@page { bleed: 3mm; marks: none; }
@page :blank { @top-left { content: none } @top-right { content: none } @bottom-center { content: none } }
.cover .band { margin-left: -3mm; margin-right: -3mm; padding-left: 19mm; padding-right: 19mm; }
"""

SRGB_PROFILE = files("weasyprint.pdf") / "sRGB2014.icc"


@dataclass(frozen=True)
class PdfProfile:
    """How a PDF is written. ``variant``: WeasyPrint's ``pdf_variant`` (``pdf/x-4`` for the
    print stream, ``pdf/ua-1`` for the tagged web edition), None for a plain PDF. A PDF/X
    file takes ``output_profile``, the press's CMYK ICC profile, as its output intent; the
    RGB colours of the design are then tagged as sRGB (a ``DefaultRGB`` colour space), so
    that nothing is device RGB in a CMYK file."""

    variant: str | None = None
    output_profile: Path | None = None
    stylesheet: str = ""

    @property
    def is_print(self) -> bool:
        return bool(self.variant and self.variant.startswith("pdf/x"))


PLAIN = PdfProfile()
WEB = PdfProfile("pdf/ua-1")  # the web edition and segment catalogs: tagged, accessible


def print_profile(icc: Path) -> PdfProfile:
    """PDF/X-4 with ``icc`` (a CMYK output profile) as output intent, bleed, no marks."""
    if not icc.is_file():
        raise ConfigurationError(
            f"the print output profile {icc} is not there: install the Debian package libgs-common "
            "(its default_cmyk.icc) or set catalog.print_output_profile to a CMYK ICC profile"
        )
    return PdfProfile("pdf/x-4", icc, PRINT_CSS)



def _tag_rgb_as_srgb(pdf: pydyf.PDF) -> None:
    """Give the document's one colour-space resource a ``DefaultRGB``: sRGB (PDF 32000-1
    §8.6.5.6), so every ``rg`` colour and RGB image in a PDF/X file is device-independent."""
    spaces = [o for o in pdf.objects if isinstance(o, pydyf.Dictionary) and "lab-d50" in o]
    if not spaces:
        return
    profile = pydyf.Stream([SRGB_PROFILE.read_bytes()], pydyf.Dictionary({"N": 3}), compress=True)
    pdf.add_object(profile)
    for space in spaces:
        space["DefaultRGB"] = pydyf.Array(("/ICCBased", profile.reference))


def _rgb_shadings(pdf: pydyf.PDF) -> None:
    """Gradients (box shadows) are computed in sRGB whatever the output intent (WeasyPrint
    writes RGB stops under the document's default colour space, the CMYK profile in a print
    file): declare them RGB, which ``DefaultRGB`` then makes sRGB."""
    for shading in pdf.objects:
        if not isinstance(shading, pydyf.Dictionary) or "ShadingType" not in shading:
            continue
        function = shading.get("Function")
        stops = function.get("Functions", ()) if isinstance(function, pydyf.Dictionary) else ()
        if any(len(stop.get("C0", ())) == 3 for stop in stops if isinstance(stop, pydyf.Dictionary)):
            shading["ColorSpace"] = "/DeviceRGB"


def _name_output_condition(pdf: pydyf.PDF) -> None:
    for intent in pdf.catalog.get("OutputIntents", ()):
        name = intent.get("Info")
        intent["OutputConditionIdentifier"] = pydyf.String("Custom")
        if name is not None:
            intent["OutputCondition"] = name


def _ref(reference: bytes | str) -> int:
    return int((reference.decode() if isinstance(reference, bytes) else reference).split()[0])


def _artifact_orphans(_document: Document, pdf: pydyf.PDF) -> None:
    """Running heads and page numbers as artifacts (PDF/UA-1 §7.8). WeasyPrint marks the text
    of margin boxes with MCIDs whose structure elements it leaves out of the tree; such marked
    content belongs to nothing. Each becomes ``/Artifact BMC`` and its parent-tree slot null."""
    if "StructTreeRoot" not in pdf.catalog:
        return
    root = pdf.objects[_ref(pdf.catalog["StructTreeRoot"])]
    reachable: set[int] = set()
    todo = [_ref(k) for k in root["K"]]
    while todo:
        number = todo.pop()
        if number in reachable:
            continue
        reachable.add(number)
        for kid in pdf.objects[number].get("K", ()):
            if isinstance(kid, bytes) and isinstance(pdf.objects[_ref(kid)], pydyf.Dictionary):
                todo.append(_ref(kid))
    nums = pdf.objects[_ref(root["ParentTree"])]["Nums"]
    kids = pdf.pages["Kids"]
    pages = [int(kids[i]) for i in range(0, len(kids), 3)]
    for index in range(0, len(nums), 2):
        key, mapped = nums[index], nums[index + 1]
        if not isinstance(mapped, list) or not isinstance(key, int) or key >= len(pages):
            continue
        orphans = {m for m, ref in enumerate(mapped) if isinstance(ref, bytes) and _ref(ref) not in reachable}
        if not orphans:
            continue
        for mcid in orphans:
            mapped[mcid] = b"null"
        stream = pdf.objects[_ref(pdf.objects[pages[key]]["Contents"])]
        ops = stream.stream
        for i in range(1, len(ops) - 1):
            item = ops[i]
            if isinstance(item, pydyf.Dictionary) and item.get("MCID") in orphans and ops[i + 1] == b"BDC":
                ops[i - 1], ops[i], ops[i + 1] = "/Artifact", b"", b"BMC"


def _print_finisher(_document: Document, pdf: pydyf.PDF) -> None:
    _tag_rgb_as_srgb(pdf)
    _rgb_shadings(pdf)
    _name_output_condition(pdf)


# how a member's own inline images are written (the QR code in pages laid out whole:
# catalog.member_edition.qr_data_url); the cover placeholders, shared, are base64
PER_MEMBER_DATA_URL = "data:image/svg+xml;charset=utf-8,"


class ImageCache(dict[str, Any]):
    """WeasyPrint's image cache for a renderer's life, less each member's own inline images
    (:data:`PER_MEMBER_DATA_URL`): kept, every member's parsed QR code — ~8,000 objects each —
    stayed alive for good, ~170,000 objects a batch of 20 laid out whole."""

    def __setitem__(self, key: str, value: Any) -> None:
        if not key.startswith(PER_MEMBER_DATA_URL):
            super().__setitem__(key, value)


@contextmanager
def one_collection() -> Iterator[None]:  # also a decorator: then the function's frame is gone first
    """Python's cyclic garbage collector paused for one document's layout and writing, then run
    once. Laying out a batch of member pages allocates millions of objects: the collector ran
    ~20 times a batch, each generation-2 pass walking everything alive: ~20 % of the batch's CPU
    (docs/benchmarks.md, "The garbage collector"). Memory stays bounded: the batch's garbage
    goes at the end. Process-wide: a thread that finds the collector paused leaves it to the
    thread that paused it."""
    if not gc.isenabled():  # the caller manages the collector
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        # the youngest generation holds everything allocated since gc.disable(): the document's
        # garbage, and no more — older objects wait for the collector's own schedule
        gc.collect(0)


def freeze_long_lived() -> None:
    """Move what is alive now — a worker's model, titles, fonts, stamp sheets — out of the
    collector's sight (``gc.freeze``), so that each collection walks only what came after. Call it
    once a worker's long-lived state is built (as the API does at start-up, api/app.py). Called
    again (a worker's next job), what was frozen goes back to the collector first, so that the
    former job's state, dropped since, is freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# WeasyPrint's user-agent stylesheet gives *every* element six pseudo-elements: ``::marker``
# and the footnote and note calls and markers (``::footnote-call``, ``::note-marker``, …). Each
# is a cascaded and then a computed style per element: on a batch of member pages 9,114 of
# the 11,070 computed styles, for boxes that are never made (our documents have no footnotes,
# and markers only on list items). The lean sheet is WeasyPrint's own, those rules dropped and
# ``::marker`` kept for ``li``, where a marker is drawn; documents look the same (a test
# compares the page images).
_PER_ELEMENT_PSEUDO = re.compile(
    r"^::(?:footnote-call|footnote-marker|note-call|note-marker|note-callback) \{[^}]*\}\n", re.M
)


@cache
def lean_ua_stylesheet() -> CSS | None:
    """WeasyPrint's user-agent stylesheet without its rules for pseudo-elements of every element
    (``::marker`` kept on ``li``); None when the installed WeasyPrint's sheet is not the one
    these rules were written against (then its own sheet is used)."""
    text = (Path(weasyprint.__file__).parent / "css" / "html5_ua.css").read_text(encoding="utf-8")
    lean, dropped = _PER_ELEMENT_PSEUDO.subn("", text)
    lean, markers = re.subn(r"^::marker \{", "li::marker {", lean, flags=re.M)
    if dropped != 5 or markers != 1:
        logging.getLogger(__name__).warning(
            "WeasyPrint's user-agent stylesheet changed (%d of 5 pseudo-element rules, %d ::marker): using it as is",
            dropped, markers,
        )
        return None
    return CSS(string=lean)


class LeanHTML(HTML):  # type: ignore[misc]
    """WeasyPrint's HTML with :func:`lean_ua_stylesheet` (``_ua_stylesheets`` is the hook
    WeasyPrint's own tests override for a user-agent sheet of their own)."""

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        sheets: list[CSS] = super()._ua_stylesheets(forms)
        lean = lean_ua_stylesheet()
        if lean is None:
            return sheets
        return [lean, *sheets[1:]]


@dataclass
class Renderer:
    """Lays out and writes documents with one font configuration, image cache and fetcher.

    Keep one per process (and PDF profile): fonts, the parsed stylesheet's images and the
    placeholder covers are reused from one document to the next.
    """

    fetcher: AssetFetcher
    font_config: FontConfiguration
    image_cache: dict[str, Any]
    profile: PdfProfile = PLAIN
    _extra_css: list[CSS] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)  # what callers lay out once per renderer

    @classmethod
    def create(cls, asset_roots: list[Path] | None = None, profile: PdfProfile = PLAIN) -> Renderer:
        logging.getLogger("weasyprint").setLevel(logging.ERROR)
        roots = [STATIC_DIR, *(asset_roots or [])]
        font_config = FontConfiguration()
        extra = [CSS(string=profile.stylesheet, font_config=font_config)] if profile.stylesheet else []
        return cls(AssetFetcher(roots), font_config, ImageCache(), profile, extra)

    def untagged(self) -> Renderer:
        """This renderer, or for a tagged profile (PDF/UA) a sibling that writes untagged PDF
        with the same fonts and images (kept in :attr:`memo`)."""
        if not (self.profile.variant or "").startswith("pdf/ua"):
            return self
        sibling = self.memo.get("untagged")
        if not isinstance(sibling, Renderer):
            sibling = Renderer(self.fetcher, self.font_config, self.image_cache, PLAIN)
            self.memo["untagged"] = sibling
        return sibling

    def _color_profiles(self) -> dict[str, ColorProfile]:
        icc = self.profile.output_profile
        if icc is None:
            return {}
        with icc.open("rb") as handle:
            components = (["c"], ["m"], ["y"], ["k"])  # its /N
            return {"device-cmyk": ColorProfile(handle, icc.as_uri(), "relative-colorimetric", components)}

    def layout(self, html: str) -> Document:
        document = LeanHTML(string=html, base_url=BASE_URL, url_fetcher=self.fetcher)
        return document.render(
            font_config=self.font_config, cache=self.image_cache, color_profiles=self._color_profiles(),
            stylesheets=self._extra_css or None, pdf_variant=self.profile.variant,
        )

    def write(
        self,
        document: Document,
        target: Path | None = None,
        finisher: Callable[[Document, pydyf.PDF], None] | None = None,
    ) -> bytes:
        """The PDF; also written to ``target`` (atomically: complete or not at all) when given.
        ``finisher`` may add to the PDF before it is written (stamps: :mod:`catalog.stamps`).

        A document that drew any character as an empty box (a glyph its font lacks, whatever
        font the stylesheet or fontconfig chose) is an error, not a PDF."""

        def finish(doc: Document, pdf: pydyf.PDF) -> None:
            if finisher is not None:
                finisher(doc, pdf)
            if self.profile.is_print:
                _print_finisher(doc, pdf)
            if (self.profile.variant or "").startswith("pdf/ua"):
                _artifact_orphans(doc, pdf)

        pdf = document.write_pdf(pdf_variant=self.profile.variant, finisher=finish)
        assert isinstance(pdf, bytes)
        require_drawn(getattr(document, "fonts", {}).values())
        if target is not None:
            atomic_write_bytes(target, pdf)
        return pdf


def render_catalog_pdf(
    view: CatalogView, settings: CatalogSettings, renderer: Renderer | None = None
) -> tuple[bytes, int]:
    """The segment catalog as PDF bytes, and its page count (fonts checked first)."""
    renderer = renderer or Renderer.create()
    html = catalog_html(view, settings)
    check_fonts(html, settings, "segment_font")
    return _lay_out_and_write(renderer, html)


@one_collection()
def _lay_out_and_write(renderer: Renderer, html: str) -> tuple[bytes, int]:
    document = renderer.layout(html)
    return renderer.write(document), len(document.pages)


def render_catalog(
    view: CatalogView, settings: CatalogSettings, target: Path, renderer: Renderer | None = None
) -> int:
    """Write the segment catalog to ``target`` (atomically); return its page count."""
    pdf, pages = render_catalog_pdf(view, settings, renderer)
    atomic_write_bytes(target, pdf)
    return pages
