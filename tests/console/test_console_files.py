"""The console serves a catalog or edition PDF (and its proof images) only when it is
complete: its size and SHA-256 match the sidecar written after it."""

from __future__ import annotations

from pypdf import PdfWriter

from catalog.paths import catalog_path, edition_path, sidecar_bytes, sidecar_path
from recsys.files import atomic_write_many
from recsys.settings import Settings
from tests.console.conftest import Staff

QUARTER = "2026Q4"


def _pdf() -> bytes:
    import io

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_only_complete_pdfs_are_served(staff: Staff, api_settings: Settings) -> None:
    pdf = _pdf()
    edition = edition_path(api_settings, QUARTER, "M01")
    segment = catalog_path(api_settings, QUARTER, 0)
    atomic_write_many([(edition, pdf), (sidecar_path(edition), sidecar_bytes(pdf))])
    atomic_write_many([(segment, pdf), (sidecar_path(segment), sidecar_bytes(pdf))])
    routes = {edition: f"/ui/catalogs/{QUARTER}/proofs/M01.pdf", segment: f"/ui/catalogs/{QUARTER}/segment-0.pdf"}
    for route in routes.values():
        response = staff.get("editions", route)
        assert response.status_code == 200 and response.content == pdf, route
    for path, route in routes.items():
        path.write_bytes(pdf[: len(pdf) // 2])  # cut short by a crash or a full disk
        assert staff.get("editions", route).status_code == 404, route
    assert staff.get("editions", f"/ui/catalogs/{QUARTER}/proofs/M01/page/1.png").status_code == 404


def test_an_empty_secret_file_is_refused_not_used(api_settings: Settings) -> None:
    """What a crash between creating the secret file and its data reaching the disk left: an
    empty secret would sign sessions anyone could forge."""
    import pytest

    from console.session import console_secret
    from recsys.errors import ConfigurationError

    path = api_settings.data_dir / "console_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    with pytest.raises(ConfigurationError, match="no usable console secret") as refused:
        console_secret(api_settings)
    assert str(api_settings.data_dir) not in str(refused.value)
    path.unlink()
    made = console_secret(api_settings)
    assert len(made) >= 32 and path.read_text().strip().encode() == made
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".console_secret")] == []


def test_two_requests_for_one_proof_page_at_once_both_get_the_image(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two threads render the same page together (pdftoppm runs in both before either
    renames its output): each writes and renames a temporary file of its own."""
    import subprocess
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from console.pages import catalogs

    pdf = tmp_path / "M01.pdf"
    pdf.write_bytes(_pdf())
    both_rendered = threading.Barrier(2, timeout=30)
    real_run = subprocess.run

    def run_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_run(*args, **kwargs)
        both_rendered.wait()
        return result

    monkeypatch.setattr(catalogs.subprocess, "run", run_then_wait)
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda _: catalogs._png(pdf, 1, cache), range(2)))
    assert found[0] == found[1] and found[0].read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in cache.iterdir()] == [found[0].name]  # no temporary file left
