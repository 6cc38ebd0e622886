"""Every console page under ``/ui``: one router for ``api.app`` to include."""

from __future__ import annotations

from fastapi import APIRouter

from console.pages import campaigns, catalogs, home, jobs, members, models, segments, titles

router = APIRouter(prefix="/ui", include_in_schema=False)
for module in (home, members, titles, segments, catalogs, models, campaigns, jobs):
    router.include_router(module.router)
