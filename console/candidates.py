"""Model versions other than the one the API serves, loaded once per worker: a candidate beside
the active model for one member (admins, on the member page), two versions compared on a
sample of members (the models page).

A worker keeps the last few versions it was asked about, each loaded once through the
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
from training.registry import ModelRegistry

_KEEP = 3  # a candidate on the member page, and the two versions of a comparison
_lock = threading.Lock()


def loaded(state: Any, registry: ModelRegistry, connection: Connection, version: str) -> tuple[Any, serving.Shelf]:
    """(model, shelf) of ``version``, kept on the app's ``state``; ModelNotFoundError for an
    unknown version. Safe to call from a background thread."""
    with _lock:
        cache: OrderedDict[str, tuple[Any, serving.Shelf]] | None = getattr(state, "console_candidates", None)
        if cache is None:
            cache = state.console_candidates = OrderedDict()
        found = cache.get(version)
        if found is not None:
            cache.move_to_end(version)
            return found
    model = registry.load_prepared(connection, version)
    entry = (model, serving.read_shelf(connection, model))
    with _lock:
        cache[version] = entry
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    return entry


def candidate(request: Request, connection: Connection, version: str) -> tuple[Any, serving.Shelf]:
    """(model, shelf) of ``version``; ModelNotFoundError for an unknown version."""
    return loaded(request.app.state, registry_of(request), connection, version)
