"""The only URLs a catalog may load: data: URLs and files under the project's asset folders.

Anything else (http, other files) is refused, so a title's cover field or a
blurb cannot make the renderer read the disk or the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"


class AssetFetcher(URLFetcher):  # type: ignore[misc]
    """Serves ``data:`` URLs and ``file:`` URLs inside ``roots``; refuses the rest."""

    def __init__(self, roots: list[Path] | None = None) -> None:
        super().__init__(allowed_protocols=("file", "data"))
        self.roots = [r.resolve() for r in (roots or [STATIC_DIR])]
        self.refused: list[str] = []

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "data":
            return True
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return False
        path = Path(unquote(parts.path)).resolve()
        return any(path.is_relative_to(root) for root in self.roots) and path.is_file()

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if not self.allows(url):
            self.refused.append(url)
            raise ValueError(f"catalog assets come from the project's folders only: {url}")
        return super().fetch(url, headers)
