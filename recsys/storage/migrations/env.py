"""Alembic environment: the engine is handed over by recsys.storage.db.upgrade."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from recsys.storage.schema import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    from recsys.settings import Settings
    from recsys.storage.db import engine_from_settings

    engine = engine_from_settings(Settings())

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
