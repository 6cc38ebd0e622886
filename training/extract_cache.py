"""An incremental cache of the purchases extract, for nightly retrains.

Order lines are appended far more often than they change, so the columns
training reads (``purchases.id``, member and title keys, quantity, epoch
seconds) are kept in one ``.npz`` file with the highest id they hold. The next
run checks that the rows up to that id are still the ones cached and then reads
only ``id > max_id`` from the database.

The check is cheap and catches what the club's own code does to purchases
(imports append; ``demo-data --replace`` deletes and re-inserts): the count and
the sum of the ids up to ``max_id`` must match (any delete or insert below it),
and so must every column of up to ``verify_rows`` lines spread evenly over the
cache (a table emptied and refilled under the same ids). An ``UPDATE`` of a
few old lines in place is not guaranteed to be seen: after one, delete the
cache file (or set ``training.extract_cache=false`` for that run).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import Connection

from recsys.files import atomic_writer, remove_stale_temps
from recsys.storage.purchase_log import (
    PurchaseArrays,
    PurchaseLog,
    purchase_id_stats,
    read_purchase_log,
    read_purchases_by_id,
)

FORMAT = 1
FILE_NAME = "purchases.npz"

Progress = Callable[[int], None]
State = Literal["cold", "warm", "invalidated"]


@dataclass(frozen=True)
class CacheReport:
    """How the extract was served: ``cold`` (no usable cache), ``warm`` (cache + new
    lines), ``invalidated`` (a cache that no longer matched, re-read in full)."""

    state: State
    cached_rows: int
    new_rows: int
    reason: str = ""


def source_key(connection: Connection) -> str:
    """Which database the cache was filled from (URL without password, hashed)."""
    url = connection.engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class ExtractCache:
    """``directory/purchases.npz``: the extract of every order line up to ``max_id``."""

    def __init__(self, directory: Path, *, verify_rows: int = 1024) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME
        self.verify_rows = verify_rows

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(
        self,
        connection: Connection,
        *,
        batch_rows: int = 200_000,
        on_batch: Progress | None = None,
    ) -> tuple[PurchaseLog, CacheReport]:
        """Every order line, from the cache where it still holds, and the cache brought up to date."""
        source = source_key(connection)
        cached, meta = self._load()
        reason = self._mismatch(connection, cached, meta, source)
        if cached is None or reason:
            log = read_purchase_log(connection, batch_rows=batch_rows, on_batch=on_batch)
            self._save(log, source)
            state: State = "cold" if cached is None else "invalidated"
            return log, CacheReport(state, 0, len(log), reason)
        new = read_purchase_log(
            connection, after_id=cached.max_id(), batch_rows=batch_rows, on_batch=on_batch
        )
        log = PurchaseLog.concat(cached, new)
        if len(new):
            self._save(log, source)
        return log, CacheReport("warm", len(cached), len(new))

    def _load(self) -> tuple[PurchaseLog | None, dict[str, object]]:
        if not self.path.exists():
            return None, {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                log = PurchaseLog(
                    data["purchase_id"],
                    PurchaseArrays(
                        data["member_key"],
                        data["title_key"],
                        data["quantity"],
                        data["purchased_at"],
                    ),
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None, {}  # unreadable (e.g. a half-written file, a changed byte): start over
        return log, meta

    def _mismatch(
        self,
        connection: Connection,
        cached: PurchaseLog | None,
        meta: dict[str, object],
        source: str,
    ) -> str:
        """Why the cache cannot be used ('' if it can)."""
        if cached is None:
            return "no cache"
        if meta.get("format") != FORMAT or meta.get("source") != source:
            return "another database or cache format"
        max_id = cached.max_id()
        count, id_sum = purchase_id_stats(connection, max_id)
        if count != len(cached) or id_sum != int(cached.purchase_id.sum()):
            return "lines up to the cached id were deleted or inserted"
        if len(cached):
            positions = np.unique(
                np.linspace(0, len(cached) - 1, min(self.verify_rows, len(cached))).astype(np.int64)
            )
            stored = read_purchases_by_id(connection, cached.purchase_id[positions])
            mine = cached.arrays.subset(positions)
            if not (
                np.array_equal(stored.purchase_id, cached.purchase_id[positions])
                and np.array_equal(stored.arrays.member_key, mine.member_key)
                and np.array_equal(stored.arrays.title_key, mine.title_key)
                and np.array_equal(stored.arrays.quantity, mine.quantity)
                and np.allclose(stored.arrays.purchased_at, mine.purchased_at, rtol=0, atol=1e-3)
            ):
                return "sampled lines differ from the cache"
        return ""

    def _save(self, log: PurchaseLog, source: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "source": source, "max_id": log.max_id(), "rows": len(log)}
        remove_stale_temps(self.directory, FILE_NAME)  # left by a run that was killed
        with atomic_writer(self.path) as handle:
            np.savez(
                handle,
                meta=np.array(json.dumps(meta)),
                purchase_id=log.purchase_id,
                member_key=log.arrays.member_key,
                title_key=log.arrays.title_key,
                quantity=log.arrays.quantity,
                purchased_at=log.arrays.purchased_at,
            )
