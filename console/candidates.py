"""A candidate model beside the active one, for one member (admins, on the member page).

A worker keeps the last two candidate models it was asked about, each loaded once through the
registry (``ModelRegistry.load_prepared``: taught every title of the club, as every face's
model is) with its shelf of titles; the recommendations come from the same
:func:`recsys.serving.recommend` the API calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from fastapi import Request
from sqlalchemy import Connection

from console.models_view import registry_of
from recsys import serving

_KEEP = 2
_lock = threading.Lock()


def candidate(request: Request, connection: Connection, version: str) -> tuple[Any, serving.Shelf]:
    """(model, shelf) of ``version``; ModelNotFoundError for an unknown version."""
    cache: OrderedDict[str, tuple[Any, serving.Shelf]] | None = getattr(request.app.state, "console_candidates", None)
    if cache is None:
        cache = request.app.state.console_candidates = OrderedDict()
    with _lock:
        found = cache.get(version)
        if found is not None:
            cache.move_to_end(version)
            return found
    model = registry_of(request).load_prepared(connection, version)
    loaded = (model, serving.read_shelf(connection, model))
    with _lock:
        cache[version] = loaded
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    return loaded
