"""A small club with known answers: categories, titles, members, purchases, segments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Connection, insert

from recsys.storage.schema import (
    Category,
    Member,
    MemberCategory,
    MemberSegment,
    Purchase,
    Segment,
    Title,
    TitleCategory,
)

CATEGORIES = [
    ("I", "文学", None, 1),
    ("I2", "中国文学", "I", 2),
    ("I24", "小说", "I2", 3),
    ("I247", "当代小说", "I24", 4),
    ("K", "历史、地理", None, 1),
    ("K2", "中国史", "K", 2),
    ("TP", "计算机", None, 1),
]

# title_id, title, author, price, in_stock, primary category
TITLES = [
    ("T01", "活着", "余华", "28.00", True, "I247"),
    ("T02", "许三观卖血记", "余华", "26.00", True, "I247"),
    ("T03", "兄弟", "余华", "45.00", True, "I247"),
    ("T04", "平凡的世界", "路遥", "98.00", True, "I247"),
    ("T05", "人生", "路遥", "22.00", False, "I247"),  # out of stock
    ("T06", "红楼梦", "曹雪芹", "59.00", True, "I24"),
    ("T07", "万历十五年", "黄仁宇", "36.00", True, "K2"),
    ("T08", "中国大历史", "黄仁宇", "39.00", True, "K2"),
    ("T09", "史记", "司马迁", "120.00", True, "K2"),
    ("T10", "明朝那些事儿", "当年明月", "88.00", True, "K2"),
    ("T11", "深入理解计算机系统", "Bryant", "139.00", True, "TP"),
    ("T12", "算法导论", "Cormen", "128.00", True, "TP"),
]
NEW_TITLE = ("T99", "文城", "余华", "59.00", True, "I247")  # added after training

# member_id, name, declared categories
MEMBERS = [
    ("M01", "张三", ["I247"]),
    ("M02", "李四", ["K2"]),
    ("M03", "王五", []),
    ("M04", "赵六", ["TP"]),
    ("M05", "钱七", ["I247"]),  # no purchases: cold start from declared categories
    ("M06", "孙八", []),  # no purchases, nothing declared
]

T0 = dt.datetime(2026, 1, 5, 10, 0)
# member, title, quantity, day offset
PURCHASES = [
    ("M01", "T01", 1, 0),
    ("M01", "T02", 1, 3),
    ("M01", "T04", 1, 9),
    ("M02", "T07", 1, 1),
    ("M02", "T08", 1, 4),
    ("M02", "T09", 1, 8),
    ("M03", "T01", 1, 2),
    ("M03", "T03", 1, 5),
    ("M03", "T07", 1, 7),
    ("M03", "T06", 1, 11),
    ("M04", "T11", 1, 1),
    ("M04", "T12", 2, 6),
    ("M04", "T10", 1, 12),
    ("M01", "T06", 1, 14),
    ("M02", "T10", 1, 15),
    ("M03", "T02", 1, 16),
    ("M01", "T03", 1, 20),
    ("M03", "T04", 1, 21),
    ("M02", "T06", 1, 22),
    ("M04", "T07", 1, 23),
    ("M01", "T05", 1, 24),
    ("M03", "T05", 1, 25),
    ("M02", "T01", 1, 26),
    ("M02", "T01", -1, 27),  # bought and returned
]
TRAINED_UNTIL = T0 + dt.timedelta(days=27)
QUARTER = "2026Q1"


def insert_club(connection: Connection, *, with_new_title: bool = True) -> None:
    connection.execute(
        insert(Category),
        [{"code": c, "name": n, "parent_code": p, "level": lv} for c, n, p, lv in CATEGORIES],
    )
    titles = TITLES + ([NEW_TITLE] if with_new_title else [])
    for key, (tid, title, author, price, stock, code) in enumerate(titles, start=1):
        connection.execute(
            insert(Title).values(
                id=key,
                title_id=tid,
                title=title,
                author=author,
                price=Decimal(price),
                in_stock=stock,
                language="zh",
            )
        )
        connection.execute(insert(TitleCategory).values(title_key=key, category_code=code, is_primary=True))
    for key, (mid, name, declared) in enumerate(MEMBERS, start=1):
        connection.execute(
            insert(Member).values(
                id=key,
                member_id=mid,
                name=name,
                address=f"{name}路 {key} 号",
                postcode="200000",
                city="上海",
                birth_year=1990 + key,
                channel="web",
                status="active",
                joined_on=dt.date(2020, 1, key),
            )
        )
        for code in declared:
            connection.execute(insert(MemberCategory).values(member_key=key, category_code=code))
    member_key = {m[0]: i for i, m in enumerate(MEMBERS, start=1)}
    title_key = {t[0]: i for i, t in enumerate(titles, start=1)}
    list_price = {t[0]: Decimal(t[3]) for t in titles}
    connection.execute(
        insert(Purchase),
        [
            {
                "line_id": f"L{n:03d}",
                "order_id": f"O{n:03d}",
                "member_key": member_key[m],
                "title_key": title_key[t],
                "quantity": qty,
                "unit_price": list_price[t],
                "purchased_at": T0 + dt.timedelta(days=day),
                "channel": "web",
            }
            for n, (m, t, qty, day) in enumerate(PURCHASES, start=1)
        ],
    )
    connection.execute(
        insert(Segment).values(quarter=QUARTER, segment=1, name="当代小说读者", size=2, profile_json="{}")
    )
    connection.execute(
        insert(MemberSegment).values(
            quarter=QUARTER,
            member_key=member_key["M01"],
            tier="core",
            segment=1,
            recency_days=3,
            frequency=6,
            monetary=300.0,
        )
    )
    connection.execute(  # M03 was segmented in 2025Q4 only: no segment in the latest quarter
        insert(MemberSegment).values(
            quarter="2025Q4",
            member_key=member_key["M03"],
            tier="regular",
            segment=0,
            recency_days=40,
            frequency=3,
            monetary=90.0,
        )
    )
    connection.execute(
        insert(MemberSegment).values(
            quarter="2025Q4",
            member_key=member_key["M01"],
            tier="regular",
            segment=0,
            recency_days=30,
            frequency=2,
            monetary=50.0,
        )
    )
