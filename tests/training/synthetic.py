"""A small club with known structure, written through ``recsys.storage.bulk.bulk_insert``.

Two top classes (I literature, K history), each with two sub-classes; every
member reads mostly one sub-class (their "taste"); inside a sub-class a few
titles sell best. ``new_titles`` titles per sub-class get their first sales
only after ``cutoff``, so they test the cold-start path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from recsys.storage.bulk import bulk_insert

CATEGORIES = [
    ("I", "文学", None, 1),
    ("K", "历史、地理", None, 1),
    ("I24", "小说", "I", 2),
    ("I22", "诗歌", "I", 2),
    ("K2", "中国史", "K", 2),
    ("K5", "欧洲史", "K", 2),
]
LEAVES = ["I24", "I22", "K2", "K5"]


@dataclass(frozen=True)
class Club:
    cutoff: dt.datetime
    taste: dict[str, str]  # member_id → leaf category
    title_leaf: dict[str, str]  # title_id → leaf category
    new_title_ids: list[str]


def make_club(
    engine: Engine,
    *,
    members: int = 200,
    titles_per_leaf: int = 25,
    new_titles: int = 3,
    lines_per_member: int = 30,
    seed: int = 1,
    start: dt.datetime = dt.datetime(2023, 1, 1),
    days: int = 600,
    holdout_days: int = 91,
    cold_members: int = 0,
) -> Club:
    """``cold_members`` more members declare their taste as a favourite category and buy
    only in the ``holdout_days`` after the cutoff (the cold-start case)."""
    rng = np.random.default_rng(seed)
    cutoff = start + dt.timedelta(days=days - holdout_days)
    title_rows, tc_rows, title_leaf, new_ids = [], [], {}, []
    by_leaf: dict[str, list[int]] = {}
    key = 0
    for leaf in LEAVES:
        for j in range(titles_per_leaf + new_titles):
            key += 1
            title_id = f"T{leaf}-{j:03d}"
            title_rows.append((key, title_id, f"{leaf} 书 {j}", True))
            tc_rows.append((key, leaf, True))
            title_leaf[title_id] = leaf
            by_leaf.setdefault(leaf, []).append(key)
            if j >= titles_per_leaf:
                new_ids.append(title_id)
    member_rows, purchase_rows, taste, favourites = [], [], {}, []
    line = 0
    for m in range(1, members + cold_members + 1):
        member_id = f"M{m:05d}"
        leaf = LEAVES[m % len(LEAVES)]
        taste[member_id] = leaf
        member_rows.append((m, member_id, f"会员 {m}", "active"))
        cold = m > members
        if cold:
            favourites.append((m, leaf))
        for _ in range(lines_per_member // 3 if cold else lines_per_member):
            first = days - holdout_days if cold else 0
            moment = start + dt.timedelta(days=float(rng.uniform(first, days)))
            own = rng.random() < 0.85
            pool_leaf = leaf if own else LEAVES[int(rng.integers(len(LEAVES)))]
            pool = by_leaf[pool_leaf]
            if new_titles and moment >= cutoff and rng.random() < 0.3:
                title_key = pool[titles_per_leaf + int(rng.integers(new_titles))]
            else:
                rank = min(int(rng.zipf(1.6)) - 1, titles_per_leaf - 1)
                title_key = pool[rank]
            line += 1
            quantity = 1 if rng.random() > 0.02 else -1
            purchase_rows.append((line, f"L{line}", m, title_key, quantity, 30.0, moment, "web"))
    with engine.begin() as connection:
        bulk_insert(connection, "categories", ["code", "name", "parent_code", "level"], CATEGORIES)
        bulk_insert(connection, "titles", ["id", "title_id", "title", "in_stock"], title_rows)
        bulk_insert(
            connection, "title_categories", ["title_key", "category_code", "is_primary"], tc_rows
        )
        bulk_insert(connection, "members", ["id", "member_id", "name", "status"], member_rows)
        if favourites:
            bulk_insert(connection, "member_categories", ["member_key", "category_code"], favourites)
        bulk_insert(
            connection,
            "purchases",
            [
                "id",
                "line_id",
                "member_key",
                "title_key",
                "quantity",
                "unit_price",
                "purchased_at",
                "channel",
            ],
            purchase_rows,
        )
    return Club(cutoff=cutoff, taste=taste, title_leaf=title_leaf, new_title_ids=new_ids)


def add_unrelated_rows(engine: Engine, after: dt.datetime, *, members: int = 400, titles: int = 30) -> None:
    """Rows a past evaluation must not see: members who never bought (with favourites),
    titles that never sold, and order lines dated ``after`` (by old and new members, of old
    and new titles). Ids sort *before* the club's (``A…``), so they would shift every
    matrix position if an evaluation fitted on them."""
    with engine.connect() as connection:
        top = {
            table: int(connection.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar_one())
            for table in ("members", "titles", "purchases")
        }
    member_rows = [(top["members"] + i, f"A{i:05d}", f"新会员 {i}", "active") for i in range(1, members + 1)]
    favourite_rows = [(key, LEAVES[key % len(LEAVES)]) for key, *_ in member_rows]
    title_rows = [(top["titles"] + i, f"A-{i:03d}", f"新书 {i}", True) for i in range(1, titles + 1)]
    tc_rows = [(key, LEAVES[key % len(LEAVES)], True) for key, *_ in title_rows]
    buyers = [1, 2, 3, member_rows[0][0], member_rows[1][0]]
    bought = [1, 2, title_rows[0][0]]
    purchase_rows = [
        (top["purchases"] + n + 1, f"LA{n}", member, title, 1, 30.0, after + dt.timedelta(days=n), "web")
        for n, (member, title) in enumerate((m, t) for m in buyers for t in bought)
    ]
    with engine.begin() as connection:
        bulk_insert(connection, "members", ["id", "member_id", "name", "status"], member_rows)
        bulk_insert(connection, "member_categories", ["member_key", "category_code"], favourite_rows)
        bulk_insert(connection, "titles", ["id", "title_id", "title", "in_stock"], title_rows)
        bulk_insert(connection, "title_categories", ["title_key", "category_code", "is_primary"], tc_rows)
        bulk_insert(
            connection,
            "purchases",
            ["id", "line_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
            purchase_rows,
        )
