"""The club's data as a whole: is there any, how much, emptying it for a demo, and what a
bulk load of an empty club needs (secondary indexes built once at the end, PostgreSQL
sequences moved past explicit keys)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, func, select, text

from recsys.storage.schema import Base, Category, Member, MemberCategory, Purchase, Title, TitleCategory

CLUB_TABLES = ("purchases", "member_categories", "title_categories", "members", "titles")


def has_club_data(connection: Connection) -> bool:
    """Whether any member, title or order line is stored (one indexed probe each)."""
    return any(
        connection.execute(select(model.__table__.c[0]).limit(1)).first() is not None
        for model in (Member, Title, Purchase)
    )


def has_categories(connection: Connection) -> bool:
    return connection.execute(select(Category.code).limit(1)).first() is not None


def row_counts(connection: Connection) -> dict[str, int]:
    """Rows per table of the club's core data (a full count: for jobs, not for pages)."""
    return {
        table.__tablename__: int(connection.scalar(select(func.count()).select_from(table)) or 0)
        for table in (Category, Title, TitleCategory, Member, MemberCategory, Purchase)
    }


def clear_club_data(connection: Connection) -> None:
    """Empty members, titles, purchases and their category links (and what hangs off members)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"TRUNCATE {', '.join(CLUB_TABLES)} RESTART IDENTITY CASCADE"))
        return
    for table in ("member_segments", *CLUB_TABLES):
        connection.execute(text(f"DELETE FROM {table}"))


@contextmanager
def purchase_indexes_deferred(connection: Connection) -> Iterator[None]:
    """Drop the purchases table's secondary indexes, and build them once on the way out
    (for a bulk load into an empty table)."""
    indexes = sorted(Base.metadata.tables["purchases"].indexes, key=lambda ix: str(ix.name))
    for index in indexes:
        index.drop(connection)
    yield
    for index in indexes:
        index.create(connection)


def move_sequences(connection: Connection) -> None:
    """PostgreSQL: start the id sequences of titles and members after the keys written."""
    if connection.dialect.name != "postgresql":
        return
    for table in ("titles", "members"):
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )
